"""Short-lived caches of what the server says about rooms and users, shared by the handlers that
need them on the rare message that matches (the notifier, the enforcer): one TTL policy, one
place that turns a failed lookup into "use what we had", instead of a copy per handler.
:class:`TtlCache` is the one keyed cache; the command dispatcher keeps one of its own, with a
shorter TTL.

Workspace roles come from users.list, never users.info: users.info shows another user's
``roles`` only to holders of ``view-full-other-user-info`` (getFullUserData), which the bot role
lacks, while users.list carries ``roles`` for anyone with ``view-d-room``. Its ``query`` and
``fields`` parameters are ignored since 7.0, so it cannot be asked for role holders only: the
directory walks the whole list, page by page on ``total``, and keeps one snapshot.

Both are read on the message path (a keyword match, an @all, an alert's recipients), so once they
hold an answer, an expired one is still used while a fresh one is fetched in the background: only
the very first lookup of a key waits for the server, never its renewal. A moderator's command
asks ``fresh`` and waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from bot.errors import RcmodError
from bot.models import Room, UserRef
from bot.rest import RestClient

__all__ = ["Lookups", "RoleDirectory", "TtlCache"]

log = logging.getLogger("rcmod.lookups")
T = TypeVar("T")

DEFAULT_TTL = 300.0
# A lookup asked "fresh" (a moderator's command) still reuses a snapshot this young.
FRESH_AGE = 5.0


class TtlCache:
    """Answers from the server by key (``room:RID``, ``roles:RID``, …), each kept ``ttl`` seconds.
    What a failed fetch means is the caller's to say: its error propagates and nothing is kept."""

    def __init__(self, clock: Callable[[], float] = time.time, *, ttl: float = DEFAULT_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """The answer kept for ``key`` while it is younger than the TTL, else ``fetch()``'s, kept."""
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]  # type: ignore[no-any-return]
        value = await fetch()
        self._entries[key] = (now, value)
        return value

    def peek(self, key: str) -> tuple[bool, Any] | None:
        """(still fresh, the answer kept for ``key``), or None when nothing is kept."""
        hit = self._entries.get(key)
        return None if hit is None else (self._clock() - hit[0] < self._ttl, hit[1])

    def last(self, key: str, default: T) -> T:
        """The answer last kept for ``key``, however old; ``default`` if there is none."""
        hit = self._entries.get(key)
        return hit[1] if hit is not None else default

    def forget(self, prefix: str = "") -> None:
        """Drop the answers whose key starts with ``prefix`` (all of them by default)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


class RoleDirectory:
    """user id → workspace roles, and username → user id, from one walk of users.list."""

    def __init__(
        self, rest: RestClient, *, clock: Callable[[], float] = time.time, ttl: float = DEFAULT_TTL
    ) -> None:
        self._rest = rest
        self._clock = clock
        self._ttl = ttl
        self._taken: float | None = None
        self._roles: dict[str, frozenset[str]] = {}
        self._ids: dict[str, str] = {}  # lower-cased username → id
        self._lock = asyncio.Lock()
        self._renewal: asyncio.Task[None] | None = None

    async def _renew(self) -> None:
        try:
            await self._refresh(max_age=self._ttl)
        finally:
            self._renewal = None

    async def prefetch(self) -> None:
        """Read the snapshot now (at connect), so no message waits for the first one."""
        await self._refresh(max_age=self._ttl)

    async def roles(
        self, *, user_id: str | None = None, username: str | None = None, fresh: bool = False
    ) -> frozenset[str]:
        """The user's workspace roles; empty for a user the server does not list. ``fresh``
        re-reads a snapshot older than a few seconds, and one that does not know the user.
        Otherwise an expired snapshot answers while the next one is read in the background."""
        if not fresh and self._taken is not None:
            if self._clock() - self._taken >= self._ttl and not self._lock.locked() and self._renewal is None:
                self._renewal = asyncio.create_task(self._renew())
        else:
            await self._refresh(max_age=FRESH_AGE if fresh else self._ttl)
        uid = user_id or self._ids.get((username or "").lower())
        if fresh and (uid is None or uid not in self._roles):
            await self._refresh(max_age=FRESH_AGE)
            uid = user_id or self._ids.get((username or "").lower())
        return self._roles.get(uid or "", frozenset())

    async def _refresh(self, *, max_age: float) -> None:
        async with self._lock:
            now = self._clock()
            if self._taken is not None and now - self._taken < max_age:
                return
            try:
                users = await self._rest.all_users()
            except RcmodError as exc:
                # Keep the last snapshot: a guard that saw an admin yesterday still sees one.
                log.warning(
                    "users.list walk failed (%s); roles from %s",
                    type(exc).__name__,
                    "the last snapshot" if self._taken is not None else "nowhere",
                )
                return
            roles: dict[str, frozenset[str]] = {}
            ids: dict[str, str] = {}
            for user in users:
                uid = user.get("_id")
                if not isinstance(uid, str):
                    continue
                roles[uid] = frozenset(str(r) for r in user.get("roles") or [])
                if isinstance(user.get("username"), str):
                    ids[user["username"].lower()] = uid
            self._roles, self._ids, self._taken = roles, ids, now
            log.info("role directory: %d users", len(roles))


class Lookups:
    def __init__(
        self,
        rest: RestClient,
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = DEFAULT_TTL,
        roles: RoleDirectory | None = None,
    ) -> None:
        self._rest = rest
        self._cache = TtlCache(clock, ttl=ttl)
        self.roles = roles or RoleDirectory(rest, clock=clock, ttl=ttl)
        self._renewing: dict[str, asyncio.Task[None]] = {}

    async def cached(self, key: str, fetch: Callable[[], Awaitable[T]], default: T) -> T:
        """``fetch()`` at most once per TTL; on failure the last good value, else ``default``.
        An expired answer is returned at once while ``fetch()`` renews it in the background."""
        kept = self._cache.peek(key)
        if kept is not None:
            fresh, value = kept
            if not fresh and key not in self._renewing:
                task = asyncio.create_task(self._renew(key, fetch))
                self._renewing[key] = task
                task.add_done_callback(lambda _: self._renewing.pop(key, None))
            return value  # type: ignore[no-any-return]
        try:
            return await self._cache.get(key, fetch)
        except RcmodError as exc:
            log.warning("lookup %s failed (%s)", key.split(":")[0], type(exc).__name__)
            return self._cache.last(key, default)

    async def _renew(self, key: str, fetch: Callable[[], Awaitable[T]]) -> None:
        try:
            await self._cache.get(key, fetch)
        except RcmodError as exc:  # the expired answer stays in use; the next lookup tries again
            log.warning("lookup %s failed (%s)", key.split(":")[0], type(exc).__name__)

    async def room(self, hint: Room) -> Room:
        """The room with its name and type, from the stream's hint or rooms.info."""
        if hint.name and hint.type:
            return hint
        info: dict[str, Any] = await self.cached(f"room:{hint.id}", lambda: self._rest.room_info(hint.id), {})
        return Room(hint.id, info.get("name") or hint.name, info.get("t") or hint.type)

    async def has_role(self, author: UserRef, roles: Iterable[str]) -> bool:
        """Whether the user holds any of ``roles`` (workspace roles, from users.list)."""
        wanted = set(roles)
        if not wanted:
            return False
        return bool(wanted & await self.roles.roles(user_id=author.id))
