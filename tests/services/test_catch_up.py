"""Catch-up loses nothing: a message in the last handled millisecond, a room whose catch-up failed
while live traffic went on, and a room a far-future frame tried to pin (end to end, sandbox)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import Credentials
from bot.realtime.events import Connected, Disconnected
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.store import Store
from tests.conftest import RunningBot, bot_settings, start_bot, until

YEAR_9999_MS = 253402300799000


class FrozenClock:
    """The sandbox's clock, held still so that messages share one millisecond."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def frozen() -> AsyncIterator[tuple[Sandbox, FrozenClock]]:
    clock = FrozenClock()
    async with Sandbox(clock=clock) as sb:
        yield sb, clock


async def _outage(sandbox: Sandbox, bot: RunningBot) -> None:
    sandbox.refuse_connections(True)
    await sandbox.drop_connections()
    assert await until(lambda: bot.recorder.count(Disconnected) >= 1)


async def _reconnected(bot: RunningBot, times: int = 2) -> bool:
    ingest = bot.app.ingest
    assert ingest is not None
    return await until(lambda: bot.recorder.count(Connected) >= times and ingest.catch_ups >= times)


async def handled_then_away(sandbox: Sandbox, bot: RunningBot, text: str) -> str:
    """alice posts ``text``; once the bot has handled it, an outage begins. The message's id."""
    first = str(sandbox.post_as("alice", "general", text)["_id"])
    assert await until(lambda: first in bot.recorder.message_ids())
    await _outage(sandbox, bot)
    return first


async def test_a_message_in_the_last_handled_millisecond_is_caught_up(
    frozen: tuple[Sandbox, FrozenClock], tmp_path: Path
) -> None:
    sandbox, _ = frozen
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    first = await handled_then_away(sandbox, bot, "first")
    second = sandbox.post_as("bob", "general", "same millisecond, while the bot was away")["_id"]
    sandbox.refuse_connections(False)
    assert await _reconnected(bot)
    assert await until(lambda: second in rec.message_ids(), within=3)
    await bot.stop()
    assert rec.message_ids() == {first: 1, second: 1}


async def test_a_room_whose_catch_up_failed_is_retried_and_live_traffic_does_not_skip_its_gap(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    first = await handled_then_away(sandbox, bot, "before")
    missed = sandbox.post_as("bob", "general", "during the outage")["_id"]
    # Every room's catch-up is refused for a long while (past what the REST client waits out).
    sandbox.fail_next("chat.syncMessages", 429, times=12, retry_after=600)
    sandbox.refuse_connections(False)
    assert await _reconnected(bot)
    live = sandbox.post_as("carol", "general", "after the reconnection")["_id"]
    assert await until(lambda: live in rec.message_ids())
    # No reconnection happens: the failed rooms must be retried on their own.
    assert await until(lambda: missed in rec.message_ids(), within=10)
    await bot.stop()
    assert rec.message_ids() == {first: 1, missed: 1, live: 1}
    assert rec.count(Connected) == 2


async def test_live_traffic_in_a_room_pending_catch_up_leaves_its_cursor_at_the_gap(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Even if the bot stops before the retry succeeds, the next start still finds the gap."""
    settings = bot_settings(sandbox, tmp_path)
    bot = await start_bot(settings)
    rec = bot.recorder
    first = sandbox.post_as("alice", "general", "before")["_id"]
    assert await until(lambda: first in rec.message_ids())
    await _outage(sandbox, bot)
    missed = sandbox.post_as("bob", "general", "during the outage")["_id"]
    sandbox.fail_next("chat.syncMessages", 429, times=10_000, retry_after=600)  # retries fail too
    sandbox.refuse_connections(False)
    assert await _reconnected(bot)
    live = sandbox.post_as("carol", "general", "after the reconnection")["_id"]
    assert await until(lambda: live in rec.message_ids())
    await bot.stop()
    assert missed not in rec.message_ids()
    sandbox.faults.rules.clear()

    second = await start_bot(settings)
    assert await until(lambda: missed in second.recorder.message_ids())
    await second.stop()
    assert set(second.recorder.message_ids()) == {missed}


def _far_future_frame(rid: str) -> str:
    message = {
        "_id": "FUTUREMESSAGE0001",
        "rid": rid,
        "msg": "from the year 9999",
        "ts": {"$date": YEAR_9999_MS},
        "_updatedAt": {"$date": YEAR_9999_MS},
        "u": {"_id": "someone", "username": "mallory"},
    }
    return json.dumps(
        {
            "msg": "changed",
            "collection": "stream-room-messages",
            "id": "id",
            "fields": {"eventName": rid, "args": [message]},
        }
    )


async def test_a_far_future_frame_does_not_pin_the_cursor(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    first = sandbox.post_as("alice", "general", "before")["_id"]
    assert await until(lambda: first in rec.message_ids())
    sandbox.inject_frame(_far_future_frame("GENERAL"))
    assert await until(lambda: "FUTUREMESSAGE0001" in rec.message_ids())
    await _outage(sandbox, bot)
    missed = sandbox.post_as("bob", "general", "during the outage")["_id"]
    sandbox.refuse_connections(False)
    assert await _reconnected(bot)
    assert await until(lambda: missed in rec.message_ids(), within=3)
    store = bot.app.store
    assert store is not None
    cursor = store.messages.room_cursor("GENERAL")
    assert cursor is not None and cursor.year < 9999
    await bot.stop()


async def test_a_cursor_already_pinned_in_the_future_is_brought_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = bot_settings(sandbox, tmp_path)
    bot = await start_bot(settings)
    seen = sandbox.post_as("alice", "general", "handled before the stop")["_id"]
    assert await until(lambda: seen in bot.recorder.message_ids())
    await bot.stop()
    store = Store.open(settings.storage.data_dir / "rcmod.sqlite3")
    store.messages.advance_room_cursor("GENERAL", datetime.fromtimestamp(YEAR_9999_MS / 1000, tz=UTC))
    store.close()
    missed = sandbox.post_as("bob", "general", "while the bot was stopped")["_id"]
    second = await start_bot(settings)
    # Back to when the bot last handled something in the room, not to the server's present:
    # what was posted while it was stopped is caught up however long its start takes.
    assert await until(lambda: missed in second.recorder.message_ids())
    assert seen not in second.recorder.message_ids()  # dedup absorbs the overlap
    await second.stop()
    reopened_store = Store.open(settings.storage.data_dir / "rcmod.sqlite3")
    try:
        cursor = reopened_store.messages.room_cursor("GENERAL")
        assert cursor is not None and cursor.year < 9999
    finally:
        reopened_store.close()


async def test_the_rest_client_knows_the_servers_time_from_its_answers(sandbox: Sandbox) -> None:
    bot_user = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    rest = RestClient(sandbox.url, Credentials(user_id=bot_user["id"], token=SecretStr(bot_user["token"])))
    try:
        assert rest.server_now() is None  # nothing heard from the server yet
        await rest.me()
        server_now = rest.server_now()
        assert server_now is not None
        # ``Date`` has whole seconds: the estimate is at most a second (plus the call) behind.
        assert -2.5 < (server_now - datetime.now(UTC)).total_seconds() <= 0.5
    finally:
        await rest.close()
