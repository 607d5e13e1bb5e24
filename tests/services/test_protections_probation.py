"""Probation without holding the stream: an author whose account age is unknown is looked up
beside the ingest path; their messages wait for the answer, in order, while other authors' go on,
and none is recorded as handled (nor its room's cursor moved past it) until its check is done."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bot.config import ModerationSettings, ProtectionSettings
from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.moderation.protections import Post, Trigger
from bot.realtime.events import MessageEvent, NewMessage, RoomHint
from bot.sandbox import Sandbox
from bot.services.ingest import Ingest
from bot.services.protections import Protector
from bot.services.router import Router
from bot.store import Store
from tests.conftest import bot_settings, start_bot, until
from tests.services.test_ingest import FakeRest

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class SlowUsers:
    """users.info: answers at once for old accounts, and for ``newbie`` only once let go."""

    def __init__(self) -> None:
        self.let_go = asyncio.Event()
        self.asked: list[str] = []

    async def user_info(self, *, user_id: str) -> dict[str, Any]:
        self.asked.append(user_id)
        if user_id == "newbie":
            await self.let_go.wait()
            return {"_id": user_id, "createdAt": (T0 - timedelta(hours=2)).isoformat()}
        return {"_id": user_id, "createdAt": (T0 - timedelta(days=300)).isoformat()}


def msg(mid: str, author: str, seconds: int) -> NewMessage:
    at = T0 + timedelta(seconds=seconds)
    message = Message(
        id=mid, rid="GENERAL", text=f"text {mid}", ts=at, author=UserRef(author, author), updated_at=at
    )
    return NewMessage(message, RoomHint(True, "c", "general"))


def build(tmp_path: Path, now: list[float]) -> tuple[Ingest, Protector, Store, SlowUsers, list[Post]]:
    store = Store.open(tmp_path / "s.sqlite3")
    users = SlowUsers()
    settings = ProtectionSettings.model_validate(
        {"probation_days": 3, "links": {"mode": "alert", "hold_probation": True}}
    )
    protector = Protector(
        audit=store.audit,
        evidence=store.evidence,
        sanctions=store.sanctions,
        rest=cast(Any, users),
        executor=cast(Any, None),  # no trigger fires here: nothing is done
        outbox=cast(Any, None),
        sanctioner=cast(Any, None),
        settings=settings,
        moderation=ModerationSettings(),
        bot_username=lambda: "rcmod.bot",
        site_url=lambda: "",
        clock=lambda: now[0],
    )
    seen: list[Post] = []
    on_post = protector.engine.on_post

    def recording(post: Post) -> list[Trigger]:
        seen.append(post)
        return on_post(post)

    protector.engine.on_post = recording  # type: ignore[method-assign]
    router = Router(Metrics(), routes=[("protector", (MessageEvent,), protector.on_event)])
    ingest = Ingest(
        messages=store.messages,
        rest=FakeRest(),
        router=router,
        metrics=Metrics(),
        bot_user_id=lambda: "bot",
        clock=lambda: (T0 + timedelta(minutes=5)).timestamp(),
        unfinished=protector.unfinished,
    )
    return ingest, protector, store, users, seen


async def test_a_slow_account_age_lookup_holds_only_its_authors_messages(tmp_path: Path) -> None:
    now = [T0.timestamp()]
    ingest, protector, store, users, seen = build(tmp_path, now)
    # Each handle returns while newbie's lookup is still unanswered (a hang guard, not a timing).
    async with asyncio.timeout(10):
        await ingest.handle(msg("n1", "newbie", 1))
        await ingest.handle(msg("o1", "oldtimer", 2))
        await ingest.handle(msg("n2", "newbie", 3))
        await ingest.handle(msg("o2", "oldtimer", 4))
    assert await until(lambda: [p.mid for p in seen] == ["o1", "o2"])
    assert users.asked.count("newbie") == 1  # one lookup per author, however many messages wait
    ingest.flush()
    handled = store.messages.is_handled
    assert handled("o1", "") and handled("o2", "")
    assert not handled("n1", "") and not handled("n2", "")  # a crash now reads them again
    cursor = store.messages.room_cursor("GENERAL")
    assert cursor is None or cursor < T0 + timedelta(seconds=1)  # not past the waiting n1

    now[0] += 600  # the answer comes late: the waiting messages still count from their arrival
    users.let_go.set()
    await protector.settled()
    assert [(p.mid, p.probation) for p in seen[2:]] == [("n1", True), ("n2", True)]  # in order
    assert [p.probation for p in seen[:2]] == [False, False]
    assert {p.ts for p in seen} == {T0.timestamp()}
    assert await until(lambda: not ingest.flush() and handled("n1", "") and handled("n2", ""))
    assert store.messages.room_cursor("GENERAL") == T0 + timedelta(seconds=4)
    # Known now: the author's next message is checked on the path, with no lookup.
    await ingest.handle(msg("n3", "newbie", 5))
    assert seen[-1].mid == "n3" and seen[-1].probation and users.asked.count("newbie") == 1
    store.close()


async def test_a_stop_finishes_the_checks_still_waiting_so_a_restart_does_not_handle_them_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A message whose author's account age is still being looked up at a stop is checked before
    the bot stops (for a bounded time), so its handled mark is written and the next start does
    not hand it to the handlers a second time."""
    settings = bot_settings(sandbox, tmp_path)
    bot = await start_bot(settings)
    sandbox.fail_next("users.info", 503, times=2)  # the lookup retries: about 1.5 s
    mid = sandbox.post_as("carol", "general", "hello from a newcomer")["_id"]
    assert await until(lambda: mid in bot.recorder.message_ids())
    await bot.stop()  # while the account-age lookup is still retrying

    again = await start_bot(settings)
    later = sandbox.post_as("alice", "general", "and the room goes on")["_id"]
    assert await until(lambda: later in again.recorder.message_ids())
    await again.stop()
    assert mid not in again.recorder.message_ids()
