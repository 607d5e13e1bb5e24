"""Handled messages and catch-up cursors: what the bot has already seen, room by room.

A message revision is handled once (``mark_handled`` dedups a replay after a reconnect or a
restart), and each room's cursor says how far catch-up has read, so a restart resumes where
the bot stopped instead of re-reading or skipping history.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime

from bot.store.db import Database, translates

__all__ = ["DEDUP_KEEP_DAYS", "MessageLog"]

# The newest revision time among the handled marks, kept beside them (bot_state).
_NEWEST_KEY = "handled.newest_at"
# How long a handled mark is kept: catch-up never reaches further back, so what depends on a
# message being known as handled (its image checks too) need not be kept longer than this.
DEDUP_KEEP_DAYS = 30


class MessageLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def is_handled(self, mid: str, version: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM handled_message WHERE mid = ? AND version = ?", (mid, version)
        ).fetchone()
        return row is not None

    def newest_handled(self) -> float | None:
        """The newest revision time (POSIX seconds) of any handled mark recorded through
        :meth:`record`; None if none was (a fresh store, or one whose marks an older rcmod wrote:
        see :meth:`any_handled`)."""
        row = self._db.execute("SELECT value FROM bot_state WHERE key = ?", (_NEWEST_KEY,)).fetchone()
        return float(row[0]) if row else None

    def others_wrote(self) -> int:
        """A number that changes when another connection commits to the store (see
        :meth:`bot.store.db.Database.data_version`)."""
        return self._db.data_version()

    def any_handled(self) -> bool:
        return self._db.execute("SELECT 1 FROM handled_message LIMIT 1").fetchone() is not None

    def mark_handled(self, mid: str, version: str, rid: str) -> bool:
        """Record a handled revision; False if it was already recorded. It records no revision
        time, so ingest, which looks up only revisions older than :meth:`newest_handled`, records
        through :meth:`record`; this one is for revisions older than that (tests, tools)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO handled_message (mid, version, rid, handled_at) VALUES (?, ?, ?, ?)",
            (mid, version, rid, self._db.clock()),
        )
        return cur.rowcount == 1

    def record(self, handled: list[tuple[str, str, str, float | None]], cursors: dict[str, datetime]) -> None:
        """Record handled revisions ``(mid, version, rid, at)`` and move cursors forward, in one
        transaction: a batch of events costs one commit, and is recorded whole or not at all.

        ``at`` is the revision's own time (POSIX seconds: its ``editedAt``, else its ``ts``), None
        for a deletion; the newest ``at`` ever recorded is kept with the marks (see
        :meth:`newest_handled`)."""
        now = self._db.clock()
        with self._db.transaction():
            if handled:
                self._db.executemany(
                    "INSERT OR IGNORE INTO handled_message (mid, version, rid, handled_at) "
                    "VALUES (?, ?, ?, ?)",
                    [(mid, version, rid, now) for mid, version, rid, _ in handled],
                )
                times = [at for _, _, _, at in handled if at is not None]
                if times:
                    self._db.execute(
                        "INSERT INTO bot_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = CAST(max(CAST(value AS REAL), CAST(excluded.value AS REAL)) AS TEXT)",
                        (_NEWEST_KEY, repr(max(times))),
                    )
            if cursors:
                self._db.executemany(
                    "INSERT INTO room_cursor (rid, updated_ms) VALUES (?, ?) "
                    "ON CONFLICT (rid) DO UPDATE SET updated_ms = max(updated_ms, excluded.updated_ms)",
                    [(rid, int(when.timestamp() * 1000)) for rid, when in cursors.items()],
                )

    def forget_handled_before(self, cutoff: float) -> int:
        """Drop dedup records older than ``cutoff`` (catch-up never reaches that far back)."""
        return self._db.execute("DELETE FROM handled_message WHERE handled_at < ?", (cutoff,)).rowcount

    def room_cursor(self, rid: str) -> datetime | None:
        row = self._db.execute("SELECT updated_ms FROM room_cursor WHERE rid = ?", (rid,)).fetchone()
        return datetime.fromtimestamp(row[0] / 1000, tz=UTC) if row else None

    def room_cursors(self) -> dict[str, datetime]:
        return {
            rid: datetime.fromtimestamp(ms / 1000, tz=UTC)
            for rid, ms in self._db.execute("SELECT rid, updated_ms FROM room_cursor")
        }

    def advance_room_cursor(self, rid: str, when: datetime) -> None:
        """Move the cursor forward only: catch-up and live events may arrive out of order."""
        ms = int(when.timestamp() * 1000)
        self._db.execute(
            "INSERT INTO room_cursor (rid, updated_ms) VALUES (?, ?) "
            "ON CONFLICT (rid) DO UPDATE SET updated_ms = max(updated_ms, excluded.updated_ms)",
            (rid, ms),
        )

    def last_handled_at(self, rid: str | None = None) -> tuple[float, float] | None:
        """(oldest, newest) time the bot handled a message, in the room or anywhere (bot clock);
        None when it has handled none. Used only to repair a cursor."""
        where, args = ("WHERE rid = ?", (rid,)) if rid is not None else ("", ())
        row = self._db.execute(
            f"SELECT min(handled_at), max(handled_at) FROM handled_message {where}", args
        ).fetchone()
        return None if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def lower_room_cursor(self, rid: str, when: datetime) -> None:
        """Move the cursor back to ``when`` if it is past it (a cursor pinned in the future)."""
        ms = int(when.timestamp() * 1000)
        self._db.execute("UPDATE room_cursor SET updated_ms = min(updated_ms, ?) WHERE rid = ?", (ms, rid))

    @translates("noting subscriptions")
    def note_subscriptions(self, listed: Collection[str]) -> None:
        """Catch-up read the bot's subscriptions: rooms in ``listed`` are present; a cursor's room
        not in it is dated missing from now, unless it already was (the first date stays)."""
        present = json.dumps(sorted(listed))
        with self._db.transaction():
            self._db.execute(
                "UPDATE room_cursor SET missing_since = NULL "
                "WHERE missing_since IS NOT NULL AND rid IN (SELECT value FROM json_each(?))",
                (present,),
            )
            self._db.execute(
                "UPDATE room_cursor SET missing_since = ? "
                "WHERE missing_since IS NULL AND rid NOT IN (SELECT value FROM json_each(?))",
                (self._db.clock(), present),
            )

    def note_room_present(self, rid: str) -> None:
        """The bot joined ``rid`` (a live subscription event): it is no longer missing."""
        self._db.execute("UPDATE room_cursor SET missing_since = NULL WHERE rid = ?", (rid,))

    @translates("forgetting cursors of rooms left")
    def forget_rooms_missing(self, *, missing_before: float, idle_before: datetime) -> int:
        """Drop the cursors of rooms missing from every subscription list read since
        ``missing_before`` (bot clock) whose cursor has not moved since ``idle_before``."""
        return self._db.execute(
            "DELETE FROM room_cursor WHERE missing_since IS NOT NULL AND missing_since < ? "
            "AND updated_ms < ?",
            (missing_before, int(idle_before.timestamp() * 1000)),
        ).rowcount

    def forget_room(self, rid: str) -> None:
        self._db.execute("DELETE FROM room_cursor WHERE rid = ?", (rid,))
