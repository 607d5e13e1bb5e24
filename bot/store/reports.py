"""The report desk's store verbs (/report, /mod reports, /mod resolve).

A report's moderator DMs are an ``alert`` row of kind ``report`` with one delivery per moderator,
so they travel through the same outbox as keyword alerts: a second reporter bumps the alert's
``count`` and ``version`` and every moderator's copy is edited, never re-sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.store.alerts import queue_deliveries
from bot.store.db import Database

__all__ = ["FiledReport", "ReportLedger", "ReportRow", "Reporter"]


@dataclass(frozen=True, slots=True)
class Reporter:
    user_id: str
    username: str
    anonymous: bool
    category: str
    at: float


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: int
    target_kind: str  # message | user
    mid: str | None
    rid: str | None
    room_name: str | None
    room_type: str | None
    author_id: str
    author_username: str
    category: str
    source: str  # command | native
    native: str | None  # filed | pending | the server's refusal code
    escalated: bool
    alert_id: int | None
    opened_at: float
    closed_at: float | None
    outcome: str | None
    reporters: tuple[Reporter, ...] = ()


@dataclass(frozen=True, slots=True)
class FiledReport:
    report: ReportRow
    created: bool  # a new report (False: joined an open one)
    duplicate: bool  # this reporter had already reported this target
    escalated_now: bool  # this reporter made it reach the escalation threshold


_COLUMNS = (
    "id, target_kind, mid, rid, room_name, room_type, author_id, author_username, category, source, "
    "native, escalated, alert_id, opened_at, closed_at, outcome"
)


class ReportLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def reports_by_reporter_since(self, reporter_id: str, since: float) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM report_reporter WHERE reporter_id = ? AND at >= ?", (reporter_id, since)
        ).fetchone()
        return int(row[0])

    def file_report(
        self,
        report: dict[str, object],
        *,
        reporter: Reporter,
        recipients: Sequence[str],
        alert: dict[str, object],
        escalate_at: int,
        new_dm_id: Callable[[], str],
    ) -> FiledReport:
        """Open a report for the target or join the open one; queue or bump the moderators' DMs.

        One transaction: the report, the reporter and every moderator's delivery are written
        together, so a crash leaves either nothing or a report whose DMs the outbox will send.
        """
        now = self._db.clock()
        with self._db.transaction():
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM report WHERE target_key = ? AND closed_at IS NULL",
                (report["target_key"],),
            ).fetchone()
            created = duplicate = False
            if row is not None:
                report_id, duplicate, escalated_now = self._join_report(row, reporter, escalate_at, now)
            else:
                created = True
                alert_id = self._insert_report_alert(report, alert, recipients, new_dm_id, now)
                report_id = self._insert_report(report, alert_id, now)
                self._insert_reporter(report_id, reporter, now)
                escalated_now = escalate_at <= 1
                if escalated_now:
                    self._db.execute("UPDATE report SET escalated = 1 WHERE id = ?", (report_id,))
        found = self.report(report_id)
        assert found is not None
        return FiledReport(found, created, duplicate, escalated_now)

    def _join_report(
        self, row: tuple[Any, ...], reporter: Reporter, escalate_at: int, now: float
    ) -> tuple[int, bool, bool]:
        """Another reporter joins the open report (a repeat from one already on it changes
        nothing): (report id, duplicate, escalated now). Inside file_report's transaction."""
        report_id, alert_id = int(row[0]), row[12]
        seen = self._db.execute(
            "SELECT 1 FROM report_reporter WHERE report_id = ? AND reporter_id = ?",
            (report_id, reporter.user_id),
        ).fetchone()
        if seen:
            return report_id, True, False
        self._insert_reporter(report_id, reporter, now)
        count = self._reporter_count(report_id)
        escalated_now = count >= escalate_at and not row[11]
        if escalated_now:
            self._db.execute("UPDATE report SET escalated = 1 WHERE id = ?", (report_id,))
        if alert_id is not None:
            self._db.execute(
                "UPDATE alert SET count = ?, version = version + 1, last_at = ?, "
                "severity = CASE WHEN ? THEN 'critical' ELSE severity END WHERE id = ?",
                (count, now, escalated_now, alert_id),
            )
        return report_id, False, escalated_now

    def _insert_report_alert(
        self,
        report: dict[str, object],
        alert: dict[str, object],
        recipients: Sequence[str],
        new_dm_id: Callable[[], str],
        now: float,
    ) -> int:
        """A new report's alert and one delivery per moderator; returns the alert id."""
        cur = self._db.execute(
            "INSERT INTO alert (key, kind, list, term, severity, categories, rid, room_name, "
            "room_type, mid, author_id, author_username, message_ts, excerpt, first_at, last_at) "
            "VALUES (?, 'report', 'report', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"report:{report['target_key']}:{now}",
                report["category"],
                alert["severity"],
                json.dumps([report["category"]]),
                report.get("rid") or "",
                report.get("room_name"),
                report.get("room_type"),
                report.get("mid") or f"user:{report['author_id']}",
                report["author_id"],
                report["author_username"],
                alert["message_ts"],
                alert["excerpt"],
                now,
                now,
            ),
        )
        alert_id = int(cur.lastrowid or 0)
        queue_deliveries(self._db, alert_id, recipients, new_dm_id)
        return alert_id

    def _insert_report(self, report: dict[str, object], alert_id: int, now: float) -> int:
        cur = self._db.execute(
            "INSERT INTO report (target_kind, target_key, mid, rid, room_name, room_type, author_id, "
            "author_username, category, source, native, alert_id, opened_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report["target_kind"],
                report["target_key"],
                report.get("mid"),
                report.get("rid"),
                report.get("room_name"),
                report.get("room_type"),
                report["author_id"],
                report["author_username"],
                report["category"],
                report["source"],
                report.get("native"),
                alert_id,
                now,
            ),
        )
        return int(cur.lastrowid or 0)

    def _insert_reporter(self, report_id: int, reporter: Reporter, now: float) -> None:
        self._db.execute(
            "INSERT INTO report_reporter "
            "(report_id, reporter_id, reporter_username, anonymous, category, at) VALUES (?, ?, ?, ?, ?, ?)",
            (report_id, reporter.user_id, reporter.username, int(reporter.anonymous), reporter.category, now),
        )

    def _reporter_count(self, report_id: int) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM report_reporter WHERE report_id = ?", (report_id,)
        ).fetchone()
        return int(row[0])

    def set_report_native(self, report_id: int, state: str) -> None:
        self._db.execute("UPDATE report SET native = ? WHERE id = ?", (state, report_id))

    def report(self, report_id: int) -> ReportRow | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM report WHERE id = ?", (report_id,)).fetchone()
        return self._row(row) if row else None

    def report_for_target(self, target_key: str) -> ReportRow | None:
        """The newest report about a target, open or closed."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM report WHERE target_key = ? ORDER BY id DESC LIMIT 1", (target_key,)
        ).fetchone()
        return self._row(row) if row else None

    def report_for_alert(self, alert_id: int) -> ReportRow | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM report WHERE alert_id = ?", (alert_id,)).fetchone()
        return self._row(row) if row else None

    def open_reports(self, limit: int = 50) -> list[ReportRow]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM report WHERE closed_at IS NULL ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [self._row(r) for r in rows]

    def open_report_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM report WHERE closed_at IS NULL").fetchone()[0])

    def close_report(self, report_id: int, outcome: str) -> bool:
        """Close an open report and mark its alert, so the outbox edits every moderator's copy."""
        with self._db.transaction():
            cur = self._db.execute(
                "UPDATE report SET closed_at = ?, outcome = ? WHERE id = ? AND closed_at IS NULL",
                (self._db.clock(), outcome, report_id),
            )
            closed = cur.rowcount == 1
            if closed:
                self._db.execute(
                    "UPDATE alert SET outcome = ?, version = version + 1 WHERE id = "
                    "(SELECT alert_id FROM report WHERE id = ?) AND outcome IS NULL",
                    (outcome, report_id),
                )
        return closed

    def _row(self, r: Sequence[object]) -> ReportRow:
        reporters = tuple(
            Reporter(str(x[0]), str(x[1]), bool(x[2]), str(x[3]), float(x[4]))
            for x in self._db.execute(
                "SELECT reporter_id, reporter_username, anonymous, category, at FROM report_reporter "
                "WHERE report_id = ? ORDER BY at, reporter_id",
                (r[0],),
            )
        )
        return ReportRow(
            id=int(str(r[0])),
            target_kind=str(r[1]),
            mid=_opt(r[2]),
            rid=_opt(r[3]),
            room_name=_opt(r[4]),
            room_type=_opt(r[5]),
            author_id=str(r[6]),
            author_username=str(r[7]),
            category=str(r[8]),
            source=str(r[9]),
            native=_opt(r[10]),
            escalated=bool(r[11]),
            alert_id=int(str(r[12])) if r[12] is not None else None,
            opened_at=float(str(r[13])),
            closed_at=float(str(r[14])) if r[14] is not None else None,
            outcome=_opt(r[15]),
            reporters=reporters,
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
