"""Signatures of accepted companion-app hook requests (replay protection).

A request is refused once its timestamp is more than the window old, so a signature needs
remembering only until ``timestamp + window``; rows past that are pruned on every check. Kept in
the store so a replay is still refused after the bot restarts within the window.
"""

from __future__ import annotations

from bot.store.db import Database

__all__ = ["HookReplayLedger"]


class HookReplayLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def hook_signature_seen(self, signature: str, *, stale_before: float) -> bool:
        self._db.execute("DELETE FROM hook_signature WHERE timestamp < ?", (stale_before,))
        row = self._db.execute("SELECT 1 FROM hook_signature WHERE signature = ?", (signature,)).fetchone()
        return row is not None

    def remember_hook_signature(self, signature: str, timestamp: int, *, keep_at_most: int) -> None:
        """Remember an accepted request; beyond ``keep_at_most`` rows the oldest timestamps go."""
        self._db.execute(
            "INSERT OR IGNORE INTO hook_signature (signature, timestamp) VALUES (?, ?)",
            (signature, timestamp),
        )
        self._db.execute(
            "DELETE FROM hook_signature WHERE signature IN (SELECT signature FROM hook_signature "
            "ORDER BY timestamp DESC LIMIT -1 OFFSET ?)",
            (keep_at_most,),
        )

    def hook_signatures_kept(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM hook_signature").fetchone()[0])
