"""The sanctions shell: warnings, strikes and the ladder, mutes that expire, kicks, bans, raid
locks.

Decisions are pure (:mod:`bot.moderation.sanctions`); this carries them out, in an order that
loses nothing: every mute is written to the store (``pending``) before ``rooms.muteUser`` and
made ``active`` after it, so a crash in between is finished at the next start; the expiry loop
lifts every active mute whose time has come — at once after downtime, because expiry is a time
in the store, not a timer in memory. Every change on the server goes through the executor
(:mod:`bot.services.executor`), which honours dry-run and audits it with who asked for it; the
user is told privately, with the reason and how to appeal, through the notifier's persisted
outbox, so a notice is neither lost in a crash nor sent twice after one.

A ban uses Rocket.Chat's own (rooms.banUser, 8.3+) where the server has it. On an older server
(no such route) the bot kicks the user and keeps the ban in its store; every time the user comes
back (a ``uj``/``ujt``/``ut`` join or an ``au`` addition the bot sees in the room) it removes them
again, until a moderator lifts the ban. The watch reads the store on each join, so it survives a
restart, and at start it removes anyone who came back while the bot was down.

Used by the moderators' commands (:mod:`bot.commands.handlers.sanctions`) and by the automatic
protections (:mod:`bot.services.protections`) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.audit import actions
from bot.config import ModerationSettings, SanctionSettings
from bot.errors import ActionRefused, NotFound, RcmodError, RetryableError
from bot.models import Actor, Room, UserRef
from bot.moderation.actions import (
    Action,
    BanUser,
    Change,
    KickUser,
    MuteUser,
    SetReadOnly,
    UnbanUser,
    UnmuteUser,
)
from bot.moderation.durations import format_duration
from bot.moderation.neutralize import inline_literal
from bot.moderation.sanctions import Notice, ladder_step, protected, render_notice, step_label
from bot.realtime.events import SystemMessage
from bot.rest import RestClient
from bot.services.executor import Act, Result, Status
from bot.services.lookups import Lookups
from bot.services.moderators import BotModerators
from bot.services.outbox import Notice as OutboxNotice
from bot.services.outbox import Outbox
from bot.store.audit import AuditLog
from bot.store.bans import BanLedger, BanRow
from bot.store.sanctions import MuteRow, SanctionLedger

__all__ = ["Sanctioner", "Target"]

log = logging.getLogger("rcmod.sanctions")

EXPIRY_POLL = 30.0  # the longest the expiry loop sleeps; it is woken early when a mute is added
NOT_A_MEMBER = frozenset({"error-user-not-in-room", "error-invalid-user"})
ALREADY_BANNED = "error-user-already-banned"
NOT_BANNED = "error-user-not-banned"
# The executor names a refusal that carries no server code by its error class: a bare 404 from
# rooms.banUser is a server without the route.
MISSING_ROUTE = NotFound.__name__
# The users' private notices: one outbox kind, each notice keyed by what it is about.
NOTICE_KIND = "sanction-notice"
# System messages that put a user (back) in a room: joined (uj; ujt for a team's main room; ut a
# discussion) — the author is the user — or added by someone (au), naming the user in ``msg``.
JOINS = frozenset({"uj", "ujt", "ut"})
ADDED = "au"
RCMOD = Actor("rcmod", "rcmod")


@dataclass(frozen=True, slots=True)
class Target:
    """A user to sanction, as the server knows them."""

    id: str
    username: str
    roles: tuple[str, ...]
    created_at: str | None = None

    @property
    def ref(self) -> UserRef:
        return UserRef(self.id, self.username)


class Sanctioner:
    def __init__(
        self,
        *,
        audit: AuditLog,
        sanctions: SanctionLedger,
        bans: BanLedger,
        rest: RestClient,
        executor: Act,
        outbox: Outbox,
        settings: SanctionSettings,
        moderation: ModerationSettings,
        bot_username: Callable[[], str | None],
        clock: Callable[[], float] = time.time,
        lookups: Lookups | None = None,
        room_bans: Callable[[], bool] = lambda: True,
        bot_moderators: BotModerators | None = None,
    ) -> None:
        self._bot_moderators = bot_moderators or BotModerators(moderation.moderators, clock=clock)
        # Whether the server has rooms.banUser (8.3+); without it, bans are kept by kick-and-watch.
        self._room_bans = room_bans
        self._audit = audit
        self._sanctions = sanctions
        self._bans = bans
        self._rest = rest  # lookups only: every change goes through the executor
        self._executor = executor
        self._outbox = outbox
        self._settings = settings
        self._moderation = moderation
        self._bot_username = bot_username
        self._clock = clock
        self._lookups = lookups or Lookups(rest, clock=clock)
        self._wake = asyncio.Event()
        # Expired mutes the server would not lift: when each is tried again (not in a tight loop).
        self._expiry_retry: dict[int, float] = {}

    # -- who and where -----------------------------------------------------------------------------

    @property
    def decay_seconds(self) -> float:
        return self._settings.decay_days * 86400

    async def target(self, username: str, *, check: bool = True, cached: bool = False) -> Target | str:
        """The user, or why they cannot be sanctioned (unknown; with ``check``, also an admin,
        the bot itself, a bot moderator or an exempt role). A moderator's command looks the user
        up afresh; a protection may use the shared cache (``cached``), as it runs on the message
        path."""

        def fetch() -> Awaitable[dict[str, Any]]:
            return self._rest.user_info(username=username)

        try:
            info: dict[str, Any] = (
                await self._lookups.cached(f"username:{username}", fetch, {}) if cached else await fetch()
            )
        except (NotFound, ActionRefused):
            info = {}
        if not info.get("_id"):
            return f"I found no user {inline_literal(username)}."
        # Roles from users.list: users.info shows them only with view-full-other-user-info.
        roles = await self._lookups.roles.roles(user_id=str(info["_id"]), fresh=not cached)
        user = Target(
            str(info["_id"]),
            str(info.get("username") or username),
            tuple(sorted(roles)),
            str(info["createdAt"]) if info.get("createdAt") else None,
        )
        return (self.refusal(user) if check else None) or user

    def refusal(self, user: Target) -> str | None:
        """Why ``user`` may not be sanctioned (None: they may)."""
        return protected(
            username=user.username,
            roles=user.roles,
            bot_username=self._bot_username(),
            bot_moderators=self._bot_moderators.ids(),
            user_id=user.id,
            exempt_roles=self._moderation.exempt_roles,
        )

    async def room(self, name: str) -> Room | str:
        """A channel or private group by name, or why it cannot be used."""
        try:
            info = await self._rest.room_by_name(name)
        except RcmodError:
            return f"I cannot see a room {inline_literal('#' + name)} (is the bot in it?)."
        kind = str(info.get("t") or "c")
        if kind not in ("c", "p"):
            return "Users can be muted or removed in channels and private groups only."
        return Room(str(info["_id"]), str(info.get("name") or name), kind)

    async def everywhere(self) -> list[Room]:
        """Every channel and group the bot can act in: its own rooms and the public channels."""
        rooms: dict[str, Room] = {}
        for sub in await self._rest.subscriptions():
            if sub.get("t") in ("c", "p") and sub.get("rid"):
                rooms[str(sub["rid"])] = Room(str(sub["rid"]), _opt(sub.get("name")), str(sub["t"]))
        with contextlib.suppress(RcmodError):
            for ch in await self._rest.public_channels():
                rooms.setdefault(str(ch["_id"]), Room(str(ch["_id"]), _opt(ch.get("name")), "c"))
        return list(rooms.values())

    # -- strikes and the ladder ----------------------------------------------------------------------

    def live_strikes(self, user_id: str) -> int:
        since = self._clock() - self.decay_seconds
        return self._sanctions.live_strike_count(user_id, since=since)

    async def strike(
        self,
        user: Target,
        *,
        room: Room | None,
        reason: str,
        actor: Actor,
        source: str = "moderator",
        remedy_mute: float | None = None,
    ) -> str:
        """A warning: record the strike, tell the user, then take the step the ladder gives for
        the user's live strikes (in ``room``, or everywhere when None). A protection passes its own
        ``remedy_mute`` (a flood's short mute): the user is muted at least that long, and the
        ladder's mute, when longer, wins. Returns a summary line."""
        if self._executor.dry_run():
            # A strike is the bot's own record, not a change on the server: in a dry run it is
            # not written, only audited as what would have happened.
            count = self.live_strikes(user.id) + 1
            step = ladder_step(self._settings.ladder, count)
            self._record(
                actor, actions.USER_WARNED, user, room, reason, outcome="dry-run", step=step_label(step)
            )
            return f"Dry run: {inline_literal(user.username)} would get strike {count} ({step_label(step)})."
        strike_id = self._sanctions.add_strike(
            user_id=user.id,
            username=user.username,
            source=source,
            actor=actor.id,
            rid=room.id if room else None,
            reason=reason,
        )
        count = self.live_strikes(user.id)
        step = ladder_step(self._settings.ladder, count)
        label = step_label(step)
        self._sanctions.set_strike_step(strike_id, label)
        self._record(
            actor, actions.USER_WARNED, user, room, reason, strike=strike_id, step=label, count=count
        )
        await self.tell(
            user,
            Notice("warn", reason, live_strikes=count, appeal=self._settings.appeal),
            key=f"strike:{strike_id}",
            room=room,
        )
        summary = f"{inline_literal(user.username)} warned (strike {count}, {label})"
        why = f"strike {count}: {reason}"
        mute_for = max(
            (d for d in (remedy_mute, step.duration if step and step.action == "mute" else None) if d),
            default=None,
        )
        if mute_for is not None:
            rooms = [room] if room else await self.everywhere()
            result = await self.mute(
                user, rooms, duration=mute_for, reason=why, actor=actor, everywhere=room is None
            )
            summary = f"{summary}: {result}"
        if step is None or step.action in ("warn", "mute"):
            return summary if summary.endswith(".") else summary + "."
        if step.action == "kick" and room is not None:
            return f"{summary}: {await self.kick(user, room, reason=why, actor=actor)}"
        if step.action == "ban" and room is not None:
            return f"{summary}: {await self.ban(user, room, reason=why, actor=actor)}"
        # notify_admins, or a kick or ban with no room to act in: the administrators decide.
        notice = OutboxNotice.about(
            "sanction",
            key=f"escalate|{user.id}",
            incident=f"strike:{strike_id}",
            text=(
                f"*rcmod*: {inline_literal(user.username)} has {count} live strikes (latest: "
                f"{inline_literal(reason)}). Consider `/mod block @{user.username} everywhere --deactivate`; "
                f"history: `/mod strikes @{user.username}`."
            ),
            room=_room_ref(room),
            subject=user.ref,
            severity="critical",
            roles=("admin",),
        )
        await self._outbox.notify(notice)
        self._record(actor, actions.SANCTION_ESCALATED, user, room, reason, strike=strike_id, count=count)
        return f"{summary}: the administrators were asked to decide."

    def pardon(self, user: Target, actor: Actor) -> int:
        cleared = self._sanctions.pardon_strikes(user.id)
        self._record(actor, actions.STRIKES_PARDONED, user, None, "pardon", cleared=cleared)
        return cleared

    # -- mutes ---------------------------------------------------------------------------------------

    async def mute(
        self,
        user: Target,
        rooms: Sequence[Room],
        *,
        duration: float | None,
        reason: str,
        actor: Actor,
        everywhere: bool = False,
    ) -> str:
        """Mute ``user`` in each room (a longer existing mute is kept); returns a summary line."""
        if duration is not None and duration > self._settings.max_mute and not actor.is_rule:
            return (
                f"That is longer than the longest mute allowed ({format_duration(self._settings.max_mute)}, "
                "sanctions.max_mute); nothing was changed."
            )
        until = None if duration is None else self._clock() + duration
        length = "until unmuted" if duration is None else f"for {format_duration(duration)}"
        if self._executor.dry_run():
            # Nothing is written to the store in a dry run: the executor records what it would do.
            for room in rooms:
                await self._act(
                    _mute(room, user, True), actor, actions.USER_MUTED, user, room, reason, until=until
                )
            return (
                f"Dry run: {inline_literal(user.username)} would be muted {length} in {len(rooms)} room(s)."
            )
        muted: list[Room] = []
        refused: list[str] = []
        seqs: list[int] = []
        for room in rooms:
            outcome = await self._mute_one(user, room, until=until, reason=reason, actor=actor)
            if isinstance(outcome, int):
                muted.append(room)
                seqs.append(outcome)
            elif outcome:
                refused.append(f"{_room_label(room)} ({outcome})")
        if muted:
            self._wake.set()
            notice = Notice(
                "mute",
                reason,
                rooms=tuple(r.name or r.id for r in muted),
                everywhere=everywhere,
                until=until,
                live_strikes=self.live_strikes(user.id),
                appeal=self._settings.appeal,
            )
            await self.tell(user, notice, key=f"audit:{seqs[0]}", room=muted[0])
        name = inline_literal(user.username)
        line = (
            f"{name} muted {length} in {_rooms_label(muted, everywhere)}"
            if muted
            else f"{name} was not muted"
        )
        if refused:
            line += "; refused in " + ", ".join(refused)
        return line + "."

    async def _mute_one(
        self, user: Target, room: Room, *, until: float | None, reason: str, actor: Actor
    ) -> int | str:
        """The audit record of the mute when muted; '' when the user is not in the room (skipped
        quietly); else why not."""
        row, new = self._sanctions.begin_mute(
            user_id=user.id,
            username=user.username,
            rid=room.id,
            room_name=room.name,
            until=until,
            reason=reason,
            actor=actor.id,
        )
        if not new and row.state == "active":
            # Only the bot's record changes (a later expiry): the server has the user muted already.
            return self._record(
                actor, actions.USER_MUTED, user, room, reason, mute=row.id, until=row.until, extended=True
            )
        return await self._apply_mute(row, user, room, actor)

    async def _apply_mute(self, row: MuteRow, user: Target, room: Room, actor: Actor) -> int | str:
        result = await self._act(
            _mute(room, user, True),
            actor,
            actions.USER_MUTED,
            user,
            room,
            row.reason,
            moot=NOT_A_MEMBER,
            mute=row.id,
            until=row.until,
        )
        if result.status is Status.DONE:
            self._sanctions.set_mute_state(row.id, "active")
            return result.audit_seq or 0
        if result.status is Status.DRY_RUN:
            return "dry run"  # switched on meanwhile: left pending, applied when it is off
        if result.code in NOT_A_MEMBER:
            self._sanctions.discard_mute(row.id)
            return ""
        # Refused, or the server did not answer even after the REST layer's retries: the caller is
        # told it failed, so the mute must not quietly take effect later.
        self._sanctions.set_mute_state(row.id, "failed", by=actor.id)
        if result.status is Status.FAILED:
            raise _failure(result, "mute")
        log.warning("mute of user %s in %s refused (%s)", user.id, room.id, result.code)
        return result.code or "not allowed"

    async def unmute(self, user: Target, rooms: Sequence[Room] | None, *, actor: Actor) -> str:
        """Lift ``user``'s mutes in ``rooms`` (None: every mute the bot holds on them, everywhere).
        A mute someone set in Rocket.Chat itself is lifted too when its room is named."""
        live = {m.rid: m for m in self._sanctions.live_mutes(user.id)}
        targets = list(rooms) if rooms is not None else [Room(m.rid, m.room_name, "c") for m in live.values()]
        if not targets:
            return f"{inline_literal(user.username)} has no mutes from me."
        lifted: list[Room] = []
        failed: list[str] = []
        seqs: list[int] = []
        previewed = 0
        for room in targets:
            row = live.get(room.id)
            result = await self._act(
                _mute(room, user, False),
                actor,
                actions.USER_UNMUTED,
                user,
                room,
                "unmute",
                mute=row.id if row else None,
            )
            if result.status is Status.DRY_RUN:
                previewed += 1
                continue
            if result.status is Status.FAILED:
                raise _failure(result, "unmute")
            if result.status is Status.REFUSED and result.code not in NOT_A_MEMBER:
                failed.append(f"{_room_label(room)} ({result.code or 'not allowed'})")
                continue
            if row is not None:
                self._sanctions.set_mute_state(row.id, "lifted", by=actor.id)
            lifted.append(room)
            if result.audit_seq is not None:
                seqs.append(result.audit_seq)
        if previewed == len(targets):
            return f"Dry run: {inline_literal(user.username)} would be unmuted in {len(targets)} room(s)."
        if lifted:
            names = tuple(r.name or r.id for r in lifted)
            notice = Notice("unmute", "", rooms=names, everywhere=rooms is None)
            await self.tell(
                user, notice, key=f"audit:{seqs[0]}" if seqs else f"at:{self._clock()}", room=lifted[0]
            )
        line = f"{inline_literal(user.username)} unmuted in {_rooms_label(lifted, False)}" if lifted else ""
        if failed:
            line += ("; " if line else "Could not unmute: ") + ", ".join(failed)
        return line + "."

    async def expire_due(self) -> int:
        """Lift every active mute whose time has come; returns how many were lifted."""
        if self._executor.dry_run():
            return 0  # nothing is lifted in a dry run: the mutes still due are lifted once it is off
        lifted = 0
        now = self._clock()
        for row in self._sanctions.due_mutes(now):
            if self._expiry_retry.get(row.id, now) > now:
                continue
            user = Target(row.user_id, row.username, ())
            room = Room(row.rid, row.room_name, "c")
            result = await self._act(
                _mute(room, user, False), RCMOD, actions.MUTE_EXPIRED, user, room, row.reason, mute=row.id
            )
            gone = result.code in NOT_A_MEMBER or result.code == "error-invalid-room"
            if not (result.done or (result.status is Status.REFUSED and gone)):
                # Refused, or not answering: tried again at the next poll, not at once (the mute
                # stays due, and the loop would spin on it).
                self._expiry_retry[row.id] = now + EXPIRY_POLL
                log.warning(
                    "expired mute %d not lifted yet (%s); will retry", row.id, result.code or "dry run"
                )
                continue
            self._expiry_retry.pop(row.id, None)
            # Queued before the row is closed: a crash in between re-queues the same notice, which
            # the outbox sends once.
            await self.tell(
                user,
                Notice("expired", "", rooms=(row.room_name or row.rid,)),
                key=f"mute:{row.id}",
                room=room,
            )
            self._sanctions.set_mute_state(row.id, "expired", by=RCMOD.id)
            lifted += 1
        return lifted

    async def resume(self) -> None:
        """Finish what a crash interrupted: mutes recorded but not yet applied."""
        for row in self._sanctions.live_mutes():
            if row.state != "pending":
                continue
            user = Target(row.user_id, row.username, ())
            with contextlib.suppress(RcmodError):
                await self._apply_mute(
                    row, user, Room(row.rid, row.room_name, "c"), Actor(row.actor, row.actor)
                )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Resume, then lift mutes as they fall due (overdue ones at once, e.g. after downtime)."""
        with contextlib.suppress(RcmodError):
            await self.resume()
        with contextlib.suppress(RcmodError):
            await self.enforce_watched_bans()
        while True:
            try:
                await self.expire_due()
            except RcmodError as exc:
                log.error("mute expiry pass failed (%s); will retry", type(exc).__name__)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_wait()):
                    await self._wake.wait()

    def _next_wait(self) -> float:
        """Until the next mute falls due; a due mute the server would not lift waits for its retry."""
        if self._executor.dry_run():
            return EXPIRY_POLL
        now = self._clock()
        due = self._sanctions.next_mute_due()
        if due is not None and due <= now and self._expiry_retry:
            due = min(self._expiry_retry.values())
        return EXPIRY_POLL if due is None else min(EXPIRY_POLL, max(0.05, due - now))

    # -- kicks and locks -----------------------------------------------------------------------------

    async def kick(self, user: Target, room: Room, *, reason: str, actor: Actor) -> str:
        name = inline_literal(user.username)
        result = await self._act(
            _kick(room, user.id), actor, actions.USER_KICKED, user, room, reason, moot=NOT_A_MEMBER
        )
        if result.status is Status.DRY_RUN:
            return f"Dry run: {name} would be removed from {_room_label(room)}."
        if result.status is Status.FAILED:
            raise _failure(result, "kick")
        if result.status is Status.REFUSED:
            if result.code in NOT_A_MEMBER:
                return f"{name} is not in {_room_label(room)}."
            return f"Rocket.Chat refused to remove {name} from {_room_label(room)} ({result.code})."
        await self._tell_removed("kick", user, room, reason, key=f"audit:{result.audit_seq}")
        return f"{name} removed from {_room_label(room)}."

    async def _tell_removed(self, kind: str, user: Target, room: Room, reason: str, *, key: str) -> None:
        """Tell ``user`` they were kicked or banned from ``room`` and how to appeal."""
        notice = Notice(kind, reason, rooms=(room.name or room.id,), appeal=self._settings.appeal)
        await self.tell(user, notice, key=key, room=room)

    # -- bans ----------------------------------------------------------------------------------------

    async def ban(self, user: Target, room: Room, *, reason: str, actor: Actor) -> str:
        """Ban ``user`` from ``room``: the server's ban where it has one, else kick-and-watch."""
        name = inline_literal(user.username)
        via = "server" if self._room_bans() else "watch"
        if self._executor.dry_run():
            # No ban is written in a dry run: the executor records what it would do.
            await self._act(_ban(via, room, user.id), actor, actions.USER_BANNED, user, room, reason, via=via)
            return f"Dry run: {name} would be banned from {_room_label(room)}."
        if self._bans.active_ban(room.id, user_id=user.id) is not None:
            return f"{name} is already banned from {_room_label(room)}."
        row, result = await self._ban_via(via, user, room, reason=reason, actor=actor)
        if not result.done:
            self._bans.discard_ban(row.id)
        if result.status is Status.FAILED:
            raise _failure(result, "ban")
        if result.status is Status.DRY_RUN:
            return f"Dry run: {name} would be banned from {_room_label(room)}."
        if result.status is Status.REFUSED:
            if result.code in NOT_A_MEMBER:
                return f"{name} is not in {_room_label(room)}."
            if result.code == ALREADY_BANNED:
                # Banned in Rocket.Chat itself; `/mod unban` lifts that one too.
                return f"{name} is already banned from {_room_label(room)} (in Rocket.Chat)."
            return f"Rocket.Chat refused to ban {name} from {_room_label(room)} ({result.code})."
        await self._tell_removed("ban", user, room, reason, key=f"ban:{row.id}")
        how = "" if row.via == "server" else " (this server has no bans: I remove them whenever they rejoin)"
        return f"{name} banned from {_room_label(room)}{how}."

    async def _ban_via(
        self, via: str, user: Target, room: Room, *, reason: str, actor: Actor
    ) -> tuple[BanRow, Result]:
        """Write the ban, then ask the server for it; the ban's row is written first so that its
        audit record can cite it."""
        row = self._bans.add_ban(
            user_id=user.id,
            username=user.username,
            rid=room.id,
            room_name=room.name,
            room_type=room.type or "c",
            reason=reason,
            actor=actor.id,
            via=via,
        )
        moot = NOT_A_MEMBER | {ALREADY_BANNED}
        result = await self._act(
            _ban(via, room, user.id),
            actor,
            actions.USER_BANNED,
            user,
            room,
            reason,
            moot=moot,
            ban=row.id,
            via=via,
        )
        if via == "server" and result.status is Status.REFUSED and result.code == MISSING_ROUTE:
            # The version said bans exist, the route says not (a proxy, a patched build): keep
            # the user out the other way.
            self._bans.discard_ban(row.id)
            return await self._ban_via("watch", user, room, reason=reason, actor=actor)
        return row, result

    async def unban(self, user: Target, room: Room, *, actor: Actor) -> str:
        """Lift a ban, the bot's or one set in Rocket.Chat itself; the user may join again."""
        name = inline_literal(user.username)
        row = self._bans.active_ban(room.id, user_id=user.id)
        server_side = row.via == "server" if row is not None else self._room_bans()
        ban_id = row.id if row else None
        if server_side:
            # Not banned, and the bot holds no ban either: nothing to lift, nothing to audit.
            moot = frozenset({NOT_BANNED}) if row is None else frozenset()
            result = await self._act(
                UnbanUser(room.id, user.id),
                actor,
                actions.USER_UNBANNED,
                user,
                room,
                "unban",
                moot=moot,
                ban=ban_id,
            )
            if result.status is Status.FAILED:
                raise _failure(result, "unban")
            if result.status is Status.REFUSED and result.code != MISSING_ROUTE:
                # MISSING_ROUTE: no bans on this server; only the bot's watch can hold them.
                if result.code != NOT_BANNED:
                    return f"Rocket.Chat refused to unban {name} from {_room_label(room)} ({result.code})."
                if row is None:
                    return f"{name} is not banned from {_room_label(room)}."
        elif row is None:
            return f"{name} is not banned from {_room_label(room)}."
        else:
            # A watched ban is the bot's alone: lifting it changes nothing on the server.
            dry = self._executor.dry_run()
            outcome = "dry-run" if dry else "ok"
            seq = self._record(actor, actions.USER_UNBANNED, user, room, "unban", outcome=outcome, ban=ban_id)
            result = Result(Status.DRY_RUN if dry else Status.DONE, audit_seq=seq)
        if result.status is Status.DRY_RUN:
            return f"Dry run: {name} would be unbanned from {_room_label(room)}."
        if row is not None:
            self._bans.lift_ban(row.id, by=actor.id)
        key = f"ban:{row.id}" if row is not None else f"audit:{result.audit_seq or self._clock()}"
        await self.tell(user, Notice("unban", "", rooms=(room.name or room.id,)), key=key, room=room)
        return f"{name} unbanned from {_room_label(room)}; they may join again."

    async def on_event(self, event: object) -> None:
        """Kick-and-watch: someone the bot banned (on a server without bans) is back in the room."""
        if not isinstance(event, SystemMessage):
            return
        m = event.message
        if m.type in JOINS:
            row = self._bans.active_ban(m.rid, user_id=m.author.id)
        elif m.type == ADDED:
            row = self._bans.active_ban(m.rid, username=m.text.strip().lstrip("@"))
        else:
            return
        if row is not None and row.via == "watch":
            await self._remove_again(row)

    async def _remove_again(self, row: BanRow) -> bool:
        """Kick a watched user out again; False when they were not in the room."""
        user = Target(row.user_id, row.username, ())
        room = Room(row.rid, row.room_name, row.room_type)
        result = await self._act(
            _kick(room, user.id),
            RCMOD,
            actions.USER_KICKED,
            user,
            room,
            row.reason,
            moot=NOT_A_MEMBER,
            ban=row.id,
            rejoined=True,
        )
        if result.status is Status.REFUSED and result.code not in NOT_A_MEMBER:
            log.warning("banned user %s could not be removed from %s (%s)", row.user_id, row.rid, result.code)
        elif result.status is Status.FAILED:
            log.warning("banned user %s not removed from %s yet (%s)", row.user_id, row.rid, result.code)
        if not result.done:
            return False
        log.info("banned user %s rejoined %s and was removed again (ban %d)", row.user_id, row.rid, row.id)
        return True

    async def enforce_watched_bans(self) -> int:
        """Remove every watched user who is back in their room (e.g. rejoined while the bot was
        down); returns how many were removed."""
        removed = 0
        for row in self._bans.active_bans(via="watch"):
            removed += await self._remove_again(row)
        return removed

    async def lock_room(self, room: Room, *, reason: str, actor: Actor) -> bool:
        """Make ``room`` read-only for members (a raid); True if this call locked it."""
        if not self._sanctions.begin_room_lock(room.id, room.name, reason):
            return False
        result = await self._executor.execute(
            Action(
                SetReadOnly(room.id, True), actor.id, actions.ROOM_LOCKED, {"room": room.id}, {"why": reason}
            )
        )
        if not result.done:
            self._sanctions.end_room_lock(room.id)
            if result.status is Status.DRY_RUN:
                return False
            raise _failure(result, "lock")
        self._sanctions.room_locked(room.id)
        return True

    async def unlock_room(self, room: Room, *, actor: Actor) -> str:
        """Lift a raid lock; the moderator's answer."""
        label = inline_literal("#" + (room.name or room.id))
        if self._sanctions.room_lock(room.id) is None:
            return f"{label} was not locked by me."
        result = await self._executor.execute(
            Action(SetReadOnly(room.id, False), actor.id, actions.ROOM_UNLOCKED, {"room": room.id}, {})
        )
        if result.status is Status.DRY_RUN:
            return f"Dry run: {label} would be made writable for members again."
        if result.status is Status.FAILED:
            raise _failure(result, "unlock")
        if result.status is Status.REFUSED:
            return f"Rocket.Chat refused to unlock {label} ({result.code})."
        self._sanctions.end_room_lock(room.id)
        return f"{label} is writable for members again."

    # -- telling -------------------------------------------------------------------------------------

    async def tell(self, user: Target, notice: Notice, *, key: str, room: Room | None = None) -> None:
        """The user's private notice, through the outbox. ``key`` names what it is about (a strike,
        a ban, an audit record): the same key queued again sends nothing more."""
        await self.tell_text(user, render_notice(notice), key=f"{notice.kind}:{key}", room=room)

    async def tell_text(
        self, user: Target, text: str, *, key: str | None = None, room: Room | None = None
    ) -> None:
        """A private message to ``user`` through the outbox; a failure to send is retried there,
        never fatal here (the sanction stands). Without a ``key`` the message is its own."""
        await self._queue_notice(user, text, key=key or f"text:{user.id}:{self._clock()}", room=room)

    async def _queue_notice(self, user: Target, text: str, *, key: str, room: Room | None) -> None:
        await self._outbox.notify(
            OutboxNotice.direct(
                NOTICE_KIND,
                incident=key,
                recipient=user.username,
                text=text,
                room=_room_ref(room),
                subject=user.ref,
            )
        )

    # -- acting and recording ------------------------------------------------------------------------

    async def _act(
        self,
        change: Change,
        actor: Actor,
        audit: str,
        user: Target,
        room: Room | None,
        reason: str,
        *,
        moot: frozenset[str] = frozenset(),
        **details: Any,
    ) -> Result:
        """Carry out one change on ``user`` through the executor, which audits it."""
        action = Action(change, actor.id, audit, _targets(user, room), _why(reason, details), moot=moot)
        return await self._executor.execute(action)

    def _record(
        self,
        actor: Actor,
        action: str,
        user: Target,
        room: Room | None,
        reason: str,
        *,
        outcome: str = "ok",
        **details: Any,
    ) -> int:
        """Audit what is the bot's own record, not a change on the server (a strike, a pardon, a
        mute's later expiry); returns the record's number."""
        record = self._audit.append_audit(
            actor=actor.id,
            action=action,
            targets=_targets(user, room),
            reason=_why(reason, details),
            outcome=outcome,
        )
        return record.seq


def _targets(user: Target, room: Room | None) -> dict[str, Any]:
    return {"user": user.id} if room is None else {"user": user.id, "room": room.id}


def _why(reason: str, details: dict[str, Any]) -> dict[str, Any]:
    # The reason is a moderator's words about a user, not message text; it is kept with the
    # sanction so the user's appeal and the audit tell the same story.
    return {"reason": reason[:500], **{k: v for k, v in details.items() if v is not None}}


def _mute(room: Room, user: Target, muted: bool) -> MuteUser | UnmuteUser:
    # The executor chooses rooms.muteUser or, before 6.8, the realtime method.
    return (MuteUser if muted else UnmuteUser)(room.id, user.id, user.username)


def _kick(room: Room, user_id: str) -> KickUser:
    return KickUser(room.id, room.type or "c", user_id)


def _ban(via: str, room: Room, user_id: str) -> BanUser | KickUser:
    return BanUser(room.id, user_id) if via == "server" else _kick(room, user_id)


def _failure(result: Result, what: str) -> RcmodError:
    """The error a caller gets when the server did not carry out ``what``, as the REST client
    would have raised it: a refusal, or a server that did not answer."""
    if result.status is Status.REFUSED:
        return ActionRefused(f"{what} refused [{result.code}]", code=result.code)
    return RetryableError(f"{what} failed [{result.code}]")


def _room_ref(room: Room | None) -> Room:
    return Room("", None, None) if room is None else Room(room.id, room.name, room.type)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _room_label(room: Room) -> str:
    return inline_literal("#" + room.name) if room.name else inline_literal(room.id)


def _rooms_label(rooms: Iterable[Room], everywhere: bool) -> str:
    rooms = list(rooms)
    if everywhere:
        return f"every room I can act in ({len(rooms)})"
    return ", ".join(_room_label(r) for r in rooms)
