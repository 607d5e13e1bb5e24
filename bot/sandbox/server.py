"""The :class:`Sandbox`: one aiohttp app serving REST and DDP over a seeded :class:`Workspace`.

This is the composition root of the sandbox package; nothing else builds its parts. State lives
in the workspace, so :meth:`Sandbox.restart` keeps it while every connection drops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TextIO

from aiohttp import web

from bot.sandbox.ddp import DDPServer
from bot.sandbox.errors import MeteorError
from bot.sandbox.faults import FailRule, Faults
from bot.sandbox.ratelimit import FixedWindowLimiter, RateLimits
from bot.sandbox.releases import DEFAULT_VERSION
from bot.sandbox.rest import (
    Call,
    RestApi,
    channels_join,
    chat_delete,
    chat_post_message,
    chat_unpin_message,
    chat_update,
    rooms_save_room_settings,
    users_register,
    users_update_own_basic_info,
)
from bot.sandbox.seed import seed_summary, seed_workspace
from bot.sandbox.wire import to_rest
from bot.sandbox.workspace import User, Workspace

__all__ = ["Sandbox", "serve"]


class Sandbox:
    """A seeded simulated workspace with fault injection.

    ``clock`` (seconds) drives timestamps, token expiry and every rate-limit window, so tests
    can use tiny windows without sleeping; ``ping_interval``/``ping_timeout`` (real seconds)
    are the DDP heartbeat; ``version`` is what ``/api/info`` reports and the release whose
    differences (``bot.sandbox.releases``) the REST answers follow; an unknown one raises
    :class:`~bot.sandbox.releases.ReleaseError`.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        rate_limits: RateLimits | None = None,
        *,
        seed: int = 0,
        version: str = DEFAULT_VERSION,
        ping_interval: float = 15.0,
        ping_timeout: float = 15.0,
    ) -> None:
        self.clock = clock
        self.rate_limits = rate_limits or RateLimits()
        self.workspace = Workspace(clock, seed=seed)
        self._tokens = seed_workspace(self.workspace)
        self.faults = Faults(clock)
        self._limiter = FixedWindowLimiter(clock)
        self.version = version  # what /api/info reports
        self._rest = RestApi(self.workspace, self.rate_limits, self._limiter, version)
        self._ddp = DDPServer(
            self.workspace, self._limiter, self.rate_limits, self.faults, ping_interval, ping_timeout
        )
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.url = ""

    # ---------------------------------------------------------------- lifecycle

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self.faults.middleware()])
        app.router.add_get("/websocket", self._ddp.handle)
        self._rest.add_routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host, self._port = host, int(runner.addresses[0][1])
        self.url = f"http://{self._host}:{self._port}"
        self.workspace.set_setting("Site_Url", self.url)
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self._ddp.close_all()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def restart(self) -> None:
        """Stop and start on the same port; the workspace (and its state) is kept."""
        await self._ddp.drop_all()
        await self.stop()
        await self.start(self._host, self._port)

    def seed_info(self) -> dict[str, Any]:
        return seed_summary(self.workspace, self.url, self._tokens)

    # ---------------------------------------------------------------- in-process actors

    def _user(self, username: str) -> User:
        user = self.workspace.user_by_username(username)
        if user is None:
            raise KeyError(f"no user {username!r}")
        return user

    def _room_id(self, room_name: str) -> str:
        room = self.workspace.room_by_id_or_name(name=room_name)
        if room is None:
            raise KeyError(f"no room {room_name!r}")
        return str(room["_id"])

    def post_as(self, username: str, room_name: str, text: str, tmid: str | None = None) -> dict[str, Any]:
        """Post through chat.postMessage's own handler; raises MeteorError where it would fail."""
        params: dict[str, Any] = {"roomId": self._room_id(room_name), "text": text}
        if tmid:
            params["tmid"] = tmid
        result = chat_post_message(self._rest, Call(None, params, self._user(username)))
        return dict(to_rest(result["message"]))

    def edit_as(self, username: str, message_id: str, text: str) -> dict[str, Any]:
        message = self.workspace.messages.get(message_id)
        if message is None:
            raise MeteorError("error-invalid-message", "Invalid message")
        params = {"roomId": message["rid"], "msgId": message_id, "text": text}
        result = chat_update(self._rest, Call(None, params, self._user(username)))
        return dict(to_rest(result["message"]))

    def delete_as(self, username: str, message_id: str) -> None:
        message = self.workspace.messages.get(message_id)
        if message is None:
            raise MeteorError("error-invalid-message", "Invalid message")
        params = {"roomId": message["rid"], "msgId": message_id}
        chat_delete(self._rest, Call(None, params, self._user(username)))

    def create_user(
        self,
        username: str,
        *,
        roles: Iterable[str] = ("user",),
        name: str | None = None,
        created_days_ago: float = 0.0,
        join_default_channels: bool = True,
    ) -> dict[str, Any]:
        """A new account, ``created_days_ago`` old (users.info ``createdAt``), that joined the
        default channels (``general``) as users.create does. Returns an entry shaped like
        ``seed_info()["users"]``, with a personal access token for REST and DDP."""
        ws = self.workspace
        if ws.user_by_username(username) is not None:
            raise MeteorError("error-field-unavailable", f"{username} is already in use :(")
        password = f"{username.replace('.', '-')}-{ws.ids.id()[:8]}"
        user = ws.create_user(username, password, roles, name=name)
        self.set_user_created(username, ws.now() - timedelta(days=created_days_ago))
        if join_default_channels:
            for room in list(ws.rooms.values()):
                if room.get("default") and room["t"] in ("c", "p"):
                    ws.add_user_to_room(room, user, None)
        token = ws.create_personal_access_token(user.id)
        return {
            "username": username,
            "password": password,
            "id": user.id,
            "token": token,
            "roles": list(user.roles),
        }

    def seed_bulk(
        self, rooms: int, members: int, *, rooms_per_member: int = 1, created_days_ago: float = 30.0
    ) -> dict[str, Any]:
        """A sandbox-only shortcut for benchmarks: a workspace's shape in well under a second for
        thousands of rooms, where creating each room and member through the routes would take
        minutes. Adds ``members`` accounts ``member00000``… (role ``user``, each with a personal
        access token, ``created_days_ago`` old so nobody is on probation) and ``rooms`` public
        channels ``room00000``… that the bot is in. Each member is in ``rooms_per_member``
        rooms (or more, when there are more rooms than that covers), and every room has a
        member. No system messages or events are emitted: call it before anyone connects.
        Returns ``users`` (shaped like ``seed_info()["users"]``, plus ``rooms``: the ids of the
        rooms each is in) and ``rooms`` (name and id)."""
        ws = self.workspace
        bot = self._user("rcmod.bot")
        created = ws.now() - timedelta(days=created_days_ago)
        accounts: list[User] = []
        users: list[dict[str, Any]] = []
        for m in range(members):
            username = f"member{m:05d}"
            user = ws.create_user(username, f"{username}-{ws.ids.id()[:8]}", ("user",))
            user.created_at = user.updated_at = created
            accounts.append(user)
            token = ws.create_personal_access_token(user.id)
            users.append(
                {"username": username, "id": user.id, "token": token, "roles": ["user"], "rooms": []}
            )
        in_room: list[list[str]] = [[bot.id] for _ in range(rooms)]
        if rooms and members:
            # Member m's k-th room is m + k * rooms / rooms_per_member (mod rooms): distinct rooms,
            # and a room nobody landed in gets one member, so every room has traffic to carry.
            per_member = max(1, min(rooms_per_member, rooms))
            stride = rooms // per_member
            for m in range(members):
                for k in range(per_member):
                    in_room[(m + k * stride) % rooms].append(accounts[m].id)
            for r, uids in enumerate(in_room):
                if len(uids) == 1:
                    uids.append(accounts[r % members].id)
        out_rooms = []
        for r, listed in enumerate(in_room):
            uids = list(dict.fromkeys(listed))
            room = ws.create_room("c", f"room{r:05d}", None, uids)
            out_rooms.append({"name": room["name"], "id": room["_id"], "type": "c"})
            for uid in uids[1:]:
                users[int(ws.users[uid].username[6:])]["rooms"].append(room["_id"])
        return {"users": users, "rooms": out_rooms}

    def set_user_created(self, username: str, created_at: datetime) -> None:
        """Backdate (or move) an account's creation, e.g. to take it out of probation."""
        user = self._user(username)
        user.created_at = created_at
        user.updated_at = max(user.updated_at or created_at, created_at)

    def join_as(self, username: str, room_name: str) -> None:
        """The user joins a public channel themselves, through channels.join's own handler:
        subscription events and a ``uj`` system message. Raises MeteorError where it would fail."""
        channels_join(self._rest, Call(None, {"roomId": self._room_id(room_name)}, self._user(username)))

    def add_member(self, room_name: str, username: str) -> None:
        """An administrator adds the user: subscription events plus an ``au`` system message."""
        room = self.workspace.room_by_id_or_name(name=room_name)
        if room is None:
            raise KeyError(f"no room {room_name!r}")
        self.workspace.add_user_to_room(room, self._user(username), self._user("admin"))

    def remove_member(self, room_name: str, username: str) -> None:
        """An administrator removes the user: ``removed`` subscription notice and a ``ru`` message."""
        room = self.workspace.room_by_id_or_name(name=room_name)
        if room is None:
            raise KeyError(f"no room {room_name!r}")
        self.workspace.remove_user_from_room(room, self._user(username), self._user("admin"))

    def unpin_as(self, username: str, message_id: str) -> None:
        """Unpin through chat.unPinMessage's own handler (a member undoing a policy pin)."""
        chat_unpin_message(self._rest, Call(None, {"messageId": message_id}, self._user(username)))

    def set_announcement_as(self, username: str, room_name: str, text: str) -> None:
        """Change the room's announcement banner through rooms.saveRoomSettings's handler."""
        params = {"rid": self._room_id(room_name), "roomAnnouncement": text}
        rooms_save_room_settings(self._rest, Call(None, params, self._user(username)))

    def set_topic_as(self, username: str, room_name: str, text: str) -> None:
        """Change the room's topic through rooms.saveRoomSettings's handler (``room_changed_topic``)."""
        params = {"rid": self._room_id(room_name), "roomTopic": text}
        rooms_save_room_settings(self._rest, Call(None, params, self._user(username)))

    def rename_room_as(self, username: str, room_name: str, new_name: str) -> None:
        """Rename a room through rooms.saveRoomSettings's handler (an ``r`` system message)."""
        params = {"rid": self._room_id(room_name), "roomName": new_name}
        rooms_save_room_settings(self._rest, Call(None, params, self._user(username)))

    def register(
        self, username: str, *, name: str, reason: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        """Sign up through users.register's own handler, as the registration form does. With
        ``Accounts_ManuallyApproveNewUsers`` on, the account waits for an admin (inactive).
        Returns the route's ``user``; raises where the route would fail."""
        params: dict[str, Any] = {
            "username": username,
            "name": name,
            "email": email or f"{username}@signup.invalid",
            "pass": f"{username}-Pa55word",
        }
        if reason is not None:
            params["reason"] = reason
        return dict(to_rest(users_register(self._rest, Call(None, params, None))["user"]))

    def rename_user_as(
        self, username: str, *, name: str | None = None, new_username: str | None = None
    ) -> None:
        """A user changes their own display name and/or username (users.updateOwnBasicInfo)."""
        data: dict[str, Any] = {}
        if name is not None:
            data["name"] = name
        if new_username is not None:
            data["username"] = new_username
        users_update_own_basic_info(self._rest, Call(None, {"data": data}, self._user(username)))

    def dm_as(self, username: str, to_username: str, text: str, tmid: str | None = None) -> dict[str, Any]:
        """A direct message (im.create, then chat.postMessage's own handler)."""
        user = self._user(username)
        room = self.workspace.create_direct(user.id, [to_username])
        params: dict[str, Any] = {"roomId": room["_id"], "text": text}
        if tmid:
            params["tmid"] = tmid
        result = chat_post_message(self._rest, Call(None, params, user))
        return dict(to_rest(result["message"]))

    def upload_as(
        self,
        username: str,
        room_name: str,
        data: bytes,
        *,
        filename: str,
        content_type: str,
        msg: str = "",
        description: str | None = None,
    ) -> dict[str, Any]:
        """Post a file in-process, as rooms.media then rooms.mediaConfirm would (the same checks
        and message); raises MeteorError where they would fail. Over REST, a member's client
        does the same with tests.helpers.upload."""
        user = self._user(username)
        rid = self._room_id(room_name)
        upload = self.workspace.insert_upload(
            user.id, rid, name=filename, declared_type=content_type, data=data
        )
        message = self.workspace.send_file_message(user.id, rid, upload["_id"], {"msg": msg}, description)
        if message is None:
            raise MeteorError("error-not-allowed", "Not allowed")
        return dict(to_rest(message))

    def react_as(self, username: str, message_id: str, emoji: str) -> None:
        """Toggle a reaction, as chat.react would."""
        self.workspace.set_reaction(self._user(username).id, message_id, emoji)

    # ---------------------------------------------------------------- faults

    async def drop_connections(self) -> None:
        await self._ddp.drop_all()

    def inject_frame(self, data: str | bytes) -> None:
        """Send ``data`` as-is to every DDP client: malformed, truncated or binary frames."""
        self._ddp.inject(data)

    def refuse_connections(self, refuse: bool) -> None:
        self.faults.refusing = refuse

    def set_frame_delay(self, seconds: float) -> None:
        self.faults.frame_delay = seconds

    def fail_next(
        self,
        path_suffix: str,
        status: int,
        body: str | dict[str, Any] | None = None,
        content_type: str | None = None,
        times: int = 1,
        *,
        retry_after: float = 1.0,
    ) -> None:
        """Answer the next ``times`` requests whose path ends with ``path_suffix`` with ``status``.

        ``body`` is a JSON object or raw text (sent with ``content_type``); without it the body
        is Rocket.Chat's for that status. An injected 429 carries ``X-RateLimit-*`` headers with
        the reset ``retry_after`` clock seconds ahead (a one-off fault has no real window; a
        short default keeps tests fast — pass 60 for Rocket.Chat's default window).
        """
        self.faults.rules.append(FailRule(path_suffix, status, body, content_type, times, retry_after))


async def serve(port: int, out: TextIO, *, version: str = DEFAULT_VERSION) -> None:
    """``rcmod sandbox --port N [--version X]``: print the seed as one JSON line, then serve
    until cancelled."""
    sandbox = Sandbox(version=version)
    await sandbox.start("127.0.0.1", port)
    out.write(json.dumps(sandbox.seed_info()) + "\n")
    out.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()
