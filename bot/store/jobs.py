"""The block list (and its retry queue) and the purge journal.

A purge is a job with a journal: the messages it selected (``purge_item``), each moving
``selected -> evidence -> deleted`` (or ``failed``), and the rooms it touches (``purge_room``).
Evidence is written by the executor with :meth:`bot.store.audit.AuditLog.append_audit` (a
``purge.progressed`` audit record per deletion, or per room for a bulk deletion, citing each item's
evidence); :meth:`PurgeJournal.reconcile_purge_evidence` then marks the items it covers. If the
process dies between the two, reconciling at resume finds the evidence by the audit record, so no
message gets two evidence records and none is deleted without one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.audit import actions
from bot.models import Room, to_iso
from bot.moderation.blocking import BlockedUser
from bot.store.audit import AuditLog
from bot.store.db import Database, all_of, translates

__all__ = ["BlockList", "PurgeItem", "PurgeJob", "PurgeJournal", "PurgeRoom"]


@dataclass(frozen=True, slots=True)
class PurgeJob:
    id: int
    kind: str
    request: dict[str, Any]
    actor: str
    token: str
    state: str
    created_at: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PurgeItem:
    mid: str
    rid: str
    author_id: str
    author_username: str
    ts_ms: int
    state: str
    evidence_id: int | None
    message: dict[str, Any] | None = None  # the wire object, until its evidence is stored

    def __repr__(self) -> str:  # message content never reaches a log through repr()
        return f"PurgeItem(mid={self.mid!r}, rid={self.rid!r}, state={self.state!r})"


@dataclass(frozen=True, slots=True)
class PurgeRoom:
    """A room of a purge job, and how its messages are deleted there: ``clean`` (in bulk) or
    ``each`` (one by one)."""

    room: Room
    method: str


class BlockList:
    """Users blocked everywhere or in one room, and the queue of block-list actions to retry.

    Each block and unblock is audited in the transaction that changes the list, so the list and
    the log never disagree after a crash.
    """

    # How stale the in-memory copy may be when another connection changes the table (today no
    # other process writes it: every block goes through this class in the bot's own process).
    RECHECK_SECONDS = 1.0

    def __init__(
        self, db: Database, audit: AuditLog, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._audit = audit
        self._monotonic = monotonic
        # The whole list in memory, by user: every arriving message asks it, and it is small.
        # None: to be read again (after a write here, or a commit by another connection).
        self._cache: dict[str, dict[str, BlockedUser]] | None = None
        self._data_version: int | None = None
        self._checked_at = 0.0

    def block_user(self, user_id: str, username: str, rid: str | None, *, reason: str, actor: str) -> bool:
        """Block a user everywhere (``rid`` None) or in one room; False if already blocked there. Audited."""
        with self._db.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO blocked_user (user_id, rid, username, reason, actor, blocked_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, rid or "", username, reason, actor, self._db.now_iso()),
            )
            changed = cur.rowcount == 1
            self._audit.append_audit(
                actor=actor,
                action=actions.USER_BLOCKED,
                targets={"user": user_id, **({"room": rid} if rid else {"scope": "everywhere"})},
                reason={"reason": reason} if reason else {},
                outcome="ok" if changed else "noop: already blocked",
            )
        self._cache = None
        return changed

    def unblock_user(self, user_id: str, rid: str | None, *, actor: str) -> bool:
        """Lift a block (everywhere, or in one room); False if there was none. Audited."""
        with self._db.transaction():
            cur = self._db.execute(
                "DELETE FROM blocked_user WHERE user_id = ? AND rid = ?", (user_id, rid or "")
            )
            changed = cur.rowcount == 1
            self._audit.append_audit(
                actor=actor,
                action=actions.USER_UNBLOCKED,
                targets={"user": user_id, **({"room": rid} if rid else {"scope": "everywhere"})},
                outcome="ok" if changed else "noop: not blocked",
            )
        self._cache = None
        return changed

    def blocked_user(self, user_id: str, rid: str) -> BlockedUser | None:
        """The block that covers ``user_id`` posting in ``rid`` (an everywhere block first).

        Answered from memory: the list is read once, again after each block or unblock made
        here, and again when another connection has committed to the store (``PRAGMA
        data_version``, looked at no more than once per :attr:`RECHECK_SECONDS`)."""
        blocks = self._blocks()
        if not blocks:
            return None
        mine = blocks.get(user_id)
        if mine is None:
            return None
        return mine.get("") or mine.get(rid)

    def _blocks(self) -> dict[str, dict[str, BlockedUser]]:
        now = self._monotonic()
        if now - self._checked_at >= self.RECHECK_SECONDS or self._cache is None:
            self._checked_at = now
            version = self._db.data_version()
            if version != self._data_version:
                self._data_version, self._cache = version, None
        if self._cache is None:
            cache: dict[str, dict[str, BlockedUser]] = {}
            for r in self._db.execute("SELECT user_id, username, rid, reason FROM blocked_user"):
                cache.setdefault(r[0], {})[r[2]] = BlockedUser(r[0], r[1], r[2] or None, r[3])
            if self._db.in_transaction:
                return cache  # it may yet roll back: not kept
            self._cache = cache
        return self._cache

    def blocked_users(self) -> list[BlockedUser]:
        rows = self._db.execute(
            "SELECT user_id, username, rid, reason FROM blocked_user ORDER BY username, rid"
        )
        return [BlockedUser(r[0], r[1], r[2] or None, r[3]) for r in rows]

    def queue_block_retry(self, mid: str, rid: str, delay: float) -> int:
        """Try a failed block-list action again in ``delay`` seconds; returns the attempts so far."""
        self._db.execute(
            "INSERT INTO block_retry (mid, rid, attempts, next_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (mid) DO UPDATE SET attempts = attempts + 1, next_at = excluded.next_at",
            (mid, rid, self._db.clock() + delay),
        )
        row = self._db.execute("SELECT attempts FROM block_retry WHERE mid = ?", (mid,)).fetchone()
        return int(row[0]) if row else 0

    def note_block_in_flight(self, mid: str, rid: str) -> None:
        """Say a block-list action on ``mid`` is under way, before it starts: if the process dies
        before :meth:`block_retry_done`, the next start finds it due and finishes it (the notice to
        the author included). Attempts are not counted here; failures count them."""
        self._db.execute(
            "INSERT INTO block_retry (mid, rid, attempts, next_at) VALUES (?, ?, 0, ?) "
            "ON CONFLICT (mid) DO UPDATE SET next_at = min(next_at, excluded.next_at)",
            (mid, rid, self._db.clock()),
        )

    def due_block_retries(self) -> list[tuple[str, str, int]]:
        """(message id, room id, attempts so far) of the retries that are due."""
        rows = self._db.execute(
            "SELECT mid, rid, attempts FROM block_retry WHERE next_at <= ? ORDER BY next_at",
            (self._db.clock(),),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def block_retry_done(self, mid: str) -> None:
        self._db.execute("DELETE FROM block_retry WHERE mid = ?", (mid,))

    def has_enforcement_evidence(self, mid: str, action: str) -> bool:
        """Whether evidence of ``mid`` was already stored for ``action`` (a crash before the delete
        would otherwise store it twice when the message is handled again)."""
        row = self._db.execute(
            "SELECT 1 FROM evidence e JOIN audit_log a ON a.seq = e.audit_seq "
            "WHERE e.mid = ? AND a.action = ? LIMIT 1",
            (mid, action),
        ).fetchone()
        return row is not None


class PurgeJournal:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create_purge_job(self, kind: str, request: dict[str, Any], *, actor: str, token: str) -> int:
        now = self._db.now_iso()
        cur = self._db.execute(
            "INSERT INTO purge_job (kind, request, actor, token, state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'collecting', ?, ?)",
            (kind, json.dumps(request, sort_keys=True), actor, token, now, now),
        )
        return int(cur.lastrowid or 0)

    def purge_job(self, job_id: int) -> PurgeJob | None:
        row = self._db.execute(
            "SELECT id, kind, request, actor, token, state, created_at, note FROM purge_job WHERE id = ?",
            (job_id,),
        ).fetchone()
        return _job(row) if row else None

    def open_purge_jobs(self) -> list[PurgeJob]:
        """Jobs a crash interrupted: still collecting, or confirmed and running."""
        rows = self._db.execute(
            "SELECT id, kind, request, actor, token, state, created_at, note FROM purge_job "
            "WHERE state IN ('collecting', 'running') ORDER BY id"
        )
        return [_job(r) for r in rows]

    def set_purge_state(self, job_id: int, state: str, note: str | None = None) -> None:
        self._db.execute(
            "UPDATE purge_job SET state = ?, updated_at = ?, note = coalesce(?, note) WHERE id = ?",
            (state, self._db.now_iso(), note, job_id),
        )

    def set_purge_token(self, job_id: int, token: str) -> None:
        self._db.execute("UPDATE purge_job SET token = ? WHERE id = ?", (token, job_id))

    def add_purge_room(self, job_id: int, room: PurgeRoom) -> None:
        self._db.execute(
            "INSERT INTO purge_room (job_id, rid, name, type, method) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, rid) DO UPDATE SET method = excluded.method",
            (job_id, room.room.id, room.room.name or room.room.id, room.room.type or "c", room.method),
        )

    def purge_rooms(self, job_id: int) -> list[PurgeRoom]:
        rows = self._db.execute(
            "SELECT rid, name, type, method FROM purge_room WHERE job_id = ? ORDER BY name", (job_id,)
        )
        return [PurgeRoom(Room(r[0], r[1], r[2]), r[3]) for r in rows]

    def add_purge_items(self, job_id: int, items: Iterable[PurgeItem]) -> int:
        """Journal selected messages; a message already journalled is left as it is. Returns how
        many are new (a resumed walk re-finds what it found before)."""
        with self._db.transaction():
            added = 0
            for it in items:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO purge_item (job_id, mid, rid, author_id, author_username, ts_ms, "
                    "state, message) VALUES (?, ?, ?, ?, ?, ?, 'selected', ?)",
                    (
                        job_id,
                        it.mid,
                        it.rid,
                        it.author_id,
                        it.author_username,
                        it.ts_ms,
                        json.dumps(it.message) if it.message is not None else None,
                    ),
                )
                added += cur.rowcount
        return added

    def purge_items(
        self, job_id: int, *, state: str | None = None, rid: str | None = None, limit: int = -1
    ) -> list[PurgeItem]:
        where, params = all_of(["job_id = ?"], [job_id], state=state, rid=rid)
        rows = self._db.execute(
            "SELECT mid, rid, author_id, author_username, ts_ms, state, evidence_id, message FROM purge_item "
            f"WHERE {where} ORDER BY rid, ts_ms, mid LIMIT ?",
            (*params, limit),
        )
        return [
            PurgeItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else None)
            for r in rows
        ]

    def purge_counts(self, job_id: int) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, count(*) FROM purge_item WHERE job_id = ? GROUP BY state", (job_id,)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def reconcile_purge_evidence(self, job_id: int) -> int:
        """Mark ``selected`` items whose evidence a ``purge.progressed`` record of this job already
        cites; drop their transient copy. Returns how many moved to ``evidence``."""
        with self._db.transaction():
            cur = self._db.execute(
                "UPDATE purge_item SET state = 'evidence', message = NULL, evidence_id = ("
                "  SELECT e.id FROM evidence e JOIN audit_log a ON a.seq = e.audit_seq "
                "  WHERE e.mid = purge_item.mid AND a.action = ? "
                "  AND json_extract(a.targets, '$.purge') = purge_item.job_id ORDER BY e.id LIMIT 1) "
                "WHERE job_id = ? AND state = 'selected' AND EXISTS ("
                "  SELECT 1 FROM evidence e JOIN audit_log a ON a.seq = e.audit_seq "
                "  WHERE e.mid = purge_item.mid AND a.action = ? "
                "  AND json_extract(a.targets, '$.purge') = purge_item.job_id)",
                (actions.PURGE_PROGRESSED, job_id, actions.PURGE_PROGRESSED),
            )
        return cur.rowcount

    def finish_purge_items(self, job_id: int, mids: Sequence[str], state: str) -> int:
        """Record the outcome of items whose evidence is stored (``deleted`` or ``failed``)."""
        if state not in ("deleted", "failed"):
            raise ValueError(f"not a final purge item state: {state!r}")
        cur = self._db.execute(
            "UPDATE purge_item SET state = ? WHERE job_id = ? AND state = 'evidence' "
            "AND mid IN (SELECT value FROM json_each(?))",
            (state, job_id, json.dumps(list(mids))),
        )
        return cur.rowcount

    def expire_purge_previews(self, created_before: str) -> int:
        """Previews nobody confirmed (the moderator walked away, the process died at the prompt)
        are cancelled and their copies of messages dropped. Returns how many."""
        with self._db.transaction():
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM purge_job WHERE state IN ('collecting', 'previewed') AND created_at < ?",
                    (created_before,),
                )
            ]
            for job_id in ids:
                self._db.execute("UPDATE purge_item SET message = NULL WHERE job_id = ?", (job_id,))
                self._db.execute(
                    "UPDATE purge_job SET state = 'cancelled', updated_at = ?, note = 'preview expired' "
                    "WHERE id = ?",
                    (self._db.now_iso(), job_id),
                )
        return len(ids)

    def forget_purge_content(self, job_id: int) -> None:
        """A cancelled or dry-run job keeps no copy of anyone's messages (data minimisation)."""
        self._db.execute("UPDATE purge_item SET message = NULL WHERE job_id = ?", (job_id,))

    @translates("forgetting finished purges")
    def forget_finished_purges(self, retention_days: int) -> int:
        """Drop the journal (items and rooms) of jobs that ended (done, cancelled, dry run) longer
        than the preservation window ago; the job row stays, named by its audit records and its
        case. Nothing reads a finished job's journal: ``purge.finished`` recorded its counts, and
        its evidence rows (which items pointed at) are kept on their own window. Returns how many
        items went."""
        ended = datetime.fromtimestamp(self._db.clock() - retention_days * 86400, tz=UTC)
        with self._db.transaction():
            jobs = json.dumps(
                [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM purge_job WHERE state IN ('done', 'cancelled', 'dry_run') "
                        "AND updated_at < ?",
                        (to_iso(ended),),
                    )
                ]
            )
            self._db.execute(
                "DELETE FROM purge_room WHERE job_id IN (SELECT value FROM json_each(?))", (jobs,)
            )
            return self._db.execute(
                "DELETE FROM purge_item WHERE job_id IN (SELECT value FROM json_each(?))", (jobs,)
            ).rowcount


def _job(row: Sequence[Any]) -> PurgeJob:
    return PurgeJob(
        id=int(row[0]),
        kind=str(row[1]),
        request=json.loads(row[2]),
        actor=str(row[3]),
        token=str(row[4]),
        state=str(row[5]),
        created_at=str(row[6]),
        note=row[7],
    )
