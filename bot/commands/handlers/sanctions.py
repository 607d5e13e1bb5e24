"""`/mod warn|mute|unmute|kick|ban|unban|strikes|unlock|restore|appeal`: the chat front of the sanctions
shell and the protections. Declared in :mod:`bot.commands.spec`; the dispatcher has
parsed the arguments and checked the declared privilege (in the named room) before a handler
runs. Bad input — an unknown user or room, an administrator, the bot itself, a bad duration —
gets a clear answer and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.audit import actions
from bot.commands.handlers.dispatch import Call, Handler
from bot.commands.parser import RoomName, UserName
from bot.models import Actor, Room, UserRef
from bot.moderation.durations import format_duration
from bot.moderation.neutralize import inline_literal
from bot.services.outbox import Notice, Outbox
from bot.services.sanctions import Sanctioner, Target
from bot.store.audit import AuditLog
from bot.store.bans import BanLedger
from bot.store.sanctions import SanctionLedger

__all__ = ["SanctionCommands"]

Restore = Callable[[int, Actor], Awaitable[str]]


class SanctionCommands:
    def __init__(
        self,
        *,
        sanctioner: Sanctioner,
        audit: AuditLog,
        sanctions: SanctionLedger,
        bans: BanLedger,
        outbox: Outbox,
        restore: Restore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = sanctioner
        self._audit = audit
        self._sanctions = sanctions
        self._bans = bans
        self._outbox = outbox
        self._restore = restore
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            "mod warn": self.warn,
            "mod mute": self.mute,
            "mod unmute": self.unmute,
            "mod kick": self.kick,
            "mod ban": self.ban,
            "mod unban": self.unban,
            "mod strikes": self.strikes,
            "mod unlock": self.unlock,
            "mod restore": self.restore,
            "mod appeal": self.appeal,
        }

    async def _user(self, call: Call, *, check: bool = True) -> Target | str:
        user = call.invocation.get("user")
        assert isinstance(user, UserName)
        return await self._s.target(user.username, check=check)

    async def _room(self, call: Call) -> Room | str | None:
        room = call.invocation.get("room")
        return await self._s.room(room.name) if isinstance(room, RoomName) else None

    async def _user_in_room(self, call: Call, *, check: bool = True) -> tuple[Target, Room] | str:
        """The user and the room a kick, ban or unban names, or the reply to give instead."""
        user = await self._user(call, check=check)
        if isinstance(user, str):
            return user
        room = await self._room(call)
        if not isinstance(room, Room):
            return room or f"Say which room: `/{call.invocation.command.name} @user #room`."
        return user, room

    async def _where(self, call: Call) -> list[Room] | str | None:
        """The rooms named (#room or everywhere: None), or the reply to give instead."""
        if call.invocation.get("scope") == "everywhere":
            return None
        room = await self._room(call)
        if room is None:
            return f"Say where: `/{call.invocation.command.name} @user #room` or `... everywhere`."
        return room if isinstance(room, str) else [room]

    @staticmethod
    def _actor(call: Call) -> Actor:
        return Actor(call.caller.user_id, call.caller.username)

    @staticmethod
    def _reason(call: Call) -> str:
        return call.invocation.text("reason") or "no reason given"

    async def warn(self, call: Call) -> str:
        user = await self._user(call)
        if isinstance(user, str):
            return user
        room = await self._room(call)
        if isinstance(room, str):
            return room
        return await self._s.strike(user, room=room, reason=self._reason(call), actor=self._actor(call))

    async def mute(self, call: Call) -> str:
        user = await self._user(call)
        if isinstance(user, str):
            return user
        where = await self._where(call)
        if isinstance(where, str):
            return where
        rooms = where if where is not None else await self._s.everywhere()
        duration = call.invocation.get("duration")
        return await self._s.mute(
            user,
            rooms,
            duration=float(duration) if isinstance(duration, int) else None,
            reason=self._reason(call),
            actor=self._actor(call),
            everywhere=where is None,
        )

    async def unmute(self, call: Call) -> str:
        user = await self._user(call, check=False)  # lifting a sanction is never refused for who it is
        if isinstance(user, str):
            return user
        where = await self._where(call)
        if isinstance(where, str):
            return where
        return await self._s.unmute(user, where, actor=self._actor(call))

    async def kick(self, call: Call) -> str:
        target = await self._user_in_room(call)
        if isinstance(target, str):
            return target
        return await self._s.kick(*target, reason=self._reason(call), actor=self._actor(call))

    async def ban(self, call: Call) -> str:
        target = await self._user_in_room(call)
        if isinstance(target, str):
            return target
        return await self._s.ban(*target, reason=self._reason(call), actor=self._actor(call))

    async def unban(self, call: Call) -> str:
        # Lifting a sanction is never refused for who it is.
        target = await self._user_in_room(call, check=False)
        if isinstance(target, str):
            return target
        return await self._s.unban(*target, actor=self._actor(call))

    async def strikes(self, call: Call) -> str:
        user = await self._user(call, check=False)
        if isinstance(user, str):
            return user
        name = inline_literal(user.username)
        if call.invocation.get("action") == "pardon":
            cleared = self._s.pardon(user, self._actor(call))
            return f"{name}: {cleared} strike(s) pardoned; the ladder starts again from zero."
        rows = self._sanctions.strikes(user.id, limit=20)
        live = self._s.live_strikes(user.id)
        cutoff = self._clock() - self._s.decay_seconds
        lapse = format_duration(self._s.decay_seconds)
        lines = [f"*Strikes of {name}*: {live} live (a strike lapses after {lapse})"]
        for r in rows:
            state = "pardoned" if r.pardoned_at else ("lapsed" if r.at <= cutoff else "live")
            who = r.source if r.source != "moderator" else "a moderator"
            lines.append(
                f"- {_when(r.at)} by {who}: {inline_literal(r.reason)} → {r.step or 'warn'} ({state})"
            )
        if not rows:
            lines.append("No strikes on record.")
        mutes = self._sanctions.live_mutes(user.id)
        for m in mutes:
            ends = "until lifted" if m.until is None else f"until {_when(m.until)}"
            where = inline_literal("#" + m.room_name) if m.room_name else inline_literal(m.rid)
            lines.append(f"- muted in {where} {ends}")
        for b in self._bans.active_bans(user.id):
            where = inline_literal("#" + b.room_name) if b.room_name else inline_literal(b.rid)
            lines.append(f"- banned from {where} since {_when(b.since)}")
        return "\n".join(lines)

    async def unlock(self, call: Call) -> str:
        room = await self._room(call)
        if not isinstance(room, Room):
            return room or "Say which room: `/mod unlock #room`."
        return await self._s.unlock_room(room, actor=self._actor(call))

    async def restore(self, call: Call) -> str:
        return await self._restore(call.invocation.number("held"), self._actor(call))

    async def appeal(self, call: Call) -> str:
        caller = call.caller
        text = call.invocation.text("text")
        live = self._s.live_strikes(caller.user_id)
        mutes = self._sanctions.live_mutes(caller.user_id)
        notice = Notice.about(
            "appeal",
            key=caller.user_id,
            incident=f"appeal:{caller.user_id}:{int(self._clock())}",
            text=(
                f"*rcmod*: {inline_literal(caller.username)} appeals ({live} live strike(s), "
                f"{len(mutes)} mute(s)): {inline_literal(text[:500])}\n"
                f"See `/mod strikes @{caller.username}`; lift with "
                f"`/mod unmute @{caller.username} everywhere` or `/mod strikes @{caller.username} pardon`."
            ),
            room=Room(caller.rid, caller.room_name, caller.room_type),
            subject=UserRef(caller.user_id, caller.username),
            severity="medium",
            window=3600.0,  # repeated appeals within the hour update one DM
        )
        raised = await self._outbox.notify(notice)
        self._audit.append_audit(
            actor=caller.user_id,
            action=actions.APPEAL_FILED,
            targets={"user": caller.user_id},
            reason={"strikes": live, "mutes": len(mutes)},
            outcome="ok" if raised else "failed",
        )
        if raised is None:
            return "Your appeal could not be passed on right now; please write to a moderator directly."
        return "Your appeal was passed to the moderators; one of them will answer you."


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
