"""Catch-up of many rooms: several rooms at once (never more than the bound), each room's messages
in order, live traffic handled while it runs, and a room that fails part-way loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.errors import RateLimited, RetryableError
from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.realtime.events import Connected, Event, NewMessage, RoomHint
from bot.services.ingest import CATCH_UP_CONCURRENCY, Ingest
from bot.services.router import Handler, Router
from bot.store import Store
from tests.conftest import Recorder, until

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BOT = "botuserid00000001"
ROOMS = [f"ROOM{i:04d}" for i in range(200)]
PER_ROOM = 3
BOUND = 8


def _msg(mid: str, rid: str, at: datetime) -> Message:
    return Message(id=mid, rid=rid, text="hi", ts=at, author=UserRef("alice", "alice"), updated_at=at)


class SlowRest:
    """The catch-up endpoints of a server that takes a few milliseconds per call; counts how many
    calls are in flight at once."""

    def __init__(self, rooms: list[str], delay: float = 0.005) -> None:
        self.delay = delay
        self.rooms = rooms
        self.messages: dict[str, list[Message]] = {rid: [] for rid in rooms}
        self.in_flight = 0
        self.max_in_flight = 0
        self.history_calls: list[str] = []
        self.sync_calls: list[str] = []
        # rid -> how many more history walks fail after yielding their first message
        self.break_history: dict[str, int] = {}
        self.rate_limited_syncs = 0  # the next this many sync calls answer 429
        self.rooms_calls = 0
        self.refused_syncs = 0

    def post(self, rid: str, mid: str, at: datetime) -> Message:
        m = _msg(mid, rid, at)
        self.messages[rid].append(m)
        return m

    async def _call(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1

    async def subscriptions(self) -> list[dict[str, object]]:
        return [{"rid": rid, "t": "c"} for rid in self.rooms]

    async def rooms_updated_since(self, since: datetime) -> dict[str, datetime | None]:
        # As the server: a room is written by every new message (an edit of an older one
        # leaves it alone).
        self.rooms_calls += 1
        await self._call()
        return {
            rid: newest
            for rid, msgs in self.messages.items()
            if msgs and (newest := max(m.ts for m in msgs)) > since
        }

    async def sync_messages(
        self, rid: str, last_update: datetime
    ) -> tuple[list[Message], list[tuple[str, datetime]]]:
        self.sync_calls.append(rid)
        await self._call()
        if self.rate_limited_syncs > 0:
            self.rate_limited_syncs -= 1
            self.refused_syncs += 1
            raise RateLimited("chat.syncMessages (rate limited)", 600)
        # As the server: every message whose _updatedAt is after lastUpdate, new ones included.
        return [m for m in self.messages[rid] if (m.updated_at or m.ts) > last_update], []

    async def history(
        self, rid: str, room_type: str, *, oldest: datetime, latest: datetime | None = None, page: int = 100
    ) -> AsyncIterator[Message]:
        self.history_calls.append(rid)
        await self._call()
        newest_first = sorted(
            (m for m in self.messages[rid] if m.ts > oldest), key=lambda m: m.ts, reverse=True
        )
        for i, m in enumerate(newest_first):
            if i == 1 and self.break_history.get(rid, 0) > 0:
                self.break_history[rid] -= 1
                raise RetryableError("channels.history: connection reset")
            yield m


def _no_wait() -> Iterator[float]:
    while True:
        yield 0.0


def build(
    tmp_path: Path, rest: SlowRest, also: Handler | None = None, *, bound: int | None = BOUND
) -> tuple[Ingest, Recorder, Store]:
    store = Store.open(tmp_path / "s.sqlite3")
    metrics = Metrics()
    router = Router(metrics)
    rec = Recorder()
    router.add("recorder", (object,), rec)
    if also is not None:
        router.add("also", (object,), also)
    extra = {} if bound is None else {"catch_up_concurrency": bound}
    ingest = Ingest(
        messages=store.messages,
        rest=rest,
        router=router,
        metrics=metrics,
        bot_user_id=lambda: BOT,
        clock=lambda: (T0 + timedelta(hours=1)).timestamp(),
        backoff=_no_wait,
        **extra,
    )
    return ingest, rec, store


def _seen_before(store: Store) -> None:
    """The bot knew every room before the outage: its cursor is at T0."""
    for rid in ROOMS:
        store.messages.advance_room_cursor(rid, T0)


def _outage(rest: SlowRest) -> dict[str, list[str]]:
    """Each room gets a few messages while the bot is away; returns them per room, in order."""
    posted: dict[str, list[str]] = {}
    for n, rid in enumerate(ROOMS):
        for k in range(PER_ROOM):
            at = T0 + timedelta(seconds=1 + k, milliseconds=n)
            posted.setdefault(rid, []).append(rest.post(rid, f"{rid}-{k}", at).id)
    return posted


async def _retried(ingest: Ingest) -> bool:
    """Run the retry loop until no room is pending; whether that happened in time."""
    retry = asyncio.create_task(ingest.run())
    try:
        return await until(lambda: not ingest.pending_rooms)
    finally:
        retry.cancel()


def _by_room(rec: Recorder) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in rec.messages():
        out.setdefault(m.rid, []).append(m.id)
    return out


async def test_rooms_are_caught_up_several_at_once_within_the_bound_each_in_order(tmp_path: Path) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    posted = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    assert await ingest.caught_up() == len(ROOMS) * PER_ROOM
    assert 1 < rest.max_in_flight <= BOUND
    assert _by_room(rec) == posted  # every message once, each room in order
    assert ingest.pending_rooms == frozenset()
    assert ingest.catch_ups == 1


async def test_by_default_a_dozen_rooms_are_asked_at_once(tmp_path: Path) -> None:
    """Against a server some milliseconds away, the calls in flight set the pace of a catch-up of
    thousands of quiet rooms: a few more rooms than the REST client's 8 threads."""
    rest = SlowRest(ROOMS)
    ingest, _rec, store = build(tmp_path, rest, bound=None)
    _seen_before(store)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert CATCH_UP_CONCURRENCY == 12
    assert rest.max_in_flight == CATCH_UP_CONCURRENCY
    assert sorted(rest.sync_calls) == ROOMS


async def test_quiet_rooms_cost_one_call(tmp_path: Path) -> None:
    """chat.syncMessages lists every message updated (a new one included) since the cursor: when
    it lists nothing, the room's history is not walked."""
    rest = SlowRest(ROOMS, delay=0)
    ingest, _rec, store = build(tmp_path, rest)
    _seen_before(store)
    busy = ROOMS[:5]
    for rid in busy:
        rest.post(rid, f"{rid}-new", T0 + timedelta(seconds=5))
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    assert await ingest.caught_up() == len(busy)
    assert sorted(rest.sync_calls) == ROOMS
    assert sorted(rest.history_calls) == busy


async def test_live_events_are_handled_while_catch_up_runs_and_keep_their_room_in_order(
    tmp_path: Path,
) -> None:
    rest = SlowRest(ROOMS)
    seen_during_catch_up: list[str] = []

    async def note(event: Event) -> None:
        if isinstance(event, NewMessage) and event.message.id.startswith("live") and ingest.catch_ups == 0:
            seen_during_catch_up.append(event.message.id)

    ingest, rec, store = build(tmp_path, rest, also=note)
    _seen_before(store)
    posted = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    assert await until(lambda: rest.in_flight > 0)
    # Live traffic: a room late in the queue (its catch-up has not started) and one nobody knew.
    late, unknown = ROOMS[-1], "NEWROOM"
    rest.messages[unknown] = []
    live_late = rest.post(late, "live-late", T0 + timedelta(minutes=5))
    live_new = _msg("live-new", unknown, T0 + timedelta(minutes=5))
    await ingest.handle(NewMessage(live_late, RoomHint(True, "c", "late")))
    await ingest.handle(NewMessage(live_new, RoomHint(True, "c", "new")))
    assert await until(lambda: len(seen_during_catch_up) == 2)
    await ingest.caught_up()
    assert sorted(seen_during_catch_up) == ["live-late", "live-new"]
    rooms = _by_room(rec)
    assert rooms[late] == [*posted[late], "live-late"]  # after the messages it missed, once
    assert rooms[unknown] == ["live-new"]
    assert {rid: ids for rid, ids in rooms.items() if rid not in (late, unknown)} == {
        rid: ids for rid, ids in posted.items() if rid != late
    }


async def test_a_room_failing_part_way_stays_pending_and_loses_nothing(tmp_path: Path) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    posted = _outage(rest)
    broken = ROOMS[57]
    rest.break_history[broken] = 1
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert ingest.pending_rooms == {broken}
    assert broken not in _by_room(rec)  # nothing half-handled
    assert store.messages.room_cursor(broken) == T0  # the cursor waits at the gap
    assert await _retried(ingest)
    assert _by_room(rec) == posted


async def test_a_rate_limit_stops_the_pass_instead_of_asking_every_room(tmp_path: Path) -> None:
    """A 429 the client would not wait out is the server saying stop: the pass does not go on to
    ask the other rooms (each would only be refused too); the retry loop takes them up."""
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    posted = _outage(rest)
    rest.rate_limited_syncs = len(ROOMS)  # everything is refused for now
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert rest.refused_syncs <= BOUND
    assert ingest.pending_rooms == frozenset(ROOMS)
    rest.rate_limited_syncs = 0
    assert await _retried(ingest)
    assert _by_room(rec) == posted


async def test_a_reconnection_during_catch_up_starts_over_and_keeps_what_was_held(tmp_path: Path) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    posted = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    assert await until(lambda: len(rest.sync_calls) > 20)
    late = ROOMS[-1]
    live = rest.post(late, "live-late", T0 + timedelta(minutes=5))
    await ingest.handle(NewMessage(live, RoomHint(True, "c", "late")))
    # The connection drops and comes back before the pass is done: a new pass takes over.
    await ingest.handle(Connected(session="s2", user_id=BOT, reconnect=True))
    await ingest.caught_up()
    assert ingest.catch_ups == 1  # the first pass was cut short
    assert ingest.pending_rooms == frozenset()
    rooms = _by_room(rec)
    assert rooms[late] == [*posted[late], "live-late"]
    assert {rid: ids for rid, ids in rooms.items() if rid != late} == {
        rid: ids for rid, ids in posted.items() if rid != late
    }
