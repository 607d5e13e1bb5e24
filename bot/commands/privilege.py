"""Who may run what: a privilege level from Rocket.Chat's roles and the configured moderators,
and the check every command goes through. Pure code; the roles are looked up (and cached) by
the I/O shell.

Levels are ordered member < room moderator < room owner < bot moderator < admin. ``moderator``
and ``owner`` are room roles in Rocket.Chat, so they count only for the room a command acts on;
``admin`` is a workspace role; a bot moderator is a user named in ``moderation.moderators``
(``RCMOD_MODERATORS``) because Rocket.Chat has no global moderator role — matched by user id
(the names are bound to ids at start, :mod:`bot.services.moderators`), never by the caller's
username, which a member chooses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.commands.spec import Command, Privilege

__all__ = ["Denied", "check", "resolve"]


def resolve(
    *,
    user_id: str,
    global_roles: Iterable[str],
    room_roles: Iterable[str] = (),
    bot_moderators: Iterable[str] = (),
) -> Privilege:
    """``bot_moderators``: the bot moderators' user ids."""
    roles = set(global_roles)
    if "admin" in roles:
        return Privilege.ADMIN
    if user_id and user_id in set(bot_moderators):
        return Privilege.BOT_MODERATOR
    room = set(room_roles)
    if "owner" in room:
        return Privilege.ROOM_OWNER
    if "moderator" in room:
        return Privilege.ROOM_MODERATOR
    return Privilege.MEMBER


@dataclass(frozen=True, slots=True)
class Denied:
    command: Command
    have: Privilege
    need: Privilege

    @property
    def text(self) -> str:
        need = self.need
        where = " of that room" if need in (Privilege.ROOM_MODERATOR, Privilege.ROOM_OWNER) else ""
        scope = " everywhere" if need > self.command.privilege else ""
        return (
            f"`/{self.command.name}`{scope} needs {need.label}{where} or above; you are {self.have.label}"
            f"{' there' if where else ''}."
        )


def check(command: Command, have: Privilege, *, everywhere: bool = False) -> Denied | None:
    """``everywhere``: the invocation acts in every room, which no room's roles can allow."""
    need = command.needs(everywhere=everywhere)
    return None if have >= need else Denied(command, have, need)
