"""The lease on a data folder: one bot instance writes to it at a time."""

from __future__ import annotations

from collections.abc import Callable

from bot.errors import ConfigError
from bot.store.db import Database

__all__ = ["Lease", "LeaseHeld"]


class LeaseHeld(ConfigError):
    """Another instance holds the lease on this data folder."""


class Lease:
    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire_lease(
        self, holder: str, ttl: float, name: str = "bot", is_dead: Callable[[str], bool] = lambda other: False
    ) -> None:
        """Take the lease, or raise LeaseHeld naming the holder if it is live.

        ``is_dead`` lets the caller vouch that a holder has died (same host, process gone), so a
        restart after a crash need not wait for the lease to run out.
        """
        now = self._db.clock()
        with self._db.transaction():
            row = self._db.execute("SELECT holder, expires_at FROM lease WHERE name = ?", (name,)).fetchone()
            if row and row[0] != holder and row[1] > now and not is_dead(row[0]):
                raise LeaseHeld(
                    f"another rcmod instance ({row[0]}) is running against this data folder; stop it first "
                    f"(its lease expires in {row[1] - now:.0f} s if it has died)"
                )
            self._db.execute(
                "INSERT INTO lease (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (name, holder, now + ttl),
            )

    def renew_lease(self, holder: str, ttl: float, name: str = "bot") -> None:
        self.acquire_lease(holder, ttl, name)

    def release_lease(self, holder: str, name: str = "bot") -> None:
        self._db.execute("DELETE FROM lease WHERE name = ? AND holder = ?", (name, holder))
