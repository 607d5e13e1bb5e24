"""Strikes, mutes, raid locks and held messages.

Everything the sanctions shell must remember across restarts lives here: the strike history the
ladder counts, each mute with its expiry (so a timed mute is lifted on time after downtime), the
rooms a raid made read-only, and the messages the link protection held for review. The
in-memory counters of the protections are not here: losing them on a restart loses only a
partial window.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.db import Database, translates

__all__ = ["HeldRow", "MuteRow", "SanctionLedger", "StrikeRow"]


@dataclass(frozen=True, slots=True)
class StrikeRow:
    id: int
    user_id: str
    username: str
    at: float
    source: str
    actor: str
    rid: str | None
    reason: str
    step: str | None
    pardoned_at: float | None


@dataclass(frozen=True, slots=True)
class MuteRow:
    id: int
    user_id: str
    username: str
    rid: str
    room_name: str | None
    since: float
    until: float | None
    reason: str
    actor: str
    state: str


@dataclass(frozen=True, slots=True)
class HeldRow:
    id: int
    mid: str
    rid: str
    user_id: str
    username: str
    evidence_id: int | None
    held_at: float
    state: str


_STRIKE = "id, user_id, username, at, source, actor, rid, reason, step, pardoned_at"
_MUTE = "id, user_id, username, rid, room_name, since, until, reason, actor, state"
_HELD = "id, mid, rid, user_id, username, evidence_id, held_at, state"


def _strike(row: tuple[object, ...]) -> StrikeRow:
    return StrikeRow(*row)  # type: ignore[arg-type]


def _mute(row: tuple[object, ...]) -> MuteRow:
    return MuteRow(*row)  # type: ignore[arg-type]


class SanctionLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- strikes ---------------------------------------------------------------------------------

    def add_strike(
        self, *, user_id: str, username: str, source: str, actor: str, rid: str | None, reason: str
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO strike (user_id, username, at, source, actor, rid, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, username, self._db.clock(), source, actor, rid, reason),
        )
        return int(cur.lastrowid or 0)

    def set_strike_step(self, strike_id: int, step: str) -> None:
        self._db.execute("UPDATE strike SET step = ? WHERE id = ?", (step, strike_id))

    def strikes(self, user_id: str, *, limit: int = 50) -> list[StrikeRow]:
        """A user's strikes, newest first (pardoned and decayed ones included)."""
        rows = self._db.execute(
            f"SELECT {_STRIKE} FROM strike WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (user_id, limit),
        ).fetchall()
        return [_strike(r) for r in rows]

    def live_strike_count(self, user_id: str, *, since: float) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM strike WHERE user_id = ? AND at > ? AND pardoned_at IS NULL",
            (user_id, since),
        ).fetchone()
        return int(row[0])

    def pardon_strikes(self, user_id: str) -> int:
        cur = self._db.execute(
            "UPDATE strike SET pardoned_at = ? WHERE user_id = ? AND pardoned_at IS NULL",
            (self._db.clock(), user_id),
        )
        return cur.rowcount

    # -- mutes -----------------------------------------------------------------------------------

    def begin_mute(
        self,
        *,
        user_id: str,
        username: str,
        rid: str,
        room_name: str | None,
        until: float | None,
        reason: str,
        actor: str,
    ) -> tuple[MuteRow, bool]:
        """The live mute of ``user_id`` in ``rid``: a new ``pending`` row (True), or the existing
        one (False) with its expiry moved to the later of the two (no expiry beats any)."""
        with self._db.transaction():
            row = self._db.execute(
                f"SELECT {_MUTE} FROM mute WHERE user_id = ? AND rid = ? AND state IN ('pending', 'active')",
                (user_id, rid),
            ).fetchone()
            if row is not None:
                old = _mute(row)
                later = None if old.until is None or until is None else max(old.until, until)
                self._db.execute(
                    "UPDATE mute SET until = ?, reason = ?, actor = ? WHERE id = ?",
                    (later, reason, actor, old.id),
                )
                return _replace_until(old, later, reason, actor), False
            cur = self._db.execute(
                "INSERT INTO mute (user_id, username, rid, room_name, since, until, reason, actor, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                (user_id, username, rid, room_name, self._db.clock(), until, reason, actor),
            )
        mute_id = int(cur.lastrowid or 0)
        return self.mute(mute_id), True  # type: ignore[return-value]

    def mute(self, mute_id: int) -> MuteRow | None:
        row = self._db.execute(f"SELECT {_MUTE} FROM mute WHERE id = ?", (mute_id,)).fetchone()
        return _mute(row) if row else None

    def set_mute_state(self, mute_id: int, state: str, *, by: str | None = None) -> None:
        ended = state in ("lifted", "expired", "failed")
        self._db.execute(
            "UPDATE mute SET state = ?, ended_at = ?, ended_by = ? WHERE id = ?",
            (state, self._db.clock() if ended else None, by if ended else None, mute_id),
        )

    def discard_mute(self, mute_id: int) -> None:
        """Forget a mute that never took effect (the user is not in that room): nothing to keep."""
        self._db.execute("DELETE FROM mute WHERE id = ? AND state = 'pending'", (mute_id,))

    def live_mutes(self, user_id: str | None = None) -> list[MuteRow]:
        """Pending and active mutes (of one user, or all), oldest first."""
        where = "state IN ('pending', 'active')" + (" AND user_id = ?" if user_id else "")
        rows = self._db.execute(
            f"SELECT {_MUTE} FROM mute WHERE {where} ORDER BY since", (user_id,) if user_id else ()
        ).fetchall()
        return [_mute(r) for r in rows]

    def due_mutes(self, now: float) -> list[MuteRow]:
        rows = self._db.execute(
            f"SELECT {_MUTE} FROM mute WHERE state = 'active' AND until IS NOT NULL AND until <= ? "
            "ORDER BY until",
            (now,),
        ).fetchall()
        return [_mute(r) for r in rows]

    def next_mute_due(self) -> float | None:
        row = self._db.execute("SELECT min(until) FROM mute WHERE state = 'active'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # -- raid locks ------------------------------------------------------------------------------

    def begin_room_lock(self, rid: str, room_name: str | None, reason: str) -> bool:
        """Record that ``rid`` is being made read-only; False if it already is (or is being)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO room_lock (rid, room_name, since, state, reason) "
            "VALUES (?, ?, ?, 'pending', ?)",
            (rid, room_name, self._db.clock(), reason),
        )
        return cur.rowcount == 1

    def room_locked(self, rid: str) -> None:
        self._db.execute("UPDATE room_lock SET state = 'locked' WHERE rid = ?", (rid,))

    def room_lock(self, rid: str) -> tuple[str | None, float] | None:
        row = self._db.execute("SELECT room_name, since FROM room_lock WHERE rid = ?", (rid,)).fetchone()
        return (row[0], float(row[1])) if row else None

    def locked_rooms(self) -> list[tuple[str, str | None]]:
        return [(str(r[0]), r[1]) for r in self._db.execute("SELECT rid, room_name FROM room_lock")]

    def end_room_lock(self, rid: str) -> bool:
        return self._db.execute("DELETE FROM room_lock WHERE rid = ?", (rid,)).rowcount == 1

    # -- held messages ---------------------------------------------------------------------------

    def hold_message(
        self, *, mid: str, rid: str, user_id: str, username: str, evidence_id: int | None
    ) -> int | None:
        """Record a held message; None if it was held before (a replay)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO held_message (mid, rid, user_id, username, evidence_id, held_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, 'held')",
            (mid, rid, user_id, username, evidence_id, self._db.clock()),
        )
        return int(cur.lastrowid or 0) if cur.rowcount == 1 else None

    def set_held_evidence(self, held_id: int, evidence_id: int) -> None:
        self._db.execute("UPDATE held_message SET evidence_id = ? WHERE id = ?", (evidence_id, held_id))

    def discard_hold(self, held_id: int) -> None:
        """Forget a hold whose deletion was never attempted (a dry run began meanwhile)."""
        self._db.execute("DELETE FROM held_message WHERE id = ? AND state = 'held'", (held_id,))

    def held_message(self, held_id: int) -> HeldRow | None:
        row = self._db.execute(f"SELECT {_HELD} FROM held_message WHERE id = ?", (held_id,)).fetchone()
        return HeldRow(*row) if row else None

    def held_by_mid(self, mid: str) -> HeldRow | None:
        row = self._db.execute(f"SELECT {_HELD} FROM held_message WHERE mid = ?", (mid,)).fetchone()
        return HeldRow(*row) if row else None

    def mark_restored(self, held_id: int, *, restored_mid: str, by: str) -> bool:
        cur = self._db.execute(
            "UPDATE held_message SET state = 'restored', restored_mid = ?, restored_by = ? "
            "WHERE id = ? AND state = 'held'",
            (restored_mid, by, held_id),
        )
        return cur.rowcount == 1

    @translates("forgetting held messages")
    def forget_held_messages(self, retention_days: int) -> int:
        """Drop holds older than the preservation window that can no longer be restored: restored
        already, or their text is no longer kept (evidence erased, or never stored). Returns how
        many went. The newest hold stays whatever its age: SQLite would give its number to the
        next hold, and an old "/mod restore N" would then name another message."""
        return self._db.execute(
            "DELETE FROM held_message WHERE held_at < ? AND id < (SELECT max(id) FROM held_message) "
            "AND (state = 'restored' OR NOT EXISTS (SELECT 1 FROM evidence e "
            "WHERE e.mid = held_message.mid AND e.content IS NOT NULL))",
            (self._db.clock() - retention_days * 86400,),
        ).rowcount


def _replace_until(row: MuteRow, until: float | None, reason: str, actor: str) -> MuteRow:
    return MuteRow(
        row.id, row.user_id, row.username, row.rid, row.room_name, row.since, until, reason, actor, row.state
    )
