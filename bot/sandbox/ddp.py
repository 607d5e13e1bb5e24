"""DDP at ``/websocket``: a sans-I/O session plus a thin aiohttp websocket shell.

:class:`DDPSession` takes incoming text frames and workspace events and produces outgoing
frames through two callbacks (``send``, ``close``); it never touches a socket, so tests can drive
it directly. :class:`DDPServer` owns the websockets: one reader loop with the heartbeat, one
writer task per connection (ordering, and the injectable frame delay), and abrupt drops.

Where the two real DDP servers differ (reference A.1, A.2, A.5) this follows the EE ddp-streamer
for close codes (1002 when the first frame is not ``connect``, 1007 on unparseable data, 4000 on
heartbeat timeout) and the Meteor monolith for ``unsub`` of an unknown id (answered with nosub).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox.errors import MeteorError, PlainError, meteor_error_object
from bot.sandbox.faults import Faults
from bot.sandbox.ratelimit import FixedWindowLimiter, RateLimits
from bot.sandbox.wire import IdSource, ms, to_ejson
from bot.sandbox.workspace import (
    Event,
    MessageChanged,
    RoomNotify,
    User,
    UserNotify,
    Workspace,
    message_options,
)

__all__ = ["DDPServer", "DDPSession"]

Frame = dict[str, Any]

_NOTIFY_ROOM_EVENTS = {
    "deleteMessage",
    "deleteMessageBulk",
    "user-activity",
    "typing",
    "messagesRead",
    "videoconf",
    "e2e.keyRequest",
}
_OPEN_STREAMS = {"stream-notify-logged", "stream-notify-all"}
# Readable by anyone, logged in or not (allowRead('all')), except the privileged settings event.
_PUBLIC_STREAM = "stream-notify-all"
_PRIVATE_SETTINGS_PERMISSIONS = (
    "view-privileged-setting",
    "edit-privileged-setting",
    "manage-selected-settings",
)
# Methods that answer an anonymous caller with an empty list instead of refusing.
_ANONYMOUS_EMPTY = {"subscriptions/get", "rooms/get"}


@dataclass
class _Sub:
    name: str
    event: str


@dataclass
class DDPSession:
    """One DDP connection's protocol state."""

    workspace: Workspace
    limiter: FixedWindowLimiter
    limits: RateLimits
    session_id: str
    send: Callable[[Frame], None]
    close: Callable[[int, str], None]
    connected: bool = False
    closed: bool = False
    user: User | None = None
    subs: dict[str, _Sub] = field(default_factory=dict)

    def _listen(self) -> None:
        """Hear the workspace's events from the first subscription on: a connection that only
        calls methods (a member posting) is not called for every message of the workspace."""
        if not self.closed and self.on_event not in self.workspace.listeners:
            self.workspace.listeners.append(self.on_event)

    def detach(self) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.workspace.listeners.remove(self.on_event)

    def _close(self, code: int, reason: str) -> None:
        self.detach()
        self.close(code, reason)

    # ---------------------------------------------------------------- incoming

    def receive(self, text: str) -> None:
        if self.closed:
            return
        try:
            frame = json.loads(text)
        except json.JSONDecodeError:
            self._close(1007, "Invalid payload")
            return
        if not isinstance(frame, dict):
            self._close(1007, "Invalid payload")
            return
        kind = frame.get("msg")
        if not self.connected:
            if kind != "connect":
                self._close(1002, "Expected connect")
                return
            if frame.get("version") not in ("1", "pre2", "pre1"):
                self.send({"msg": "failed", "version": "1"})
                self._close(1002, "Unsupported version")
                return
            self.connected = True
            self.send({"msg": "connected", "session": self.session_id})
            return
        if kind == "ping":
            self.send({"msg": "pong", **({"id": frame["id"]} if "id" in frame else {})})
        elif kind == "pong":
            pass  # liveness is tracked by the I/O shell: any frame counts
        elif kind == "method" and isinstance(frame.get("method"), str) and isinstance(frame.get("id"), str):
            self._method(frame)
        elif kind == "sub" and isinstance(frame.get("name"), str) and isinstance(frame.get("id"), str):
            self._subscribe(frame)
        elif kind == "unsub" and isinstance(frame.get("id"), str):
            self.subs.pop(frame["id"], None)
            self.send({"msg": "nosub", "id": frame["id"]})
        else:
            self.send({"msg": "error", "reason": "Bad request", "offendingMessage": frame})

    def _rate_limited(self, name: str) -> MeteorError | None:
        """DDP_Rate_Limit_Connection_By_Method (A.8)."""
        if not self.limits.ddp_enabled:
            return None
        factor = self.limits.ddp_stream_multiplier if name.startswith("stream-") else 1
        decision = self.limiter.hit(
            ("ddp", self.session_id, name), self.limits.ddp_calls * factor, self.limits.ddp_window * factor
        )
        if decision.allowed:
            return None
        return too_many_requests(decision.time_to_reset_ms(self.workspace.clock()))

    def _method(self, frame: Frame) -> None:
        mid, name = frame["id"], frame["method"]
        params = frame.get("params", [])
        if not isinstance(params, list):
            params = [params]
        error = self._rate_limited(name)
        if error is None:
            try:
                result = self._call(name, params)
            except MeteorError as exc:
                error = exc
            except PlainError:
                error = MeteorError(500, "Internal server error")  # Meteor hides non-Meteor errors
        if error is not None:
            client_safe = not (name == "login" and isinstance(error.error, int))
            # EJSON: error details may carry dates (a 2FA code's codeExpires).
            body = to_ejson(meteor_error_object(error, client_safe))
            self.send({"msg": "result", "id": mid, "error": body})
        else:
            reply: Frame = {"msg": "result", "id": mid}
            if result is not None:
                reply["result"] = to_ejson(result)
            self.send(reply)
        self.send({"msg": "updated", "methods": [mid]})

    def _call(self, name: str, params: list[Any]) -> Any:
        handler = _METHODS.get(name)
        if handler is None:
            raise MeteorError(404, f"Method '{name}' not found")
        if name in _ANONYMOUS_EMPTY and self.user is None:
            return []
        if name != "login" and self.user is None:
            raise MeteorError("error-invalid-user", "Invalid user", {"method": name})
        return handler(self, params)

    def _subscribe(self, frame: Frame) -> None:
        sid, name = frame["id"], frame["name"]
        params = frame.get("params", [])
        error = self._rate_limited(name)
        if error is None:
            error = self._check_subscription(name, params)
        if error is not None:
            self.send({"msg": "nosub", "id": sid, "error": meteor_error_object(error)})
            return
        self.subs[sid] = _Sub(name, params[0])
        self._listen()
        self.send({"msg": "ready", "subs": [sid]})

    def _check_subscription(self, name: str, params: Any) -> MeteorError | None:
        """Streamer ``_publish`` checks (A.5, A.6 table)."""
        if not name.startswith("stream-"):
            return MeteorError(404, f"Subscription '{name}' not found")
        if not isinstance(params, list) or not params or not isinstance(params[0], str) or not params[0]:
            return MeteorError("invalid-event-name")
        event: str = params[0]
        if name == _PUBLIC_STREAM and event != "private-settings-changed":
            return None
        if self.user is None:
            return MeteorError("not-allowed")
        uid = self.user.id
        ws = self.workspace
        if name == "stream-room-messages":
            if event == "__my_messages__":
                return None
            room = ws.rooms.get(event)
            if room is not None and (
                ws.can_access_room(uid, room)
                or (room["t"] == "c" and ws.has_permission(uid, "preview-c-room"))
            ):
                return None
            return MeteorError("not-allowed")
        if name == "stream-notify-user":
            owner, _, rest = event.partition("/")
            return None if owner == uid and rest else MeteorError("not-allowed")
        if name == "stream-notify-room":
            rid, _, rest = event.partition("/")
            room = ws.rooms.get(rid)
            if room is not None and rest in _NOTIFY_ROOM_EVENTS and ws.can_access_room(uid, room):
                return None
            return MeteorError("not-allowed")
        if (
            name == _PUBLIC_STREAM
            and event == "private-settings-changed"
            and not any(ws.has_permission(uid, p) for p in _PRIVATE_SETTINGS_PERMISSIONS)
        ):
            return MeteorError("not-allowed")
        if name in _OPEN_STREAMS:
            return None
        return MeteorError(404, f"Subscription '{name}' not found")

    # ---------------------------------------------------------------- outgoing events

    def _changed(self, collection: str, event: str, args: list[Any]) -> None:
        self.send(
            {
                "msg": "changed",
                "collection": collection,
                "id": "id",
                "fields": {"eventName": event, "args": to_ejson(args)},
            }
        )

    def _subscribed(self, name: str, event: str) -> bool:
        return any(s.name == name and s.event == event for s in self.subs.values())

    def on_event(self, event: Event) -> None:
        if self.closed or self.user is None or not self.subs:
            return
        uid = self.user.id
        ws = self.workspace
        if isinstance(event, MessageChanged):
            message = event.message
            room = ws.rooms.get(message["rid"])
            if room is None or not ws.can_access_room(uid, room):
                return
            if self._subscribed("stream-room-messages", message["rid"]):
                self._changed("stream-room-messages", message["rid"], [message])
            if self._subscribed("stream-room-messages", "__my_messages__"):
                # allowEmit appends a per-recipient hint (B.1, B.2).
                hint: dict[str, Any] = {
                    "roomParticipant": (room["_id"], uid) in ws.subscriptions,
                    "roomType": room["t"],
                }
                if room.get("name"):
                    hint["roomName"] = room["name"]
                self._changed("stream-room-messages", "__my_messages__", [message, hint])
        elif isinstance(event, RoomNotify):
            name = f"{event.rid}/{event.event}"
            room = ws.rooms.get(event.rid)
            if (
                room is not None
                and self._subscribed("stream-notify-room", name)
                and ws.can_access_room(uid, room)
            ):
                self._changed("stream-notify-room", name, event.args)
        elif isinstance(event, UserNotify):
            name = f"{event.uid}/{event.event}"
            if event.uid == uid and self._subscribed("stream-notify-user", name):
                self._changed("stream-notify-user", name, event.args)
                if event.event == "force_logout":
                    self._close(1000, "force_logout")


def too_many_requests(time_to_reset_ms: int) -> MeteorError:
    seconds = math.ceil(time_to_reset_ms / 1000)
    return MeteorError(
        "too-many-requests",
        f"Error, too many requests. Please slow down. You must wait {seconds} seconds before trying again.",
        {"timeToReset": time_to_reset_ms},
    )


# ---------------------------------------------------------------- methods


def _first(params: list[Any]) -> dict[str, Any]:
    if not params or not isinstance(params[0], dict):
        raise MeteorError("error-invalid-params", "Invalid params")
    return params[0]


def _login(session: DDPSession, params: list[Any]) -> Any:
    ws = session.workspace
    request = _first(params)
    code: str | None = None
    if isinstance(request.get("totp"), dict):
        # The `totp` login handler runs the wrapped login; onValidateLogin reads totp.code.
        code = str(request["totp"].get("code") or "") or None
        inner = request["totp"].get("login")
        if not isinstance(inner, dict):
            raise MeteorError(400, "Match failed")
        request = inner
    if "resume" in request:
        user = ws.user_by_resume(str(request["resume"]))
        if user is None:
            raise MeteorError(403, "You've been logged out by the server. Please log in again.")
        token = str(request["resume"])
        # Personal access tokens never expire; answer like a fresh login token would.
        expires = user.tokens.get(token) or ws.now() + timedelta(days=90)
        kind = "resume"
    elif "password" in request and isinstance(request.get("user"), dict):
        selector = request["user"]
        login = selector.get("username") or selector.get("email") or ""
        password = request["password"]
        if isinstance(password, dict):
            if password.get("algorithm") != "sha-256":
                raise MeteorError(400, "Match failed")
            user = ws.login_with_password(str(login), digest=str(password.get("digest", "")))
        else:
            user = ws.login_with_password(str(login), password=str(password))
        ws.validate_password_login(user, code)
        token, expires = ws.new_login_token(user)
        kind = "password"
    else:
        raise MeteorError(400, "Unrecognized options for login request")
    ws.mark_logged_in(user)
    session.user = user
    return {"id": user.id, "token": token, "tokenExpires": expires, "type": kind}


def _uid(session: DDPSession) -> str:
    assert session.user is not None  # _call() rejects methods before login
    return session.user.id


def _send_message(session: DDPSession, params: list[Any]) -> Any:
    body = _first(params)
    ws = session.workspace
    uid = _uid(session)
    limits = session.limits
    if limits.ddp_enabled and not ws.has_permission(uid, "send-many-messages"):
        # RateLimiter.limitMethod('sendMessage', 5, 1000) is a DDPRateLimiter rule (RC-SENDMSG).
        decision = session.limiter.hit(
            ("sendMessage", uid), limits.send_message_calls, limits.send_message_window
        )
        if not decision.allowed:
            raise too_many_requests(decision.time_to_reset_ms(ws.clock()))
    if body.get("t") and body.get("t") != "e2e":
        raise MeteorError(500, "Internal server error")  # a plain Error thrown inside a method
    try:
        return ws.send_message(
            uid,
            str(body.get("rid") or ""),
            str(body.get("msg") or ""),
            mid=body.get("_id"),
            **message_options(body),
        )
    except MeteorError as exc:
        # The method rethrows only these; every other failure resolves with no result and the
        # sender learns about it from the ephemeral message alone (RC-SENDMSG).
        if exc.error in ("error-not-allowed", "restricted-workspace"):
            raise MeteorError(exc.error, exc.reason, {"method": "sendMessage"}) from exc
        return None
    except PlainError:
        return None  # e.g. You_have_been_muted: swallowed the same way


# executeUpdateMessage: only these keys may differ from the stored message (attachments among
# them, which chat.update cannot change); an edit that leaves the text as it is does nothing.
_EDITABLE_KEYS = frozenset({"tshow", "alias", "attachments", "avatar", "emoji", "msg"})


def _update_message(session: DDPSession, params: list[Any]) -> Any:
    body = _first(params)
    mid = str(body.get("_id"))
    stored = session.workspace.messages.get(mid)
    if stored is not None:
        for key, value in body.items():
            if key not in _EDITABLE_KEYS and value != stored.get(key):
                reason = f"Cannot update the message {key}"
                raise MeteorError("error-invalid-update-key", reason, {"method": "updateMessage"})
        attached = stored.get("attachments") or []
        shown = attached[0].get("description") if attached and isinstance(attached[0], dict) else None
        if (shown if shown is not None else stored.get("msg")) == body.get("msg"):
            return None
    attachments = body.get("attachments")
    session.workspace.update_message(
        _uid(session),
        mid,
        str(body.get("msg") or ""),
        attachments=attachments if isinstance(attachments, list) else None,
    )
    return None


def _delete_message(session: DDPSession, params: list[Any]) -> Any:
    body = _first(params)
    session.workspace.delete_message(_uid(session), str(body.get("_id")))
    return None


def _pin_message(session: DDPSession, params: list[Any]) -> Any:
    return session.workspace.pin_message(_uid(session), str(_first(params).get("_id")))


def _set_reaction(session: DDPSession, params: list[Any]) -> Any:
    if len(params) < 2 or not isinstance(params[0], str) or not isinstance(params[1], str):
        raise MeteorError("error-invalid-params", "Invalid params", {"method": "setReaction"})
    should = params[2] if len(params) > 2 and isinstance(params[2], bool) else None
    session.workspace.set_reaction(_uid(session), params[1], params[0], should)
    return None


def _unpin_message(session: DDPSession, params: list[Any]) -> Any:
    session.workspace.unpin_message(_uid(session), str(_first(params).get("_id")))
    return True


def _save_room_settings(session: DDPSession, params: list[Any]) -> Any:
    if not params or not isinstance(params[0], str):
        raise MeteorError("error-invalid-room", "Invalid room", {"method": "saveRoomSettings"})
    rid = params[0]
    if len(params) >= 3 and isinstance(params[1], str):
        changes = {params[1]: params[2]}
    elif len(params) >= 2 and isinstance(params[1], dict):
        changes = params[1]
    else:
        raise MeteorError(
            "error-invalid-settings", "Invalid settings provided", {"method": "saveRoomSettings"}
        )
    session.workspace.save_room_settings(_uid(session), rid, changes)
    return {"result": True, "rid": rid}


def _since(params: list[Any]) -> Any:
    if params and isinstance(params[0], dict) and "$date" in params[0]:
        return params[0]["$date"]
    return None


def _subscriptions_get(session: DDPSession, params: list[Any]) -> Any:
    subs = session.workspace.subscriptions_of(_uid(session))
    since = _since(params)
    if since is None:
        return subs
    return {"update": [s for s in subs if ms(s["_updatedAt"]) > since], "remove": []}


def _rooms_get(session: DDPSession, params: list[Any]) -> Any:
    ws = session.workspace
    rooms = [ws.rooms[s["rid"]] for s in ws.subscriptions_of(_uid(session))]
    since = _since(params)
    if since is None:
        return rooms
    return {"update": [r for r in rooms if ms(r["_updatedAt"]) > since], "remove": []}


def _join_room(session: DDPSession, params: list[Any]) -> Any:
    if not params or not isinstance(params[0], str):
        raise MeteorError("error-invalid-room", "Invalid room", {"method": "joinRoom"})
    session.workspace.join_room(_uid(session), params[0], params[1] if len(params) > 1 else None)
    return True


def _logout(session: DDPSession, params: list[Any]) -> Any:
    session.user = None
    session.subs.clear()
    return None


def _mute(session: DDPSession, params: list[Any], *, mute: bool) -> Any:
    """muteUserInRoom / unmuteUserInRoom ``({rid, username})``: what rooms.muteUser calls, and how
    servers before 6.8 (no REST route) mute. Answers true."""
    body = _first(params)
    rid, username = body.get("rid"), body.get("username")
    if not isinstance(rid, str) or not isinstance(username, str):
        raise MeteorError(400, "Match failed")  # the method's check() on its argument
    change = session.workspace.mute_user if mute else session.workspace.unmute_user
    change(_uid(session), rid, username)
    return True


_METHODS: dict[str, Callable[[DDPSession, list[Any]], Any]] = {
    "muteUserInRoom": lambda session, params: _mute(session, params, mute=True),
    "unmuteUserInRoom": lambda session, params: _mute(session, params, mute=False),
    "login": _login,
    "logout": _logout,
    "sendMessage": _send_message,
    "updateMessage": _update_message,
    "deleteMessage": _delete_message,
    "pinMessage": _pin_message,
    "unpinMessage": _unpin_message,
    "setReaction": _set_reaction,
    "saveRoomSettings": _save_room_settings,
    "subscriptions/get": _subscriptions_get,
    "rooms/get": _rooms_get,
    "joinRoom": _join_room,
}


# ---------------------------------------------------------------- I/O shell


@dataclass(eq=False)  # identity semantics: connections live in a set
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str | bytes | tuple[int, str]]
    session: DDPSession | None = None


class DDPServer:
    def __init__(
        self,
        workspace: Workspace,
        limiter: FixedWindowLimiter,
        limits: RateLimits,
        faults: Faults,
        ping_interval: float,
        ping_timeout: float,
    ) -> None:
        self.workspace = workspace
        self.limiter = limiter
        self.limits = limits
        self.faults = faults
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connections: set[_Connection] = set()
        # Session ids come from their own source so that connecting does not shift the
        # workspace's deterministic id sequence.
        self._session_ids = IdSource(secrets.randbits(32))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refusing:
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, request, asyncio.Queue())
        conn.session = DDPSession(
            self.workspace,
            self.limiter,
            self.limits,
            self._session_ids.id(),
            send=lambda frame: conn.queue.put_nowait(json.dumps(frame, separators=(",", ":"))),
            close=lambda code, reason: conn.queue.put_nowait((code, reason)),
        )
        self.connections.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        conn.queue.put_nowait('{"server_id":"0"}')
        try:
            await self._reader(conn)
        finally:
            conn.session.detach()
            self.connections.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not ws.closed:
                await ws.close()
        return ws

    async def _reader(self, conn: _Connection) -> None:
        assert conn.session is not None
        awaiting_pong = False
        while not conn.ws.closed:
            timeout = self.ping_timeout if awaiting_pong else self.ping_interval
            try:
                msg = await conn.ws.receive(timeout=timeout)
            except TimeoutError:
                if awaiting_pong:
                    conn.queue.put_nowait((4000, "TIMEOUT"))
                    awaiting_pong = False
                    continue
                conn.queue.put_nowait('{"msg":"ping"}')
                awaiting_pong = True
                continue
            awaiting_pong = False
            if msg.type == WSMsgType.TEXT:
                conn.session.receive(msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.session.receive("\x00")  # not a JSON text frame: unparseable → 1007
            else:
                return

    async def _writer(self, conn: _Connection) -> None:
        while True:
            item = await conn.queue.get()
            if self.faults.frame_delay > 0:
                await asyncio.sleep(self.faults.frame_delay)
            if conn.ws.closed:
                return
            if isinstance(item, tuple):
                await conn.ws.close(code=item[0], message=item[1].encode())
                return
            try:
                if isinstance(item, bytes):
                    await conn.ws.send_bytes(item)
                else:
                    await conn.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    def inject(self, data: str | bytes) -> None:
        """Send raw data to every client, as a broken server or proxy might (a fault for tests)."""
        for conn in self.connections:
            conn.queue.put_nowait(data)

    async def drop_all(self) -> None:
        """Abort every TCP connection: no close frame, the client sees an abnormal closure."""
        for conn in list(self.connections):
            if conn.session is not None:
                conn.session.detach()
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
        await asyncio.sleep(0)

    async def close_all(self, code: int = 1001, reason: str = "Server shutting down") -> None:
        for conn in list(self.connections):
            if conn.session is not None:
                conn.session.detach()
            if not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=code, message=reason.encode())
