"""The SQLite store: the only module that speaks SQL.

Everything else uses the domain verbs below (mark a message handled, move a room's cursor, append
an audit record, keep evidence, hold the lease). WAL mode lets the web endpoints read while the
bot writes; ``synchronous=NORMAL`` keeps a commit per handled message cheap while a crash loses
at most the last transactions, never consistency.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from bot.audit import actions
from bot.audit.chain import GENESIS_HASH, canonical, chain_hash, sha256_text
from bot.audit.selection import case_key
from bot.errors import ConfigError, DiskFull, RcmodError
from bot.models import Message, to_iso
from bot.store.alerts import AlertLedger
from bot.store.bans import BanLedger
from bot.store.hooks import HookReplayLedger
from bot.store.jobs import BlockedUsers, PurgeJournal
from bot.store.migrations import LATEST_VERSION, MIGRATIONS
from bot.store.policies import PolicyStore
from bot.store.reports import ReportLedger
from bot.store.sanctions import SanctionLedger

__all__ = [
    "AuditRecord",
    "AuditVerification",
    "ErasureResult",
    "EvidenceRow",
    "HoldKind",
    "LeaseHeld",
    "LegalHold",
    "Store",
    "StoreError",
]


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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translates(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Report sqlite3's errors (a damaged file, above all) as StoreError, naming what failed."""

    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def inner(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with _translated(what):
                return fn(*args, **kwargs)

        return inner

    return wrap


class _Connection(sqlite3.Connection):
    """sqlite3's connection, with the two things a full disk needs.

    SQLITE_FULL becomes ``DiskFull`` (one clear message naming the folder to free space in), and a
    ROLLBACK after SQLite has already ended the transaction itself (it does on a full disk or an
    I/O error) is skipped: a second rollback raises "cannot rollback - no transaction is active",
    which would hide the real error behind a misleading one.
    """

    folder = "."

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql == "ROLLBACK" and not self.in_transaction:
            return self.cursor()
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or _is_enospc(exc):
                raise DiskFull(self.folder) from exc
            raise


def _make_private(path: Path) -> None:
    """The store holds evidence (message copies) and the audit log: only the bot's account may
    read it. The folder is 0700 and the file 0600 (SQLite gives its -wal and -shm files the
    database file's mode), tightened when they already exist with wider modes."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists() and part.stat().st_mode & 0o077:
            part.chmod(0o600)


def _is_enospc(exc: BaseException) -> bool:
    return "disk is full" in str(exc) or "No space left" in str(exc)


class Store(
    AlertLedger,
    BanLedger,
    BlockedUsers,
    HookReplayLedger,
    PurgeJournal,
    ReportLedger,
    PolicyStore,
    SanctionLedger,
):
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        clock: Callable[[], float] = time.time,
        on_audit: Callable[[str, str], None] | None = None,
    ) -> None:
        self._db = conn
        self._clock = clock
        # Told of every audit record (action, outcome): the bot feeds its metrics from it, so every
        # action it takes is counted where it is recorded, not at a second set of call sites.
        self.on_audit = on_audit

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_audit: Callable[[str, str], None] | None = None,
    ) -> Store:
        try:
            _make_private(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=_Connection)
            conn.folder = str(path.parent)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path}: not a usable SQLite database: {exc}") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(str(path.parent)) from exc
            raise StoreError(f"store {path}: cannot open: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: cannot open: {exc}") from exc
        store = cls(conn, clock=clock, on_audit=on_audit)
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

    def acquire_lease(
        self, holder: str, ttl: float, name: str = "bot", is_dead: Callable[[str], bool] = lambda other: False
    ) -> None:
        """Take the lease, or raise LeaseHeld naming the holder if it is live.

        ``is_dead`` lets the caller vouch that a holder has died (same host, process gone), so a
        restart after a crash need not wait for the lease to run out.
        """
        now = self._clock()
        self._db.execute("BEGIN IMMEDIATE")
        try:
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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            record = self._append_audit_in_tx(actor, action, targets, reason, outcome)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return record

    def _append_audit_in_tx(
        self,
        actor: str,
        action: str,
        targets: Mapping[str, Any] | None,
        reason: Mapping[str, Any] | None,
        outcome: str,
    ) -> AuditRecord:
        """Append one record; the caller holds a write transaction (BEGIN IMMEDIATE). A record about
        a case (a report, a purge, a message acted on) gets the case's number in ``targets.case``."""
        at = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        targets = dict(targets or {})
        if _case_of(targets, reason or {}) is None:
            key = case_key(action, targets, reason or {})
            if key is not None:
                targets["case"] = self._case_in_tx(*key, at)
        targets_json = canonical(targets)
        reason_json = canonical(dict(reason or {}))
        head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        digest = chain_hash(prev, seq, at, actor, action, targets_json, reason_json, outcome)
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
        if self.on_audit is not None:
            self.on_audit(action, outcome)
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
            if chain_hash(prev, seq, at, actor, action, targets, reason, outcome) != digest:
                return AuditVerification(False, checked, seq, f"record {seq} was altered")
            prev, expected_seq, checked = digest, seq + 1, checked + 1
        head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        if head and (head[0] != checked or head[1] != prev):
            return AuditVerification(False, checked, checked + 1, f"records after {checked} were removed")
        if head is None and checked:
            return AuditVerification(False, checked, None, "the log head is missing")
        return AuditVerification(True, checked)

    def _case_in_tx(self, kind: str, ref: str, at: str) -> int:
        """The case number of (kind, ref), opened now if it has none; inside a write transaction."""
        self._db.execute(
            "INSERT OR IGNORE INTO moderation_case (kind, ref, opened_at) VALUES (?, ?, ?)", (kind, ref, at)
        )
        row = self._db.execute(
            "SELECT id FROM moderation_case WHERE kind = ? AND ref = ?", (kind, ref)
        ).fetchone()
        return int(row[0])

    @_translates("reading cases")
    def case_number(self, kind: str, ref: str | int) -> int | None:
        """The case number of a report, purge or message (``kind``), if one was opened."""
        row = self._db.execute(
            "SELECT id FROM moderation_case WHERE kind = ? AND ref = ?", (kind, str(ref))
        ).fetchone()
        return int(row[0]) if row else None

    @_translates("reading cases")
    def case_known(self, case: int) -> bool:
        """Whether case ``case`` was ever opened, or is named by a record or evidence (older data)."""
        if self._db.execute("SELECT 1 FROM moderation_case WHERE id = ?", (case,)).fetchone():
            return True
        if self._db.execute("SELECT 1 FROM evidence WHERE case_id = ? LIMIT 1", (case,)).fetchone():
            return True
        row = self._db.execute(
            "SELECT 1 FROM audit_log WHERE json_extract(targets, '$.case') = ? "
            "OR json_extract(reason, '$.case') = ? LIMIT 1",
            (case, case),
        ).fetchone()
        return row is not None

    # -- who a user is, from what the store recorded ---------------------------------------------

    @_translates("looking up a user")
    def user_id_known(self, user_id: str) -> bool:
        """Whether anything kept is about this user id: evidence, reports, holds, audit records."""
        queries = (
            ("SELECT 1 FROM evidence WHERE author_id = ? LIMIT 1", (user_id,)),
            ("SELECT 1 FROM report WHERE author_id = ? LIMIT 1", (user_id,)),
            ("SELECT 1 FROM legal_hold WHERE kind = 'user' AND ref = ? LIMIT 1", (user_id,)),
            (
                "SELECT 1 FROM audit_log WHERE actor = ? OR json_extract(targets, '$.user') = ? LIMIT 1",
                (user_id, user_id),
            ),
        )
        return any(self._db.execute(sql, params).fetchone() for sql, params in queries)

    @_translates("looking up a username")
    def user_ids_for_username(self, username: str) -> set[str]:
        """The user ids recorded with this username: in evidence (the message's ``u``) and reports."""
        ids = {
            str(r[0])
            for r in self._db.execute(
                "SELECT DISTINCT author_id FROM evidence WHERE content IS NOT NULL "
                "AND json_extract(content, '$.u.username') = ? "
                "AND json_extract(content, '$.u._id') = author_id",
                (username,),
            )
        }
        ids |= {
            str(r[0])
            for r in self._db.execute(
                "SELECT DISTINCT author_id FROM report WHERE author_username = ?", (username,)
            )
        }
        return ids

    # -- evidence --------------------------------------------------------------------------------
    #
    # Evidence content lives outside the hash chain so it can be erased; each row carries the
    # SHA-256 of its content, and `record_action` writes that hash into the audit record, so an
    # export proves the evidence matches the log. Erasure leaves a tombstone: ids and hash stay,
    # content goes.

    def store_evidence(self, message: Message, *, retention_days: int, audit_seq: int | None = None) -> int:
        """Keep the message as it was; returns the evidence id. Call before deleting anything.

        Prefer :meth:`record_action`, which also writes the content's hash into the audit record.
        """
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        content = canonical(
            _json_safe(dict(message.raw)) if message.raw else {"_id": message.id, "msg": message.text}
        )
        cur = self._db.execute(
            "INSERT INTO evidence (mid, rid, author_id, captured_at, expires_at, audit_seq, content, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                message.rid,
                message.author.id,
                to_iso(now),
                to_iso(now + timedelta(days=retention_days)),
                audit_seq,
                content,
                sha256_text(content),
            ),
        )
        return int(cur.lastrowid or 0)

    @_translates("recording an action")
    def record_action(
        self,
        *,
        actor: str,
        action: str,
        targets: Mapping[str, Any] | None = None,
        reason: Mapping[str, Any] | None = None,
        outcome: str = "ok",
        evidence: Sequence[Message] = (),
        retention_days: int = 90,
        case: int | None = None,
    ) -> tuple[AuditRecord, list[int]]:
        """Store evidence (every revision given, oldest first) and the audit record that cites it.

        One transaction: the record's ``targets["evidence"]`` lists each evidence id, message id and
        content SHA-256; ``targets["case"]`` is set when ``case`` is given. Returns the record and
        the evidence ids.
        """
        targets = dict(targets or {})
        reason = dict(reason or {})
        if case is not None:
            targets.setdefault("case", case)
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            case_id = _case_of(targets, reason)
            key = case_key(action, targets, reason) if case_id is None else None
            if key is not None:
                case_id = targets["case"] = self._case_in_tx(*key, to_iso(now))
            cited: list[dict[str, Any]] = []
            for message in evidence:
                content = canonical(_evidence_content(message))
                digest = sha256_text(content)
                cur = self._db.execute(
                    "INSERT INTO evidence (mid, rid, author_id, captured_at, expires_at, content, sha256, "
                    "case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.id,
                        message.rid,
                        message.author.id,
                        to_iso(now),
                        to_iso(now + timedelta(days=retention_days)),
                        content,
                        digest,
                        case_id,
                    ),
                )
                cited.append({"id": int(cur.lastrowid or 0), "mid": message.id, "sha256": digest})
            if cited:
                targets["evidence"] = cited
            record = self._append_audit_in_tx(actor, action, targets, reason, outcome)
            if cited:
                self._db.execute(
                    "UPDATE evidence SET audit_seq = ? WHERE id IN (SELECT value FROM json_each(?))",
                    (record.seq, json.dumps([c["id"] for c in cited])),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return record, [c["id"] for c in cited]

    def evidence_for_message(self, mid: str) -> list[dict[str, Any]]:
        """The kept (not erased) evidence of one message, oldest first."""
        rows = self._db.execute(
            "SELECT id, captured_at, expires_at, audit_seq, content FROM evidence "
            "WHERE mid = ? AND content IS NOT NULL ORDER BY id",
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

    def evidence_rows(
        self,
        *,
        author_id: str | None = None,
        case: int | None = None,
        captured_since: str | None = None,
        audit_seqs: Iterable[int] = (),
    ) -> list[EvidenceRow]:
        """Evidence rows, tombstones included, matching ANY of the criteria given, by id."""
        clauses: list[str] = []
        params: list[Any] = []
        if author_id is not None:
            clauses.append("author_id = ?")
            params.append(author_id)
        if case is not None:
            clauses.append("case_id = ?")
            params.append(case)
        if captured_since is not None:
            clauses.append("captured_at >= ?")
            params.append(captured_since)
        seqs = sorted(set(audit_seqs))
        if seqs:
            clauses.append("audit_seq IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(seqs))
        if not clauses:
            return []
        with _translated("reading evidence"):
            rows = self._db.execute(
                f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE {' OR '.join(clauses)} ORDER BY id",
                params,
            ).fetchall()
        return [_evidence_row(r) for r in rows]

    def all_evidence_rows(self) -> list[EvidenceRow]:
        """Every evidence row, tombstones included, by id (for ``rcmod audit verify``)."""
        with _translated("reading evidence"):
            rows = self._db.execute(f"SELECT {_EVIDENCE_COLUMNS} FROM evidence ORDER BY id").fetchall()
        return [_evidence_row(r) for r in rows]

    @_translates("erasing expired evidence")
    def erase_expired_evidence(self) -> int:
        """Erase evidence past its window unless under an active legal hold (on its author or case).

        Erased rows become tombstones (content gone, ids and hash kept); one ``evidence.expired``
        audit record lists them. Returns how many were erased. The bot calls this periodically.
        """
        now = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM evidence WHERE erased_at IS NULL AND expires_at < ? AND NOT {_HELD} "
                    "ORDER BY id",
                    (now,),
                )
            ]
            if ids:
                self._tombstone_in_tx(ids, now, "expired")
                self._append_audit_in_tx(
                    "retention",
                    actions.EVIDENCE_EXPIRED,
                    {"evidence": ids},
                    {"retention": "preservation window ended"},
                    "ok",
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(ids)

    @_translates("erasing evidence")
    def erase_user_evidence(self, user_id: str, *, actor: str) -> ErasureResult:
        """Erase everything kept of one user's messages, except what a legal hold covers.

        Appends an ``evidence.erased`` audit record (the chain keeps verifying: it holds ids and
        hashes, never content). Also erases nothing twice: tombstones are skipped.
        """
        now = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute(
                f"SELECT id, {_HELD} FROM evidence WHERE author_id = ? AND erased_at IS NULL ORDER BY id",
                (user_id,),
            ).fetchall()
            erased = [r[0] for r in rows if not r[1]]
            held = [r[0] for r in rows if r[1]]
            if erased:
                self._tombstone_in_tx(erased, now, "erasure")
            redacted = self.redact_author_alerts(user_id)  # the bot's own alert DMs quote them too
            outcome = "ok" if not held else f"partial: {len(held)} kept under legal hold"
            record = self._append_audit_in_tx(
                actor,
                actions.EVIDENCE_ERASED,
                {"user": user_id, "evidence": erased, "alerts_redacted": redacted},
                {"request": "erasure", "kept_under_hold": held},
                outcome,
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return ErasureResult(tuple(erased), tuple(held), record.seq)

    def _tombstone_in_tx(self, ids: Sequence[int], now: str, why: str) -> None:
        self._db.execute(
            "UPDATE evidence SET content = NULL, erased_at = ?, erased_reason = ? "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (now, why, json.dumps(list(ids))),
        )

    # -- legal holds -----------------------------------------------------------------------------

    def place_hold(self, kind: HoldKind, ref: str | int, *, actor: str) -> bool:
        """Hold a user's or a case's evidence past its window; False if already held. Audited."""
        return self._change_hold(kind, str(ref), actor=actor, place=True)

    def release_hold(self, kind: HoldKind, ref: str | int, *, actor: str) -> bool:
        """Release an active hold; False if there was none. Audited. Expired content then goes at
        the next retention run."""
        return self._change_hold(kind, str(ref), actor=actor, place=False)

    @_translates("changing a legal hold")
    def _change_hold(self, kind: HoldKind, ref: str, *, actor: str, place: bool) -> bool:
        if kind not in ("user", "case"):
            raise ValueError(f"hold kind must be 'user' or 'case', not {kind!r}")
        now = to_iso(datetime.fromtimestamp(self._clock(), tz=UTC))
        target: dict[str, Any] = {kind: int(ref) if kind == "case" else ref}
        self._db.execute("BEGIN IMMEDIATE")
        try:
            active = self._db.execute(
                "SELECT id FROM legal_hold WHERE kind = ? AND ref = ? AND released_at IS NULL", (kind, ref)
            ).fetchone()
            changed = (active is None) if place else (active is not None)
            if changed and place:
                self._db.execute(
                    "INSERT INTO legal_hold (kind, ref, placed_at) VALUES (?, ?, ?)", (kind, ref, now)
                )
            elif changed and active is not None:
                self._db.execute("UPDATE legal_hold SET released_at = ? WHERE id = ?", (now, active[0]))
            action = actions.LEGAL_HOLD_PLACED if place else actions.LEGAL_HOLD_RELEASED
            noop = "noop: already held" if place else "noop: no active hold"
            self._append_audit_in_tx(actor, action, target, {}, "ok" if changed else noop)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return changed

    @_translates("reading legal holds")
    def active_holds(self) -> list[LegalHold]:
        rows = self._db.execute(
            "SELECT kind, ref, placed_at, released_at FROM legal_hold WHERE released_at IS NULL "
            "ORDER BY placed_at, id"
        )
        return [LegalHold(r[0], r[1], r[2], r[3]) for r in rows]

    # -- integrity -------------------------------------------------------------------------------

    def audit_head(self) -> tuple[int, str] | None:
        """The newest audit record's (seq, hash), or None for an empty log."""
        with _translated("reading the audit head"):
            row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def check_integrity(self) -> list[str]:
        """SQLite's own page-level check; an empty list means the file is sound."""
        try:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"the database file is damaged: {exc}"]
        problems = [str(r[0]) for r in rows]
        return [] if problems == ["ok"] else problems

    def verify_audit_checked(self) -> AuditVerification:
        """:meth:`verify_audit`, with a damaged database reported as a StoreError, not sqlite3's."""
        with _translated("reading the audit log"):
            return self.verify_audit()

    def audit_records_checked(self, since_seq: int = 0) -> list[AuditRecord]:
        with _translated("reading the audit log"):
            return list(self.audit_records(since_seq))


HoldKind = Literal["user", "case"]

# Evidence covered by an active hold on its author or on its case.
_HELD = (
    "(author_id IN (SELECT ref FROM legal_hold WHERE kind = 'user' AND released_at IS NULL) "
    "OR (case_id IS NOT NULL AND CAST(case_id AS TEXT) IN "
    "(SELECT ref FROM legal_hold WHERE kind = 'case' AND released_at IS NULL)))"
)
_EVIDENCE_COLUMNS = (
    "id, mid, rid, author_id, captured_at, expires_at, audit_seq, case_id, sha256, content, "
    "erased_at, erased_reason"
)


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One evidence row; ``content`` is None for a tombstone (``erased_at`` says when and why)."""

    id: int
    mid: str
    rid: str
    author_id: str
    captured_at: str
    expires_at: str
    audit_seq: int | None
    case: int | None
    sha256: str | None
    content: Mapping[str, Any] | None
    erased_at: str | None
    erased_reason: str | None

    def __repr__(self) -> str:  # content never reaches a log through repr()
        return f"EvidenceRow(id={self.id}, mid={self.mid!r}, erased={self.erased_at is not None})"


@dataclass(frozen=True, slots=True)
class ErasureResult:
    erased: tuple[int, ...]
    kept_held: tuple[int, ...]
    audit_seq: int


@dataclass(frozen=True, slots=True)
class LegalHold:
    kind: str
    ref: str
    placed_at: str
    released_at: str | None


def _evidence_row(r: Sequence[Any]) -> EvidenceRow:
    return EvidenceRow(
        id=r[0],
        mid=r[1],
        rid=r[2],
        author_id=r[3],
        captured_at=r[4],
        expires_at=r[5],
        audit_seq=r[6],
        case=r[7],
        sha256=r[8] if r[8] is not None else (sha256_text(r[9]) if r[9] is not None else None),
        content=json.loads(r[9]) if r[9] is not None else None,
        erased_at=r[10],
        erased_reason=r[11],
    )


def _evidence_content(message: Message) -> dict[str, Any]:
    """The message as it was: the wire object when we have it (text, author, room, timestamps,
    edit marks, attachment metadata), else what the parsed model holds."""
    if message.raw:
        return dict(_json_safe(dict(message.raw)))
    content: dict[str, Any] = {
        "_id": message.id,
        "rid": message.rid,
        "msg": message.text,
        "u": {"_id": message.author.id, "username": message.author.username},
        "ts": to_iso(message.ts),
    }
    if message.edited_at is not None:
        content["editedAt"] = to_iso(message.edited_at)
    if message.tmid is not None:
        content["tmid"] = message.tmid
    if message.attachments:
        content["attachments"] = [
            {"title": a.title, "description": a.description, "text": a.text} for a in message.attachments
        ]
    return content


def _case_of(targets: Mapping[str, Any], reason: Mapping[str, Any]) -> int | None:
    for source in (targets, reason):
        value = source.get("case")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"store: {what} failed: {exc}") from exc


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
