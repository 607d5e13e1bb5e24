"""Screening a message, the one step the keyword alerts and the enforcer share: scan first (no
lookup for a message that matches nothing), then the room as the server knows it, commands and DMs
to the bot and exempt rooms and roles left alone, and the lists' rooms applied again once the
room's name is known."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config import ModerationSettings
from bot.models import Message, Room, UserRef
from bot.moderation import compile, parse_wordlist
from bot.moderation.screening import applies_in, in_room, scan
from bot.moderation.wordlist import ListOptions
from bot.realtime.events import NewMessage, RoomHint
from bot.services.lookups import Lookups
from bot.services.screening import Scans, screen

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
MATCHER = compile(
    [
        parse_wordlist("watch", "badword", 'kind = "notify"'),
        parse_wordlist("banned", "forbiddenword", 'kind = "block"\nskip_rooms = ["staff"]'),
    ]
)


def message(text: str, *, rid: str = "STAFF", author: str = "alice") -> Message:
    return Message(id="m1", rid=rid, text=text, ts=T0, author=UserRef(f"{author}-id", author))


@pytest.mark.parametrize(
    ("rooms", "skip_rooms", "room", "applies"),
    [
        ((), (), Room("R1", "general"), True),
        ((), ("staff",), Room("R1", "staff"), False),
        ((), ("R1",), Room("R1", "staff"), False),  # skipped by id
        ((), ("staff",), Room("R1", "general"), True),
        (("general",), (), Room("R1", "general"), True),
        (("R1",), (), Room("R1", "general"), True),  # limited by id
        (("general",), (), Room("R2", "random"), False),
        (("general",), (), Room("R1", None), False),  # name unknown: only the id can tell
        (("general",), ("general",), Room("R1", "general"), False),  # a skip wins
    ],
)
def test_a_list_applies_in_a_room_named_by_name_or_id(
    rooms: tuple[str, ...], skip_rooms: tuple[str, ...], room: Room, applies: bool
) -> None:
    assert applies_in(ListOptions("l", rooms=rooms, skip_rooms=skip_rooms), room) is applies


def test_scan_keeps_the_texts_that_match_and_only_the_lists_of_a_kind() -> None:
    assert scan(message("nothing here"), MATCHER, None) == []
    found = scan(message("badword and forbiddenword"), MATCHER, None)
    assert [(t, [m.list for m in ms]) for t, ms in found] == [
        ("badword and forbiddenword", ["watch", "banned"])
    ]
    blocking = scan(message("badword and forbiddenword"), MATCHER, None, kind="block")
    assert [[m.term for m in ms] for _, ms in blocking] == [["forbiddenword"]]
    assert scan(message("forbiddenword"), MATCHER, "staff") == []  # the name was known: skipped at once


def test_the_lists_rooms_apply_again_only_when_the_name_is_learnt() -> None:
    found = scan(message("forbiddenword"), MATCHER, None)  # catch-up: no room name
    staff = Room("STAFF", "staff", "c")
    assert [ms for _, ms in in_room(found, None, staff)] == [[]]  # the text kept, its match gone
    assert in_room(found, "staff", staff) == found  # scanned with the name: nothing to redo
    assert in_room(found, None, Room("STAFF")) == found  # the name is still unknown


class RoomsAndRoles:
    """rooms.info and users.list, answering from the test's dicts and counting the calls."""

    def __init__(self, rooms: dict[str, dict[str, Any]], roles: dict[str, list[str]]) -> None:
        self.rooms, self.roles, self.calls = rooms, roles, 0

    async def room_info(self, rid: str) -> dict[str, Any]:
        self.calls += 1
        return self.rooms[rid]

    async def all_users(self, *, page: int = 100) -> list[dict[str, Any]]:
        self.calls += 1
        return [
            {"_id": uid, "username": uid.removesuffix("-id"), "roles": r} for uid, r in self.roles.items()
        ]


def lookups() -> tuple[Lookups, RoomsAndRoles]:
    rest = RoomsAndRoles(
        {"STAFF": {"name": "staff", "t": "c"}, "GENERAL": {"name": "general", "t": "c"}, "DM": {"t": "d"}},
        {"alice-id": ["user"], "boss-id": ["user", "admin"]},
    )
    return Lookups(rest), rest  # type: ignore[arg-type]


async def screened(text: str, *, rid: str, author: str = "alice", hint: RoomHint | None = None) -> Any:
    found = scan(message(text, rid=rid, author=author), MATCHER, hint.name if hint else None)
    event = NewMessage(message(text, rid=rid, author=author), hint or RoomHint())
    moderation = ModerationSettings(exempt_rooms=["general"], exempt_roles=["admin"])
    known, _ = lookups()
    return await screen(event, found, lookups=known, moderation=moderation)


async def test_screening_learns_the_room_and_applies_its_lists_again() -> None:
    result = await screened("badword forbiddenword", rid="STAFF")
    assert result is not None and result.room == Room("STAFF", "staff", "c")
    assert [[m.list for m in ms] for _, ms in result.found] == [["watch"]]  # banned skips staff


@pytest.mark.parametrize(
    ("text", "rid", "author"),
    [
        ("badword", "DM", "alice"),  # a DM to the bot
        ("/mod test badword", "STAFF", "alice"),  # a command typed in a room
        ("badword", "GENERAL", "alice"),  # an exempt room
        ("badword", "STAFF", "boss"),  # an exempt role
    ],
)
async def test_screening_leaves_alone_what_is_not_moderation_material(
    text: str, rid: str, author: str
) -> None:
    assert await screened(text, rid=rid, author=author) is None


async def test_a_room_the_stream_named_is_not_looked_up() -> None:
    known, rest = lookups()
    event = NewMessage(message("badword"), RoomHint(type="c", name="staff"))
    result = await screen(
        event,
        scan(event.message, MATCHER, "staff"),
        lookups=known,
        moderation=ModerationSettings(exempt_roles=[]),
    )
    assert result is not None and result.room == Room("STAFF", "staff", "c")
    assert rest.calls == 0


class CountingMatcher:
    """MATCHER, counting the texts it scans."""

    def __init__(self) -> None:
        self.scanned = 0

    def scan(self, text: str, room: str | None = None) -> Any:
        self.scanned += 1
        return MATCHER.scan(text, room=room)


def test_a_message_is_scanned_once_for_the_alerts_and_the_enforcer() -> None:
    counting = CountingMatcher()
    current: list[Any] = [counting]
    scans = Scans(lambda: current[0])
    m = message("badword and forbiddenword")
    everything = scans.found(m, None)  # the alerts ask first
    blocking = scans.found(m, None, kind="block")  # then the enforcer
    assert counting.scanned == 1
    assert everything == scan(m, MATCHER, None)
    assert blocking == scan(m, MATCHER, None, kind="block")
    assert [(t, [x.list for x in ms]) for t, ms in blocking or []] == [
        ("badword and forbiddenword", ["banned"])
    ]
    # Another message, another room name or reloaded lists: scanned afresh.
    assert scans.found(message("badword and forbiddenword"), None) == everything
    assert scans.found(m, "staff", kind="block") == []
    current[0] = CountingMatcher()
    scans.found(m, "staff")
    assert (counting.scanned, current[0].scanned) == (3, 1)
    current[0] = None
    assert scans.found(m, None) is None  # no lists loaded
