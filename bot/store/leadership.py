"""Leadership of replicas on PostgreSQL: any number of ``rcmod run`` share one store, one leads.

The leader holds a session-level advisory lock (:data:`LEADER_LOCK`) on a connection of its own,
used for nothing else. PostgreSQL releases a session lock only when its session ends: an explicit
close, the process dying (the kernel closes its socket), ``pg_terminate_backend``, a server
restart, or a network partition once TCP keepalives give up (the lock session asks for them:
about 11 s). Standbys poll ``pg_try_advisory_lock`` (:data:`POLL_INTERVAL`) with their matcher
built and their store open; the one that gets the lock raises the fencing token
(``leader_epoch.epoch``) by one and runs the bot's start-up.

Why two instances never act at once. An instance acts in exactly two ways: it writes the store,
and it changes the server (sends, edits, deletes, mutes… every one through
:class:`bot.services.executor.Executor`). Both are fenced:

* **Store writes** are fenced strictly, by the token. The leader's store connection is armed
  with its epoch (:meth:`~bot.store.postgres.PostgresDatabase.fence`); every write transaction
  then begins by reading the token row ``FOR SHARE`` and is refused (:class:`~bot.errors.Deposed`,
  rolled back) unless it is still its own. A new leader raises the token with an ``UPDATE`` of
  that row, which waits for every transaction holding the share lock: a deposed leader's
  transaction either committed before the new token (so the new leader sees its work, as it
  would a crashed leader's) or reads the new token and writes nothing. No timing is assumed.

* **Changes on the server** cannot carry a token (Rocket.Chat knows nothing of ours), so they
  are fenced by a permit in time, as a lease is. The executor asks :meth:`Leadership.permit`
  before each call. A permit lasts :data:`ACT_WINDOW` seconds from the moment a check of the
  lock session *began* (:meth:`Leadership.verify`: one round trip on the lock connection; an
  answer proves the session, hence the lock, was alive then). Let the old leader's last
  successful check begin at ``t0``: its answer came after ``t0`` and before its session ended,
  and the new leader got the lock after that, at ``t1 > t0``. The old permit runs out at
  ``t0 + ACT_WINDOW < t1 + ACT_WINDOW``, and the new leader changes nothing before
  ``t1 + ACT_WINDOW`` (:meth:`Leadership.permit` waits it out). Durations are measured on each
  process's monotonic clock: their rates are assumed to agree within a small fraction of
  ``ACT_WINDOW``, their values need not. A leader paused (SIGSTOP, a long GC, a blocked loop)
  resumes with its permit run out and must check again, which fails once its session is gone.

  What remains is what no client-side fence can close: a call handed to the HTTP client within
  the permit is carried out when it reaches the server, and a process frozen in the few
  instructions between the permit check and the socket write would send it late. What such a
  call does was decided while leading and recorded under the store fence first (an outbox
  delivery with its pre-chosen message id, a deletion's evidence), so it can repeat what the new
  leader does for the same decision at most, never start something new.

A watchdog loop (the app's ``leadership`` loop) verifies every :data:`CHECK_INTERVAL`, which
keeps the leader's permit fresh; a failed or unanswered check (:data:`CHECK_TIMEOUT`) deposes
the instance: the loop raises :class:`~bot.errors.Deposed`, the app stops (loops cancelled,
realtime closed) and ``rcmod run`` exits, to be restarted as a standby by its supervisor.

SQLite installs keep the lease (:mod:`bot.store.lease`): one instance per data folder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import psycopg

from bot.errors import Deposed
from bot.store.db import StoreError

__all__ = [
    "ACT_WINDOW",
    "CHECK_INTERVAL",
    "CHECK_TIMEOUT",
    "LEADER_LOCK",
    "POLL_INTERVAL",
    "Leadership",
]

log = logging.getLogger("rcmod.leadership")

# The session lock's key: "rcmol" in ASCII (the store's other locks are "rcmod" and "rcmo").
LEADER_LOCK = 0x72636D6F6C
POLL_INTERVAL = 0.5  # a standby asks for the lock this often
CHECK_INTERVAL = 0.5  # the leader's watchdog checks its lock session this often
ACT_WINDOW = 2.0  # a check lets the leader change the server for this long after it began
CHECK_TIMEOUT = ACT_WINDOW  # a check unanswered this long deposes the leader
# The lock session's TCP keepalives, asked of both ends: a partitioned leader's session ends on
# the server after about idle + interval × count seconds, which frees the lock for a standby.
KEEPALIVE: dict[str, Any] = {"keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


class Leadership:
    """The lock session of one instance: standby until :meth:`try_acquire` succeeds, then leader
    until its session ends. ``epoch`` is its fencing token once leading."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        holder: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        window: float = ACT_WINDOW,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._conn = conn
        self.holder = holder
        self._monotonic = monotonic
        self._clock = clock
        self._window = window
        self._sleep = sleep
        self.locked = False  # this session holds the lock
        self.epoch: int | None = None  # the token, once raised under the lock
        self.lost: str | None = None  # why this instance no longer leads
        self._valid_until = float("-inf")
        self._not_before = float("inf")
        self._verifying = asyncio.Lock()

    @classmethod
    def connect(cls, url: str, holder: str, **kwargs: Any) -> Leadership:
        try:
            name = f"rcmod-leader {holder}"[:63]
            conn = psycopg.connect(url, autocommit=True, application_name=name, keepalives=1, **KEEPALIVE)
            conn.execute(
                f"SET tcp_keepalives_idle = {KEEPALIVE['keepalives_idle']}; "
                f"SET tcp_keepalives_interval = {KEEPALIVE['keepalives_interval']}; "
                f"SET tcp_keepalives_count = {KEEPALIVE['keepalives_count']}; "
                # The token's UPDATE may wait behind a paused leader's transaction: not forever.
                "SET lock_timeout = '1s'",
                None,
            )
        except psycopg.Error as exc:
            raise StoreError(f"leadership: cannot connect: {str(exc).strip().splitlines()[0]}") from exc
        return cls(conn, holder, **kwargs)

    @property
    def leading(self) -> bool:
        return self.epoch is not None and self.lost is None

    @property
    def alive(self) -> bool:
        """The lock session is open (a standby's readiness)."""
        return not self._conn.closed and self.lost is None

    def try_acquire(self) -> bool:
        """Ask for the lock once; with it, raise the token. True once this instance leads."""
        if self.lost is not None:
            raise Deposed(f"leadership lost: {self.lost}")
        try:
            if not self.locked:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
                self.locked = bool(row and row[0])
                if not self.locked:
                    return False
                # The old leader's permit began before its last answer, which came before its
                # session ended, which came before this: it runs out by this plus the window.
                self._not_before = self._monotonic() + self._window
            row = self._conn.execute(
                "INSERT INTO leader_epoch (id, epoch, holder, since) VALUES (1, 1, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET epoch = leader_epoch.epoch + 1, "
                "holder = excluded.holder, since = excluded.since RETURNING epoch",
                (self.holder, self._clock()),
            ).fetchone()
        except psycopg.errors.LockNotAvailable:
            # A paused old leader's transaction holds the token row: its session will be ended
            # (idle_in_transaction_session_timeout) or it commits; ask again at the next poll.
            log.warning("leadership: the token row is held by an unfinished transaction; retrying")
            return False
        except psycopg.Error as exc:
            self.lost = f"lock session failed ({type(exc).__name__})"
            raise Deposed(f"leadership: {self.lost}") from exc
        assert row is not None
        self.epoch = int(row[0])
        log.info("leading (epoch %d)", self.epoch)
        return True

    def check(self) -> None:
        """One round trip on the lock session: it is alive (so the lock is held) and the token is
        ours. Renews the permit from the moment the check began; Deposed otherwise."""
        if self.lost is not None:
            raise Deposed(f"leadership lost: {self.lost}")
        began = self._monotonic()
        try:
            row = self._conn.execute("SELECT epoch FROM leader_epoch WHERE id = 1", None).fetchone()
        except psycopg.Error as exc:
            self._lose(f"its lock session failed ({type(exc).__name__})")
        if not self.leading or row is None or int(row[0]) != self.epoch:
            self._lose("another instance raised the token")
        self._valid_until = max(self._valid_until, began + self._window)

    async def verify(self) -> None:
        """:meth:`check` off the event loop, within :data:`CHECK_TIMEOUT` (a partition can hold a
        round trip for as long as TCP takes to give up)."""
        async with self._verifying:
            began = self._monotonic()
            if began < self._valid_until - self._window / 2:
                return  # another caller just checked
            try:
                await asyncio.wait_for(asyncio.to_thread(self.check), CHECK_TIMEOUT)
            except TimeoutError:
                self._lose(f"its lock session did not answer within {CHECK_TIMEOUT:.0f} s")

    async def permit(self) -> None:
        """Return only while this instance may change the server (see the module's docstring):
        waits out a predecessor's permit, checks again when its own has run out; Deposed when
        it no longer leads."""
        while True:
            if not self.leading:
                raise Deposed(f"leadership lost: {self.lost or 'not leading'}")
            now = self._monotonic()
            if now < self._not_before:
                await self._sleep(self._not_before - now)
            elif now < self._valid_until:
                return
            else:
                await self.verify()

    def _lose(self, why: str) -> NoReturn:
        if self.lost is None:
            self.lost = why
            log.error("leadership lost: %s; this instance stops acting", why)
        raise Deposed(f"leadership lost: {why}")

    def close(self) -> None:
        """End the lock session: the lock is released at once, for a standby to take."""
        self._conn.close()
