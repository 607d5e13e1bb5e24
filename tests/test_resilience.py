"""End to end against the sandbox: every message handled exactly once across drops, outages,
bot restarts, server restarts and REST faults."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bot.app import BotApp
from bot.errors import ConfigError
from bot.realtime.events import Connected, Disconnected, EditedMessage, NewMessage
from bot.sandbox import Sandbox
from tests.conftest import Recorder, bot_settings, handled, start_bot, until


def _all_seen(rec: Recorder, ids: list[str]) -> bool:
    seen = rec.message_ids()
    return all(mid in seen for mid in ids)


async def test_dropped_connection_every_message_handled_exactly_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    before = [sandbox.post_as("alice", "general", f"before {i}")["_id"] for i in range(5)]
    assert await until(lambda: _all_seen(rec, before))

    sandbox.refuse_connections(True)
    await sandbox.drop_connections()
    assert await until(lambda: rec.count(Disconnected) >= 1)
    during = [
        sandbox.post_as(user, room, f"during {i}")["_id"]
        for i, (user, room) in enumerate([("bob", "random"), ("carol", "general"), ("mod1", "staff")] * 4)
    ]
    edited = sandbox.edit_as("alice", before[0], "before 0, edited while away")["_id"]
    sandbox.delete_as("alice", before[1])
    sandbox.refuse_connections(False)

    assert await until(
        lambda: (
            _all_seen(rec, during)
            and rec.deleted()[before[1]] == 1
            and any(isinstance(e, EditedMessage) and e.message.id == edited for e in rec.events)
        )
    )
    after = [sandbox.post_as("bob", "general", f"after {i}")["_id"] for i in range(3)]
    # Late re-emits would show up as duplicates before the last message is done with.
    assert await until(lambda: _all_seen(rec, after) and handled(bot.app.store, *after))
    await bot.stop()

    revisions = rec.revisions()
    assert all(n == 1 for n in revisions.values()), {k: n for k, n in revisions.items() if n > 1}
    assert all(n == 1 for n in rec.deleted().values())
    new_ids = {e.message.id for e in rec.events if isinstance(e, NewMessage)}
    assert set(before + during + after) <= new_ids
    assert rec.count(Connected) == 2


async def test_bot_restart_handles_only_what_it_missed(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(sandbox, tmp_path)
    first = await start_bot(settings)
    old = [sandbox.post_as("alice", "general", f"old {i}")["_id"] for i in range(3)]
    assert await until(lambda: _all_seen(first.recorder, old))
    await first.stop()

    missed = [sandbox.post_as("bob", "random", f"missed {i}")["_id"] for i in range(3)]
    second = await start_bot(settings)
    # Handled in order after catch-up: once the missed ones are done, an old one would have come.
    assert await until(lambda: _all_seen(second.recorder, missed) and handled(second.app.store, *missed))
    await second.stop()
    assert set(second.recorder.message_ids()) == set(missed)  # none of the old ones again
    assert all(n == 1 for n in second.recorder.message_ids().values())


async def test_server_restart_is_survived(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    await sandbox.restart()
    assert await until(lambda: bot.recorder.count(Connected) >= 2)
    mid = sandbox.post_as("carol", "general", "after the server restart")["_id"]
    assert await until(lambda: mid in bot.recorder.message_ids())
    await bot.stop()


async def test_rest_faults_during_catch_up_are_retried(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    sandbox.refuse_connections(True)
    await sandbox.drop_connections()
    assert await until(lambda: rec.count(Disconnected) >= 1)
    missed = [sandbox.post_as("alice", "general", f"missed {i}")["_id"] for i in range(3)]
    # the server answers an HTML error page, then rate-limits, then recovers
    sandbox.fail_next("chat.syncMessages", 500, "<html><body>Internal error</body></html>", "text/html")
    sandbox.fail_next("channels.history", 429, times=1)
    sandbox.refuse_connections(False)
    assert await until(lambda: _all_seen(rec, missed), within=15)
    await bot.stop()
    assert all(n == 1 for n in rec.message_ids().values())
    assert bot.app.metrics.rest_errors.labels("RetryableError")._value.get() >= 1
    assert bot.app.metrics.rest_errors.labels("RateLimited")._value.get() >= 1


async def test_second_instance_on_same_data_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(sandbox, tmp_path)
    first = await start_bot(settings)
    with pytest.raises(ConfigError, match="another rcmod instance"):
        await BotApp(settings).run()
    await first.stop()


async def test_readyz_follows_the_connection(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    assert bot.app.web is not None and bot.app.web.port
    url = f"http://127.0.0.1:{bot.app.web.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/readyz") as r:
            assert r.status == 200
        sandbox.refuse_connections(True)
        await sandbox.drop_connections()
        assert await until(lambda: bot.recorder.count(Disconnected) >= 1)
        async with http.get(f"{url}/readyz") as r:
            assert r.status == 503
        sandbox.refuse_connections(False)
        assert await until(lambda: bot.recorder.count(Connected) >= 2)
        async with http.get(f"{url}/readyz") as r:
            assert r.status == 200
        async with http.get(f"{url}/metrics") as r:
            assert "rcmod_reconnects_total 1.0" in await r.text()
    await bot.stop()


async def test_bad_token_is_a_configuration_error(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(sandbox, tmp_path, server={"auth_token": "not-the-token"})
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(BotApp(settings).run(), timeout=10)
    from bot.errors import AuthError

    assert isinstance(info.value, AuthError)
    assert "not-the-token" not in str(info.value)


async def test_bad_frames_from_the_server_are_survived(sandbox: Sandbox, tmp_path: Path) -> None:
    """Malformed, truncated, non-UTF-8, unknown and huge frames: logged, nothing lost, nothing repeated."""
    bot = await start_bot(bot_settings(sandbox, tmp_path))
    rec = bot.recorder
    first = sandbox.post_as("alice", "general", "before the garbage")["_id"]
    assert await until(lambda: first in rec.message_ids())
    shapeless = {
        "msg": "changed",
        "collection": "stream-room-messages",
        "id": "id",
        "fields": {"eventName": "__my_messages__", "args": [{"_id": "x"}]},
    }
    huge = {
        "msg": "changed",
        "collection": "stream-room-messages",
        "id": "id",
        "fields": {
            "eventName": "__my_messages__",
            "args": [
                {
                    "_id": "BIGMESSAGE0000001",
                    "rid": "GENERAL",
                    "msg": "x" * (10 * 1024 * 1024),
                    "ts": {"$date": 1},
                    "u": {"_id": "u", "username": "mallory"},
                }
            ],
        },
    }
    for raw in [
        '{"msg": "changed", "collection": "stream-room-me',  # truncated
        "<html>502 Bad Gateway</html>",
        '{"msg": "teleport"}',  # unknown message type
        "[1, 2, 3]",
        json.dumps(shapeless),  # a message without the fields a message has
        b"\xff\xfe\x00binary",
        json.dumps(huge),
    ]:
        sandbox.inject_frame(raw)
    second = sandbox.post_as("bob", "general", "after the garbage")["_id"]
    assert await until(lambda: second in rec.message_ids())
    await bot.stop()
    assert rec.message_ids() == {first: 1, second: 1}
    assert bot.app.metrics.frames_rejected._value.get() >= 5
    assert "BIGMESSAGE0000001" not in rec.message_ids()


async def test_slow_server_trips_the_heartbeat_and_nothing_is_lost(sandbox: Sandbox, tmp_path: Path) -> None:
    """Frames delayed past the pong timeout: the client gives up on the link, reconnects, catches up."""
    settings = bot_settings(sandbox, tmp_path, realtime={"ping_interval": 0.2, "pong_timeout": 0.3})
    bot = await start_bot(settings)
    rec = bot.recorder
    sandbox.set_frame_delay(0.5)
    posted = [sandbox.post_as("alice", "general", f"slow {i}")["_id"] for i in range(3)]
    assert await until(lambda: rec.count(Disconnected) >= 1)
    sandbox.set_frame_delay(0.0)
    assert await until(
        lambda: _all_seen(rec, posted) and rec.count(Connected) >= 2 and handled(bot.app.store, *posted),
        within=15,
    )
    await bot.stop()
    assert all(n == 1 for n in rec.revisions().values())


async def test_running_bot_erases_evidence_past_its_window(sandbox: Sandbox, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.models import Message, UserRef
    from bot.store import Store

    settings = bot_settings(sandbox, tmp_path)
    hundred_days_ago = datetime.now(UTC).timestamp() - 100 * 86400
    old_store = Store.open(settings.storage.data_dir / "rcmod.sqlite3", clock=lambda: hundred_days_ago)
    message = Message(
        id="OLDMESSAGE0000001",
        rid="GENERAL",
        text="kept as evidence",
        ts=datetime.now(UTC),
        author=UserRef("u1", "alice"),
        raw={"_id": "OLDMESSAGE0000001", "msg": "kept as evidence"},
    )
    old_store.evidence.store_evidence(message, retention_days=90)
    old_store.close()
    bot = await start_bot(settings)
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.evidence.evidence_for_message("OLDMESSAGE0000001") == [])
    await bot.stop()
