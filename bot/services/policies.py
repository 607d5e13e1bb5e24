"""Policy announcements: the I/O shell around :mod:`bot.moderation.policy`.

The keeper reads policy files into stored versions, reads the server's actual state (pinned
messages, room announcements), asks the pure reconciler for a plan and carries it out: post and
pin, re-pin, retire old versions, set the banner. Every room is handled on its own, so a room the
bot may not post in, a missing permission or a disabled setting is reported for that room and the
others are still reconciled. It runs at startup, periodically, when the bot joins a room, when a
policy message is unpinned or a banner is edited (both repaired, and moderators told who), and on
demand (``rcmod policy sync``, and the ``/mod policy`` commands through the public methods below).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.audit import actions as audit_actions
from bot.errors import ActionRefused, NotFound, RcmodError
from bot.models import Room, UserRef
from bot.moderation import actions as server
from bot.moderation.alerts import Alert
from bot.moderation.neutralize import inline_literal
from bot.moderation.policy import (
    Action,
    JoinRoom,
    PinPolicy,
    Plan,
    PolicyError,
    PolicySpec,
    PolicyVersion,
    PostedPolicy,
    PostPolicy,
    RetirePolicyMessage,
    RoomProblem,
    RoomState,
    SetBanner,
    Targets,
    describe,
    desired_banner,
    parse_policy_file,
    reconcile,
    resolve_targets,
    room_name,
    validate_spec,
)
from bot.realtime.events import Event, MessageEvent, SubscriptionChanged, SystemMessage
from bot.rest import RestClient
from bot.rest.client import derived_message_id, new_message_id
from bot.rest.errors import READ_ONLY_CODE
from bot.services.executor import Act
from bot.services.outbox import Notice, Outbox
from bot.store.audit import AuditLog
from bot.store.policies import PolicyStore

__all__ = [
    "Notify",
    "PolicyKeeper",
    "PolicyNotice",
    "SyncReport",
    "outbox_notify",
    "read_policy_dir",
]

log = logging.getLogger("rcmod.policies")

# Audit action for a policy set, re-targeted or removed from chat (or refused because a file
# defines it). Belongs in bot.audit.actions' vocabulary next to POLICY_PINNED; kept here until
# it moves there.


@dataclass(frozen=True, slots=True)
class PolicyNotice:
    """Something moderators must hear about: who unpinned a policy or changed a banner."""

    text: str  # already inert: every name in it is quoted with inline_literal
    key: str  # one notice per event, however many times it is seen
    rid: str
    room_name: str | None
    actor_id: str
    actor_username: str


Notify = Callable[[PolicyNotice], Awaitable[None]]
NOTICE_KIND = "policy"


def outbox_notify(outbox: Outbox) -> Notify:
    """Deliver notices through the persisted outbox, to the default moderators (the one who
    acted excluded), exactly once like an alert."""
    outbox.register_renderer(
        NOTICE_KIND, lambda d: d.alert.excerpt or "rcmod policy notice (details expired)"
    )

    async def notify(notice: PolicyNotice) -> None:
        alert = Alert(
            kind=NOTICE_KIND,
            key=f"{NOTICE_KIND}|{notice.key}",
            list=NOTICE_KIND,
            term=notice.key,
            mid=notice.key,
            room=Room(notice.rid, notice.room_name),
            author=UserRef(notice.actor_id, notice.actor_username),
            excerpt=notice.text,
            severity="medium",
        )
        await outbox.notify(Notice(alert, window=0.0))

    return notify


@dataclass
class SyncReport:
    """What one reconciliation planned, did and could not do."""

    plan: Plan = field(default_factory=Plan)
    done: list[str] = field(default_factory=list)
    problems: list[RoomProblem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.dry_run:
            out += [f"would {describe(a)}" for a in self.plan.actions] or ["nothing to do"]
        else:
            out += self.done or ["nothing to do"]
        out += [f"problem: {p}" for p in self.problems]
        out += [f"notice: {n}" for n in self.notices]
        return out


def read_policy_dir(folder: Path) -> tuple[dict[str, PolicySpec], list[RoomProblem]]:
    """Every ``NAME.md`` in ``folder``: the specs that parse, and one problem per file that does
    not (the other files still count)."""
    specs: dict[str, PolicySpec] = {}
    problems: list[RoomProblem] = []
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            content = path.read_text(encoding="utf-8")
            specs[path.stem] = parse_policy_file(path.stem, content, where=path.name)
        except PolicyError as exc:
            problems.append(RoomProblem("", path.stem, str(exc)))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(RoomProblem("", path.stem, f"{path.name}: cannot read ({type(exc).__name__})"))
    return specs, problems


class PolicyKeeper:
    def __init__(
        self,
        *,
        audit: AuditLog,
        policies: PolicyStore,
        rest: RestClient,
        executor: Act,
        policy_dir: Path | None,
        bot_user_id: Callable[[], str | None],
        notify: Notify | None = None,
        interval: float = 600.0,
        dm_on_join: bool = False,
        bot_username: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._audit = audit
        self._policies = policies
        self._rest = rest  # reads only: rooms, pins, settings
        self._executor = executor
        self._dir = policy_dir
        self._bot_user_id = bot_user_id
        self._notify = notify
        self._interval = interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._banners: dict[str, str] = {}  # rid -> the banner the last sync wanted there
        self._desired: dict[str, list[PolicyVersion]] = {}  # rid -> its policies at the last sync
        self._dm_on_join = dm_on_join
        self._bot_username = bot_username
        self.last_report: SyncReport | None = None
        self.notices: list[str] = []  # the current sync's notices (the CLI has no outbox)
        self.syncs = 0

    # -- what /mod policy ... calls ---------------------------------------------------------------

    def list_policies(self) -> list[PolicyVersion]:
        """The latest version of every policy that is not removed, by name."""
        return [v for v in self._policies.latest_policy_versions().values() if not v.removed]

    def show(self, name: str) -> PolicyVersion:
        latest = self._policies.latest_policy_versions().get(name)
        if latest is None or latest.removed:
            raise PolicyError(f"no policy named {name!r}")
        return latest

    def history(self, name: str) -> list[PolicyVersion]:
        return self._policies.policy_history(name)

    def set_policy(
        self,
        name: str,
        text: str,
        *,
        actor: str,
        actor_id: str | None = None,
        banner: str | None = None,
        targets: Targets | None = None,
        delete_old: bool | None = None,
    ) -> PolicyVersion:
        """``/mod policy set NAME TEXT``: a new version with this text, audited, and a sync
        requested. Targets, banner and delete_old default to the current version's; a new policy
        (or one set again after its removal) may have no target rooms yet, and is then pinned
        nowhere until :meth:`set_rooms` gives it some. A policy defined by a file cannot be set
        here (the file wins at every sync): PolicyError says so, and the refusal is audited.
        ``actor`` is recorded with the version, ``actor_id`` (a user id) in the audit log."""
        self._refuse_if_file(name, "set", actor, actor_id)
        latest = self._policies.latest_policy_versions().get(name)
        previous = latest if latest is not None and not latest.removed else None
        spec = PolicySpec(
            name=name,
            text=text.strip(),
            targets=targets or (previous.spec.targets if previous else Targets()),
            banner=banner if banner is not None else (previous.spec.banner if previous else None),
            delete_old=delete_old
            if delete_old is not None
            else (previous.spec.delete_old if previous else False),
        )
        version = self._policies.add_policy_version(
            _checked(spec, f"policy {name}"), source="command", actor=actor
        )
        self._audit_change("set", version, actor, actor_id)
        self.request_sync()
        return version

    def set_rooms(
        self, name: str, targets: Targets, *, actor: str, actor_id: str | None = None
    ) -> PolicyVersion:
        """``/mod policy rooms NAME #room ...|*``: a new version with other target rooms (the
        same text), audited, and a sync requested (it pins in the new rooms and unpins in the
        rooms no longer targeted)."""
        self._refuse_if_file(name, "rooms", actor, actor_id)
        current = self.show(name)
        spec = validate_spec(
            PolicySpec(name, current.spec.text, targets, current.spec.banner, current.spec.delete_old),
            f"policy {name}",
        )
        version = self._policies.add_policy_version(spec, source="command", actor=actor)
        self._audit_change("rooms", version, actor, actor_id)
        self.request_sync()
        return version

    def remove(self, name: str, *, actor: str, actor_id: str | None = None) -> PolicyVersion:
        """``/mod policy remove NAME``: a removal version, audited; the sync it requests unpins
        the policy's messages (deleting them with delete_old) and clears its banner line."""
        self._refuse_if_file(name, "remove", actor, actor_id)
        current = self.show(name)
        version = self._policies.add_policy_version(current.spec, source="command", actor=actor, removed=True)
        self._audit_change("remove", version, actor, actor_id)
        self.request_sync()
        return version

    def file_for(self, name: str) -> Path | None:
        """The policy folder's file for ``name``, if there is one (it wins over chat)."""
        if self._dir is None:
            return None
        path = self._dir / f"{name}.md"
        return path if path.exists() else None

    def _refuse_if_file(self, name: str, change: str, actor: str, actor_id: str | None) -> None:
        # The name first: it becomes a file name below, and a bad one must not get that far.
        validate_spec(PolicySpec(name, "-", Targets(all_public=True)), f"policy {name}")
        if self.file_for(name) is None:
            return
        self._audit.append_audit(
            actor=actor_id or actor,
            action=audit_actions.POLICY_CHANGED,
            targets={"policy": name},
            reason={"change": change, "by": actor, "why": f"defined by the file {name}.md"},
            outcome="refused: a policy file wins",
        )
        raise PolicyError(
            f"policy {name} is defined by the file {name}.md in the policy folder, which wins; "
            "edit the file instead"
        )

    def _audit_change(self, change: str, version: PolicyVersion, actor: str, actor_id: str | None) -> None:
        # The text itself stays out of the log (kept in the store's versions): its size and hash.
        text = version.spec.text.encode("utf-8")
        self._audit.append_audit(
            actor=actor_id or actor,
            action=audit_actions.POLICY_CHANGED,
            targets={"policy": version.name},
            reason={
                "change": change,
                "by": actor,
                "version": version.version,
                "targets": version.spec.targets.as_dict(),
                "text_chars": len(version.spec.text),
                "text_sha256": hashlib.sha256(text).hexdigest(),
            },
        )

    # -- triggers --------------------------------------------------------------------------------

    def request_sync(self) -> None:
        """Ask the background loop for a sync soon (coalesced: many requests, one sync)."""
        self._wake.set()

    async def run(self) -> None:
        """The background loop: sync at once, then whenever asked, and every ``interval``."""
        while True:
            self._wake.clear()
            try:
                await self.sync()
            except RcmodError as exc:  # never let the loop die; the next pass tries again
                log.warning("policy sync failed (%s)", type(exc).__name__)
            # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that lands as
            # the wake-up completes, and this loop would then outlive the bot's shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    async def on_event(self, event: Event) -> None:
        """Router handler: the bot joined a room; someone changed a banner we keep; a member
        joined a room with policies (``policy.dm_on_join``)."""
        if isinstance(event, SubscriptionChanged) and event.action == "inserted":
            self.request_sync()
        elif isinstance(event, SystemMessage) and event.message.type in ("uj", "au") and self._dm_on_join:
            # uj: the author joined; au: the author added the user named in msg (B.7).
            m = event.message
            await self._dm_policies(m.rid, m.author.username if m.type == "uj" else m.text)
        elif isinstance(event, SystemMessage) and event.message.type == "room_changed_announcement":
            m = event.message
            wanted = self._banners.get(m.rid)
            if wanted is not None and m.author.id != self._bot_user_id() and m.text != wanted:
                await self._tell(
                    PolicyNotice(
                        f":pushpin: The announcement banner of {_room_label(m.rid, event.room.name)} was "
                        f"changed by {inline_literal(m.author.username)}; rcmod is restoring the policy "
                        "banner.",
                        f"banner:{m.id}",
                        m.rid,
                        event.room.name,
                        m.author.id,
                        m.author.username,
                    )
                )
                self.request_sync()

    async def on_message_state(self, event: MessageEvent) -> None:
        """Ingest state watcher: a current policy message re-emitted with ``pinned: false``."""
        m = event.message
        if m.pinned or m.author.id != self._bot_user_id() or not self._policies.is_policy_message(m.id):
            return
        unpinner = m.raw.get("pinnedBy") if isinstance(m.raw, Mapping) else None
        if isinstance(unpinner, Mapping) and unpinner.get("_id") == self._bot_user_id():
            return  # our own unpin of an old version, racing its retirement
        self.request_sync()

    async def _dm_policies(self, rid: str, username: str) -> None:
        if not username or username == self._bot_username():
            return
        for policy in sorted(self._desired.get(rid, []), key=lambda p: p.name):
            if not self._policies.claim_policy_dm(username, policy.name, policy.version):
                continue  # this member has had this version already
            # The id follows from member and version: a retry cannot DM the same text twice.
            mid = derived_message_id(f"policy-dm:{username}:{policy.name}:{policy.version}")
            try:
                dm = await self._rest.dm_room(username)
                sent = await self._do(server.PostMessage(dm, policy.spec.text, mid=mid))
            except RcmodError as exc:
                sent, why = False, _reason(exc)
            except _Failed as exc:
                sent, why = False, exc.code
            else:
                why = "dry-run"
            if not sent:
                self._policies.release_policy_dm(username, policy.name, policy.version)
                log.warning("policy %s: DM to a new member not sent (%s)", policy.name, why)

    # -- reconciling -----------------------------------------------------------------------------

    async def sync(self, *, dry_run: bool = False) -> SyncReport:
        """Bring every target room to its policies now; with ``dry_run`` only plan (no writes,
        not even a new version for a changed file)."""
        async with self._lock:
            report = SyncReport(dry_run=dry_run)
            self.notices = report.notices
            latest = self._load_files(report, dry_run=dry_run)
            if not self._anything_to_keep(latest):
                if not dry_run:
                    self.last_report = report
                return report  # no policy, nothing pinned, no banner: no need to ask the server
            desired, actual, pinning_allowed = await self._read_state(latest, report)
            report.plan = reconcile(desired, actual, pinning_allowed=pinning_allowed)
            report.problems += report.plan.problems
            self._desired = desired
            self._banners = {
                rid: banner for rid, vs in desired.items() if (banner := desired_banner(vs)) is not None
            }
            if not dry_run:
                await self._execute(report.plan.actions, latest, report)
                self.last_report = report
                self.syncs += 1
            for problem in report.problems:
                log.warning("policy sync: %s", problem)
            return report

    def _anything_to_keep(self, latest: Mapping[str, PolicyVersion]) -> bool:
        return (
            any(not v.removed for v in latest.values())
            or bool(self._policies.live_policy_messages())
            or bool(self._policies.policy_banners())
        )

    def _load_files(self, report: SyncReport, *, dry_run: bool) -> dict[str, PolicyVersion]:
        """Latest version per policy name, after taking in the policy folder (files win)."""
        latest = dict(self._policies.latest_policy_versions())
        if self._dir is None:
            return latest
        if not self._dir.is_dir():
            report.problems.append(RoomProblem("", None, f"policy folder {self._dir} does not exist"))
            return latest  # nothing is removed because the folder went missing
        specs, problems = read_policy_dir(self._dir)
        report.problems += problems
        broken = {p.policy for p in problems}
        for name, spec in specs.items():
            before = latest.get(name)
            if before is not None and not before.removed and before.source == "command":
                report.problems.append(
                    RoomProblem(
                        "", name, f"{name}.md and a /mod policy set version both define it; the file wins"
                    )
                )
            if before is not None and not before.removed and before.source == "file" and before.spec == spec:
                continue
            if dry_run:
                latest[name] = PolicyVersion(spec, (before.version if before else 0) + 1, "file")
            else:
                latest[name] = self._policies.add_policy_version(spec, source="file", actor="policy-file")
        for name, before in list(latest.items()):
            if before.source == "file" and not before.removed and name not in specs and name not in broken:
                # The file was deleted: the policy goes, and the next steps unpin its messages.
                if dry_run:
                    latest[name] = PolicyVersion(before.spec, before.version + 1, "file", removed=True)
                else:
                    latest[name] = self._policies.add_policy_version(
                        before.spec, source="file", actor="policy-file", removed=True
                    )
        return latest

    async def _read_state(
        self, latest: Mapping[str, PolicyVersion], report: SyncReport
    ) -> tuple[dict[str, list[PolicyVersion]], dict[str, RoomState], bool]:
        known, members = await self._known_rooms(report)
        desired: dict[str, list[PolicyVersion]] = {}
        rooms: dict[str, Room] = {r.id: r for r in known}
        for policy in latest.values():
            if policy.removed:
                continue
            targets, problems = resolve_targets(policy.spec.targets, known)
            report.problems += [RoomProblem("", policy.name, p) for p in problems]
            for room in targets:
                desired.setdefault(room.id, []).append(policy)
        live = self._policies.live_policy_messages()
        by_room: dict[str, list[Any]] = {}
        for row in live:
            by_room.setdefault(row.rid, []).append(row)
        banners = self._policies.policy_banners()
        actual: dict[str, RoomState] = {}
        for rid in sorted(set(desired) | set(by_room) | set(banners)):
            try:
                info = await self._rest.room_info(rid)
                room = rooms.get(rid) or Room(rid, str(info.get("name") or rid), str(info.get("t") or "c"))
                pinned = await self._rest.pinned_message_ids(rid)
                messages = [await self._observe(row, pinned) for row in by_room.get(rid, [])]
            except RcmodError as exc:
                name = room_name(rooms[rid]) if rid in rooms else rid
                report.problems.append(RoomProblem(name, None, f"cannot read the room ({_reason(exc)})"))
                desired.pop(rid, None)
                continue
            announcement = info.get("announcement")
            actual[rid] = RoomState(
                room=room,
                member=rid in members,
                announcement=announcement if isinstance(announcement, str) else "",
                our_banner=banners.get(rid),
                messages=tuple(messages),
            )
        pinning_allowed = True
        with contextlib.suppress(RcmodError):
            value = (await self._rest.public_settings("Message_AllowPinning")).get("Message_AllowPinning")
            pinning_allowed = value is not False
        return desired, actual, pinning_allowed

    async def _known_rooms(self, report: SyncReport) -> tuple[list[Room], set[str]]:
        """Rooms a policy can target: every public channel, and the private groups the bot is in."""
        rooms: dict[str, Room] = {}
        members: set[str] = set()
        try:
            for sub in await self._rest.subscriptions():
                rid, kind, name = sub.get("rid"), sub.get("t"), sub.get("name")
                if isinstance(rid, str) and kind in ("c", "p") and isinstance(name, str):
                    members.add(rid)
                    rooms[rid] = Room(rid, name, str(kind))
        except RcmodError as exc:
            report.problems.append(RoomProblem("", None, f"cannot list the bot's rooms ({_reason(exc)})"))
        try:
            for channel in await self._rest.public_channels():
                rid, name = channel.get("_id"), channel.get("name")
                if isinstance(rid, str) and isinstance(name, str):
                    rooms.setdefault(rid, Room(rid, name, "c"))
        except RcmodError as exc:
            report.problems.append(RoomProblem("", None, f"cannot list public channels ({_reason(exc)})"))
        return sorted(rooms.values(), key=room_name), members

    async def _observe(self, row: Any, pinned: set[str]) -> PostedPolicy:
        if row.mid in pinned:
            return PostedPolicy(row.mid, row.name, row.version, pinned=True)
        try:
            message = await self._rest.get_message(row.mid)
        except NotFound:
            return PostedPolicy(row.mid, row.name, row.version, pinned=False, exists=False)
        by = message.raw.get("pinnedBy") if isinstance(message.raw, Mapping) else None
        # pinnedBy of an unpinned message names who unpinned it (F.1); absent if never pinned.
        who = (
            UserRef(str(by.get("_id") or ""), str(by.get("username") or ""))
            if isinstance(by, Mapping) and by.get("username")
            else None
        )
        return PostedPolicy(row.mid, row.name, row.version, pinned=message.pinned, unpinned_by=who)

    async def _execute(
        self, plan: Sequence[Action], latest: Mapping[str, PolicyVersion], report: SyncReport
    ) -> None:
        failed_rooms: set[str] = set()  # a join failed: the room's pins cannot work
        failed_policies: set[tuple[str, str]] = set()  # (rid, policy): keep its old pin for now
        for action in plan:
            room = action.room
            if (
                isinstance(action, JoinRoom | PostPolicy | PinPolicy | RetirePolicyMessage)
                and room.id in failed_rooms
            ):
                continue
            if isinstance(action, RetirePolicyMessage) and (room.id, action.name) in failed_policies:
                continue
            try:
                await self._apply(action, latest, report)
            except (_Failed, RcmodError) as exc:
                code = exc.code if isinstance(exc, _Failed) else _reason(exc)
                report.problems.append(
                    RoomProblem(room_name(room), getattr(action, "name", None), _refusal(action, code))
                )
                if isinstance(action, JoinRoom):
                    failed_rooms.add(room.id)
                elif isinstance(action, PostPolicy | PinPolicy):
                    failed_policies.add((room.id, action.name))

    async def _do(
        self,
        change: server.Change,
        audit: str | None = None,
        *,
        targets: Mapping[str, Any] | None = None,
        reason: Mapping[str, Any] | None = None,
    ) -> bool:
        """Carry out one change through the executor: True if made, False in dry-run mode;
        raises _Failed with the server's code when it was not."""
        result = await self._executor.execute(
            server.Action(change, actor="rcmod", audit=audit, targets=targets or {}, reason=reason or {})
        )
        if not result.acted:
            raise _Failed(result.code or result.status.value)
        return result.done

    async def _apply(self, action: Action, latest: Mapping[str, PolicyVersion], report: SyncReport) -> None:
        room = action.room
        done = True
        if isinstance(action, JoinRoom):
            done = await self._do(server.JoinChannel(room.id))
        elif isinstance(action, PostPolicy):
            done = await self._post(action, latest[action.name].spec)
        elif isinstance(action, PinPolicy):
            done = await self._repin(action)
        elif isinstance(action, RetirePolicyMessage):
            done = await self._retire(action)
        elif isinstance(action, SetBanner):
            done = await self._do(server.SetAnnouncement(room.id, action.text))
            if done:
                self._policies.set_policy_banner(room.id, action.text)
        report.done.append(describe(action) if done else f"dry-run: would {describe(action)}")

    async def _post(self, action: PostPolicy, spec: PolicySpec) -> bool:
        room, mid = action.room, new_message_id()
        # Recorded before the send: after a crash the next sync finds it (and pins it) rather
        # than posting a second copy.
        self._policies.record_policy_message(mid, room.id, action.name, action.version)
        try:
            posted = await self._do(server.PostMessage(room.id, spec.text, mid=mid))
        except _Failed:
            self._policies.retire_policy_message(mid)  # the send was refused: it did not land
            raise
        if not posted:
            self._policies.retire_policy_message(mid)  # dry-run mode: nothing was posted
        # The pin's answer is a system message: the policy message keeps our own id.
        return await self._do(
            server.PinMessage(mid),
            audit_actions.POLICY_PINNED,
            **self._audited(action, mid, {"version": action.version}),
        )

    async def _repin(self, action: PinPolicy) -> bool:
        room = action.room
        reason = {
            "version": action.version,
            "restored": True,
            "unpinned_by": action.unpinned_by.id if action.unpinned_by else None,
        }
        done = await self._do(
            server.PinMessage(action.mid),
            audit_actions.POLICY_PINNED,
            **self._audited(action, action.mid, reason),
        )
        if done and action.unpinned_by and action.unpinned_by.id != self._bot_user_id():
            who_id, who = action.unpinned_by.id, action.unpinned_by.username
            await self._tell(
                PolicyNotice(
                    f":pushpin: Policy {inline_literal(action.name)} (v{action.version}) was unpinned in "
                    f"{_room_label(room.id, room.name)} by {inline_literal(who)}; rcmod pinned it again.",
                    f"unpinned:{action.mid}:{self._clock():.3f}",
                    room.id,
                    room.name,
                    who_id,
                    who,
                )
            )
        return done

    async def _retire(self, action: RetirePolicyMessage) -> bool:
        room, mid = action.room, action.mid
        audited = self._audited(action, mid, {"version": action.version, "deleted": action.delete})
        done = True
        if action.unpin:
            # The unpin carries the audit record; a deletion after it is upkeep.
            done = await self._do(server.UnpinMessage(mid), audit_actions.POLICY_UNPINNED, **audited)
        if action.delete:
            try:
                deleted = await self._do(
                    server.DeleteMessage(room.id, mid),
                    None if action.unpin else audit_actions.POLICY_UNPINNED,
                    **audited,
                )
                done = done and deleted
            except _Failed:
                if await self._rest.message_exists(mid):
                    raise
                # already gone: what we wanted
        if done:
            self._policies.retire_policy_message(mid)
        return done

    @staticmethod
    def _audited(action: Action, mid: str, reason: dict[str, Any]) -> dict[str, Mapping[str, Any]]:
        return {
            "targets": {"room": action.room.id, "message": mid},
            "reason": {"policy": getattr(action, "name", ""), **reason},
        }

    async def _tell(self, notice: PolicyNotice) -> None:
        self.notices.append(notice.text)
        if self._notify is None:
            log.info("policy notice %s not sent: no notifier (shown in the sync report)", notice.key)
            return
        try:
            await self._notify(notice)
        except RcmodError as exc:
            log.warning("policy notice could not be queued (%s)", type(exc).__name__)


def _checked(spec: PolicySpec, where: str) -> PolicySpec:
    """validate_spec, except that a policy set from chat may have no target rooms yet."""
    t = spec.targets
    if t.rooms or t.all_public or t.pattern:
        return validate_spec(spec, where)
    validate_spec(replace(spec, targets=Targets(all_public=True)), where)  # every other rule
    return spec


def _room_label(rid: str, name: str | None) -> str:
    return inline_literal(f"#{name}") if name else inline_literal(rid)


def _reason(exc: RcmodError) -> str:
    code = exc.code if isinstance(exc, ActionRefused) else None
    return code or type(exc).__name__


class _Failed(Exception):
    """The executor did not make a change: the server refused it (or it failed); ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _refusal(action: Action, code: str) -> str:
    """Say which setting or permission stopped an action, in the administrator's words."""
    if isinstance(action, PostPolicy | PinPolicy | RetirePolicyMessage):
        if code == "error-action-not-allowed":
            return "pinning is disabled on this workspace (Message_AllowPinning)"
        if code in ("not-authorized", "error-not-authorized"):
            return "the bot lacks the pin-message permission in this room"
        if isinstance(action, PostPolicy) and code in ("error-not-allowed", READ_ONLY_CODE):
            return "the bot cannot post in this room"
    if isinstance(action, SetBanner) and code in ("error-action-not-allowed", "not-authorized"):
        return "the bot lacks the edit-room permission in this room (banner not set)"
    if isinstance(action, JoinRoom):
        return f"the bot cannot join this room ({code})"
    return f"{describe(action)} failed ({code})"
