"""Handled marks are committed in batches: a crash mid-batch loses only marks, so the messages of
that batch are handled again, and what their handlers did is not done twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.metrics import Metrics
from bot.models import Message
from bot.realtime.events import Event, MessageEvent, NewMessage, RoomHint
from bot.sandbox import Sandbox
from bot.services.ingest import Ingest
from bot.services.router import Router, Unfinished
from bot.store import Store
from bot.store.messages import MessageLog
from tests.conftest import until
from tests.helpers import block_lists, bot_rest, dms_from_bot
from tests.services.test_blocklist import enforcer_for, outbox
from tests.services.test_ingest import FakeRest


class Counting:
    def __init__(self) -> None:
        self.mids: list[str] = []

    async def __call__(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            self.mids.append(event.message.id)


def ingest_over(store: Store, handlers: list[Any], **kw: Any) -> Ingest:
    router = Router(Metrics(), routes=[(f"h{i}", (MessageEvent,), h) for i, h in enumerate(handlers)])
    return Ingest(
        messages=store.messages,
        rest=FakeRest(),
        router=router,
        metrics=Metrics(),
        bot_user_id=lambda: "bot",
        **kw,
    )


async def test_one_commit_per_batch(tmp_path: Path, monkeypatch: Any) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    commits: list[int] = []
    record = MessageLog.record
    monkeypatch.setattr(MessageLog, "record", lambda self, h, c: (commits.append(len(h)), record(self, h, c)))
    ingest = ingest_over(store, [Counting()], batch_size=4, batch_wait=3600)
    sent = [
        Message.from_wire(
            {
                "_id": f"m{i}",
                "rid": "GENERAL",
                "msg": "x",
                "ts": {"$date": i + 1},
                "u": {"_id": "u1", "username": "alice"},
            }
        )
        for i in range(10)
    ]
    for m in sent:
        await ingest.handle(NewMessage(m))
    assert commits == [4, 4]  # two full batches; the last two wait for the next one or a stop
    ingest.close()
    assert commits == [4, 4, 2]
    assert all(store.messages.is_handled(m.id, "") for m in sent)
    store.close()


async def test_a_crash_mid_batch_handles_the_batch_again_and_acts_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rest = bot_rest(sandbox)
    path = tmp_path / "rcmod.sqlite3"
    lists = block_lists(tmp_path)
    texts = ["hello", "a badword", "fine", "scam link here", "bye"]
    docs = [sandbox.post_as("alice", "general", text) for text in texts]
    events = [NewMessage(Message.from_wire(d), RoomHint(True, "c", "general")) for d in docs]
    mids = [d["_id"] for d in docs]
    try:
        store = Store.open(path)
        first = Counting()
        notices = outbox(store, rest)
        ingest = ingest_over(
            store, [enforcer_for(store, rest, notices, lists).on_event, first], batch_size=3, batch_wait=3600
        )
        for event in events[:4]:
            await ingest.handle(event)
        # The first three are committed (a deletion among them); the 4th (another deletion) was
        # handled, then the process died before its batch's commit. The 5th never arrived.
        assert first.mids == mids[:4]
        assert mids[3] not in sandbox.workspace.messages
        store.close()

        store = Store.open(path)
        handled = store.messages.is_handled
        assert [handled(mid, "") for mid in mids] == [True, True, True, False, False]
        again = Counting()
        notices = outbox(store, rest)
        ingest = ingest_over(store, [enforcer_for(store, rest, notices, lists).on_event, again], batch_size=2)
        for event in events:  # catch-up (or the stream) brings them all again
            await ingest.handle(event)
        ingest.close()
        assert again.mids == mids[3:]  # none skipped; what was committed is not handled twice
        assert all(handled(mid, "") for mid in mids)
        await notices.deliver_due()
        for mid in (mids[1], mids[3]):
            deleted = [
                r
                for r in store.audit.audit_records()
                if r.action == "message.deleted" and r.targets.get("message") == mid and r.outcome == "ok"
            ]
            assert len(deleted) == 1  # one deletion, recorded once
            assert len(store.evidence.evidence_for_message(mid)) == 1
        assert len(dms_from_bot(sandbox, "alice")) == 2  # one notice per removed message, not three
        store.close()
    finally:
        await rest.close()


async def test_a_batch_is_committed_when_no_further_event_comes(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    ingest = ingest_over(store, [Counting()], batch_size=100, batch_wait=0.01)
    wire = {
        "_id": "m1",
        "rid": "GENERAL",
        "msg": "x",
        "ts": {"$date": 1},
        "u": {"_id": "u1", "username": "a"},
    }
    await ingest.handle(NewMessage(Message.from_wire(wire)))
    assert await until(lambda: store.messages.is_handled("m1", ""))
    store.close()


class CountingUnfinished(Unfinished):
    """Counts how often ingest asks whether a message is still unfinished."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def held(self, mid: str, version: str) -> bool:
        self.asked += 1
        return super().held(mid, version)


def _wire(i: int, author: str, rid: str) -> Message:
    return Message.from_wire(
        {
            "_id": f"m{i}",
            "rid": rid,
            "msg": "x",
            "ts": {"$date": i + 1},
            "u": {"_id": author, "username": author},
        }
    )


async def test_messages_held_back_are_not_walked_again_by_every_batch(tmp_path: Path) -> None:
    """Many messages waiting (one per new author whose account age is being looked up) used to be
    walked by every flush, and a starved bot flushes often: handling n more messages cost n times
    the waiting ones. They are looked at again only once one of them is released."""
    store = Store.open(tmp_path / "s.sqlite3")
    unfinished = CountingUnfinished()
    waiting = [_wire(i, f"new{i}", "WAITING") for i in range(500)]

    async def hold(event: Event) -> None:
        if isinstance(event, MessageEvent) and event.message.rid == "WAITING":
            unfinished.hold(event.message.id, event.message.version)

    ingest = ingest_over(store, [hold], unfinished=unfinished, batch_size=1, batch_wait=3600)
    for m in waiting:
        await ingest.handle(NewMessage(message=m, room=RoomHint(type="c")))
    unfinished.asked = 0
    for i in range(500, 1000):
        await ingest.handle(NewMessage(message=_wire(i, "alice", "GENERAL"), room=RoomHint(type="c")))
    assert unfinished.asked <= 2 * 500  # one look per new message, not one per waiting one too
    assert all(store.messages.is_handled(f"m{i}", "") for i in range(500, 1000))
    assert not any(store.messages.is_handled(m.id, m.version) for m in waiting)

    for m in waiting:
        unfinished.release(m.id, m.version)
    ingest.flush()
    assert all(store.messages.is_handled(m.id, m.version) for m in waiting)
    assert store.messages.room_cursor("WAITING") is not None


async def test_cursor_moves_are_bounded_by_the_servers_time_when_committed(tmp_path: Path) -> None:
    """A message dated past the server's clock moves its room's cursor no further than that clock,
    and a room held back behind an unfinished message moves (within the bound) only once released,
    while the other rooms of the same batch move at once."""
    store = Store.open(tmp_path / "s.sqlite3")
    unfinished = Unfinished()
    server = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    future = server + timedelta(days=365)

    def dated(mid: str, rid: str, when: datetime) -> Message:
        ms = int(when.timestamp() * 1000)
        return Message.from_wire(
            {
                "_id": mid,
                "rid": rid,
                "msg": "x",
                "ts": {"$date": ms},
                "u": {"_id": "alice", "username": "alice"},
            }
        )

    async def hold(event: Event) -> None:
        if isinstance(event, MessageEvent) and event.message.id == "wait":
            unfinished.hold(event.message.id, event.message.version)

    ingest = ingest_over(
        store, [hold], unfinished=unfinished, batch_size=100, batch_wait=3600, server_now=lambda: server
    )
    for m in (
        dated("now", "NOW", server - timedelta(seconds=5)),
        dated("ahead", "AHEAD", future),
        dated("wait", "HELD", server - timedelta(seconds=9)),
        dated("after", "HELD", future),
    ):
        await ingest.handle(NewMessage(message=m, room=RoomHint(type="c")))
    ingest.flush()
    assert store.messages.room_cursor("NOW") == server - timedelta(seconds=5)
    assert store.messages.room_cursor("AHEAD") == server
    assert store.messages.room_cursor("HELD") is None  # not past the unfinished message
    assert store.messages.is_handled("after", "") and not store.messages.is_handled("wait", "")

    unfinished.release("wait", "")
    ingest.flush()
    assert store.messages.is_handled("wait", "")
    assert store.messages.room_cursor("HELD") == server
    ingest.close()
    store.close()
