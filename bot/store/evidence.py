"""Evidence, legal holds, retention and erasure: what is kept of the messages the bot acted on.

Evidence is written with its audit record by :meth:`bot.store.audit.AuditLog.append_audit`;
this repository reads it back, erases it when its preservation window ends or on request
(unless a legal hold covers it), and remembers the bot's own DMs that quote it so they can be
redacted too. Erasure leaves a tombstone: ids and hash stay, content goes. Every erasure and
every hold is audited in the same transaction as the change it records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.audit import actions
from bot.audit.chain import canonical, sha256_text
from bot.models import Message, to_iso
from bot.store.alerts import AlertLedger
from bot.store.audit import AuditLog, json_safe
from bot.store.db import Database, translated, translates

__all__ = ["ErasureResult", "EvidenceArchive", "EvidenceFileRow", "EvidenceRow", "HoldKind", "LegalHold"]


class EvidenceArchive:
    def __init__(self, db: Database, audit: AuditLog, alerts: AlertLedger) -> None:
        self._db = db
        self._audit = audit
        self._alerts = alerts  # the bot's alert DMs quote evidence: an erasure redacts them too

    # -- who a user is, from what the store recorded ---------------------------------------------

    @translates("looking up a user")
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

    @translates("looking up a username")
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

    def store_evidence(self, message: Message, *, retention_days: int, audit_seq: int | None = None) -> int:
        """Keep the message as it was; returns the evidence id. Call before deleting anything.

        Prefer :meth:`AuditLog.append_audit`, which also writes the content's hash into the audit record.
        """
        now = datetime.fromtimestamp(self._db.clock(), tz=UTC)
        content = canonical(
            json_safe(dict(message.raw)) if message.raw else {"_id": message.id, "msg": message.text}
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

    @translates("recording an action")
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
        with translated("reading evidence"):
            rows = self._db.execute(
                f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE {' OR '.join(clauses)} ORDER BY id",
                params,
            ).fetchall()
        return self._with_files([_evidence_row(r) for r in rows])

    def all_evidence_rows(self) -> list[EvidenceRow]:
        """Every evidence row, tombstones included, by id (for ``rcmod audit verify``)."""
        with translated("reading evidence"):
            rows = self._db.execute(f"SELECT {_EVIDENCE_COLUMNS} FROM evidence ORDER BY id").fetchall()
            return self._with_files([_evidence_row(r) for r in rows])

    @translates("erasing expired evidence")
    def erase_expired_evidence(self) -> int:
        """Erase evidence past its window unless under an active legal hold (on its author or case).

        Erased rows become tombstones (content gone, ids and hash kept); one ``evidence.expired``
        audit record lists them. Returns how many were erased. The bot calls this periodically.
        """
        now = self._db.now_iso()
        with self._db.transaction():
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
                self._audit.append_audit(
                    actor="retention",
                    action=actions.EVIDENCE_EXPIRED,
                    targets={"evidence": ids},
                    reason={"retention": "preservation window ended"},
                )
        return len(ids)

    @translates("erasing evidence")
    def erase_user_evidence(self, user_id: str, *, actor: str) -> ErasureResult:
        """Erase everything kept of one user's messages, except what a legal hold covers.

        Appends an ``evidence.erased`` audit record (the chain keeps verifying: it holds ids and
        hashes, never content). Also erases nothing twice: tombstones are skipped.
        """
        now = self._db.now_iso()
        with self._db.transaction():
            rows = self._db.execute(
                f"SELECT id, {_HELD} FROM evidence WHERE author_id = ? AND erased_at IS NULL ORDER BY id",
                (user_id,),
            ).fetchall()
            erased = [r[0] for r in rows if not r[1]]
            held = [r[0] for r in rows if r[1]]
            if erased:
                self._tombstone_in_tx(erased, now, "erasure")
            redacted = self._alerts.redact_author_alerts(user_id)  # the bot's own alert DMs quote them too
            outcome = "ok" if not held else f"partial: {len(held)} kept under legal hold"
            record = self._audit.append_audit(
                actor=actor,
                action=actions.EVIDENCE_ERASED,
                targets={"user": user_id, "evidence": erased, "alerts_redacted": redacted},
                reason={"request": "erasure", "kept_under_hold": held},
                outcome=outcome,
            )
        return ErasureResult(tuple(erased), tuple(held), record.seq)

    def _tombstone_in_tx(self, ids: Sequence[int], now: str, why: str) -> None:
        self._db.execute(
            "UPDATE evidence SET content = NULL, erased_at = ?, erased_reason = ? "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (now, why, json.dumps(list(ids))),
        )
        # The pictures kept with it go with it; their hashes stay, as the message's does.
        self._db.execute(
            "UPDATE evidence_file SET data = NULL WHERE evidence_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )

    @translates("reading evidence")
    def evidence_files(self, evidence_id: int) -> list[EvidenceFileRow]:
        """The uploads kept with one evidence row (``data`` None once erased, or never kept)."""
        return self._files_of([evidence_id]).get(evidence_id, [])

    def _files_of(self, ids: Sequence[int]) -> dict[int, list[EvidenceFileRow]]:
        out: dict[int, list[EvidenceFileRow]] = {}
        if not ids:
            return out
        rows = self._db.execute(
            "SELECT id, evidence_id, file_id, sha256, pdq, size, data FROM evidence_file "
            "WHERE evidence_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(list(ids)),),
        )
        for r in rows:
            out.setdefault(r[1], []).append(
                EvidenceFileRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]) if r[6] is not None else None)
            )
        return out

    def _with_files(self, rows: list[EvidenceRow]) -> list[EvidenceRow]:
        files = self._files_of([r.id for r in rows])
        if not files:
            return rows
        return [replace(r, files=tuple(files[r.id])) if r.id in files else r for r in rows]

    # -- legal holds -----------------------------------------------------------------------------

    def place_hold(self, kind: HoldKind, ref: str | int, *, actor: str) -> bool:
        """Hold a user's or a case's evidence past its window; False if already held. Audited."""
        return self._change_hold(kind, str(ref), actor=actor, place=True)

    def release_hold(self, kind: HoldKind, ref: str | int, *, actor: str) -> bool:
        """Release an active hold; False if there was none. Audited. Expired content then goes at
        the next retention run."""
        return self._change_hold(kind, str(ref), actor=actor, place=False)

    @translates("changing a legal hold")
    def _change_hold(self, kind: HoldKind, ref: str, *, actor: str, place: bool) -> bool:
        if kind not in ("user", "case"):
            raise ValueError(f"hold kind must be 'user' or 'case', not {kind!r}")
        now = self._db.now_iso()
        target: dict[str, Any] = {kind: int(ref) if kind == "case" else ref}
        with self._db.transaction():
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
            self._audit.append_audit(
                actor=actor, action=action, targets=target, outcome="ok" if changed else noop
            )
        return changed

    @translates("reading legal holds")
    def active_holds(self) -> list[LegalHold]:
        rows = self._db.execute(
            "SELECT kind, ref, placed_at, released_at FROM legal_hold WHERE released_at IS NULL "
            "ORDER BY placed_at, id"
        )
        return [LegalHold(r[0], r[1], r[2], r[3]) for r in rows]


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
    files: tuple[EvidenceFileRow, ...] = ()

    def __repr__(self) -> str:  # content never reaches a log through repr()
        return f"EvidenceRow(id={self.id}, mid={self.mid!r}, erased={self.erased_at is not None})"


@dataclass(frozen=True, slots=True)
class EvidenceFileRow:
    """An upload kept with an evidence row: its hashes, and its bytes while they are kept."""

    id: int
    evidence_id: int
    file_id: str
    sha256: str
    pdq: str | None
    size: int | None
    data: bytes | None

    def __repr__(self) -> str:  # the picture never reaches a log through repr()
        return f"EvidenceFileRow(id={self.id}, evidence_id={self.evidence_id}, kept={self.data is not None})"


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
