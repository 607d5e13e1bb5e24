"""Small named values the bot keeps across restarts (dry-run mode, the name watch's baseline)."""

from __future__ import annotations

from bot.store.db import Database

__all__ = ["BotState"]


class BotState:
    def __init__(self, db: Database) -> None:
        self._db = db

    def state_get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def state_set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
