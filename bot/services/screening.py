"""The lookup half of screening a message (the pure half is :mod:`bot.moderation.screening`):
for a message that matched, or whose author is blocked, the room as the server knows it, and
whether the message is moderation material at all. Shared by the keyword alerts and the enforcer,
so that both leave alone the same messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.commands import addressed_to_bot
from bot.config import ModerationSettings
from bot.models import Message, Room
from bot.moderation import Matcher
from bot.moderation.screening import Found, in_room, scan
from bot.realtime.events import MessageEvent
from bot.services.lookups import Lookups

__all__ = ["Scans", "Screened", "screen"]


class Scans:
    """Scanning a message once for every handler that needs it: the keyword alerts and the
    enforcer both scan each message, and the scan is most of what a message costs.

    The last scan is remembered with what it was of (the message object itself, which is frozen,
    the room name and the matcher, which a reload replaces whole), so the second asker gets the
    first one's result and any other message, room or matcher is scanned afresh."""

    def __init__(self, matcher: Callable[[], Matcher | None]) -> None:
        self._matcher = matcher
        self._last: tuple[Message, str | None, Matcher, list[Found]] | None = None

    def found(
        self, message: Message, room_name: str | None, *, kind: str | None = None
    ) -> list[Found] | None:
        """What :func:`bot.moderation.screening.scan` finds in ``message`` (only lists of ``kind``,
        if given); None when no lists are loaded."""
        matcher = self._matcher()
        if matcher is None:
            return None
        last = self._last
        if last is not None and last[0] is message and last[1] == room_name and last[2] is matcher:
            found = last[3]
        else:
            found = scan(message, matcher, room_name)
            self._last = (message, room_name, matcher, found)
        if kind is None or not found:
            return list(found)
        kept: list[Found] = []
        for text, matches in found:
            mine = [m for m in matches if m.kind == kind]
            if mine:
                kept.append((text, mine))
        return kept


@dataclass(frozen=True, slots=True)
class Screened:
    room: Room  # with its name and type, looked up if the stream did not give them
    found: list[Found]  # the lists' rooms applied again with the room's name


async def screen(
    event: MessageEvent, found: Sequence[Found], *, lookups: Lookups, moderation: ModerationSettings
) -> Screened | None:
    """The room of ``event`` and ``found`` within it; None for a message left alone: a command or
    a DM to the bot (said to the bot, not to the workspace, and read by nobody else), one in an
    exempt room, or by a holder of an exempt role. Called only for a message that needs it: the
    lookups cost REST calls (cached)."""
    message = event.message
    room = await lookups.room(Room(message.rid, event.room.name, event.room.type))
    if addressed_to_bot(message.text, room.type):
        return None
    if room.name in moderation.exempt_rooms or await lookups.has_role(
        message.author, moderation.exempt_roles
    ):
        return None
    return Screened(room, in_room(found, event.room.name, room))
