"""Room bans the bot applied.

A row per ban, kept after it is lifted (the history ``/mod strikes`` shows). ``via`` says who
keeps the user out: ``server`` (Rocket.Chat 8.3+ refuses the rejoin itself) or ``watch`` (an
older server has no bans: the bot removed the user and removes them again whenever they rejoin,
for as long as the row is active — so the watch survives a restart of the bot).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.db import Database, all_of

__all__ = ["BanLedger", "BanRow"]


@dataclass(frozen=True, slots=True)
class BanRow:
    id: int
    user_id: str
    username: str
    rid: str
    room_name: str | None
    room_type: str
    since: float
    reason: str
    actor: str
    via: str  # server | watch
    state: str  # active | lifted


_BAN = "id, user_id, username, rid, room_name, room_type, since, reason, actor, via, state"


def _ban(row: tuple[object, ...]) -> BanRow:
    return BanRow(*row)  # type: ignore[arg-type]


class BanLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_ban(
        self,
        *,
        user_id: str,
        username: str,
        rid: str,
        room_name: str | None,
        room_type: str,
        reason: str,
        actor: str,
        via: str,
    ) -> BanRow:
        """Record a ban; an active ban of the user in that room is kept (and returned) instead."""
        existing = self.active_ban(rid, user_id=user_id)
        if existing is not None:
            return existing
        cur = self._db.execute(
            "INSERT INTO room_ban (user_id, username, rid, room_name, room_type, since, reason, actor, via, "
            "state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            (user_id, username, rid, room_name, room_type, self._db.clock(), reason, actor, via),
        )
        row = self._db.execute(f"SELECT {_BAN} FROM room_ban WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _ban(row)

    def active_ban(
        self, rid: str, *, user_id: str | None = None, username: str | None = None
    ) -> BanRow | None:
        """The active ban in ``rid`` of the user with that id (or, when only the name is known —
        an ``au`` system message names the added user — that username)."""
        if user_id is not None:
            where, key = "user_id = ?", user_id
        elif username is not None:
            where, key = "username = ?", username
        else:
            return None
        row = self._db.execute(
            f"SELECT {_BAN} FROM room_ban WHERE rid = ? AND {where} AND state = 'active'", (rid, key)
        ).fetchone()
        return _ban(row) if row else None

    def active_bans(self, user_id: str | None = None, *, via: str | None = None) -> list[BanRow]:
        """Active bans (of one user, or all; of one kind, or both), oldest first."""
        where, args = all_of(["state = 'active'"], [], user_id=user_id, via=via)
        rows = self._db.execute(f"SELECT {_BAN} FROM room_ban WHERE {where} ORDER BY since", args).fetchall()
        return [_ban(r) for r in rows]

    def lift_ban(self, ban_id: int, *, by: str) -> bool:
        cur = self._db.execute(
            "UPDATE room_ban SET state = 'lifted', ended_at = ?, ended_by = ? "
            "WHERE id = ? AND state = 'active'",
            (self._db.clock(), by, ban_id),
        )
        return cur.rowcount == 1

    def discard_ban(self, ban_id: int) -> None:
        """Forget a ban the server did not carry out (refused, or not answering): written before
        the call so the audit record can cite it, it never took effect."""
        self._db.execute("DELETE FROM room_ban WHERE id = ? AND state = 'active'", (ban_id,))
