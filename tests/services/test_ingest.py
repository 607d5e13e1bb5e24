"""Ingest: dedup by (id, editedAt), own messages ignored, handler isolation, catch-up, restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.realtime.events import (
    Connected,
    EditedMessage,
    Event,
    MessageDeleted,
    NewMessage,
    RoomHint,
    SubscriptionChanged,
    message_event,
)
from bot.services.ingest import Ingest
from bot.services.router import Handler, Router
from bot.store import Store
from tests.conftest import Recorder

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BOT = "botuserid00000001"


def msg(
    mid: str,
    *,
    text: str = "hi",
    rid: str = "GENERAL",
    at: datetime = T0,
    edited: datetime | None = None,
    author: str = "alice",
    t: str | None = None,
) -> Message:
    return Message(
        id=mid,
        rid=rid,
        text=text,
        ts=at,
        author=UserRef(author if author != "bot" else BOT, author),
        updated_at=edited or at,
        edited_at=edited,
        type=t,
    )


def _rooms_written(
    subs: list[dict[str, object]],
    messages: list[Message],
    deleted: list[tuple[str, datetime]],
    since: datetime,
) -> dict[str, datetime | None]:
    """As rooms.get?updatedSince=: the subscribed rooms written after ``since``. The server writes
    a room on every new message and deletion, and on an edit only of the room's last message
    (these deletions carry no room: they write every room)."""
    written: dict[str, datetime] = {}
    for rid in {str(sub["rid"]) for sub in subs}:
        in_room = [m for m in messages if m.rid == rid]
        times = [m.ts for m in in_room] + [at for _, at in deleted]
        if in_room:
            last = max(in_room, key=lambda m: m.ts)
            times.append(last.updated_at or last.ts)
        if times and max(times) > since:
            written[rid] = max(times)
    return dict(written)


class FakeRest:
    """The two catch-up endpoints, answering from lists the test fills (no network)."""

    def __init__(self) -> None:
        self.subs: list[dict[str, object]] = [{"rid": "GENERAL", "t": "c"}]
        self.updated: list[Message] = []
        self.deleted: list[tuple[str, datetime]] = []
        self.history_msgs: list[Message] = []
        self.sync_calls: list[tuple[str, datetime]] = []

    async def subscriptions(self) -> list[dict[str, object]]:
        return self.subs

    async def rooms_updated_since(self, since: datetime) -> dict[str, datetime | None]:
        return _rooms_written(self.subs, [*self.updated, *self.history_msgs], self.deleted, since)

    async def sync_messages(
        self, rid: str, last_update: datetime
    ) -> tuple[list[Message], list[tuple[str, datetime]]]:
        self.sync_calls.append((rid, last_update))
        # As the server: every message whose _updatedAt is after lastUpdate, new ones included.
        return (
            [
                m
                for m in [*self.updated, *self.history_msgs]
                if m.rid == rid and (m.updated_at or m.ts) > last_update
            ],
            [d for d in self.deleted if d[1] > last_update],
        )

    async def history(
        self, rid: str, room_type: str, *, oldest: datetime, latest: datetime | None = None, page: int = 100
    ) -> AsyncIterator[Message]:
        for m in sorted(self.history_msgs, key=lambda m: m.ts, reverse=True):
            if m.rid == rid and m.ts > oldest:
                yield m


def build(
    tmp_path: Path,
    rest: FakeRest | None = None,
    *,
    first: Handler | None = None,
    watched: list[str] | None = None,
) -> tuple[Ingest, Recorder, Store, Metrics, FakeRest]:
    store = Store.open(tmp_path / "s.sqlite3")
    metrics = Metrics()
    router = Router(metrics)
    if first is not None:
        router.add("broken", (object,), first)
    rec = Recorder()
    router.add("recorder", (object,), rec)
    rest = rest or FakeRest()
    sink = watched if watched is not None else []
    ingest = Ingest(
        messages=store.messages,
        rest=rest,
        router=router,
        metrics=metrics,
        bot_user_id=lambda: BOT,
        watch_room=sink.append,
        clock=lambda: T0.timestamp(),
    )
    return ingest, rec, store, metrics, rest


async def test_reemits_are_dropped_and_edits_handled_once(tmp_path: Path) -> None:
    ingest, rec, *_ = build(tmp_path)
    m = msg("m1")
    await ingest.handle(NewMessage(m))
    await ingest.handle(NewMessage(m))  # re-emit after a reaction: same editedAt (none)
    edited = msg("m1", text="hi!", edited=T0 + timedelta(seconds=5))
    await ingest.handle(EditedMessage(edited))
    await ingest.handle(EditedMessage(edited))  # re-emit after a link preview of the edited message
    assert rec.ids(NewMessage) == ["m1"]
    assert rec.ids(EditedMessage) == ["m1"]


async def test_own_messages_are_not_dispatched(tmp_path: Path) -> None:
    ingest, rec, store, *_ = build(tmp_path)
    await ingest.handle(NewMessage(msg("m1", author="bot")))
    assert rec.events == []
    ingest.flush()
    assert store.messages.is_handled("m1", "")


async def test_a_failing_handler_does_not_stop_the_others(tmp_path: Path) -> None:
    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    ingest, rec, _store, metrics, _ = build(tmp_path, first=broken)
    await ingest.handle(NewMessage(msg("m1")))
    await ingest.handle(NewMessage(msg("m2")))
    assert rec.ids(NewMessage) == ["m1", "m2"]
    assert metrics.handler_errors.labels("broken")._value.get() == 2


async def test_deletion_seen_three_ways_is_handled_once(tmp_path: Path) -> None:
    ingest, rec, *_ = build(tmp_path)
    await ingest.handle(MessageDeleted(rid="GENERAL", mid="m1", via="notify"))
    await ingest.handle(message_event(msg("m1", t="rm", edited=T0)))
    await ingest.handle(MessageDeleted(rid="GENERAL", mid="m1", via="sync", at=T0))
    assert [e.mid for e in rec.events if isinstance(e, MessageDeleted)] == ["m1"]


async def test_catch_up_recovers_new_edited_and_deleted_once(tmp_path: Path) -> None:
    ingest, rec, store, metrics, rest = build(tmp_path)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=False))
    await ingest.caught_up()
    cursor = store.messages.room_cursor("GENERAL")
    assert cursor is not None and cursor <= T0  # first sight: start from (about) now
    await ingest.handle(NewMessage(msg("m1", at=T0 + timedelta(seconds=1)), RoomHint(True, "c", "general")))
    # -- outage: these happen while the bot is away --
    later = T0 + timedelta(seconds=10)
    rest.history_msgs = [msg("m2", at=later), msg("m3", at=later + timedelta(seconds=1))]
    rest.updated = [
        msg("m1", text="edited", at=T0 + timedelta(seconds=1), edited=later),
        msg("m2", at=later),
        msg("m3", at=later + timedelta(seconds=1)),
    ]
    rest.deleted = [("m0", later)]
    await ingest.handle(Connected(session="s2", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert rec.ids(NewMessage) == ["m1", "m2", "m3"]
    assert rec.ids(EditedMessage) == ["m1"]
    assert [e.mid for e in rec.events if isinstance(e, MessageDeleted)] == ["m0"]
    # the live stream then delivers the same messages late: all duplicates
    await ingest.handle(NewMessage(msg("m3", at=later + timedelta(seconds=1))))
    # a second reconnect finds nothing new
    await ingest.handle(Connected(session="s3", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert rec.ids(NewMessage) == ["m1", "m2", "m3"]
    assert metrics.reconnects._value.get() == 2


async def test_restart_does_not_handle_old_messages_again(tmp_path: Path) -> None:
    ingest, _rec, store, *_ = build(tmp_path)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=False))
    await ingest.caught_up()
    await ingest.handle(NewMessage(msg("m1", at=T0 + timedelta(seconds=1))))
    ingest.flush()  # a stop commits the last batch
    store.close()
    # a new process with the same data folder; the server re-sends m1 during catch-up
    rest = FakeRest()
    rest.history_msgs = [msg("m1", at=T0 + timedelta(seconds=1)), msg("m2", at=T0 + timedelta(seconds=2))]
    ingest2, rec2, *_ = build(tmp_path, rest)
    await ingest2.handle(Connected(session="s", user_id=BOT, reconnect=False))
    await ingest2.caught_up()
    assert rec2.ids(NewMessage) == ["m2"]


async def test_new_subscription_is_watched_and_gets_a_cursor(tmp_path: Path) -> None:
    watched: list[str] = []
    ingest, _rec, store, *_ = build(tmp_path, watched=watched)
    await ingest.handle(SubscriptionChanged(action="inserted", rid="NEWROOM", room_type="p", name="new"))
    assert watched == ["NEWROOM"]
    assert store.messages.room_cursor("NEWROOM") is not None


def test_scannable_texts_include_attachments_file_names_and_alias() -> None:
    wire = {
        "_id": "m1",
        "rid": "r",
        "msg": "look",
        "ts": {"$date": 1},
        "u": {"_id": "u", "username": "a"},
        "alias": "Support Team",
        "file": {"_id": "f", "name": "free-crypto.pdf"},
        "files": [{"_id": "f", "name": "free-crypto.pdf"}, {"_id": "g", "name": "b.png"}],
        "attachments": [{"title": "a title", "description": "a description"}],
    }
    texts = Message.from_wire(wire).scannable_texts()
    assert texts == ("look", "a title", "a description", "free-crypto.pdf", "b.png", "Support Team")
