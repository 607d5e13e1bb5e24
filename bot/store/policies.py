"""Policy versions and the messages that carry them.

Every change to a policy — from its file or from ``/mod policy`` — is a new row in
``policy_version``; a removal is a version too. ``policy_message`` remembers each message the bot
posted for a version in a room, until it is retired (unpinned, and deleted if the policy says so).
``policy_banner`` is the announcement the bot last set in a room, so it clears only its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.moderation.policy import PolicySpec, PolicyVersion, Targets
from bot.store.db import Database

__all__ = ["PolicyMessageRow", "PolicyStore"]


@dataclass(frozen=True, slots=True)
class PolicyMessageRow:
    mid: str
    rid: str
    name: str
    version: int


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_policy_version(
        self, spec: PolicySpec, *, source: str, actor: str, removed: bool = False
    ) -> PolicyVersion:
        """Store ``spec`` as the policy's next version (1 for a new policy) and return it."""
        with self._db.transaction():
            row = self._db.execute(
                "SELECT coalesce(max(version), 0) FROM policy_version WHERE name = ?", (spec.name,)
            ).fetchone()
            number = int(row[0]) + 1
            self._db.execute(
                "INSERT INTO policy_version (name, version, text, banner, targets, delete_old, source, "
                "removed, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.name,
                    number,
                    spec.text,
                    spec.banner,
                    json.dumps(spec.targets.as_dict(), sort_keys=True),
                    int(spec.delete_old),
                    source,
                    int(removed),
                    self._db.clock(),
                    actor,
                ),
            )
        return PolicyVersion(spec, number, "file" if source == "file" else "command", removed, actor)

    def latest_policy_versions(self) -> dict[str, PolicyVersion]:
        """The newest version of every policy ever stored (removed ones included), by name."""
        rows = self._db.execute(
            "SELECT name, version, text, banner, targets, delete_old, source, removed, created_by "
            "FROM policy_version p WHERE version = (SELECT max(version) FROM policy_version q "
            "WHERE q.name = p.name) ORDER BY name"
        ).fetchall()
        return {str(r[0]): _version(r) for r in rows}

    def policy_history(self, name: str) -> list[PolicyVersion]:
        rows = self._db.execute(
            "SELECT name, version, text, banner, targets, delete_old, source, removed, created_by "
            "FROM policy_version WHERE name = ? ORDER BY version",
            (name,),
        ).fetchall()
        return [_version(r) for r in rows]

    def record_policy_message(self, mid: str, rid: str, name: str, version: int) -> None:
        """Remember a policy message *before* it is sent: its id is chosen first, so a crash
        between send and record still leaves the store knowing it."""
        self._db.execute(
            "INSERT OR IGNORE INTO policy_message (mid, rid, name, version, posted_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (mid, rid, name, version, self._db.clock()),
        )

    def retire_policy_message(self, mid: str) -> None:
        self._db.execute(
            "UPDATE policy_message SET retired_at = ? WHERE mid = ? AND retired_at IS NULL",
            (self._db.clock(), mid),
        )

    def live_policy_messages(self) -> list[PolicyMessageRow]:
        """Policy messages not retired yet: the ones the bot keeps pinned (or must clean up)."""
        rows = self._db.execute(
            "SELECT mid, rid, name, version FROM policy_message WHERE retired_at IS NULL "
            "ORDER BY posted_at, mid"
        )
        return [PolicyMessageRow(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def is_policy_message(self, mid: str) -> bool:
        """Whether ``mid`` is a current (not retired) policy message: purges must leave it alone."""
        row = self._db.execute(
            "SELECT 1 FROM policy_message WHERE mid = ? AND retired_at IS NULL", (mid,)
        ).fetchone()
        return row is not None

    def policy_banners(self) -> dict[str, str]:
        """rid → the announcement the bot last set there."""
        return {str(r[0]): str(r[1]) for r in self._db.execute("SELECT rid, text FROM policy_banner")}

    def set_policy_banner(self, rid: str, text: str) -> None:
        if text:
            self._db.execute(
                "INSERT INTO policy_banner (rid, text, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (rid) DO UPDATE SET text = excluded.text, set_at = excluded.set_at",
                (rid, text, self._db.clock()),
            )
        else:
            self._db.execute("DELETE FROM policy_banner WHERE rid = ?", (rid,))

    def claim_policy_dm(self, username: str, name: str, version: int) -> bool:
        """Claim the one DM of this policy version to this member; False if it was claimed before."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO policy_dm (username, name, version, sent_at) VALUES (?, ?, ?, ?)",
            (username, name, version, self._db.clock()),
        )
        return cur.rowcount == 1

    def release_policy_dm(self, username: str, name: str, version: int) -> None:
        """The DM could not be sent: a later join may try again."""
        self._db.execute(
            "DELETE FROM policy_dm WHERE username = ? AND name = ? AND version = ?", (username, name, version)
        )


def _version(r: tuple[object, ...]) -> PolicyVersion:
    spec = PolicySpec(
        name=str(r[0]),
        text=str(r[2]),
        banner=None if r[3] is None else str(r[3]),
        targets=Targets.from_dict(json.loads(str(r[4]))),
        delete_old=bool(r[5]),
    )
    return PolicyVersion(spec, int(str(r[1])), "file" if r[6] == "file" else "command", bool(r[7]), str(r[8]))
