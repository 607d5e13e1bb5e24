"""`/mod block`, `/mod unblock`, `/mod purge`, `/mod confirm` and `/mod policy`: the chat front of
the enforcer, the purger and the policy keeper. Declared in :mod:`bot.commands.spec`; the
dispatcher has parsed the arguments and checked the declared privilege before a handler runs
(purges additionally check every room they touch, inside the purger)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.commands.handlers.dispatch import Call, Caller, Handler
from bot.commands.parser import RoomName, UserName
from bot.errors import ConfigError, RcmodError
from bot.models import Actor
from bot.moderation.neutralize import inline_literal
from bot.moderation.policy import PolicyError, PolicyVersion, Targets
from bot.moderation.purge import PurgeRequest, PurgeUsageError, parse_scope
from bot.rest import RestClient
from bot.services.enforcement import Enforcer
from bot.services.executor import Act
from bot.services.policies import PolicyKeeper
from bot.services.purge import DmProgress, Plan, Purger

__all__ = ["EnforcementCommands"]


class EnforcementCommands:
    def __init__(
        self,
        *,
        enforcer: Callable[[], Enforcer | None],
        purger: Purger,
        policies: Callable[[], PolicyKeeper | None],
        rest: RestClient,
        executor: Act,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._enforcer = enforcer
        self._purger = purger
        self._policies = policies
        self._rest = rest
        self._executor = executor
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

    async def for_report(self, action: str, username: str, report_id: int, actor: str, actor_id: str) -> str:
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
            plan = await self._purger.prepare(request, actor=Actor(actor_id or actor, actor))
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
            caller = call.caller
            plan = await self._purger.prepare(
                request, actor=Actor(caller.user_id or caller.username, caller.username)
            )
        except (PurgeUsageError, ConfigError) as exc:
            return f"{exc}\nUsage: `{inv.command.usage}`"
        # In dry-run mode (/mod dryrun on) a purge is only ever previewed.
        dry = "dry-run" in inv.flags or self._executor.dry_run()
        if dry:
            self._purger.decline(plan.job_id, dry_run=True)
        return _preview_reply(plan, dry_run=dry)

    async def confirm(self, call: Call) -> str:
        job_id = call.invocation.number("job")
        job = self._purger.job(job_id)
        # Only the moderator whose privileges the preview was checked against may run it.
        if job is None or job.actor != call.caller.user_id:
            return f"No purge {job_id} of yours is waiting for confirmation."
        try:
            result = await self._purger.run(
                job_id,
                token=call.invocation.text("token") or None,
                progress=DmProgress(self._executor, self._rest, call.caller.username, clock=self._clock),
            )
        except (PurgeUsageError, ConfigError) as exc:
            return str(exc)
        if result.dry_run:
            return f"Purge {job_id}: dry-run mode is on, so it stopped; {result.deleted} message(s) deleted."
        outcome = "done" if result.ok else f"{result.failed} could not be deleted"
        done = f"{result.deleted} of {result.total} message(s) deleted"
        return f"Purge {job_id}: {done}, evidence kept ({outcome})."

    async def policy(self, call: Call) -> str:
        keeper = self._policies()
        if keeper is None:
            return "Policies are not available right now."
        inv = call.invocation
        action = str(inv.get("action"))
        name, rest = inv.text("name"), inv.text("text")
        usage = f"Usage: `{_POLICY_USAGE[action]}`"
        if bool(name) != (action not in ("list", "sync")) or (rest and action not in ("set", "rooms")):
            return usage
        try:
            if action == "list":
                versions = keeper.list_policies()
                lines = [
                    f"- {inline_literal(v.name)} v{v.version} ({v.source}): {_targets(v)}" for v in versions
                ]
                return "\n".join(lines) or "No policies."
            if action == "show":
                v = keeper.show(name)
                head = f"{inline_literal(v.name)} v{v.version} ({v.source}) → {_targets(v)}"
                return f"{head}{_file_note(keeper, v)}:\n{v.spec.text}"
            if action == "sync":
                return "\n".join((await keeper.sync(dry_run=False)).lines())
            return await self._policy_change(keeper, call.caller, action, name, rest, usage)
        except PolicyError as exc:
            return f"{exc}. Nothing was changed." if action in ("set", "rooms", "remove") else str(exc)

    async def _policy_change(
        self, keeper: PolicyKeeper, caller: Caller, action: str, name: str, rest: str, usage: str
    ) -> str:
        """set, rooms, remove: a new version (audited by the keeper, which requests a sync)."""
        policy = inline_literal(name)
        if action == "set":
            if not rest:
                return (
                    f"{usage} — the text is required. For Markdown over several lines, DM me "
                    f"{inline_literal('mod policy set ' + name)} with the text on the lines below it."
                )
            v = keeper.set_policy(name, rest, actor=caller.username, actor_id=caller.user_id)
            where = (
                f"it goes to {_targets(v)}"
                if _has_targets(v)
                else f"it targets no rooms yet: `/mod policy rooms {name} #room ...|*` pins it"
            )
            return f"Policy {policy} v{v.version} saved ({len(v.spec.text)} characters); {where}.{_SYNCING}"
        if action == "rooms":
            before = keeper.show(name)  # no such policy: said before any room is looked up
            targets = await self._policy_targets(rest)
            if isinstance(targets, str):
                return f"{targets}\n{usage}"
            v = keeper.set_rooms(name, targets, actor=caller.username, actor_id=caller.user_id)
            was = f"(before: {_targets(before)})"
            return f"Policy {policy} v{v.version} now goes to {_targets(v)} {was}.{_SYNCING}"
        v = keeper.remove(name, actor=caller.username, actor_id=caller.user_id)
        return f"Policy {policy} removed (v{v.version}); its messages get unpinned.{_SYNCING}"

    async def _policy_targets(self, words: str) -> Targets | str:
        """``#room ...`` and/or ``*`` (every public channel) as Targets, each room checked to exist
        and be visible to the bot — or what is wrong. Names are kept as the server spells them."""
        rooms: list[str] = []
        everywhere = False
        unknown: list[str] = []
        for word in words.split():
            if word == "*":
                everywhere = True
                continue
            if not word.startswith("#") or len(word) == 1 or any(c in word[1:] for c in "#@"):
                return f"Expected #room or *, not {inline_literal(word[:100])}."
            try:
                info = await self._rest.room_by_name(word[1:])
            except RcmodError:
                unknown.append(word[:100])
                continue
            if info.get("t") not in ("c", "p"):
                unknown.append(word[:100])
            elif str(info.get("name") or word[1:]) not in rooms:
                rooms.append(str(info.get("name") or word[1:]))
        if unknown:
            shown = ", ".join(inline_literal(u) for u in unknown)
            return f"I cannot see {shown} (no such room, or a private one I am not in). Nothing was changed."
        if not rooms and not everywhere:
            return "Which rooms? Name them (#room ...) or give * for every public channel."
        return Targets(rooms=tuple(rooms), all_public=everywhere)


def _preview_reply(plan: Plan, *, dry_run: bool) -> str:
    """The preview, then how to go on: nothing (a dry run) or the exact confirm command."""
    token = plan.token if plan.needs_token else None
    preview = plan.preview.render(plan.request, token=token, dry_run=dry_run)
    if dry_run:
        return f"{preview}\nDry run: nothing was deleted."
    return (
        f"{preview}\nTo run it: `/mod confirm {plan.job_id}{' ' + token if token else ''}` (within an hour)."
    )


_POLICY_USAGE = {
    "list": "/mod policy list",
    "show": "/mod policy show NAME",
    "set": "/mod policy set NAME TEXT",
    "rooms": "/mod policy rooms NAME #room ...|*",
    "remove": "/mod policy remove NAME",
    "sync": "/mod policy sync",
}
_SYNCING = " Syncing in the background; `/mod policy sync` then reports any room where it fails."


def _has_targets(v: PolicyVersion) -> bool:
    t = v.spec.targets
    return bool(t.rooms or t.all_public or t.pattern)


def _targets(v: PolicyVersion) -> str:
    t = v.spec.targets
    parts = [inline_literal(f"#{r}") for r in t.rooms]
    if t.all_public:
        parts.append("every public channel")
    if t.pattern:
        parts.append(f"rooms matching {inline_literal(t.pattern)}")
    return ", ".join(parts) or "no rooms"


def _file_note(keeper: PolicyKeeper, v: PolicyVersion) -> str:
    """The conflict between a policy file and chat, whichever side of the sync we are on: a
    chat-set policy that a file now also defines, or a file version that replaced one."""
    if v.source == "command" and keeper.file_for(v.name) is not None:
        return f" (the file {v.name}.md also defines it and wins at the next sync)"
    earlier = [h for h in keeper.history(v.name) if h.version < v.version]
    if v.source == "file" and earlier and earlier[-1].source == "command" and not earlier[-1].removed:
        by = inline_literal(earlier[-1].created_by or "?")
        return f" (the file {v.name}.md replaced v{earlier[-1].version}, set in chat by {by})"
    return ""
