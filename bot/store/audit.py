"""The audit log: a hash chain of every action, the cases it groups them into, and the evidence it
cites.

Each record carries the SHA-256 of the one before it, so an edit, a removal or a reordering shows
when the chain is recomputed. Evidence content lives outside the chain so it can be erased; each
evidence row carries the SHA-256 of its content, and :meth:`AuditLog.append_audit` writes that
hash into the record that cites it, so an export proves the evidence matches the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.audit.chain import GENESIS_HASH, canonical, chain_hash, sha256_text
from bot.audit.selection import case_key
from bot.models import Message, to_iso
from bot.moderation.actions import EvidenceFile
from bot.store.db import Database, translated, translates

__all__ = ["AuditLog", "AuditRecord", "AuditVerification"]


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


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    @translates("recording an action")
    def append_audit(
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
        files: Sequence[EvidenceFile] = (),
    ) -> AuditRecord:
        """Append one record, and store the evidence it cites (every revision given, oldest first).

        One transaction; called inside a repository's transaction it joins it, so the record and
        that repository's rows are written together or not at all. A record about a case (a report,
        a purge, a message acted on) gets the case's number in ``targets["case"]`` (``case`` names
        it when given). ``targets["evidence"]`` lists each evidence id, message id and content
        SHA-256; with ``files`` (uploads kept with the evidence of the message that carried them),
        its ``files``: each upload's id and SHA-256 (and PDQ), never its bytes.
        """
        targets = dict(targets or {})
        reason = dict(reason or {})
        if case is not None:
            targets.setdefault("case", case)
        with self._db.transaction():
            now = datetime.fromtimestamp(self._db.clock(), tz=UTC)
            at = to_iso(now)
            case_id = case_of(targets, reason)
            key = case_key(action, targets, reason) if case_id is None else None
            if key is not None:
                case_id = targets["case"] = self._case_in_tx(*key, at)
            cited = [self._keep(message, now, retention_days, case_id) for message in evidence]
            for entry in cited:
                kept = [self._keep_file(entry["id"], f) for f in files if f.mid == entry["mid"]]
                if kept:
                    entry["files"] = kept
            if cited:
                targets["evidence"] = cited
            record = self._chain(at, actor, action, targets, reason, outcome)
            if cited:
                self._db.execute(
                    "UPDATE evidence SET audit_seq = ? WHERE id IN (SELECT value FROM json_each(?))",
                    (record.seq, json.dumps([c["id"] for c in cited])),
                )
        return record

    def _keep(
        self, message: Message, now: datetime, retention_days: int, case_id: int | None
    ) -> dict[str, Any]:
        """Store one revision as evidence; inside a write transaction. Returns how the record cites it."""
        content = canonical(evidence_content(message))
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
        return {"id": int(cur.lastrowid or 0), "mid": message.id, "sha256": digest}

    def _keep_file(self, evidence_id: int, file: EvidenceFile) -> dict[str, Any]:
        """Store one upload with its message's evidence; inside a write transaction."""
        cur = self._db.execute(
            "INSERT INTO evidence_file (evidence_id, file_id, sha256, pdq, size, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                evidence_id,
                file.file_id,
                file.sha256,
                file.pdq,
                len(file.data) if file.data is not None else None,
                file.data,
            ),
        )
        cited: dict[str, Any] = {"id": int(cur.lastrowid or 0), "file": file.file_id, "sha256": file.sha256}
        if file.pdq is not None:
            cited["pdq"] = file.pdq
        return cited

    def _chain(
        self, at: str, actor: str, action: str, targets: dict[str, Any], reason: dict[str, Any], outcome: str
    ) -> AuditRecord:
        targets_json = canonical(targets)
        reason_json = canonical(reason)
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
        if self._db.on_audit is not None:
            self._db.on_audit(action, outcome)
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

    def audit_records_checked(self, since_seq: int = 0) -> list[AuditRecord]:
        with translated("reading the audit log"):
            return list(self.audit_records(since_seq))

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

    def verify_audit_checked(self) -> AuditVerification:
        """:meth:`verify_audit`, with a damaged database reported as a StoreError, not sqlite3's."""
        with translated("reading the audit log"):
            return self.verify_audit()

    def audit_head(self) -> tuple[int, str] | None:
        """The newest audit record's (seq, hash), or None for an empty log."""
        with translated("reading the audit head"):
            row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    # -- cases -----------------------------------------------------------------------------------

    def _case_in_tx(self, kind: str, ref: str, at: str) -> int:
        """The case number of (kind, ref), opened now if it has none; inside a write transaction."""
        self._db.execute(
            "INSERT OR IGNORE INTO moderation_case (kind, ref, opened_at) VALUES (?, ?, ?)", (kind, ref, at)
        )
        row = self._db.execute(
            "SELECT id FROM moderation_case WHERE kind = ? AND ref = ?", (kind, ref)
        ).fetchone()
        return int(row[0])

    @translates("reading cases")
    def case_number(self, kind: str, ref: str | int) -> int | None:
        """The case number of a report, purge or message (``kind``), if one was opened."""
        row = self._db.execute(
            "SELECT id FROM moderation_case WHERE kind = ? AND ref = ?", (kind, str(ref))
        ).fetchone()
        return int(row[0]) if row else None

    @translates("reading cases")
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


def case_of(targets: Mapping[str, Any], reason: Mapping[str, Any]) -> int | None:
    for source in (targets, reason):
        value = source.get("case")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def evidence_content(message: Message) -> dict[str, Any]:
    """The message as it was: the wire object when we have it (text, author, room, timestamps,
    edit marks, attachment metadata), else what the parsed model holds."""
    if message.raw:
        return dict(json_safe(dict(message.raw)))
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


def json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return to_iso(obj)
    return obj
