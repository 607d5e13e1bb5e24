"""Screening a message against the lists: the pure parts shared by the keyword alerts and the
enforcer (the room lookup between them is :mod:`bot.services.screening`).

A message is scanned with the room name the stream gave, often none on catch-up. Scanning comes
first because almost every message matches nothing, and then nothing is looked up at all; a list's
``rooms``/``skip_rooms`` are applied again once the room's name is known.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Message, Room
from bot.moderation.matcher import Match, Matcher
from bot.moderation.wordlist import ListOptions

__all__ = ["Found", "applies_in", "in_room", "scan"]

# One scannable text of a message (its text, then its attachments' texts) and the matches in it.
Found = tuple[str, list[Match]]


def scan(
    message: Message, matcher: Matcher, room_name: str | None, *, kind: str | None = None
) -> list[Found]:
    """The texts of ``message`` that match, with their matches (only lists of ``kind``, if given);
    empty for the common message that matches nothing."""
    found: list[Found] = []
    for text in message.scannable_texts():
        matches = matcher.scan(text, room=room_name)
        if kind is not None:
            matches = [m for m in matches if m.kind == kind]
        if matches:
            found.append((text, matches))
    return found


def applies_in(options: ListOptions, room: Room) -> bool:
    """Whether a list is active in ``room``: its ``rooms`` and ``skip_rooms`` name rooms by name
    or by id, so either may be the one listed."""
    named = {room.id} if room.name is None else {room.id, room.name}
    if named & set(options.skip_rooms):
        return False
    return not options.rooms or bool(named & set(options.rooms))


def in_room(found: Sequence[Found], scanned_in: str | None, room: Room) -> list[Found]:
    """``found`` as scanned with the room name ``scanned_in``, with the lists' rooms applied again
    if the room's name is known only now (each text is kept, perhaps with no match left)."""
    if not room.name or room.name == scanned_in:
        return list(found)
    return [(text, [m for m in matches if applies_in(m.options, room)]) for text, matches in found]
