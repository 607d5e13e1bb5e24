"""Dedup without a store lookup per message: a revision dated after every revision ever recorded
as handled (the horizon, set when an instance starts handling) can only have been handled by this
instance, which remembers those; older revisions are asked of the store. These tests hold that no
handled revision gets through: re-emits in memory and after a restart, old revisions after a
restart, a far-future date, a store an older rcmod wrote, and the memory being pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.models import Message
from bot.realtime.events import EditedMessage, NewMessage
from bot.services import ingest as ingest_module
from bot.store import Store
from bot.store.messages import MessageLog
from tests.services.test_ingest_batch import Counting, ingest_over

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def msg(mid: str, at: datetime, *, edited: datetime | None = None, text: str = "x") -> Message:
    wire: dict[str, Any] = {
        "_id": mid,
        "rid": "GENERAL",
        "msg": text,
        "ts": {"$date": int(at.timestamp() * 1000)},
        "u": {"_id": "u1", "username": "alice"},
    }
    if edited is not None:
        wire["editedAt"] = {"$date": int(edited.timestamp() * 1000)}
    return Message.from_wire(wire)


class Lookups:
    """Counts the store's dedup lookups."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = MessageLog.is_handled

        def counted(log: MessageLog, mid: str, version: str) -> bool:
            self.count += 1
            return real(log, mid, version)

        monkeypatch.setattr(MessageLog, "is_handled", counted)


def server_at(now: datetime) -> Any:
    return lambda: now


async def test_new_messages_cost_no_store_lookup_and_re_emits_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = Lookups(monkeypatch)
    store = Store.open(tmp_path / "s.sqlite3")
    seen = Counting()
    ingest = ingest_over(store, [seen], batch_size=3, batch_wait=3600, server_now=server_at(T0))
    sent = [msg(f"m{i}", T0 + timedelta(seconds=i)) for i in range(10)]
    for m in sent:
        await ingest.handle(NewMessage(m))
    for m in sent:  # reactions, previews: the same revisions again, some committed, some not
        await ingest.handle(NewMessage(m))
    edit = msg("m3", T0 + timedelta(seconds=3), edited=T0 + timedelta(seconds=20), text="y")
    await ingest.handle(EditedMessage(edit))
    await ingest.handle(EditedMessage(edit))
    assert seen.mids == [m.id for m in sent] + ["m3"]
    assert lookups.count == 0
    ingest.close()
    store.close()


async def test_after_a_restart_nothing_handled_before_is_handled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite3"
    old = msg("old", T0 - timedelta(days=2))  # caught up late, say
    recent = msg("recent", T0)
    future = msg("future", T0 + timedelta(days=365))  # a server clock gone wrong, then corrected
    edited = msg("recent", T0, edited=T0 + timedelta(seconds=5), text="edited")
    store = Store.open(path)
    first = ingest_over(store, [Counting()], server_now=server_at(T0))
    for m in (old, recent, future):
        await first.handle(NewMessage(m))
    await first.handle(EditedMessage(edited))
    first.close()
    store.close()

    store = Store.open(path)
    seen = Counting()
    # The server's clock is back to now: the future message is dated far beyond it.
    second = ingest_over(store, [seen], server_now=server_at(T0 + timedelta(minutes=5)))
    for m in (old, recent, future):
        await second.handle(NewMessage(m))
    await second.handle(EditedMessage(edited))
    fresh = msg("fresh", T0 + timedelta(minutes=5))
    await second.handle(NewMessage(fresh))
    assert seen.mids == ["fresh"]
    second.close()
    store.close()


async def test_a_store_written_by_an_older_rcmod_still_drops_what_it_handled(tmp_path: Path) -> None:
    """Its marks carry no revision times: the horizon is then as late as Rocket.Chat lets a
    client date a message ahead of the server's clock."""
    path = tmp_path / "s.sqlite3"
    store = Store.open(path)
    handled = [msg("a", T0 - timedelta(hours=1)), msg("b", T0), msg("c", T0 + timedelta(seconds=60))]
    for m in handled:
        store.messages.mark_handled(m.id, m.version, m.rid)
    store.close()

    store = Store.open(path)
    seen = Counting()
    ingest = ingest_over(store, [seen], server_now=server_at(T0))
    for m in handled:
        await ingest.handle(NewMessage(m))
    await ingest.handle(NewMessage(msg("d", T0 + timedelta(seconds=1))))
    assert seen.mids == ["d"]
    ingest.close()
    store.close()


async def test_forgetting_the_oldest_remembered_revisions_lets_none_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "_RECENT_MAX", 5)
    store = Store.open(tmp_path / "s.sqlite3")
    seen = Counting()
    now = [T0]
    ingest = ingest_over(store, [seen], batch_size=2, batch_wait=3600, server_now=lambda: now[0])
    # Out of order, some far apart: memory holds at most five, by time.
    times = [0, 30, 5, 31, 2, 60, 61, 1, 90, 3, 120, 59, 4]
    sent = [msg(f"m{i}", T0 + timedelta(seconds=s)) for i, s in enumerate(times)]
    for i, m in enumerate(sent):
        now[0] = T0 + timedelta(seconds=max(times[: i + 1]))
        await ingest.handle(NewMessage(m))
        for earlier in sent[: i + 1]:  # every re-emit, after every step
            await ingest.handle(NewMessage(earlier))
        assert len(ingest._recent) <= 5 + 2  # the limit, and the batch not yet committed
    assert seen.mids == [m.id for m in sent]
    ingest.close()
    store.close()


async def test_what_another_instance_handled_meanwhile_is_dropped_after_the_next_batch(
    tmp_path: Path,
) -> None:
    """The lease keeps a second instance from handling at the same time; should one still do
    so, what it recorded counts here from this instance's next batch on, as the store's lookup did."""
    path = tmp_path / "s.sqlite3"
    mine, other = Store.open(path), Store.open(path)
    seen = Counting()
    ingest = ingest_over(mine, [seen], batch_size=1, server_now=server_at(T0))
    elsewhere = ingest_over(other, [Counting()], batch_size=1, server_now=server_at(T0))
    await ingest.handle(NewMessage(msg("b1", T0)))  # this instance starts handling
    theirs = msg("a1", T0 + timedelta(seconds=1))
    await elsewhere.handle(NewMessage(theirs))  # committed by the other one
    await ingest.handle(NewMessage(msg("b2", T0 + timedelta(seconds=2))))
    await ingest.handle(NewMessage(theirs))  # a re-emit reaches this instance too
    assert seen.mids == ["b1", "b2"]
    for done in (ingest, elsewhere):
        done.close()
    mine.close()
    other.close()
