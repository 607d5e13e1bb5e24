"""The history walker: every message of a room in a time range, page by page, each exactly once.

Rocket.Chat pages history newest first (``channels.history``, ``groups.history``, ``dm.history``).
Paging by "latest = the oldest timestamp seen" alone loses messages when several share one
millisecond across a page boundary (bridges and scripts post that fast), so the walker keeps
the boundary timestamp *inclusive* and skips, by offset, the messages at that timestamp it has
already seen. Thread replies are read too (channel and DM history leave them out unless
asked), since a purge deletes them. Used by purges and by ``rcmod scan-history``; it only reads.
The paging itself is RestClient.walk_history, shared with the catch-up's reads.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from bot.errors import ActionRefused
from bot.models import Message, Room
from bot.moderation.purge import PurgeUsageError
from bot.rest import RestClient

__all__ = ["resolve_rooms", "walk_room"]

log = logging.getLogger("rcmod.history")


async def walk_room(
    rest: RestClient,
    room: Room,
    *,
    oldest: datetime | None,
    latest: datetime | None,
    page: int = 100,
) -> AsyncIterator[Message]:
    """Messages of ``room`` with ``oldest <= ts <= latest``, newest first, each once. The room's
    type picks the history endpoint; a room of unknown type is read as a channel."""
    async for message in rest.walk_history(
        room.id, room.type or "c", oldest=oldest, latest=latest, page=page
    ):
        yield message


async def resolve_rooms(rest: RestClient, names: Sequence[str], *, everywhere: bool) -> list[Room]:
    """The named rooms (each must exist and be visible to the bot), or with ``everywhere`` every
    room the bot is in plus every public channel. Unknown or invisible rooms are usage errors.

    ``everywhere`` leaves out the bot's direct messages: they are its conversations with
    moderators and reporters (``/mod`` commands, alerts, reports), not the workspace's rooms.
    """
    if everywhere:
        found: dict[str, Room] = {}
        for sub in await rest.subscriptions():
            rid, kind = sub.get("rid"), sub.get("t")
            if isinstance(rid, str) and kind in ("c", "p"):
                found[rid] = Room(rid, str(sub.get("name") or rid), str(kind))
        for ch in await rest.public_channels():
            rid = ch.get("_id")
            if isinstance(rid, str) and rid not in found:
                found[rid] = Room(rid, str(ch.get("name") or rid), "c")
        return sorted(found.values(), key=lambda r: r.name or r.id)
    rooms = []
    for raw in names:
        name = raw.lstrip("#")
        try:
            info = await rest.room_by_name(name)
        except ActionRefused as exc:
            raise PurgeUsageError(
                f"no room #{name} that the bot can see ({exc.code or 'not found'})"
            ) from None
        kind = info.get("t")
        if kind not in ("c", "p", "d"):
            raise PurgeUsageError(f"room #{name} is of a type the bot cannot walk ({kind})")
        rooms.append(Room(str(info["_id"]), str(info.get("name") or name), str(kind)))
    return rooms
