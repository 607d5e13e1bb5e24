"""The alert ledger and outbox: the store verbs of :mod:`bot.services.outbox` (a repository of the store)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.models import Room, UserRef
from bot.moderation.alerts import Alert, DigestItem
from bot.store.db import Database, translates

__all__ = ["AlertLedger", "Delivery", "Digest", "RaisedAlert", "queue_deliveries"]


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    alert_id: int
    created: bool  # False: the incident joined an open alert (a burst)
    count: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's copy of an alert that is behind the alert's current version."""

    id: int
    alert_id: int
    recipient: str  # a username, or "#room"
    dm_rid: str | None
    dm_mid: str  # chosen when the alert was raised, so a resend after a crash is the same message
    sent_version: int
    attempts: int
    version: int
    alert: Alert  # as it stands now: after a burst, its newest occurrence
    count: int  # occurrences (messages) coalesced into it
    first_at: float
    outcome: str | None  # how it was closed ("dismissed by …"); None while open


@dataclass(frozen=True, slots=True)
class Digest:
    """One hourly digest DM: the alerts held back from ``recipient`` by the cap."""

    id: int
    recipient: str
    dm_mid: str
    items: list[DigestItem]


def queue_deliveries(
    db: Database, alert_id: int, recipients: Sequence[str], new_dm_id: Callable[[], str]
) -> None:
    """One delivery of ``alert_id`` per distinct recipient, its DM id chosen now (before any send)."""
    for recipient in dict.fromkeys(recipients):
        db.execute(
            "INSERT INTO alert_delivery (alert_id, recipient, dm_mid) VALUES (?, ?, ?)",
            (alert_id, recipient, new_dm_id()),
        )


class AlertLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def raise_alert(
        self,
        alert: Alert,
        *,
        recipients: Sequence[str],
        window: float,
        new_dm_id: Callable[[], str],
    ) -> RaisedAlert | None:
        """Record an occurrence; join the open alert for its key or open a new one with deliveries.

        Returns None when this (message, list, term) was alerted before. One transaction, so a
        crash leaves either nothing or the incident with all its deliveries queued.
        """
        now = self._db.clock()
        ts = now if alert.ts is None else alert.ts
        with self._db.transaction():
            seen = self._db.execute(
                "SELECT 1 FROM alert_incident WHERE mid = ? AND list = ? AND term = ?",
                (alert.mid, alert.list, alert.term),
            ).fetchone()
            if seen:
                return None
            row = self._db.execute(
                "SELECT id, count FROM alert WHERE key = ? AND last_at >= ? AND outcome IS NULL "
                "ORDER BY last_at DESC LIMIT 1",
                (alert.key, now - window),
            ).fetchone()
            if row is not None:
                alert_id, created = int(row[0]), False
                count = self._count_message(alert_id, int(row[1]), alert, now=now, ts=ts)
            else:
                alert_id, count, created = (
                    self._open_alert(alert, recipients, new_dm_id, now=now, ts=ts),
                    1,
                    True,
                )
            self._db.execute(
                "INSERT INTO alert_incident (mid, list, term, alert_id) VALUES (?, ?, ?, ?)",
                (alert.mid, alert.list, alert.term, alert_id),
            )
        return RaisedAlert(alert_id, created, count)

    def _count_message(self, alert_id: int, count: int, alert: Alert, *, now: float, ts: float) -> int:
        """Count ``alert``'s message into the open alert ``alert_id``; its count after."""
        counted = self._db.execute(
            "SELECT 1 FROM alert_incident WHERE alert_id = ? AND mid = ? LIMIT 1",
            (alert_id, alert.mid),
        ).fetchone()
        if counted is None:
            # A newer message: the alert now shows it, its term and its excerpt together,
            # so the header, the excerpt and the buttons all name the same message.
            count += 1
            self._db.execute(
                "UPDATE alert SET count = ?, version = version + 1, last_at = ?, mid = ?, term = ?, "
                "excerpt = ?, message_ts = ? WHERE id = ?",
                (count, now, alert.mid, alert.term, alert.excerpt, ts, alert_id),
            )
        # else: another term of the message already shown; it counts messages, not terms.
        return count

    def _open_alert(
        self, alert: Alert, recipients: Sequence[str], new_dm_id: Callable[[], str], *, now: float, ts: float
    ) -> int:
        """A new alert for ``alert``, with a queued delivery for each recipient; its id."""
        cur = self._db.execute(
            "INSERT INTO alert (key, kind, list, term, severity, categories, rid, room_name, "
            "room_type, mid, author_id, author_username, message_ts, excerpt, first_at, last_at, "
            "actions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.key,
                alert.kind,
                alert.list,
                alert.term,
                alert.severity,
                json.dumps(list(alert.categories)),
                alert.room.id,
                alert.room.name,
                alert.room.type,
                alert.mid,
                alert.author.id,
                alert.author.username,
                ts,
                alert.excerpt,
                now,
                now,
                json.dumps([list(a) for a in alert.actions]) if alert.actions else None,
            ),
        )
        alert_id = int(cur.lastrowid or 0)
        queue_deliveries(self._db, alert_id, recipients, new_dm_id)
        return alert_id

    def due_deliveries(self, limit: int = 50) -> list[Delivery]:
        now = self._db.clock()
        rows = self._db.execute(
            "SELECT d.id, d.alert_id, d.recipient, d.dm_rid, d.dm_mid, d.sent_version, d.attempts, "
            "a.version, "
            "a.kind, a.list, a.term, a.severity, a.categories, a.rid, a.room_name, a.room_type, a.mid, "
            "a.author_id, a.author_username, a.message_ts, a.excerpt, a.actions, a.key, "
            "a.first_at, a.count, a.outcome "
            "FROM alert_delivery d JOIN alert a ON a.id = d.alert_id "
            "WHERE d.failed IS NULL AND d.sent_version < a.version AND d.next_at <= ? "
            "AND d.held = 0 AND d.digest_id IS NULL ORDER BY d.id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [
            Delivery(
                id=int(r[0]),
                alert_id=int(r[1]),
                recipient=str(r[2]),
                dm_rid=_opt(r[3]),
                dm_mid=str(r[4]),
                sent_version=int(r[5]),
                attempts=int(r[6]),
                version=int(r[7]),
                alert=_alert(r[8:23]),
                first_at=float(r[23]),
                count=int(r[24]),
                outcome=_opt(r[25]),
            )
            for r in rows
        ]

    def delivery_done(self, delivery_id: int, version: int, dm_rid: str) -> None:
        self._db.execute(
            "UPDATE alert_delivery SET sent_version = max(sent_version, ?), dm_rid = ?, attempts = 0, "
            "sent_at = coalesce(sent_at, ?) WHERE id = ?",
            (version, dm_rid, self._db.clock(), delivery_id),
        )

    def delivery_retry(self, delivery_id: int, delay: float) -> None:
        self._db.execute(
            "UPDATE alert_delivery SET attempts = attempts + 1, next_at = ? WHERE id = ?",
            (self._db.clock() + delay, delivery_id),
        )

    # -- the per-moderator cap and the hourly digest -------------------------------------------

    def sent_since(self, recipient: str, since: float) -> int:
        """New alert DMs first sent to ``recipient`` since ``since`` (edits do not count)."""
        row = self._db.execute(
            "SELECT count(*) FROM alert_delivery WHERE recipient = ? AND sent_at >= ?", (recipient, since)
        ).fetchone()
        return int(row[0])

    def hold_delivery(self, delivery_id: int) -> None:
        """Over the cap: keep it for the recipient's next digest instead of sending it."""
        # `held` keeps the time it was held (0: not held), so a digest waits for its oldest item.
        self._db.execute("UPDATE alert_delivery SET held = ? WHERE id = ?", (self._db.clock(), delivery_id))

    def digest_recipients(self) -> list[str]:
        rows = self._db.execute(
            "SELECT recipient FROM alert_delivery WHERE held > 0 AND digest_id IS NULL "
            "UNION SELECT recipient FROM alert_digest WHERE sent_at IS NULL"
        )
        return sorted(str(r[0]) for r in rows)

    def open_digest(self, recipient: str, *, min_gap: float, new_dm_id: Callable[[], str]) -> Digest | None:
        """The digest to send ``recipient`` now: an unsent one (after a crash), or a new one folding
        every held alert once the oldest has waited ``min_gap`` seconds. None: nothing to send."""
        now = self._db.clock()
        with self._db.transaction():
            row = self._db.execute(
                "SELECT id, dm_mid FROM alert_digest WHERE recipient = ? AND sent_at IS NULL", (recipient,)
            ).fetchone()
            if row is None:
                oldest = self._db.execute(
                    "SELECT min(held) FROM alert_delivery "
                    "WHERE recipient = ? AND held > 0 AND digest_id IS NULL",
                    (recipient,),
                ).fetchone()[0]
                if oldest is None or now - float(oldest) < min_gap:
                    return None
                cur = self._db.execute(
                    "INSERT INTO alert_digest (recipient, dm_mid, created_at) VALUES (?, ?, ?)",
                    (recipient, new_dm_id(), now),
                )
                digest_id = int(cur.lastrowid or 0)
                self._db.execute(
                    "UPDATE alert_delivery SET digest_id = ? "
                    "WHERE recipient = ? AND held > 0 AND digest_id IS NULL",
                    (digest_id, recipient),
                )
                row = (
                    digest_id,
                    self._db.execute("SELECT dm_mid FROM alert_digest WHERE id = ?", (digest_id,)).fetchone()[
                        0
                    ],
                )
            items = self._db.execute(
                "SELECT a.id, a.severity, a.list, a.term, a.rid, a.room_name, a.room_type, a.mid, a.count "
                "FROM alert_delivery d JOIN alert a ON a.id = d.alert_id WHERE d.digest_id = ? ORDER BY a.id",
                (row[0],),
            ).fetchall()
        return Digest(
            int(row[0]),
            recipient,
            str(row[1]),
            [DigestItem(r[0], r[1], r[2], r[3], Room(r[4], r[5], r[6]), r[7], int(r[8] or 1)) for r in items],
        )

    def digest_sent(self, digest_id: int) -> None:
        self._db.execute("UPDATE alert_digest SET sent_at = ? WHERE id = ?", (self._db.clock(), digest_id))

    def delivery_failed(self, delivery_id: int, reason: str) -> None:
        self._db.execute("UPDATE alert_delivery SET failed = ? WHERE id = ?", (reason, delivery_id))

    def resolve_alert(self, alert_id: int, outcome: str) -> bool:
        """Mark an open alert's outcome (``/mod dismiss``); bumping ``version`` makes the outbox
        edit every moderator's copy to show it. False if there is no such open alert."""
        return (
            self._db.execute(
                "UPDATE alert SET outcome = ?, version = version + 1 WHERE id = ? AND outcome IS NULL",
                (outcome, alert_id),
            ).rowcount
            == 1
        )

    def bump_alert(self, alert_id: int) -> None:
        """Put every delivered copy of the alert behind, so the outbox re-renders and edits it."""
        self._db.execute("UPDATE alert SET version = version + 1 WHERE id = ?", (alert_id,))

    def incident_alert(self, mid: str, list_name: str, term: str) -> int | None:
        """The alert an incident (message, list, term) was raised in, if it still stands."""
        row = self._db.execute(
            "SELECT alert_id FROM alert_incident WHERE mid = ? AND list = ? AND term = ?",
            (mid, list_name, term),
        ).fetchone()
        return int(row[0]) if row else None

    def alert_kind(self, alert_id: int) -> str | None:
        row = self._db.execute("SELECT kind FROM alert WHERE id = ?", (alert_id,)).fetchone()
        return str(row[0]) if row else None

    def pending_deliveries(self) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM alert_delivery d JOIN alert a ON a.id = d.alert_id "
            "WHERE d.failed IS NULL AND d.sent_version < a.version AND d.held = 0 AND d.digest_id IS NULL"
        ).fetchone()
        return int(row[0])

    def undeliverable_count(self) -> int:
        """Alert DMs the server refused for good (the moderator, the room or the text)."""
        row = self._db.execute("SELECT count(*) FROM alert_delivery WHERE failed IS NOT NULL").fetchone()
        return int(row[0])

    def failed_deliveries(self) -> list[tuple[str, str]]:
        """(recipient, reason) of moderators who could not be reached, for logs and /mod status."""
        rows = self._db.execute(
            "SELECT DISTINCT recipient, failed FROM alert_delivery "
            "WHERE failed IS NOT NULL ORDER BY recipient"
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def alert_deliveries(self, alert_id: int) -> list[tuple[str, str | None, str, int]]:
        """(recipient, dm_rid, dm_mid, sent_version) of every copy of an alert."""
        rows = self._db.execute(
            "SELECT recipient, dm_rid, dm_mid, sent_version FROM alert_delivery "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
        return [(str(r[0]), r[1], str(r[2]), int(r[3])) for r in rows]

    def expire_alert_excerpts(self, retention_days: int) -> int:
        """Drop the quoted text of alerts older than the preservation window (data minimisation)."""
        return self._redact_alerts("last_at < ?", (self._db.clock() - retention_days * 86400,))

    def redact_author_alerts(self, author_id: str) -> int:
        """Drop the quoted text of one author's alerts (an erasure request)."""
        return self._redact_alerts("author_id = ?", (author_id,))

    def _redact_alerts(self, where: str, params: tuple[object, ...]) -> int:
        # Bumping `version` puts every delivered copy behind the alert, so the outbox edits each
        # moderator's DM to the text without the excerpt: content does not outlive the window
        # there either. Authors under a legal hold keep theirs.
        return self._db.execute(
            f"UPDATE alert SET excerpt = NULL, version = version + 1 WHERE {where} AND excerpt IS NOT NULL "
            "AND author_id NOT IN (SELECT ref FROM legal_hold WHERE kind = 'user' AND released_at IS NULL)",
            params,
        ).rowcount

    @translates("deleting finished alerts")
    def delete_finished_alerts(self, retention_days: int, *, batch: int = 500) -> int:
        """Delete alerts older than the preservation window whose every copy is finished, with
        their incidents and deliveries, and the sent digests no delivery names any more.

        Finished: delivered at the alert's current version, refused for good, or folded into a
        digest that was sent. A copy still due, retrying or held for a digest keeps its alert
        (so the excerpt redaction's edit goes out first). Kept as well: an alert a report points
        at (the report is kept), one an active legal hold covers (on its author, or on the case
        of its message), and one about a standing name, room text or pending account (its
        incident is what keeps the next sweep from alerting again). Audit records name alert ids
        only as text: they stay whole without the row. Deleted in batches, each its own
        transaction, so a first run after a long time does not hold the write lock for long.
        Returns how many alerts were deleted."""
        cutoff = self._db.clock() - retention_days * 86400
        deleted = 0
        while True:
            with self._db.transaction():
                ids = [
                    int(r[0])
                    for r in self._db.execute(
                        f"SELECT a.id FROM alert a WHERE a.last_at < ? AND {_ALERT_DELETABLE} "
                        "ORDER BY a.last_at LIMIT ?",
                        (cutoff, batch),
                    )
                ]
                if ids:
                    chosen = json.dumps(ids)
                    for table in ("alert_incident", "alert_delivery"):
                        self._db.execute(
                            f"DELETE FROM {table} WHERE alert_id IN (SELECT value FROM json_each(?))",
                            (chosen,),
                        )
                    self._db.execute(
                        "DELETE FROM alert WHERE id IN (SELECT value FROM json_each(?))", (chosen,)
                    )
                    deleted += len(ids)
            if len(ids) < batch:
                break
        self._db.execute(
            "DELETE FROM alert_digest WHERE sent_at IS NOT NULL AND created_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM alert_delivery d WHERE d.digest_id = alert_digest.id)",
            (cutoff,),
        )
        return deleted

    def count_unscannable(self, rid: str) -> None:
        self._db.execute(
            "INSERT INTO unscannable_room (rid, count, last_at) VALUES (?, 1, ?) "
            "ON CONFLICT (rid) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
            (rid, self._db.clock()),
        )

    def unscannable_rooms(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._db.execute("SELECT rid, count FROM unscannable_room")}


# An alert (``a``) that retention may delete once past the window: no report points at it, no
# active legal hold covers it, none of its copies is still to be sent or edited, and its
# occurrence cannot come back. Its incidents are what stops a second alert about the same
# occurrence; a message's (or an event's) is out of catch-up's reach long before the window
# ends, but a name or room text (bot.moderation.names: "user:…"/"room:…" pseudo ids) and an
# account awaiting approval ("user:<id>:pending") are read again at every sweep or poll for as
# long as they stand: without their incidents, moderators would be told again.
#
# The newest alert is never deleted: SQLite gives a new row the highest id + 1, so deleting it
# would hand its number out again, and a moderator's old DM ("/mod dismiss 12") or an audit
# record naming alert 12 would then point at a different alert.
_ALERT_DELETABLE = (
    "a.id < (SELECT max(id) FROM alert) "
    "AND a.mid NOT LIKE 'user:%' AND a.mid NOT LIKE 'room:%' "
    "AND NOT EXISTS (SELECT 1 FROM report r WHERE r.alert_id = a.id) "
    "AND a.author_id NOT IN (SELECT ref FROM legal_hold WHERE kind = 'user' AND released_at IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM moderation_case c JOIN legal_hold h ON h.kind = 'case' "
    "AND h.ref = CAST(c.id AS TEXT) AND h.released_at IS NULL WHERE c.kind = 'message' AND c.ref = a.mid) "
    "AND NOT EXISTS (SELECT 1 FROM alert_delivery d LEFT JOIN alert_digest g ON g.id = d.digest_id "
    "WHERE d.alert_id = a.id AND d.failed IS NULL AND d.sent_version < a.version "
    "AND (g.sent_at IS NULL))"
)


def _alert(r: Sequence[object]) -> Alert:
    """An alert from its columns: kind, list, term, severity, categories, rid, room_name,
    room_type, mid, author_id, author_username, message_ts, excerpt, actions, key."""
    actions = json.loads(str(r[13])) if r[13] else ()
    return Alert(
        kind=str(r[0]),
        key=str(r[14]),
        list=str(r[1]),
        term=str(r[2]),
        mid=str(r[8]),
        room=Room(str(r[5]), _opt(r[6]), _opt(r[7])),
        author=UserRef(str(r[9]), str(r[10])),
        excerpt=_opt(r[12]),
        severity=str(r[3]),
        categories=tuple(str(c) for c in json.loads(str(r[4]))),
        actions=tuple((str(a[0]), str(a[1])) for a in actions),
        ts=float(str(r[11])),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
