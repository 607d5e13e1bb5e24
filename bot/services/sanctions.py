"""The sanctions shell: warnings, strikes and the ladder, mutes that expire, kicks, bans, raid
locks.

Decisions are pure (:mod:`bot.moderation.sanctions`); this carries them out, in an order that
loses nothing: every mute is written to the store (``pending``) before ``rooms.muteUser`` and
made ``active`` after it, so a crash in between is finished at the next start; the expiry loop
lifts every active mute whose time has come — at once after downtime, because expiry is a time
in the store, not a timer in memory. Every step is audited with who asked for it, and the user
is told privately, with the reason and how to appeal.

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
from bot.errors import ActionRefused, NotFound, RcmodError
from bot.models import UserRef
from bot.moderation.alerts import RoomRef
from bot.moderation.durations import format_duration
from bot.moderation.neutralize import inline_literal
from bot.moderation.sanctions import Notice, ladder_step, protected, render_notice, step_label
from bot.realtime.events import SystemMessage
from bot.rest import RestClient
from bot.services.alerts import Notifier
from bot.services.lookups import Lookups
from bot.services.moderators import BotModerators
from bot.store import Store
from bot.store.bans import BanRow
from bot.store.sanctions import MuteRow

__all__ = ["Room", "Sanctioner", "Target"]

log = logging.getLogger("rcmod.sanctions")

EXPIRY_POLL = 30.0  # the longest the expiry loop sleeps; it is woken early when a mute is added
NOT_A_MEMBER = frozenset({"error-user-not-in-room", "error-invalid-user"})
# System messages that put a user (back) in a room: joined (uj; ujt for a team's main room; ut a
# discussion) — the author is the user — or added by someone (au), naming the user in ``msg``.
JOINS = frozenset({"uj", "ujt", "ut"})
ADDED = "au"


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


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str | None
    type: str  # c or p: the kinds of room a user can be muted or kicked in


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a moderator (user id and name) or a rule (``rule:flood``)."""

    id: str
    name: str

    @property
    def is_rule(self) -> bool:
        return self.id.startswith("rule:")


class Sanctioner:
    def __init__(
        self,
        *,
        store: Store,
        rest: RestClient,
        notifier: Notifier,
        settings: SanctionSettings,
        moderation: ModerationSettings,
        bot_username: Callable[[], str | None],
        dry_run: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
        lookups: Lookups | None = None,
        ddp_call: Callable[..., Awaitable[Any]] | None = None,
        room_bans: Callable[[], bool] = lambda: True,
        bot_moderators: BotModerators | None = None,
    ) -> None:
        self._bot_moderators = bot_moderators or BotModerators(moderation.moderators, clock=clock)
        # Whether the server has rooms.banUser (8.3+); without it, bans are kept by kick-and-watch.
        self._room_bans = room_bans
        # Servers before 6.8 have no rooms.muteUser: there the realtime method does it.
        self._ddp_call = ddp_call
        self._store = store
        self._rest = rest
        self._notifier = notifier
        self._settings = settings
        self._moderation = moderation
        self._bot_username = bot_username
        self._dry_run = dry_run
        self._clock = clock
        self._lookups = lookups or Lookups(rest, clock=clock)
        self._wake = asyncio.Event()

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
        return self._store.sanctions.live_strike_count(user_id, since=since)

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
        if self._dry_run():
            count = self.live_strikes(user.id) + 1
            step = ladder_step(self._settings.ladder, count)
            self._audit(
                actor, actions.USER_WARNED, user, room, reason, outcome="dry-run", step=step_label(step)
            )
            return f"Dry run: {inline_literal(user.username)} would get strike {count} ({step_label(step)})."
        strike_id = self._store.sanctions.add_strike(
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
        self._store.sanctions.set_strike_step(strike_id, label)
        self._audit(actor, actions.USER_WARNED, user, room, reason, strike=strike_id, step=label, count=count)
        await self.tell(user, Notice("warn", reason, live_strikes=count, appeal=self._settings.appeal))
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
        await self._notifier.notice(
            kind="sanction",
            key=f"escalate|{user.id}",
            incident=f"strike:{strike_id}",
            text=(
                f"*rcmod*: {inline_literal(user.username)} has {count} live strikes (latest: "
                f"{inline_literal(reason)}). Consider `/mod block @{user.username} everywhere --deactivate`; "
                f"history: `/mod strikes @{user.username}`."
            ),
            room=RoomRef(room.id if room else "", room.name if room else None, room.type if room else None),
            subject=user.ref,
            severity="critical",
            roles=("admin",),
        )
        self._audit(actor, actions.SANCTION_ESCALATED, user, room, reason, strike=strike_id, count=count)
        return f"{summary}: the administrators were asked to decide."

    def pardon(self, user: Target, actor: Actor) -> int:
        cleared = self._store.sanctions.pardon_strikes(user.id)
        self._audit(actor, actions.STRIKES_PARDONED, user, None, "pardon", cleared=cleared)
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
        if self._dry_run():
            for room in rooms:
                self._audit(actor, actions.USER_MUTED, user, room, reason, outcome="dry-run", until=until)
            return (
                f"Dry run: {inline_literal(user.username)} would be muted {length} in {len(rooms)} room(s)."
            )
        muted: list[Room] = []
        refused: list[str] = []
        for room in rooms:
            outcome = await self._mute_one(user, room, until=until, reason=reason, actor=actor)
            if outcome is None:
                muted.append(room)
            elif outcome:
                refused.append(f"{_room_label(room)} ({outcome})")
        if muted:
            self._wake.set()
            await self.tell(
                user,
                Notice(
                    "mute",
                    reason,
                    rooms=tuple(r.name or r.id for r in muted),
                    everywhere=everywhere,
                    until=until,
                    live_strikes=self.live_strikes(user.id),
                    appeal=self._settings.appeal,
                ),
            )
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
    ) -> str | None:
        """None when muted; '' when the user is not in the room (skipped quietly); else why not."""
        row, new = self._store.sanctions.begin_mute(
            user_id=user.id,
            username=user.username,
            rid=room.id,
            room_name=room.name,
            until=until,
            reason=reason,
            actor=actor.id,
        )
        if not new and row.state == "active":
            self._audit(
                actor, actions.USER_MUTED, user, room, reason, mute=row.id, until=row.until, extended=True
            )
            return None
        return await self._apply_mute(row, user, room, actor)

    async def _apply_mute(self, row: MuteRow, user: Target, room: Room, actor: Actor) -> str | None:
        try:
            await self._set_muted(room.id, user, True)
        except ActionRefused as exc:
            if exc.code in NOT_A_MEMBER:
                self._store.sanctions.discard_mute(row.id)
                return ""
            self._store.sanctions.set_mute_state(row.id, "failed", by=actor.id)
            log.warning("mute of user %s in %s refused (%s)", user.id, room.id, exc.code)
            self._audit(actor, actions.USER_MUTED, user, room, row.reason, outcome="refused", code=exc.code)
            return exc.code or "not allowed"
        except RcmodError:
            # The server did not answer even after the REST layer's retries: the caller is told
            # it failed, so the mute must not quietly take effect later.
            self._store.sanctions.set_mute_state(row.id, "failed", by=actor.id)
            self._audit(actor, actions.USER_MUTED, user, room, row.reason, outcome="failed")
            raise
        self._store.sanctions.set_mute_state(row.id, "active")
        self._audit(actor, actions.USER_MUTED, user, room, row.reason, mute=row.id, until=row.until)
        return None

    async def unmute(self, user: Target, rooms: Sequence[Room] | None, *, actor: Actor) -> str:
        """Lift ``user``'s mutes in ``rooms`` (None: every mute the bot holds on them, everywhere).
        A mute someone set in Rocket.Chat itself is lifted too when its room is named."""
        live = {m.rid: m for m in self._store.sanctions.live_mutes(user.id)}
        targets = list(rooms) if rooms is not None else [Room(m.rid, m.room_name, "c") for m in live.values()]
        if not targets:
            return f"{inline_literal(user.username)} has no mutes from me."
        if self._dry_run():
            for room in targets:
                self._audit(actor, actions.USER_UNMUTED, user, room, "unmute", outcome="dry-run")
            return f"Dry run: {inline_literal(user.username)} would be unmuted in {len(targets)} room(s)."
        lifted: list[Room] = []
        failed: list[str] = []
        for room in targets:
            try:
                await self._set_muted(room.id, user, False)
            except ActionRefused as exc:
                if exc.code not in NOT_A_MEMBER:
                    failed.append(f"{_room_label(room)} ({exc.code or 'not allowed'})")
                    continue
            row = live.get(room.id)
            if row is not None:
                self._store.sanctions.set_mute_state(row.id, "lifted", by=actor.id)
            lifted.append(room)
            self._audit(actor, actions.USER_UNMUTED, user, room, "unmute", mute=row.id if row else None)
        if lifted:
            names = tuple(r.name or r.id for r in lifted)
            await self.tell(user, Notice("unmute", "", rooms=names, everywhere=rooms is None))
        line = f"{inline_literal(user.username)} unmuted in {_rooms_label(lifted, False)}" if lifted else ""
        if failed:
            line += ("; " if line else "Could not unmute: ") + ", ".join(failed)
        return line + "."

    async def expire_due(self) -> int:
        """Lift every active mute whose time has come; returns how many were lifted."""
        lifted = 0
        for row in self._store.sanctions.due_mutes(self._clock()):
            user = Target(row.user_id, row.username, ())
            room = Room(row.rid, row.room_name, "c")
            try:
                await self._set_muted(row.rid, user, False)
            except ActionRefused as exc:
                if exc.code not in NOT_A_MEMBER and exc.code != "error-invalid-room":
                    log.warning("expired mute %d could not be lifted (%s); will retry", row.id, exc.code)
                    continue
            except RcmodError as exc:
                log.warning("expired mute %d not lifted yet (%s); will retry", row.id, type(exc).__name__)
                continue
            self._store.sanctions.set_mute_state(row.id, "expired", by="rcmod")
            self._audit(Actor("rcmod", "rcmod"), actions.MUTE_EXPIRED, user, room, row.reason, mute=row.id)
            await self.tell(user, Notice("expired", "", rooms=(row.room_name or row.rid,)))
            lifted += 1
        return lifted

    async def resume(self) -> None:
        """Finish what a crash interrupted: mutes recorded but not yet applied."""
        for row in self._store.sanctions.live_mutes():
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
            due = self._store.sanctions.next_mute_due()
            wait = EXPIRY_POLL if due is None else min(EXPIRY_POLL, max(0.05, due - self._clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _set_muted(self, rid: str, user: Target, muted: bool) -> None:
        if self._ddp_call is not None:
            await self._ddp_call(
                "muteUserInRoom" if muted else "unmuteUserInRoom", {"rid": rid, "username": user.username}
            )
        elif muted:
            await self._rest.mute_user(rid, user.id)
        else:
            await self._rest.unmute_user(rid, user.id)

    # -- kicks and locks -----------------------------------------------------------------------------

    async def kick(self, user: Target, room: Room, *, reason: str, actor: Actor) -> str:
        name = inline_literal(user.username)
        if self._dry_run():
            self._audit(actor, actions.USER_KICKED, user, room, reason, outcome="dry-run")
            return f"Dry run: {name} would be removed from {_room_label(room)}."
        try:
            await self._rest.kick_user(room.id, room.type, user.id)
        except ActionRefused as exc:
            if exc.code in NOT_A_MEMBER:
                return f"{name} is not in {_room_label(room)}."
            self._audit(actor, actions.USER_KICKED, user, room, reason, outcome="refused", code=exc.code)
            code = exc.code or "not allowed"
            return f"Rocket.Chat refused to remove {name} from {_room_label(room)} ({code})."
        self._audit(actor, actions.USER_KICKED, user, room, reason)
        await self.tell(
            user, Notice("kick", reason, rooms=(room.name or room.id,), appeal=self._settings.appeal)
        )
        return f"{name} removed from {_room_label(room)}."

    # -- bans ----------------------------------------------------------------------------------------

    async def ban(self, user: Target, room: Room, *, reason: str, actor: Actor) -> str:
        """Ban ``user`` from ``room``: the server's ban where it has one, else kick-and-watch."""
        name = inline_literal(user.username)
        if self._dry_run():
            self._audit(actor, actions.USER_BANNED, user, room, reason, outcome="dry-run")
            return f"Dry run: {name} would be banned from {_room_label(room)}."
        if self._store.bans.active_ban(room.id, user_id=user.id) is not None:
            return f"{name} is already banned from {_room_label(room)}."
        via = "server" if self._room_bans() else "watch"
        try:
            if via == "server":
                try:
                    await self._rest.ban_user(room.id, user.id)
                except NotFound:
                    # The version said bans exist, the route says not (a proxy, a patched build):
                    # keep the user out the other way.
                    via = "watch"
            if via == "watch":
                await self._rest.kick_user(room.id, room.type, user.id)
        except ActionRefused as exc:
            if exc.code in NOT_A_MEMBER:
                return f"{name} is not in {_room_label(room)}."
            if exc.code == "error-user-already-banned":
                # Banned in Rocket.Chat itself; `/mod unban` lifts that one too.
                return f"{name} is already banned from {_room_label(room)} (in Rocket.Chat)."
            self._audit(actor, actions.USER_BANNED, user, room, reason, outcome="refused", code=exc.code)
            code = exc.code or "not allowed"
            return f"Rocket.Chat refused to ban {name} from {_room_label(room)} ({code})."
        row = self._store.bans.add_ban(
            user_id=user.id,
            username=user.username,
            rid=room.id,
            room_name=room.name,
            room_type=room.type,
            reason=reason,
            actor=actor.id,
            via=via,
        )
        self._audit(actor, actions.USER_BANNED, user, room, reason, ban=row.id, via=via)
        await self.tell(
            user, Notice("ban", reason, rooms=(room.name or room.id,), appeal=self._settings.appeal)
        )
        how = "" if via == "server" else " (this server has no bans: I remove them whenever they rejoin)"
        return f"{name} banned from {_room_label(room)}{how}."

    async def unban(self, user: Target, room: Room, *, actor: Actor) -> str:
        """Lift a ban, the bot's or one set in Rocket.Chat itself; the user may join again."""
        name = inline_literal(user.username)
        row = self._store.bans.active_ban(room.id, user_id=user.id)
        if self._dry_run():
            self._audit(actor, actions.USER_UNBANNED, user, room, "unban", outcome="dry-run")
            return f"Dry run: {name} would be unbanned from {_room_label(room)}."
        server_side = row.via == "server" if row is not None else self._room_bans()
        if server_side:
            try:
                await self._rest.unban_user(room.id, user.id)
            except NotFound:
                pass  # no bans on this server: only the bot's watch can hold them
            except ActionRefused as exc:
                if exc.code != "error-user-not-banned":
                    code = exc.code or "not allowed"
                    return f"Rocket.Chat refused to unban {name} from {_room_label(room)} ({code})."
                if row is None:
                    return f"{name} is not banned from {_room_label(room)}."
        elif row is None:
            return f"{name} is not banned from {_room_label(room)}."
        if row is not None:
            self._store.bans.lift_ban(row.id, by=actor.id)
        self._audit(actor, actions.USER_UNBANNED, user, room, "unban", ban=row.id if row else None)
        await self.tell(user, Notice("unban", "", rooms=(room.name or room.id,)))
        return f"{name} unbanned from {_room_label(room)}; they may join again."

    async def on_event(self, event: object) -> None:
        """Kick-and-watch: someone the bot banned (on a server without bans) is back in the room."""
        if not isinstance(event, SystemMessage):
            return
        m = event.message
        if m.type in JOINS:
            row = self._store.bans.active_ban(m.rid, user_id=m.author.id)
        elif m.type == ADDED:
            row = self._store.bans.active_ban(m.rid, username=m.text.strip().lstrip("@"))
        else:
            return
        if row is not None and row.via == "watch":
            await self._remove_again(row)

    async def _remove_again(self, row: BanRow) -> bool:
        """Kick a watched user out again; False when they were not in the room."""
        user = Target(row.user_id, row.username, ())
        room = Room(row.rid, row.room_name, row.room_type)
        if self._dry_run():
            self._audit(
                Actor("rcmod", "rcmod"),
                actions.USER_KICKED,
                user,
                room,
                row.reason,
                outcome="dry-run",
                ban=row.id,
            )
            return False
        try:
            await self._rest.kick_user(row.rid, row.room_type, row.user_id)
        except ActionRefused as exc:
            if exc.code not in NOT_A_MEMBER:
                log.warning(
                    "banned user %s could not be removed from %s (%s)", row.user_id, row.rid, exc.code
                )
                self._audit(
                    Actor("rcmod", "rcmod"),
                    actions.USER_KICKED,
                    user,
                    room,
                    row.reason,
                    outcome="refused",
                    code=exc.code,
                    ban=row.id,
                )
            return False
        except RcmodError as exc:
            log.warning(
                "banned user %s not removed from %s yet (%s)", row.user_id, row.rid, type(exc).__name__
            )
            return False
        log.info("banned user %s rejoined %s and was removed again (ban %d)", row.user_id, row.rid, row.id)
        self._audit(
            Actor("rcmod", "rcmod"), actions.USER_KICKED, user, room, row.reason, ban=row.id, rejoined=True
        )
        return True

    async def enforce_watched_bans(self) -> int:
        """Remove every watched user who is back in their room (e.g. rejoined while the bot was
        down); returns how many were removed."""
        removed = 0
        for row in self._store.bans.active_bans(via="watch"):
            removed += await self._remove_again(row)
        return removed

    async def lock_room(self, room: Room, *, reason: str, actor: Actor) -> bool:
        """Make ``room`` read-only for members (a raid); True if this call locked it."""
        if not self._store.sanctions.begin_room_lock(room.id, room.name, reason):
            return False
        try:
            await self._rest.set_read_only(room.id, True)
        except RcmodError:
            self._store.sanctions.end_room_lock(room.id)
            raise
        self._store.sanctions.room_locked(room.id)
        self._store.audit.append_audit(
            actor=actor.id, action=actions.ROOM_LOCKED, targets={"room": room.id}, reason={"why": reason}
        )
        return True

    async def unlock_room(self, room: Room, *, actor: Actor) -> bool:
        """Lift a raid lock; False if the bot had not locked the room."""
        if self._store.sanctions.room_lock(room.id) is None:
            return False
        await self._rest.set_read_only(room.id, False)
        self._store.sanctions.end_room_lock(room.id)
        self._store.audit.append_audit(
            actor=actor.id, action=actions.ROOM_UNLOCKED, targets={"room": room.id}, reason={}
        )
        return True

    # -- telling -------------------------------------------------------------------------------------

    async def tell(self, user: Target, notice: Notice) -> None:
        """The user's private notice; a failure is logged, never fatal (the sanction stands)."""
        await self.tell_text(user, render_notice(notice))

    async def tell_text(self, user: Target, text: str) -> None:
        try:
            await self._rest.send_message(await self._rest.dm_room(user.username), text)
        except RcmodError as exc:
            log.warning("could not tell user %s privately (%s)", user.id, type(exc).__name__)

    def _audit(
        self,
        actor: Actor,
        action: str,
        user: Target,
        room: Room | None,
        reason: str,
        *,
        outcome: str = "ok",
        **details: Any,
    ) -> None:
        targets: dict[str, Any] = {"user": user.id}
        if room is not None:
            targets["room"] = room.id
        # The reason is a moderator's words about a user, not message text; it is kept with the
        # sanction so the user's appeal and the audit tell the same story.
        why = {"reason": reason[:500], **{k: v for k, v in details.items() if v is not None}}
        self._store.audit.append_audit(
            actor=actor.id, action=action, targets=targets, reason=why, outcome=outcome
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _room_label(room: Room) -> str:
    return inline_literal("#" + room.name) if room.name else inline_literal(room.id)


def _rooms_label(rooms: Iterable[Room], everywhere: bool) -> str:
    rooms = list(rooms)
    if everywhere:
        return f"every room I can act in ({len(rooms)})"
    return ", ".join(_room_label(r) for r in rooms)
