"""``/mod`` handlers: the I/O behind each declared moderator command.

Each handler gets a parsed, permitted :class:`~bot.commands.handlers.dispatch.Call` and returns the reply; the
declarations (:mod:`bot.commands.spec`) own the grammar and the minimum privilege. Every change
a moderator makes is audited with the moderator's user id as the actor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping

from bot.audit import actions
from bot.commands import MessageRef, RoomName, UserName, render_help
from bot.commands.handlers.dispatch import Call, Handler, not_done
from bot.errors import NotFound, RcmodError
from bot.moderation import Matcher
from bot.moderation.actions import Action, AddRoomModerator, DeleteMessage
from bot.moderation.explain import explain, format_explanation
from bot.moderation.neutralize import inline_literal
from bot.rest import RestClient
from bot.services.executor import Act, Status
from bot.services.outbox import Outbox
from bot.services.reports import ReportDesk
from bot.store.alerts import AlertLedger
from bot.store.audit import AuditLog
from bot.store.lists import ChatListEdit, ChatLists
from bot.store.messages import MessageLog
from bot.store.reports import ReportLedger
from bot.store.state import BotState

__all__ = ["DRY_RUN_KEY", "ModCommands"]

log = logging.getLogger("rcmod.mod")

DRY_RUN_KEY = "dry_run"
ALLOW_LIST = "runtime-allow"
_LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class ModCommands:
    def __init__(
        self,
        *,
        audit: AuditLog,
        alerts: AlertLedger,
        reports: ReportLedger,
        messages: MessageLog,
        state: BotState,
        rest: RestClient,
        executor: Act,
        outbox: Outbox,
        desk: ReportDesk,
        matcher: Callable[[], Matcher | None],
        reload: Callable[[], Awaitable[bool]],
        readiness: Callable[[], Mapping[str, bool]],
        retention_days: int,
        forget_lookups: Callable[[str], None],  # the dispatcher's cache (roles:RID after /mod appoint)
        lists: ChatLists,
        edit_list: Callable[[ChatListEdit], Awaitable[bool]],
        more_status: Callable[[], list[str]] = list,
    ) -> None:
        self._more_status = more_status
        self._audit = audit
        self._alerts = alerts
        self._reports = reports
        self._messages = messages
        self._state = state
        self._rest = rest  # reads only: every change goes through the executor
        self._executor = executor
        self._outbox = outbox
        self._desk = desk
        self._matcher = matcher
        self._reload = reload
        self._readiness = readiness
        self._retention_days = retention_days
        self._forget_lookups = forget_lookups
        self._lists = lists
        self._edit = edit_list

    def handlers(self) -> dict[str, Handler]:
        return {
            "report": self._desk.report,
            "mod help": self.help,
            "mod status": self.status,
            "mod test": self.test,
            "mod reports": self._desk.list_open,
            "mod resolve": self._desk.resolve,
            "mod delete": self.delete,
            "mod dismiss": self.dismiss,
            "mod allow": self.allow,
            "mod deny": self.deny,
            "mod reload": self.reload,
            "mod appoint": self.appoint,
            "mod dryrun": self.dryrun,
        }

    async def help(self, call: Call) -> str:
        topic = call.invocation.get("command")
        return render_help(call.privilege, topic if isinstance(topic, str) else None)

    async def status(self, call: Call) -> str:
        checks = self._readiness()
        matcher = self._matcher()
        lists = (
            f"{len(matcher.lists)} lists, {matcher.term_count} terms" if matcher else "no wordlists loaded"
        )
        encrypted = self._alerts.unscannable_rooms()
        failed = self._alerts.failed_deliveries()
        lines = [
            "*rcmod status*",
            "Connection: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()),
            f"Lists: {lists}",
            f"Rooms watched: {len(self._messages.room_cursors())}",
            f"Encrypted rooms (unscannable): {len(encrypted)}"
            + (f", {sum(encrypted.values())} messages not scanned" if encrypted else ""),
            f"Open reports: {self._reports.open_report_count()}",
            f"Queued alert DMs: {self._alerts.pending_deliveries()}"
            + (
                f"; undeliverable (refused by the server): {self._alerts.undeliverable_count()} — "
                + ", ".join(f"to {inline_literal(r)}: {inline_literal(why)}" for r, why in failed)
                if failed
                else ""
            ),
            f"Dry run: {'on' if self._executor.dry_run() else 'off'}",
            *self._more_status(),
        ]
        return "\n".join(lines)

    async def test(self, call: Call) -> str:
        matcher = self._matcher()
        if matcher is None:
            return "No wordlists are loaded, so nothing matches."
        text = call.invocation.text("text")
        room = call.caller.room_name
        # The explanation quotes the moderator's own test text; shown as a code block, it cannot ping.
        body = format_explanation(explain(matcher, text, room)).replace("`", "ˋ").replace("@", "＠")
        return f"```\n{body}\n```"

    async def delete(self, call: Call) -> str:
        ref = call.invocation.get("msgid")
        assert isinstance(ref, MessageRef)
        reason = call.invocation.text("reason")
        try:
            message = await self._rest.get_message(ref.mid)
        except NotFound:
            return f"I found no message `{ref.mid}` (already deleted?)."
        # Evidence first (the executor's order): once chat.delete succeeds the text is gone.
        result = await self._executor.execute(
            Action(
                DeleteMessage(message.rid, message.id),
                actor=call.caller.user_id,
                audit=actions.MESSAGE_DELETED,
                targets={"message": message.id, "room": message.rid, "user": message.author.id},
                reason={"command": "mod delete", "reason_given": bool(reason)},
                evidence=(message,),
            )
        )
        if result.status is Status.DRY_RUN:
            return f"Dry run: message `{message.id}` would be deleted (recorded, not deleted)."
        if not result.done:
            return not_done(result)
        return f"Deleted message `{message.id}`; its evidence is kept."

    async def dismiss(self, call: Call) -> str:
        alert_id = call.invocation.number("alert")
        kind = self._alerts.alert_kind(alert_id)
        if kind is None:
            return f"There is no alert {alert_id}."
        if kind == "report":
            return (
                f"Alert {alert_id} is a report; close it with `/mod resolve ID dismiss` (see `/mod reports`)."
            )
        if not self._alerts.resolve_alert(alert_id, f"dismissed by {call.caller.username}"):
            return f"Alert {alert_id} was already closed."
        self._audit.append_audit(
            actor=call.caller.user_id,
            action=actions.ALERT_DISMISSED,
            targets={"alert": alert_id},
            reason={"command": "mod dismiss"},
        )
        self._outbox.wake()  # every moderator's copy is edited to show the outcome
        return f"Alert {alert_id} dismissed; every moderator's copy will say so."

    async def allow(self, call: Call) -> str:
        return await self._edit_list(call, ALLOW_LIST, call.invocation.text("term"), allow=True)

    async def deny(self, call: Call) -> str:
        name = call.invocation.text("list").lower()
        if not _LIST_NAME.match(name) or name == ALLOW_LIST:
            return "LIST must be a short name of letters, digits, - or _ (for example `runtime`)."
        return await self._edit_list(call, name, call.invocation.text("term"), allow=False)

    async def _edit_list(self, call: Call, name: str, term: str, *, allow: bool) -> str:
        """Add the term to a chat-edited list, kept in the store (shared by every instance) and
        audited there; the lists are compiled with it before it is stored, so a bad term can never
        leave the bot without its lists."""
        term = " ".join(term.split())
        if not term or term.startswith("#") or len(term) > 200:
            return "TERM must be 1 to 200 characters and not start with #."
        if self._lists.has_term(name, term):
            return f"{inline_literal(term)} is already in list {inline_literal(name)}."
        edit = ChatListEdit(
            name=name,
            term=term,
            actor=call.caller.user_id,
            op="allow" if allow else "deny",
            options='kind = "allow"\n' if allow else None,
        )
        if not await self._edit(edit):
            return f"That edit would break the lists, so it was not made (see the log for why). List: {name}."
        what = "never matches" if allow else "is now matched (alerts)"
        return f"{inline_literal(term)} {what}: list {inline_literal(name)}, reloaded."

    async def reload(self, call: Call) -> str:
        ok = await self._reload()
        if not ok:
            return "The wordlists have an error; the current lists stay in use (the log names file and line)."
        matcher = self._matcher()
        count = f"{len(matcher.lists)} lists, {matcher.term_count} terms" if matcher else "no lists"
        return f"Wordlists reloaded: {count}."

    async def appoint(self, call: Call) -> str:
        user, room = call.invocation.get("user"), call.invocation.get("room")
        assert isinstance(user, UserName) and isinstance(room, RoomName)
        try:
            info = await self._rest.user_info(username=user.username)
            target = await self._rest.room_by_name(room.name)
        except NotFound:
            where = inline_literal("#" + room.name)
            return f"I found no user {inline_literal(user.username)} or no room {where}."
        except RcmodError:
            return f"I cannot see {inline_literal('#' + room.name)} (is the bot in it?)."
        rid, kind = str(target["_id"]), str(target.get("t") or "c")
        if kind not in ("c", "p"):
            return "Moderators can be appointed in channels and private groups only."
        result = await self._executor.execute(
            Action(
                AddRoomModerator(rid, kind, str(info["_id"])),
                actor=call.caller.user_id,
                audit=actions.MODERATOR_APPOINTED,
                targets={"user": str(info["_id"]), "room": rid},
                reason={"command": "mod appoint"},
            )
        )
        who, where = inline_literal(user.username), inline_literal("#" + room.name)
        if result.status is Status.DRY_RUN:
            return f"Dry run: {who} would be made a moderator of {where} (recorded, not done)."
        if not result.done:
            return not_done(result)
        self._forget_lookups(f"roles:{rid}")
        return f"{who} is now a moderator of {where}."

    async def dryrun(self, call: Call) -> str:
        state = call.invocation.text("state")
        self._state.state_set(DRY_RUN_KEY, state)
        self._audit.append_audit(
            actor=call.caller.user_id, action=actions.DRY_RUN_CHANGED, targets={}, reason={"dry_run": state}
        )
        if state == "on":
            return "Dry run is on: deletions are recorded, not carried out."
        return "Dry run is off: deletions are carried out."
