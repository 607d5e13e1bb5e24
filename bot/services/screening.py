"""The lookup half of screening a message (the pure half is :mod:`bot.moderation.screening`):
for a message that matched, or whose author is blocked, the room as the server knows it, and
whether the message is moderation material at all. Shared by the keyword alerts and the enforcer,
so that both leave alone the same messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.commands import addressed_to_bot
from bot.config import ModerationSettings
from bot.models import Room
from bot.moderation.screening import Found, in_room
from bot.realtime.events import MessageEvent
from bot.services.lookups import Lookups

__all__ = ["Screened", "screen"]


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
