"""`/mod block`, `/mod unblock`, `/mod purge`, `/mod confirm` and `/mod policy`: the chat front of
the enforcer, the purger and the policy keeper. Declared in :mod:`bot.commands.spec`; the
dispatcher has parsed the arguments and checked the declared privilege before a handler runs
(purges additionally check every room they touch, inside the purger)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.commands.parser import RoomName, UserName
from bot.dispatch import Call, Handler
from bot.enforcer import Enforcer
from bot.errors import ConfigError, RcmodError
from bot.moderation.neutralize import inline_literal
from bot.moderation.policy import PolicyError
from bot.moderation.purge import PurgeRequest, PurgeUsageError, parse_scope
from bot.policies import PolicyKeeper
from bot.purger import Actor, DmProgress, Plan, Purger
from bot.rest import RestClient

__all__ = ["EnforcementCommands"]


class EnforcementCommands:
    def __init__(
        self,
        *,
        enforcer: Callable[[], Enforcer | None],
        purger: Purger,
        policies: Callable[[], PolicyKeeper | None],
        rest: RestClient,
        dry_run: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._enforcer = enforcer
        self._purger = purger
        self._policies = policies
        self._rest = rest
        self._dry_run = dry_run
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            "mod block": self.block,
            "mod unblock": self.unblock,
            "mod purge": self.purge,
            "mod confirm": self.confirm,
            "mod policy": self.policy,
        }

    async def _block_target(self, call: Call) -> tuple[Enforcer, str, str | None, str] | str:
        """(enforcer, username, rid or None for everywhere, label) — or the reply to give instead."""
        enforcer = self._enforcer()
        user = call.invocation.get("user")
        room = call.invocation.get("room")
        if enforcer is None or not isinstance(user, UserName):
            return "Blocking is not available right now."
        if call.invocation.get("scope") == "everywhere":
            return enforcer, user.username, None, "everywhere"
        if not isinstance(room, RoomName):
            return f"Say where: `/{call.invocation.command.name} @user #room` or `... everywhere`."
        try:
            rid = str((await self._rest.room_by_name(room.name))["_id"])
        except RcmodError:
            return f"I cannot see a room {inline_literal('#' + room.name)}."
        return enforcer, user.username, rid, f"in #{room.name}"

    async def block(self, call: Call) -> str:
        target = await self._block_target(call)
        if isinstance(target, str):
            return target
        enforcer, username, rid, label = target
        try:
            line = await enforcer.block_user(
                username,
                rid=rid,
                reason=call.invocation.text("reason") or "no reason given",
                actor=call.caller.username,
                deactivate="deactivate" in call.invocation.flags,
                confirmed="confirm" in call.invocation.flags,
            )
        except (PurgeUsageError, ConfigError) as exc:
            return str(exc)
        except RcmodError:
            return f"I could not block {inline_literal(username)} {label} (the server refused)."
        return str(line)

    async def unblock(self, call: Call) -> str:
        target = await self._block_target(call)
        if isinstance(target, str):
            return target
        enforcer, username, rid, label = target
        try:
            lifted = await enforcer.unblock_user(username, rid=rid, actor=call.caller.username)
        except (PurgeUsageError, ConfigError) as exc:
            return str(exc)
        name = inline_literal(username)
        return f"Unblocked {name} {label}." if lifted else f"{name} was not blocked {label}."

    async def for_report(self, action: str, username: str, report_id: int, actor: str) -> str:
        """`/mod resolve ID block|purge`: block the reported user everywhere, or preview a purge of
        their messages everywhere (confirmed with `/mod confirm`, like any purge). The resolve
        command's own privilege (bot moderator) is what everywhere needs."""
        if action == "block":
            enforcer = self._enforcer()
            if enforcer is None:
                return "Blocking is not available right now."
            try:
                return str(
                    await enforcer.block_user(username, rid=None, reason=f"report #{report_id}", actor=actor)
                )
            except (PurgeUsageError, ConfigError) as exc:
                return str(exc)
        request = PurgeRequest(kind="user", target=username, everywhere=True)
        try:
            plan = await self._purger.prepare(request, actor=Actor(actor))
        except (PurgeUsageError, ConfigError) as exc:
            return str(exc)
        return _preview_reply(plan, dry_run=False)

    async def purge(self, call: Call) -> str:
        inv = call.invocation
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        try:
            rooms, everywhere, since, until = parse_scope(inv.text("scope").split(), now)
            request = PurgeRequest(
                kind="user" if inv.get("kind") == "user" else "term",
                target=inv.text("target").lstrip("@"),
                rooms=rooms,
                everywhere=everywhere,
                since=since,
                until=until,
                include_pinned="include-pinned" in inv.flags,
                threads="purge" if "purge-threads" in inv.flags else "keep",
            )
            plan = await self._purger.prepare(request, actor=Actor(call.caller.username))
        except (PurgeUsageError, ConfigError) as exc:
            return f"{exc}\nUsage: `{inv.command.usage}`"
        dry = "dry-run" in inv.flags or self._dry_run()
        if dry:
            self._purger.decline(plan.job_id, dry_run=True)
        return _preview_reply(plan, dry_run=dry)

    async def confirm(self, call: Call) -> str:
        job_id = call.invocation.number("job")
        job = self._purger.job(job_id)
        # Only the moderator whose privileges the preview was checked against may run it.
        if job is None or job.actor != call.caller.username:
            return f"No purge {job_id} of yours is waiting for confirmation."
        try:
            result = await self._purger.run(
                job_id,
                token=call.invocation.text("token") or None,
                progress=DmProgress(self._rest, call.caller.username, clock=self._clock),
            )
        except (PurgeUsageError, ConfigError) as exc:
            return str(exc)
        outcome = "done" if result.ok else f"{result.failed} could not be deleted"
        done = f"{result.deleted} of {result.total} message(s) deleted"
        return f"Purge {job_id}: {done}, evidence kept ({outcome})."

    async def policy(self, call: Call) -> str:
        keeper = self._policies()
        if keeper is None:
            return "Policies are not configured (set policy.dir / RCMOD_POLICY_DIR)."
        action = call.invocation.get("action")
        name = call.invocation.text("name")
        try:
            if action == "list":
                versions = keeper.list_policies()
                if not versions:
                    return "No policies."
                return "\n".join(f"- {inline_literal(v.name)} v{v.version} ({v.source})" for v in versions)
            if action == "show":
                if not name:
                    return "Usage: `/mod policy show NAME`"
                v = keeper.show(name)
                return f"{inline_literal(v.name)} v{v.version} ({v.source}):\n{v.spec.text}"
            report = await keeper.sync(dry_run=False)
            return "\n".join(report.lines())
        except PolicyError as exc:
            return str(exc)


def _preview_reply(plan: Plan, *, dry_run: bool) -> str:
    """The preview, then how to go on: nothing (a dry run) or the exact confirm command."""
    token = plan.token if plan.needs_token else None
    preview = plan.preview.render(plan.request, token=token, dry_run=dry_run)
    if dry_run:
        return f"{preview}\nDry run: nothing was deleted."
    return (
        f"{preview}\nTo run it: `/mod confirm {plan.job_id}{' ' + token if token else ''}` (within an hour)."
    )
