"""The report desk: ``/report`` filed natively, kept as evidence, routed to the moderators' DMs
through the outbox, acknowledged with a number, deduplicated, escalated and
rate-limited; and ``/mod resolve``, which closes a report and tells its reporters.

Order of a new report, so nothing is filed twice: the report row and its moderator deliveries
are written first (one transaction, the dedupe point), then the evidence and audit record, then
the native filing (chat.reportMessage / moderation.reportUser, as the bot), whose outcome is
recorded on the report. A retry of the same report hits the dedupe and is answered "already
reported". Decisions and texts are pure code in :mod:`bot.moderation.reports`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bot.audit import actions
from bot.commands import Call, Caller, MessageRef, UserName
from bot.config import ReportSettings
from bot.errors import ActionRefused, NotFound, PermissionDenied, RcmodError
from bot.models import MalformedPayload, Message, Room, UserRef, parse_date
from bot.moderation.actions import Action, DeleteMessage, DismissReports, FileReport, PostMessage
from bot.moderation.neutralize import inline_literal, neutralize
from bot.moderation.reports import RateLimits, ReportView, rate_refusal, render_report, severity_for
from bot.rest import RestClient
from bot.rest.client import derived_message_id, new_message_id
from bot.services.executor import Act, Status
from bot.services.outbox import Moderators, Outbox
from bot.store.alerts import AlertLedger, Delivery
from bot.store.audit import AuditLog
from bot.store.reports import FiledReport, Reporter, ReportLedger, ReportRow

__all__ = ["ReportDesk"]

log = logging.getLogger("rcmod.reports")

_EXCERPT = 200


class ReportDesk:
    def __init__(
        self,
        *,
        audit: AuditLog,
        alerts: AlertLedger,
        reports: ReportLedger,
        rest: RestClient,
        outbox: Outbox,
        settings: ReportSettings,
        retention_days: int,
        executor: Act,
        site_url: Callable[[], str],
        clock: Callable[[], float] = time.time,
        enforce: Callable[[str, str, int, str, str], Awaitable[str]] | None = None,
    ) -> None:
        self._audit = audit
        self._alerts = alerts
        self._reports = reports
        self._rest = rest
        self._outbox = outbox
        outbox.register_renderer("report", self.render)
        self._settings = settings
        self._retention_days = retention_days
        self._site_url = site_url
        self._executor = executor
        self._clock = clock
        self._limits = RateLimits(settings.per_window, settings.window_seconds, settings.per_day)
        # `/mod resolve ID block|purge` act through the enforcement commands:
        # (action, username, report id, actor) -> reply.
        self.enforce = enforce

    # -- /report -------------------------------------------------------------------------------------

    async def report(self, call: Call) -> str:
        caller, inv = call.caller, call.invocation
        target = inv.get("target")
        if target is None and caller.tmid:
            target = MessageRef(caller.tmid)  # a thread reply without a target: the thread's message
        if not isinstance(target, MessageRef | UserName):
            return (
                "What should I report? Give a message link or id (or reply in its thread), or @user.\n"
                f"Usage: `{inv.command.usage}`"
            )
        now = self._clock()
        refusal = rate_refusal(
            self._reports.reports_by_reporter_since(caller.user_id, now - self._limits.window),
            self._reports.reports_by_reporter_since(caller.user_id, now - 86400),
            self._limits,
        )
        if refusal:
            return refusal
        category = inv.text("category") or "other"
        anonymous = "anonymous" in inv.flags
        note = ""
        if anonymous and not self._settings.allow_anonymous:
            anonymous = False
            note = "\n(Anonymous reports are turned off here: the moderators see your name.)"
        description = inv.text("description")
        if isinstance(target, UserName):
            return await self._report_user(call, target, category, anonymous, description) + note
        return await self._report_message(call, target, category, anonymous, description) + note

    async def _report_message(
        self, call: Call, ref: MessageRef, category: str, anonymous: bool, description: str
    ) -> str:
        caller = call.caller
        message: Message | None = None
        try:
            message = await self._rest.get_message(ref.mid)
        except NotFound:
            if ref.room_name is None and ref.rid is None:
                return f"I found no message with the id `{ref.mid}`. Nothing was filed."
        except PermissionDenied:
            pass  # a room the bot is not in: the moderators still get the link
        if message is not None and message.author.id == caller.user_id:
            return "That is your own message; you can delete or edit it yourself. Nothing was filed."
        room = await self._room(message.rid if message else ref.rid, ref.room_name)
        if room is None and ref.room_name:
            room = Room("", ref.room_name, ref.room_type)  # a room the bot cannot see: keep the link
        if room is None:
            return "I cannot find the room of that link. Nothing was filed."
        author = message.author if message else UserRef("unknown", "unknown")
        excerpt = None
        if message is not None:
            text = " ".join(message.scannable_texts())
            excerpt = inline_literal(text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else ""))
        about: dict[str, object] = {
            "target_kind": "message",
            "target_key": f"message:{ref.mid}",
            "mid": ref.mid,
            "rid": room.id,
            "room_name": room.name,
            "room_type": room.type,
        }
        filed = await self._file(
            caller,
            about,
            author,
            room,
            category=category,
            anonymous=anonymous,
            native="pending" if message else "unreachable",
            message_ts=message.ts.timestamp() if message else None,
            excerpt=excerpt,
        )
        targets: dict[str, object] = {"message": ref.mid, "room": room.id, "user": author.id}
        if message is None:
            unread = (
                "\nI cannot read that message (I am not in its room), so it was not filed in the moderation "
                "console; the moderators got your link."
            )
            return await self._answer(caller, filed, category, "this", targets, native=None, unread=unread)
        native = FileReport(_native_text(category, description), mid=ref.mid)
        return await self._answer(caller, filed, category, "this", targets, native=native, message=message)

    async def _file(
        self,
        caller: Caller,
        target: dict[str, object],
        author: UserRef,
        room: Room,
        *,
        category: str,
        anonymous: bool,
        native: str,
        message_ts: float | None = None,
        excerpt: str | None = None,
    ) -> FiledReport:
        """Open the report on ``target`` (its kind, key and where it is) or join the open one, with
        the moderators' DMs queued; the alert is timed by the message, else by now."""
        return self._reports.file_report(
            {
                **target,
                "author_id": author.id,
                "author_username": author.username,
                "category": category,
                "source": "command",
                "native": native,
            },
            reporter=Reporter(caller.user_id, caller.username, anonymous, category, self._clock()),
            recipients=await self._outbox.recipients(Moderators(), room, author),
            alert={
                "severity": severity_for(category),
                "message_ts": self._clock() if message_ts is None else message_ts,
                "excerpt": excerpt,
            },
            escalate_at=self._settings.escalate_at,
            new_dm_id=new_message_id,
        )

    async def _report_user(
        self, call: Call, target: UserName, category: str, anonymous: bool, description: str
    ) -> str:
        caller = call.caller
        try:
            user = await self._rest.user_info(username=target.username)
        except ActionRefused:  # users.info answers an unknown name with a plain 400
            return f"I found no user {inline_literal(target.username)}. Nothing was filed."
        uid = str(user.get("_id") or "")
        if not uid:
            return f"I found no user {inline_literal(target.username)}. Nothing was filed."
        if uid == caller.user_id:
            return "You cannot report yourself. Nothing was filed."
        author = UserRef(uid, str(user.get("username") or target.username))
        room = Room(caller.rid, caller.room_name, caller.room_type)
        about: dict[str, object] = {"target_kind": "user", "target_key": f"user:{uid}"}
        filed = await self._file(
            caller, about, author, room, category=category, anonymous=anonymous, native="pending"
        )
        native = FileReport(_native_text(category, description), user_id=uid)
        return await self._answer(caller, filed, category, "this user", {"user": uid}, native=native)

    async def _answer(
        self,
        caller: Caller,
        filed: FiledReport,
        category: str,
        what: str,
        targets: dict[str, object],
        *,
        native: FileReport | None,
        message: Message | None = None,
        unread: str = "",
    ) -> str:
        """What a member's report does once filed, about a message or a user: a duplicate is only
        answered; a new or joined one is audited (citing the message when it opens the report), filed
        in the moderation console (``native``, when there is one to file) and escalated when its
        reporters reach the threshold. ``unread`` is added to the thanks."""
        report = filed.report
        if filed.duplicate:
            return f"You already reported {what} (report #{report.id}); the moderators have it."
        self._audit.append_audit(
            actor=caller.user_id,
            action=actions.REPORT_FILED,
            targets={"report": report.id, **targets},
            reason={"category": category, "transport": caller.transport, "joined": not filed.created},
            evidence=[message] if message is not None and filed.created else [],
            retention_days=self._retention_days,
        )
        if filed.created and native is not None:
            await self._file_natively(report, native)
        if filed.escalated_now:
            await self._escalate(report, message)
        self._outbox.wake()
        return f"Thank you. Your report is #{report.id} ({category}); the moderators have been told." + unread

    async def _file_natively(self, report: ReportRow, filing: FileReport) -> None:
        # The member's report, not a moderation action: filed in a dry run too, and not audited
        # (the report.filed record above is its audit).
        result = await self._executor.execute(Action(filing, actor="rcmod", dry_run_applies=False))
        state = "filed" if result.done else result.code or result.status.value
        if not result.done:
            log.warning("report %d: native filing %s (%s)", report.id, result.status.value, state)
        self._reports.set_report_native(report.id, state)
        if report.alert_id is not None:
            self._alerts.bump_alert(report.alert_id)  # the DM shows whether it reached the console

    async def _escalate(self, report: ReportRow, message: Message | None) -> None:
        """N distinct reporters: severity is already raised in the store; optionally delete."""
        log.info("report %d escalated", report.id)
        if self._settings.escalate_action != "delete" or message is None:
            return
        # Evidence first: it was stored when the report was opened; keep the latest revision too.
        result = await self._executor.execute(
            Action(
                DeleteMessage(message.rid, message.id),
                actor="rule:report-escalation",
                audit=actions.MESSAGE_DELETED,
                targets={"message": message.id, "room": message.rid, "user": message.author.id},
                reason={"report": report.id, "escalated": True},
                evidence=(message,),
            )
        )
        if not result.acted:
            log.warning("report %d: escalation could not delete (%s)", report.id, result.code)

    async def _room(self, rid: str | None, name: str | None) -> Room | None:
        try:
            if rid:
                info = await self._rest.room_info(rid)
            elif name:
                info = await self._rest.room_by_name(name)
            else:
                return None
        except RcmodError:
            return Room(rid, name, None) if rid else None
        return Room(str(info.get("_id") or rid), info.get("name") or name, info.get("t"))

    # -- /mod reports, /mod resolve -----------------------------------------------------------------

    async def list_open(self, call: Call) -> str:
        reports = self._reports.open_reports()
        if not reports:
            return "No open reports."
        lines = [f"*{len(reports)} open report{'s' if len(reports) != 1 else ''}:*"]
        for r in reports:
            # Message ids are whatever the sender's client picked: quoted inert like any text.
            what = "user" if r.target_kind == "user" else f"message {inline_literal(r.mid or '')}"
            lines.append(
                f"#{r.id} · {r.category} · {what} by {inline_literal(r.author_username)} · "
                f"{len(r.reporters)} reporter{'s' if len(r.reporters) != 1 else ''}"
                + (" · escalated" if r.escalated else "")
                + _case_note(self._audit.case_number("report", r.id))
            )
        lines.append("Close one with `/mod resolve ID dismiss|delete [note]`.")
        return "\n".join(lines)

    async def resolve(self, call: Call) -> str:
        inv = call.invocation
        report_id, action, note = inv.number("id"), inv.text("action"), inv.text("note")
        report = self._reports.report(report_id)
        if report is None:
            return f"There is no report #{report_id}."
        if report.closed_at is not None:
            return f"Report #{report_id} is already closed ({report.outcome})."
        who = call.caller.username
        if action in ("purge", "block"):
            if self.enforce is None or not report.author_username:
                return f"`/mod resolve … {action}` is not available right now."
            reply = await self.enforce(action, report.author_username, report_id, who, call.caller.user_id)
            outcome = f"{'user blocked' if action == 'block' else 'purge previewed'} by {who}"
            if self._reports.close_report(report_id, outcome):
                self._audit.append_audit(
                    actor=call.caller.user_id,
                    action=actions.REPORT_RESOLVED,
                    targets={"report": report_id, "user": report.author_id},
                    reason={"action": action, "note_given": bool(note)},
                )
                self._outbox.wake()
                await self._tell_reporters(report, action)
            return reply
        if action == "delete":
            if report.target_kind != "message" or not report.mid or not report.rid:
                return f"Report #{report_id} is about a user, not a message; use dismiss."
            deleted = await self._delete_reported(report, call.caller.user_id, note)
            if isinstance(deleted, str):
                return deleted
            outcome_note = "" if deleted is Status.DONE else " (dry run: not deleted)"
        else:
            outcome_note = ""
        if report.target_kind == "message" and report.mid and report.native == "filed":
            # Closing it in Rocket.Chat's moderation console too: upkeep, audited as the resolution.
            change = DismissReports(report.mid, reason=note, action=action)
            dismissed = await self._executor.execute(Action(change, actor=call.caller.user_id))
            if not dismissed.acted:
                return f"Report #{report_id} stays open: the moderation console refused ({dismissed.code})."
        outcome = f"{'deleted' if action == 'delete' else 'dismissed'} by {who}{outcome_note}"
        if not self._reports.close_report(report_id, outcome):
            return f"Report #{report_id} is already closed."
        self._audit.append_audit(
            actor=call.caller.user_id,
            action=actions.REPORT_RESOLVED,
            targets={
                "report": report_id,
                **({"message": report.mid} if report.mid else {}),
                "user": report.author_id,
            },
            reason={"action": action, "note_given": bool(note)},
        )
        self._outbox.wake()
        await self._tell_reporters(report, action)
        case = self._audit.case_number("report", report_id)
        where = f" Audit case {case}." if case is not None else ""
        return f"Report #{report_id} closed: {outcome}. Its reporters have been told.{where}"

    async def _delete_reported(self, report: ReportRow, actor: str, note: str) -> Status | str:
        """``/mod resolve ID delete``: the reported message deleted, its evidence kept first.
        DONE (or gone already), DRY_RUN, or the reply when the server refused."""
        assert report.mid is not None
        try:
            message = await self._rest.get_message(report.mid)
        except NotFound:
            return Status.DONE  # already gone
        result = await self._executor.execute(
            Action(
                DeleteMessage(message.rid, message.id),
                actor=actor,
                audit=actions.MESSAGE_DELETED,
                targets={"message": message.id, "room": message.rid, "user": message.author.id},
                reason={"report": report.id, "note_given": bool(note)},
                evidence=(message,),
            )
        )
        if not result.acted:
            return f"I could not delete the message of report #{report.id} ({result.code}); it stays open."
        return result.status

    async def _tell_reporters(self, report: ReportRow, action: str) -> None:
        done = "the message was removed" if action == "delete" else "the moderators reviewed it"
        text = f"Your report #{report.id} ({report.category}) was handled: {done}. Thank you for reporting."
        for r in report.reporters:
            if r.user_id == NATIVE_REPORTER.user_id:
                continue  # reported in Rocket.Chat itself: the bot does not know who
            # The id follows from report and reporter: a retried resolution tells nobody twice.
            mid = derived_message_id(f"report-outcome:{report.id}:{r.user_id}")
            try:
                dm = await self._rest.dm_room(r.username)
            except RcmodError as exc:
                log.warning("report %d: reporter %s not told (%s)", report.id, r.user_id, type(exc).__name__)
                continue
            told = await self._executor.execute(Action(PostMessage(dm, text, mid=mid), actor="rcmod"))
            if not told.acted:
                log.warning("report %d: reporter %s not told (%s)", report.id, r.user_id, told.code)

    # -- native reports (Rocket.Chat's own "Report" message action) -------------------------------

    async def poll_native(self) -> int:
        """One pass over the moderation console: open a report (and DM the moderators) for each
        reported message the bot has not taken yet, and close the bot's copy of reports dismissed
        in the console. Returns how many reports were opened or closed.

        moderation.reportsByUsers lists each reported user once and names only their first-filed
        report, so further messages of a listed user would never show there: each listed user's
        reported messages are read in full (moderation.user.reportedMessages). A message is taken
        once: the store's report for it is the mark, and survives restarts.
        """
        # Taken before reading the console: a report the bot files meanwhile is then not taken
        # for one dismissed there.
        natively_open = [
            r
            for r in self._reports.open_reports(limit=1000)
            if r.target_kind == "message" and (r.native == "filed" or r.source == "native")
        ]
        groups = await self._rest.reports_by_users()
        reported: dict[str, dict[str, dict[str, Any]]] = {}  # user id -> message id -> report
        complete: set[str] = set()  # users whose every reported message is known
        for group in groups:
            uid = group.get("userId")
            if not isinstance(uid, str) or not uid:
                continue
            try:
                entries = await self._rest.user_reported_messages(uid)
                complete.add(uid)
            except NotFound:  # a server without the route: the group's one message is all we know
                entries = [_entry_from_group(group)] if isinstance(group.get("msgId"), str) else []
            reported[uid] = {str(e["message"]["_id"]): e for e in entries}
        changed = 0
        for report in natively_open:
            listed = reported.get(report.author_id)
            if listed is not None and (report.mid in listed or report.author_id not in complete):
                continue
            outcome = "dismissed in Rocket.Chat's moderation console"
            if self._reports.close_report(report.id, outcome):
                self._audit.append_audit(
                    actor="rocketchat:moderation-console",
                    action=actions.REPORT_RESOLVED,
                    targets={"report": report.id, "message": report.mid, "user": report.author_id},
                    reason={"action": "dismiss", "where": "moderation console"},
                )
                changed += 1
        for uid, entries_by_mid in reported.items():
            for mid, entry in entries_by_mid.items():
                if not self._taken(mid, entry):
                    changed += await self._take_native(entry, mid, uid)
        if changed:
            self._outbox.wake()
        return changed

    def _taken(self, mid: str, entry: dict[str, Any]) -> bool:
        """Whether this console report is already the bot's: a report of the message is open, or
        was closed after the console's newest report of it (one filed later is a new report)."""
        existing = self._reports.report_for_target(f"message:{mid}")
        if existing is None:
            return False
        if existing.closed_at is None:
            return True
        try:
            reported_at = parse_date(entry.get("ts"), "ts").timestamp()
        except MalformedPayload:
            return True  # cannot tell: better one report too few than the same one repeated
        return reported_at <= existing.closed_at

    async def _take_native(self, entry: dict[str, Any], mid: str, uid: str) -> int:
        snapshot: dict[str, Any] = entry.get("message") or {}
        message: Message | None = None
        # Deleted meanwhile, or a room the bot cannot read: the console kept a copy when it
        # was reported, and that copy is the evidence.
        with contextlib.suppress(ActionRefused):
            message = await self._rest.get_message(mid)
        if message is None:
            with contextlib.suppress(MalformedPayload):
                message = Message.from_wire(snapshot) if snapshot.get("rid") else None
        found_room = entry.get("room")
        reported_room: dict[str, Any] = found_room if isinstance(found_room, dict) else {}
        rid = message.rid if message else str(reported_room.get("_id") or "")
        room = await self._room(rid or None, None) or Room(
            rid, reported_room.get("name") or None, str(reported_room.get("t") or "") or None
        )
        text = " ".join(message.scannable_texts()) if message else str(snapshot.get("msg") or "")
        excerpt = inline_literal(text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")) if text else None
        found_author = snapshot.get("u")
        author_doc: dict[str, Any] = found_author if isinstance(found_author, dict) else {}
        author = UserRef(uid, str(author_doc.get("username") or "unknown"))
        filed = self._reports.file_report(
            {
                "target_kind": "message",
                "target_key": f"message:{mid}",
                "mid": mid,
                "rid": room.id,
                "room_name": room.name,
                "room_type": room.type,
                "author_id": uid,
                "author_username": author.username,
                "category": "other",
                "source": "native",
                "native": "filed",
            },
            reporter=NATIVE_REPORTER,
            recipients=await self._outbox.recipients(Moderators(), room, author),
            alert={
                "severity": severity_for("other"),
                "message_ts": message.ts.timestamp() if message else self._clock(),
                "excerpt": excerpt,
            },
            escalate_at=self._settings.escalate_at + 1,  # one entry stands for any number of reporters
            new_dm_id=new_message_id,
        )
        self._audit.append_audit(
            actor="rocketchat:report-action",
            action=actions.REPORT_FILED,
            targets={"report": filed.report.id, "message": mid, "room": room.id, "user": uid},
            reason={"category": "other", "transport": "moderation console"},
            evidence=[message] if message is not None else [],
            retention_days=self._retention_days,
        )
        return 1

    async def run_native_poll(self, interval: float) -> None:
        """Background loop; a missing permission is logged once per change, never fatal."""
        refused = False
        while True:
            try:
                await self.poll_native()
                refused = False
            except ActionRefused as exc:
                if not refused:
                    log.warning(
                        "cannot read the moderation console (%s): give the bot view-moderation-console",
                        exc.code or type(exc).__name__,
                    )
                refused = True
            except RcmodError as exc:
                log.warning("moderation console poll failed (%s); will retry", type(exc).__name__)
            await asyncio.sleep(interval)

    # -- the moderators' DM, for the outbox ----------------------------------------------------

    def render(self, delivery: Delivery) -> str:
        report = self._reports.report_for_alert(delivery.alert_id)
        alert = delivery.alert
        if report is None:  # cannot happen: the report and its alert are written together
            return f"rcmod report (alert {delivery.alert_id})"
        has_room = report.rid or report.room_name
        room = Room(report.rid or "", report.room_name, report.room_type) if has_room else None
        view = ReportView(
            id=report.id,
            target_kind=report.target_kind,
            category=report.category,
            severity=alert.severity,
            room=room,
            mid=report.mid,
            author_username=report.author_username,
            reporters=tuple(
                "anonymous" if r.anonymous and self._settings.allow_anonymous else r.username
                for r in report.reporters
            ),
            excerpt=alert.excerpt or None,
            native=report.native,
            escalated=report.escalated,
            opened_at=datetime.fromtimestamp(report.opened_at, UTC),
            outcome=delivery.outcome or None,
        )
        return render_report(view, site_url=self._site_url())


def _native_text(category: str, description: str) -> str:
    """What the moderation console shows: the category and the reporter's words, made inert."""
    text = (
        f"[{category}] {neutralize(description)}".strip()
        if description
        else f"[{category}] reported via rcmod"
    )
    return text[:1000]


NATIVE_REPORTER = Reporter(
    "rocketchat:report-action", "a member (Rocket.Chat's Report action)", False, "other", 0
)


def _entry_from_group(group: dict[str, Any]) -> dict[str, Any]:
    """A reportsByUsers group in the shape of a reportedMessages entry (its one named message)."""
    rooms = group.get("rooms")
    room = rooms[0] if isinstance(rooms, list) and rooms and isinstance(rooms[0], dict) else {}
    return {
        "message": {
            "_id": group.get("msgId"),
            "msg": group.get("message") or "",
            "u": {"_id": group.get("userId"), "username": group.get("username")},
        },
        "room": room,
        "ts": group.get("ts"),
    }


def _case_note(case: int | None) -> str:
    """The audit case number, which `rcmod audit export|hold --case N` takes."""
    return f" · audit case {case}" if case is not None else ""
