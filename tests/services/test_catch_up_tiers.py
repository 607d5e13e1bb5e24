"""Catch-up in two tiers: the rooms the server wrote since their cursor (every room with a new
message) are caught up before the pass is ready; the quiet rooms are swept behind, where an edit
of an older message is still found, each room once and in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from bot.errors import RetryableError
from bot.realtime.events import Connected, EditedMessage, NewMessage, RoomHint
from tests.conftest import until
from tests.services.test_catch_up_many_rooms import BOT, ROOMS, T0, SlowRest, _msg, _seen_before, build

BUSY = ROOMS[3]
QUIET_EDITED = ROOMS[-1]  # last in the sweep's order: still ahead when the pass is ready


def _outage(rest: SlowRest) -> tuple[str, str]:
    """A new message in one room; in a quiet one, an edit of a message posted before the outage,
    which the fake server, as the real one for an edit of an older message, does not list among
    the rooms written. Returns (the new message's id, the edited message's id)."""
    old = _msg("old-1", QUIET_EDITED, T0 - timedelta(hours=1))
    rest.messages[QUIET_EDITED].append(
        replace(old, updated_at=T0 + timedelta(seconds=5), edited_at=T0 + timedelta(seconds=5))
    )
    new = rest.post(BUSY, "new-1", T0 + timedelta(seconds=3))
    return new.id, old.id


class RoomsUnknown(SlowRest):
    """A server whose rooms.get fails: which rooms were written is unknown."""

    async def rooms_updated_since(self, since: datetime) -> dict[str, datetime | None]:
        self.rooms_calls += 1
        raise RetryableError("rooms.get: 502")


async def test_rooms_with_new_messages_are_caught_up_before_ready_and_quiet_ones_behind(
    tmp_path: Path,
) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    new_id, edited_id = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.ready()
    assert rec.ids(NewMessage) == [new_id]  # every message posted meanwhile: handled
    assert rec.ids(EditedMessage) == []  # the quiet room's turn has not come
    assert QUIET_EDITED in ingest.pending_rooms and BUSY not in ingest.pending_rooms
    assert ingest.catch_ups == 0  # the sweep goes on
    assert await ingest.caught_up() == 2
    assert rec.ids(EditedMessage) == [edited_id]  # the sweep found the edit
    assert ingest.pending_rooms == frozenset()
    assert rest.rooms_calls == 1
    assert sorted(rest.sync_calls) == ROOMS  # every room asked once
    assert sorted(rest.history_calls) == [BUSY, QUIET_EDITED]  # the rooms whose sync listed news


async def test_a_live_message_in_a_quiet_room_waits_for_its_catch_up_which_moves_up(tmp_path: Path) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    _new_id, edited_id = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.ready()
    live = rest.post(QUIET_EDITED, "live-1", T0 + timedelta(minutes=5))
    await ingest.handle(NewMessage(live, RoomHint(True, "c", "quiet")))
    # Moved up: handled well before the sweep ends, after the room's own catch-up.
    assert await until(lambda: "live-1" in rec.ids(NewMessage))
    assert ingest.catch_ups == 0
    assert [m.id for m in rec.messages() if m.rid == QUIET_EDITED] == [edited_id, "live-1"]
    await ingest.caught_up()
    assert rec.message_ids()[edited_id] == 1 and rec.message_ids()["live-1"] == 1


async def test_without_the_list_of_written_rooms_every_room_comes_before_ready(tmp_path: Path) -> None:
    rest = RoomsUnknown(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    new_id, edited_id = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    await ingest.ready()
    assert sorted(rest.sync_calls) == ROOMS
    assert rec.ids(NewMessage) == [new_id] and rec.ids(EditedMessage) == [edited_id]
    assert await ingest.caught_up() == 2


async def test_ready_follows_the_newest_connections_pass(tmp_path: Path) -> None:
    rest = SlowRest(ROOMS)
    ingest, rec, store = build(tmp_path, rest)
    _seen_before(store)
    new_id, _edited_id = _outage(rest)
    await ingest.handle(Connected(session="s", user_id=BOT, reconnect=True))
    waiting = asyncio.create_task(ingest.ready())
    await ingest.handle(Connected(session="s2", user_id=BOT, reconnect=True))
    await waiting
    assert rec.message_ids()[new_id] == 1
    await ingest.caught_up()
    assert ingest.pending_rooms == frozenset()
