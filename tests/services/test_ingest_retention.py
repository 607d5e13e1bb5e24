"""Ingest's retention rules: dedup records go after 30 days, and the cursor of a room goes only
once the bot has been out of it for 30 days by subscription lists it read, so a room it is
still in never loses its cursor (which would skip what was posted while the bot was away)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.errors import RetryableError
from bot.metrics import Metrics
from bot.realtime.events import NewMessage, RoomHint, SubscriptionChanged
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store
from tests.helpers import Clock
from tests.services.test_ingest import BOT, FakeRest, msg

DAY = 86400.0


class FlakyRest(FakeRest):
    """Lists subscriptions as the test says: a list, an empty one, or a failure."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def subscriptions(self) -> list[dict[str, object]]:
        if self.fail:
            raise RetryableError("subscriptions.get: 502")
        return self.subs


def build(tmp_path: Path) -> tuple[Ingest, Store, FlakyRest, Clock]:
    clock = Clock(datetime(2026, 11, 25, 9, tzinfo=UTC).timestamp())
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    rest = FlakyRest()
    metrics = Metrics()
    ingest = Ingest(
        messages=store.messages,
        rest=rest,
        router=Router(metrics),
        metrics=metrics,
        bot_user_id=lambda: BOT,
        clock=clock,
    )
    return ingest, store, rest, clock


def _now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC)


async def test_dedup_records_older_than_30_days_are_forgotten(tmp_path: Path) -> None:
    ingest, store, _, clock = build(tmp_path)
    store.messages.mark_handled("old", "", "GENERAL")
    clock.now += 20 * DAY
    store.messages.mark_handled("recent", "", "GENERAL")
    assert ingest.prune() == 0
    clock.now += 11 * DAY
    assert ingest.prune() == 1
    assert not store.messages.is_handled("old", "")
    assert store.messages.is_handled("recent", "")


async def test_the_cursor_of_a_room_left_30_days_ago_goes_and_listed_rooms_keep_theirs(
    tmp_path: Path,
) -> None:
    ingest, store, rest, clock = build(tmp_path)
    rest.subs = [{"rid": "GENERAL", "t": "c"}, {"rid": "LEFT", "t": "c"}, {"rid": "BUSY", "t": "c"}]
    await ingest.catch_up()
    assert set(store.messages.room_cursors()) == {"GENERAL", "LEFT", "BUSY"}
    rest.subs = [{"rid": "GENERAL", "t": "c"}]  # the bot left LEFT and BUSY
    await ingest.catch_up()
    clock.now += 20 * DAY
    # A message of BUSY handled 20 days on (read by catch-up, the room being public): its
    # cursor moved, so it is not idle.
    await ingest.handle(NewMessage(message=msg("b1", rid="BUSY", at=_now(clock)), room=RoomHint(type="c")))
    await ingest.catch_up()  # still not listed: missing since the first list that lacked them
    assert ingest.prune_cursors() == 0
    clock.now += 11 * DAY
    assert ingest.prune_cursors() == 1
    assert set(store.messages.room_cursors()) == {"GENERAL", "BUSY"}
    clock.now += 20 * DAY
    assert ingest.prune_cursors() == 1
    assert set(store.messages.room_cursors()) == {"GENERAL"}  # listed: kept however idle


async def test_a_failed_or_empty_subscription_list_never_drops_a_cursor(tmp_path: Path) -> None:
    ingest, store, rest, clock = build(tmp_path)
    rest.subs = [{"rid": "GENERAL", "t": "c"}, {"rid": "QUIET", "t": "c"}]
    await ingest.catch_up()
    rest.fail = True
    await ingest.catch_up()
    rest.fail, rest.subs = False, []
    await ingest.catch_up()
    clock.now += 90 * DAY
    await ingest.catch_up()
    assert ingest.prune_cursors() == 0
    assert set(store.messages.room_cursors()) == {"GENERAL", "QUIET"}


async def test_a_room_joined_again_keeps_its_cursor(tmp_path: Path) -> None:
    ingest, store, rest, clock = build(tmp_path)
    rest.subs = [{"rid": "GENERAL", "t": "c"}, {"rid": "BACK", "t": "c"}]
    await ingest.catch_up()
    cursor = store.messages.room_cursor("BACK")
    rest.subs = [{"rid": "GENERAL", "t": "c"}]
    await ingest.catch_up()  # BACK missing from now
    clock.now += 10 * DAY
    await ingest.handle(SubscriptionChanged(action="inserted", rid="BACK", room_type="c"))
    clock.now += 40 * DAY  # no list read since, and no message in BACK: idle, but present
    assert ingest.prune_cursors() == 0
    assert store.messages.room_cursor("BACK") == cursor
