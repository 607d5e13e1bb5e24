"""The SQLite store: the only module that speaks SQL.

Everything else uses the domain verbs below (mark a message handled, move a room's cursor, append
an audit record, keep evidence, hold the lease). WAL mode lets the web endpoints read while the
bot writes; ``synchronous=NORMAL`` keeps a commit per handled message cheap while a crash loses
at most the last transactions, never consistency.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, RcmodError
from bot.models import Message, to_iso
from bot.store.migrations import LATEST_VERSION, MIGRATIONS

__all__ = ["AuditRecord", "AuditVerification", "LeaseHeld", "Store", "StoreError"]

GENESIS_HASH = "0" * 64


class StoreError(RcmodError):
    """The store cannot be used (corrupt, newer schema, not writable)."""


class LeaseHeld(ConfigError):
    """Another instance holds the lease on this data folder."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    targets: Mapping[str, Any]
    reason: Mapping[str, Any]
    outcome: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    checked: int
    bad_seq: int | None = None
    problem: str = ""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, targets: str, reason: str, outcome: str
) -> str:
    body = _canonical([prev_hash, seq, at, actor, action, targets, reason, outcome])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class Store:
    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._db = conn
        self._clock = clock

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> Store:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path}: not a usable SQLite database: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store {path}: cannot open: {exc}") from exc
        store = cls(conn, clock=clock)
        store._migrate(path)
        return store

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self, path: Path) -> None:
        try:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self.schema_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path}: not a usable SQLite database: {exc}") from exc
        if current > LATEST_VERSION:
            raise StoreError(
                f"store {path}: schema version {current} is newer than this rcmod understands "
                f"({LATEST_VERSION}); upgrade rcmod instead of running an older one against this data"
            )
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for statement in _statements(sql):
                    self._db.execute(statement)
                self._db.execute("DELETE FROM schema_version")
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"store {path}: migration {version} failed: {exc}") from exc

    # -- lease -----------------------------------------------------------------------------------

    def acquire_lease(self, holder: str, ttl: float, name: str = "bot") -> None:
        """Take the lease, or raise LeaseHeld naming the holder if it is live."""
        now = self._clock()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT holder, expires_at FROM lease WHERE name = ?", (name,)).fetchone()
            if row and row[0] != holder and row[1] > now:
                raise LeaseHeld(
                    f"another rcmod instance ({row[0]}) is running against this data folder; stop it first "
                    f"(its lease expires in {row[1] - now:.0f} s if it has died)"
                )
            self._db.execute(
                "INSERT INTO lease (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (name, holder, now + ttl),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def renew_lease(self, holder: str, ttl: float, name: str = "bot") -> None:
        self.acquire_lease(holder, ttl, name)

    def release_lease(self, holder: str, name: str = "bot") -> None:
        self._db.execute("DELETE FROM lease WHERE name = ? AND holder = ?", (name, holder))

    # -- handled messages and catch-up cursors ---------------------------------------------------

    def is_handled(self, mid: str, version: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM handled_message WHERE mid = ? AND version = ?", (mid, version)
        ).fetchone()
        return row is not None

    def mark_handled(self, mid: str, version: str, rid: str) -> bool:
        """Record a handled revision; False if it was already recorded."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO handled_message (mid, version, rid, handled_at) VALUES (?, ?, ?, ?)",
            (mid, version, rid, self._clock()),
        )
        return cur.rowcount == 1

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

    def forget_room(self, rid: str) -> None:
        self._db.execute("DELETE FROM room_cursor WHERE rid = ?", (rid,))

    # -- audit log -------------------------------------------------------------------------------

    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        targets: Mapping[str, Any] | None = None,
        reason: Mapping[str, Any] | None = None,
        outcome: str = "ok",
    ) -> AuditRecord:
        at = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        targets_json = _canonical(dict(targets or {}))
        reason_json = _canonical(dict(reason or {}))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
            digest = _record_hash(prev, seq, at, actor, action, targets_json, reason_json, outcome)
            self._db.execute(
                "INSERT INTO audit_log (seq, at, actor, action, targets, reason, outcome, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at, actor, action, targets_json, reason_json, outcome, prev, digest),
            )
            self._db.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                (seq, digest),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return AuditRecord(
            seq, at, actor, action, json.loads(targets_json), json.loads(reason_json), outcome, prev, digest
        )

    def audit_records(self, since_seq: int = 0) -> Iterator[AuditRecord]:
        rows = self._db.execute(
            "SELECT seq, at, actor, action, targets, reason, outcome, prev_hash, hash FROM audit_log "
            "WHERE seq > ? ORDER BY seq",
            (since_seq,),
        )
        for r in rows:
            yield AuditRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], r[7], r[8])

    def verify_audit(self) -> AuditVerification:
        """Recompute the chain; report the first record that was edited, removed or moved."""
        prev, expected_seq, checked = GENESIS_HASH, 1, 0
        rows = self._db.execute(
            "SELECT seq, at, actor, action, targets, reason, outcome, prev_hash, hash "
            "FROM audit_log ORDER BY seq"
        )
        for seq, at, actor, action, targets, reason, outcome, prev_hash, digest in rows:
            if seq != expected_seq:
                return AuditVerification(False, checked, expected_seq, f"record {expected_seq} is missing")
            if prev_hash != prev:
                return AuditVerification(
                    False, checked, seq, f"record {seq} does not follow record {seq - 1}"
                )
            if _record_hash(prev, seq, at, actor, action, targets, reason, outcome) != digest:
                return AuditVerification(False, checked, seq, f"record {seq} was altered")
            prev, expected_seq, checked = digest, seq + 1, checked + 1
        head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        if head and (head[0] != checked or head[1] != prev):
            return AuditVerification(False, checked, checked + 1, f"records after {checked} were removed")
        if head is None and checked:
            return AuditVerification(False, checked, None, "the log head is missing")
        return AuditVerification(True, checked)

    # -- evidence --------------------------------------------------------------------------------

    def store_evidence(self, message: Message, *, retention_days: int, audit_seq: int | None = None) -> int:
        """Keep the message as it was; returns the evidence id. Call before deleting anything."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        content = _canonical(
            _json_safe(dict(message.raw)) if message.raw else {"_id": message.id, "msg": message.text}
        )
        cur = self._db.execute(
            "INSERT INTO evidence (mid, rid, author_id, captured_at, expires_at, audit_seq, content) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                message.rid,
                message.author.id,
                to_iso(now),
                to_iso(now + timedelta(days=retention_days)),
                audit_seq,
                content,
            ),
        )
        return int(cur.lastrowid or 0)

    def evidence_for_message(self, mid: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, captured_at, expires_at, audit_seq, content FROM evidence WHERE mid = ? ORDER BY id",
            (mid,),
        )
        return [
            {
                "id": r[0],
                "captured_at": r[1],
                "expires_at": r[2],
                "audit_seq": r[3],
                "content": json.loads(r[4]),
            }
            for r in rows
        ]

    def erase_expired_evidence(self) -> int:
        """Delete evidence past its window unless its author is under an active legal hold."""
        now = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        return self._db.execute(
            "DELETE FROM evidence WHERE expires_at < ? AND author_id NOT IN "
            "(SELECT ref FROM legal_hold WHERE kind = 'user' AND released_at IS NULL)",
            (now,),
        ).rowcount


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return to_iso(obj)
    return obj


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; trigger bodies keep their inner semicolons."""
    out, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if stripped.endswith(";") and sqlite3.complete_statement(joined):
            out.append(joined)
            buf = []
    if buf:
        out.append("\n".join(buf))
    return out
