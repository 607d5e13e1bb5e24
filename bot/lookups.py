"""Short-lived caches of what the server says about rooms and users, shared by the handlers that
need them on the rare message that matches (the notifier, the enforcer): one TTL policy, one
place that turns a failed lookup into "use what we had", instead of a copy per handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from bot.errors import RcmodError
from bot.models import UserRef
from bot.moderation.alerts import RoomRef
from bot.rest import RestClient

__all__ = ["Lookups"]

log = logging.getLogger("rcmod.lookups")
T = TypeVar("T")

DEFAULT_TTL = 300.0


class Lookups:
    def __init__(
        self, rest: RestClient, *, clock: Callable[[], float] = time.time, ttl: float = DEFAULT_TTL
    ) -> None:
        self._rest = rest
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Any]] = {}

    async def cached(self, key: str, fetch: Callable[[], Awaitable[T]], default: T) -> T:
        """``fetch()`` at most once per TTL; on failure the last good value, else ``default``."""
        now = self._clock()
        hit = self._cache.get(key)
        if hit and now - hit[0] < self._ttl:
            return hit[1]  # type: ignore[no-any-return]
        try:
            value = await fetch()
        except RcmodError as exc:
            log.warning("lookup %s failed (%s)", key.split(":")[0], type(exc).__name__)
            return hit[1] if hit else default
        self._cache[key] = (now, value)
        return value

    async def room(self, hint: RoomRef) -> RoomRef:
        """The room with its name and type, from the stream's hint or rooms.info."""
        if hint.name and hint.type:
            return hint
        info: dict[str, Any] = await self.cached(f"room:{hint.id}", lambda: self._rest.room_info(hint.id), {})
        return RoomRef(hint.id, info.get("name") or hint.name, info.get("t") or hint.type)

    async def has_role(self, author: UserRef, roles: Iterable[str]) -> bool:
        """Whether the user holds any of ``roles`` (workspace roles, from users.info)."""
        wanted = set(roles)
        if not wanted:
            return False
        user: dict[str, Any] = await self.cached(
            f"user:{author.id}", lambda: self._rest.user_info(user_id=author.id), {}
        )
        return bool(wanted & set(user.get("roles") or []))
