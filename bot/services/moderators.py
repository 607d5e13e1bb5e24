"""The configured bot moderators (``moderation.moderators``, ``RCMOD_MODERATORS``), bound to user
ids once per process.

The configuration names people by username because that is what an administrator knows; rights
must not follow a username, though: a member could register a listed name nobody holds yet, or
rename into one a moderator gave up. So each name is looked up (users.info) the first time the
bot is connected and from then on only the user id counts: a later rename neither takes rights
away from the moderator nor hands them to whoever takes the old name. A name that does not exist
at that moment is reported (log, ``/mod status``, ``rcmod doctor``) and stays powerless while
the bot runs (whoever holds it at the next start is bound to it: the warning says to fix the
list). A lookup that failed for a transient reason is retried at the next use.

Alerts go to the bound users under their *current* usernames (users.info by id), never to the
configured string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from bot.errors import ActionRefused, RcmodError
from bot.moderation.neutralize import inline_literal
from bot.rest import RestClient

__all__ = ["BotModerators"]

log = logging.getLogger("rcmod.moderators")

# How long a moderator's current username is trusted for addressing alerts: not at all, as a
# freed name can be taken by someone else at once (alerts are rare; the bot role bypasses the
# REST rate limiter). Tests may lengthen it.
_NAME_TTL = 0.0


class BotModerators:
    def __init__(
        self, names: Iterable[str], *, clock: Callable[[], float] = time.time, ttl: float = _NAME_TTL
    ) -> None:
        self.configured: tuple[str, ...] = tuple(dict.fromkeys(n.strip().lstrip("@") for n in names if n))
        self._clock = clock
        self._ttl = ttl
        self._ids: dict[str, str] = {}  # configured name -> user id
        self._missing: set[str] = set()  # names with no user when first looked up: final
        self._current: dict[str, tuple[float, str]] = {}  # user id -> (when, current username)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(n for n in self.configured if n in self._missing)

    @property
    def pending(self) -> tuple[str, ...]:
        """Names not looked up yet (the server did not answer)."""
        return tuple(n for n in self.configured if n not in self._ids and n not in self._missing)

    def ids(self) -> frozenset[str]:
        return frozenset(self._ids.values())

    async def current_ids(self, rest: RestClient) -> frozenset[str]:
        """:meth:`ids`, after another try at names the server did not answer for at start."""
        if self.pending:
            await self.resolve(rest)
        return self.ids()

    def has(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self._ids.values()

    def bind(self, name: str, user_id: str) -> None:
        """Bind a configured name to the id the server gave for it (tests and :meth:`resolve`)."""
        self._ids[name] = user_id

    async def resolve(self, rest: RestClient) -> None:
        """Look up every name not bound yet; a name the server does not know is final."""
        for name in self.pending:
            try:
                user = await rest.user_info(username=name)
            except ActionRefused:
                self._missing.add(name)
                log.warning(
                    "moderation.moderators lists %r, which is no user on this workspace: it grants "
                    "nothing while rcmod runs; fix or remove it (whoever holds the name at the next "
                    "start is bound to it)",
                    name,
                )
                continue
            except RcmodError as exc:
                log.warning("could not look up moderator %r (%s); retrying later", name, type(exc).__name__)
                continue
            uid, current = user.get("_id"), user.get("username")
            if not isinstance(uid, str) or not uid:
                continue
            self._ids[name] = uid
            if isinstance(current, str) and current:
                self._current[uid] = (self._clock(), current)
            log.info("bot moderator %r is user %s", name, uid)

    async def usernames(self, rest: RestClient) -> list[str]:
        """The bound moderators' current usernames (to address alerts), in configured order."""
        if self.pending:
            await self.resolve(rest)
        out: list[str] = []
        now = self._clock()
        for name in self.configured:
            uid = self._ids.get(name)
            if uid is None:
                continue
            hit = self._current.get(uid)
            if hit is None or now - hit[0] >= self._ttl:
                try:
                    current = (await rest.user_info(user_id=uid)).get("username")
                except ActionRefused:
                    continue  # the account is gone: nobody to tell under any name
                except RcmodError:
                    current = hit[1] if hit else None
                if isinstance(current, str) and current:
                    hit = (now, current)
                    self._current[uid] = hit
            if hit is not None:
                out.append(hit[1])
        return list(dict.fromkeys(out))

    def status(self) -> list[str]:
        lines = []
        if self.missing:
            lines.append(
                "bot moderators that are no users (they grant nothing; fix or remove them, as whoever holds "
                "the name at the next start is bound to it): "
                + ", ".join(inline_literal(n) for n in self.missing)
            )
        if self.pending:
            lines.append(
                "bot moderators not looked up yet: " + ", ".join(inline_literal(n) for n in self.pending)
            )
        return lines
