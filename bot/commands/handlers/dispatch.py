"""The command shell: every transport hands the text after ``/report`` or ``/mod`` to one
:class:`Dispatcher`, which parses it (:mod:`bot.commands`), resolves the caller's privilege from
Rocket.Chat's roles, checks it against the command's declared minimum, and runs the handler.

Transports:
- the companion app's ``POST /hooks/command`` (:mod:`bot.web.hook`), answered in the response;
- a direct message to the bot (``report …``, ``mod …``), answered in the same DM;
- ``/report …`` / ``/mod …`` typed in a room (reaches the bot only with
  ``Message_AllowUnrecognizedSlashCommand`` on): the bot deletes the command message at once when
  it may, so the room does not see it, and answers the sender by DM.

Handlers get a parsed, permitted :class:`Call` and return the reply text; they neither parse nor
check permissions. Logs carry ids and command names, never arguments (they may quote a message).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.audit import actions
from bot.commands import (
    Call,
    Caller,
    Handler,
    Invocation,
    MessageRef,
    Privilege,
    RoomName,
    UsageError,
    check,
    parse,
    resolve,
    split_command,
)
from bot.errors import ActionRefused, RcmodError
from bot.moderation.actions import Action, DeleteMessage, PostMessage
from bot.moderation.neutralize import defuse_everyone
from bot.realtime.events import Event, NewMessage, ThreadReply
from bot.rest import RestClient
from bot.services.executor import Act, Result, Status
from bot.services.lookups import RoleDirectory, TtlCache
from bot.store.audit import AuditLog

__all__ = ["LOOKUP_TTL", "Call", "Caller", "CommandInbox", "Dispatcher", "Handler", "not_done"]

log = logging.getLogger("rcmod.commands")

# Users, rooms and room roles a command looked up: roles change rarely, and a minute-old answer
# is fine for a privilege check (the workspace roles are read fresh).
LOOKUP_TTL = 60.0
_HINT_EVERY = 600.0


_TIMED_OUT = "That did not work: Rocket.Chat did not answer in time. Please try again in a moment."


def _refused(code: str | None) -> str:
    return f"Rocket.Chat refused that ({code or 'not allowed'}); nothing was changed."


def not_done(result: Result) -> str:
    """The reply to a moderator when the executor could not make the change: the words the
    dispatcher uses for a refused or failed call."""
    return _refused(result.code) if result.status is Status.REFUSED else _TIMED_OUT


class Dispatcher:
    def __init__(
        self,
        *,
        rest: RestClient,
        audit: AuditLog,
        handlers: Mapping[str, Handler],
        bot_moderators: Callable[[], Awaitable[frozenset[str]]],  # their user ids
        site_url: Callable[[], str],
        clock: Callable[[], float] = time.time,
        roles: RoleDirectory | None = None,
        cache: TtlCache | None = None,
    ) -> None:
        self._rest = rest
        self._roles = roles or RoleDirectory(rest, clock=clock)
        self._audit = audit
        self._handlers = dict(handlers)
        self._bot_moderators = bot_moderators
        self._site_url = site_url
        self._clock = clock
        # Its own object, so a handler that changes roles (/mod appoint) can drop an entry
        # without holding the dispatcher it is part of.
        self._cache = cache or TtlCache(clock, ttl=LOOKUP_TTL)

    async def run(self, root: str, args: str, caller: Caller) -> str:
        """The reply to one invocation; never raises for bad input or a server that fails."""
        return defuse_everyone(await self._answer(root, args, caller))

    async def _answer(self, root: str, args: str, caller: Caller) -> str:
        parsed = parse(root, args, site_url=self._site_url())
        if isinstance(parsed, UsageError):
            return parsed.text
        try:
            if caller.transport == "hook":
                known = await self._identify(caller)
                if known is None:
                    log.warning("hook command from unknown user %r refused", caller.user_id)
                    return "I do not know your account; nothing was done."
                caller = known
            return await self._run(parsed, caller)
        except RcmodError as exc:
            log.warning("command %s failed (%s)", parsed.command.name, type(exc).__name__)
            return _TIMED_OUT

    async def _run(self, parsed: Invocation, caller: Caller) -> str:
        command = parsed.command
        privilege = await self.privilege(caller, await self._context_room(caller, parsed))
        denied = check(command, privilege, everywhere=parsed.everywhere)
        if denied is not None:
            log.info("command %s refused for user %s (%s)", command.name, caller.user_id, privilege.label)
            self._audit.append_audit(
                actor=caller.user_id,
                action=actions.COMMAND_REFUSED,
                targets={"user": caller.user_id, "room": caller.rid},
                reason={"command": command.name, "needs": denied.need.label, "has": privilege.label},
                outcome="refused",
            )
            return denied.text
        handler = self._handlers.get(command.name)
        if handler is None:
            return f"`/{command.name}` is not available in this version yet."
        log.info("command %s by user %s via %s", command.name, caller.user_id, caller.transport)
        try:
            return await handler(Call(caller, parsed, privilege))
        except ActionRefused as exc:
            log.warning("command %s refused by the server (%s)", command.name, exc.code or type(exc).__name__)
            return _refused(exc.code)

    async def _identify(self, caller: Caller) -> Caller | None:
        """The hook's caller with the username the server gives for its id: the body's username
        is not trusted apart from the id (rights, room roles and audit names follow the id)."""
        user = await self._cached(
            f"user:{caller.user_id}", lambda: self._rest.user_info(user_id=caller.user_id)
        )
        name = user.get("username") if isinstance(user, dict) else None
        if not isinstance(name, str) or not name:
            return None
        return dataclasses.replace(caller, username=name)

    # -- privilege ---------------------------------------------------------------------------------

    async def privilege(self, caller: Caller, room: tuple[str, str] | None) -> Privilege:
        """From the workspace roles (users.list, a snapshot at most seconds old), the configured
        bot moderators, and the room roles of the room the command acts on (``room``: rid and
        type, cached for a minute)."""
        # Fresh: a role taken away (an admin demoted) must stop counting at the next command.
        global_roles = await self._roles.roles(user_id=caller.user_id, fresh=True)
        room_roles: list[str] = []
        if room is not None and room[1] in ("c", "p"):
            by_user = await self._cached(f"roles:{room[0]}", lambda: self._rest.room_roles(room[0], room[1]))
            room_roles = list(by_user.get(caller.user_id, [])) if isinstance(by_user, dict) else []
        return resolve(
            user_id=caller.user_id,
            global_roles=sorted(global_roles),
            room_roles=room_roles,
            bot_moderators=await self._bot_moderators(),
        )

    async def _context_room(self, caller: Caller, invocation: Invocation) -> tuple[str, str] | None:
        """The room whose roles count: the one the command names, else the one it was typed in;
        none for a command acting everywhere (no single room's moderator may do that)."""
        if invocation.everywhere:
            return None
        name = invocation.command.room_from
        try:
            if name is not None:
                value = invocation.get(name)
                if isinstance(value, MessageRef):
                    message = await self._cached(
                        f"msg:{value.mid}", lambda: self._rest.get_message(value.mid)
                    )
                    return await self.room_type(message.rid) if message else None
                if isinstance(value, RoomName):
                    info = await self._cached(
                        f"roomname:{value.name}", lambda: self._rest.room_by_name(value.name)
                    )
                    return (str(info["_id"]), str(info.get("t") or "c")) if info else None
                return None
            if caller.room_type:
                return caller.rid, caller.room_type
            return await self.room_type(caller.rid)
        except RcmodError:
            return None  # unknown room: workspace roles alone decide

    async def room_type(self, rid: str) -> tuple[str, str] | None:
        info = await self._cached(f"room:{rid}", lambda: self._rest.room_info(rid))
        return (rid, str(info.get("t") or "c")) if isinstance(info, dict) and info else None

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        return await self._cache.get(key, functools.partial(_none_if_refused, fetch))

    def forget(self, prefix: str = "") -> None:
        """Drop cached lookups (after /mod appoint changes a room's roles)."""
        self._cache.forget(prefix)


async def _none_if_refused(fetch: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await fetch()
    except ActionRefused:
        return None  # not found / not allowed: remembered briefly too


class CommandInbox:
    """The message transports: DMs to the bot, and slash commands typed in rooms."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        rest: RestClient,
        executor: Act,
        bot_username: Callable[[], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dispatcher = dispatcher
        self._rest = rest
        self._executor = executor
        self._bot_username = bot_username
        self._clock = clock
        self._hinted: dict[str, float] = {}

    async def on_event(self, event: Event) -> None:
        if not isinstance(event, NewMessage | ThreadReply):
            return  # an edit is not a new command
        message = event.message
        text = message.text.strip()
        if not text or message.is_system:
            return
        room_type = event.room.type
        if room_type is None:
            found = await self._dispatcher.room_type(message.rid)
            room_type = found[1] if found else None
        if room_type == "d":
            root, args = split_command(text, slash_required=False)
            caller = Caller(
                message.author.id, message.author.username, message.rid, None, "d", message.tmid, "dm"
            )
            if root is None:
                # At most one hint per conversation every 10 minutes: chatting with the bot (or
                # another bot answering it) must not turn into a loop.
                now = self._clock()
                if now - self._hinted.get(message.rid, -_HINT_EVERY) < _HINT_EVERY:
                    return
                self._hinted[message.rid] = now
                reply = "I understand `report …` and `mod …` here. `mod help` lists what you may use."
            else:
                reply = await self._dispatcher.run(root, args, caller)
            await self._reply(message.rid, reply, tmid=message.tmid)
            return
        root, args = split_command(text, slash_required=True)
        if root is None:
            return
        # Typed in a room: the command (and what it quotes) should not stay visible there, in a
        # dry run too. Upkeep, not moderation: not audited.
        removed = await self._executor.execute(
            Action(DeleteMessage(message.rid, message.id), actor=message.author.id, dry_run_applies=False)
        )
        if not removed.done:
            log.info("could not remove command message %s in %s (%s)", message.id, message.rid, removed.code)
        caller = Caller(
            message.author.id,
            message.author.username,
            message.rid,
            event.room.name,
            room_type,
            message.tmid,
            "room",
        )
        reply = await self._dispatcher.run(root, args, caller)
        try:
            await self._reply(await self._rest.dm_room(message.author.username), reply)
        except RcmodError as exc:
            log.warning("could not answer user %s by DM (%s)", message.author.id, type(exc).__name__)

    async def _reply(self, rid: str, text: str, tmid: str | None = None) -> None:
        # Answers go out in a dry run too (it holds back moderation, not conversation).
        sent = await self._executor.execute(
            Action(PostMessage(rid, text, tmid=tmid), actor="rcmod", dry_run_applies=False)
        )
        if not sent.done:
            log.warning("could not answer in %s (%s)", rid, sent.code)
