"""REST handlers of the simulated server: ``/api/info`` and ``/api/v1/<route>``.

Thin: each handler reads and checks parameters the way the real route does, calls one
:class:`Workspace` method and shapes the answer. Auth, the REST rate limiter and error bodies
are handled once in :meth:`RestApi.dispatch` (reference C.0).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.sandbox.errors import MeteorError, PlainError, RestFailure
from bot.sandbox.ratelimit import FixedWindowLimiter, RateLimits
from bot.sandbox.wire import from_iso, ms, to_rest
from bot.sandbox.workspace import NAME_FORBIDDEN_CHARS, USERNAME_PATTERN, Doc, User, Workspace

__all__ = ["ROUTES", "RestApi", "Route"]


@dataclass
class Call:
    request: web.Request | None
    params: dict[str, Any]
    user: User | None

    @property
    def uid(self) -> str:
        assert self.user is not None  # only called by authenticated routes
        return self.user.id


Handler = Callable[["RestApi", Call], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    name: str
    handler: Handler
    auth: bool = True
    # /login and /logout answer with "status" instead of "success" (C.0).
    success_flag: bool = True
    # Body keys the server's ajv validator accepts (rest-typings, additionalProperties: false);
    # None where we do not know the route to be that strict.
    body_keys: frozenset[str] | None = None
    # The server version that added the route: an older sandbox answers 404 as that server would.
    since: tuple[int, int] | None = None


# ---------------------------------------------------------------- parameter helpers


def invalid_params(name: str) -> MeteorError:
    """The ajv validators' message for a missing property (rest-typings)."""
    return MeteorError("invalid-params", f"must have required property '{name}'")


def required(call: Call, *names: str) -> None:
    for name in names:
        value = call.params.get(name)
        if value is None or value == "":
            raise invalid_params(name)


def as_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def as_date(value: Any, code: str, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = from_iso(str(value))
    if parsed is None:
        raise MeteorError(code, f'The "{name}" query parameter must be a valid date.')
    return parsed


def pagination(call: Call) -> tuple[int, int]:
    """offset/count as getPaginationItems: default 50, clamped to API_Upper_Count_Limit 100."""
    try:
        offset = int(call.params.get("offset", 0) or 0)
        count = int(call.params.get("count", 50) or 50)
    except ValueError as exc:
        raise MeteorError("invalid-params", "offset and count must be integers") from exc
    return max(0, offset), max(1, min(count, 100))


def page(items: list[Any], call: Call, key: str) -> dict[str, Any]:
    offset, count = pagination(call)
    chunk = items[offset : offset + count]
    return {key: chunk, "count": len(chunk), "offset": offset, "total": len(items)}


class RestApi:
    def __init__(
        self, workspace: Workspace, limits: RateLimits, limiter: FixedWindowLimiter, version: str
    ) -> None:
        self.ws = workspace
        self.limits = limits
        self.limiter = limiter
        self.version = version
        self._routes = {(r.method, r.name): r for r in ROUTES}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/info", self.info)
        app.router.add_route("*", "/api/v1/{name:.+}", self.dispatch)

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version, "success": True})

    async def dispatch(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found = self._routes.get((request.method, name))
        if found is not None and found.since is not None and _major_minor(self.version) < found.since:
            found = None
        if found is None:
            return web.json_response(RestFailure.not_found().body, status=404)
        try:
            params = await self._params(request)
        except RestFailure as exc:
            return web.json_response(exc.body, status=exc.status)
        user = self.ws.user_by_token(request.headers.get("X-User-Id"), request.headers.get("X-Auth-Token"))
        if found.auth and user is None:
            return web.json_response(RestFailure.not_logged_in().body, status=401)
        headers: dict[str, str] = {}
        if self._rate_limited_for(user):
            key = (user.id if user else request.remote, request.method, name)
            decision = self.limiter.hit(key, self.limits.rest_calls, self.limits.rest_window)
            now = self.ws.clock()
            headers = {
                "X-RateLimit-Limit": str(decision.limit),
                "X-RateLimit-Remaining": str(decision.remaining),
                # Epoch milliseconds, not seconds (C.0).
                "X-RateLimit-Reset": str(math.ceil(decision.reset_at * 1000)),
            }
            if not decision.allowed:
                seconds = math.ceil(decision.time_to_reset_ms(now) / 1000)
                return web.json_response(too_many_requests_body(seconds), status=429, headers=headers)
        call = Call(request, params, user)
        try:
            if found.body_keys is not None and set(params) - found.body_keys:
                raise MeteorError("invalid-params", "must NOT have additional properties")
            result = found.handler(self, call)
        except (MeteorError, PlainError) as exc:
            return web.json_response(to_rest(exc.rest_body()), status=400, headers=headers)
        except RestFailure as exc:
            return web.json_response(exc.body, status=exc.status, headers=headers)
        if found.success_flag:
            result["success"] = True
        return web.json_response(to_rest(result), headers=headers)

    def _rate_limited_for(self, user: User | None) -> bool:
        if not self.limits.rest_enabled or not self.ws.setting("API_Enable_Rate_Limiter"):
            return False
        return user is None or not self.ws.has_permission(user.id, "api-bypass-rate-limit")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return {k: request.query.get(k) for k in request.query}
        if not request.can_read_body:
            return {}
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise RestFailure.failure(f"Invalid JSON body: {exc.msg}") from exc
            if not isinstance(body, dict):
                raise RestFailure.failure("Body must be a JSON object")
            return body
        form = await request.post()
        return {k: form.get(k) for k in form}

    # ---------------------------------------------------------------- shared lookups

    def _named_room(self, call: Call) -> Doc | None:
        """The room ``roomId`` or ``roomName`` names (None if none); one of them is required."""
        rid, name = call.params.get("roomId"), call.params.get("roomName")
        if not rid and not name:
            raise MeteorError(
                "error-room-param-not-provided", 'The parameter "roomId" or "roomName" is required'
            )
        return self.ws.room_by_id_or_name(rid, name)

    def channel_by_id_or_name(self, call: Call, kind: str = "channel") -> Doc:
        """findChannelByIdOrName: public channels only (C.3)."""
        room = self._named_room(call)
        if room is None or room["t"] != "c":
            raise MeteorError(
                "error-room-not-found",
                f'The required "roomId" or "roomName" param provided does not match any {kind}',
            )
        return room

    def group_by_id_or_name(self, call: Call) -> Doc:
        """findPrivateGroupByIdOrName: a group the caller is not in looks like no group at all."""
        room = self._named_room(call)
        if room is None or room["t"] != "p" or (room["_id"], call.uid) not in self.ws.subscriptions:
            raise MeteorError(
                "error-room-not-found",
                'The required "roomId" or "roomName" param provided does not match any group',
            )
        return room

    def room_by_id_or_name(self, call: Call) -> Doc:
        room = self._named_room(call)
        if room is None:
            raise MeteorError(
                "error-room-not-found",
                'The required "roomId" or "roomName" param provided does not match any channel',
            )
        return room

    def user_from_params(self, call: Call) -> User:
        """getUserFromParams: ``userId`` first, else ``username`` (case-insensitive)."""
        uid, username = call.params.get("userId"), call.params.get("username")
        user: User | None
        if isinstance(uid, str) and uid.strip():
            user = self.ws.users.get(uid)
        elif isinstance(username, str) and username.strip():
            user = next((u for u in self.ws.users.values() if u.username.lower() == username.lower()), None)
        else:
            raise MeteorError(
                "error-user-param-not-provided", 'The required "userId" or "username" param was not provided'
            )
        if user is None:
            raise MeteorError(
                "error-invalid-user",
                'The required "userId" or "username" param provided does not match any users',
            )
        return user

    def message_or_failure(self, mid: str) -> Doc:
        message = self.ws.messages.get(mid)
        if message is None:
            raise RestFailure.failure(f'No message found with the id of "{mid}".')
        return message

    def user_public(self, user: User, full: bool = False) -> Doc:
        doc: Doc = {
            "_id": user.id,
            "type": user.type,
            "status": "online" if user.active else "offline",
            "active": user.active,
            "name": user.name,
            "username": user.username,
            "utcOffset": 0,
            "roles": list(user.roles),
            "createdAt": user.created_at,
            "_updatedAt": user.updated_at or user.created_at,
        }
        if user.reason is not None:  # getFullUserData's default fields include `reason`
            doc["reason"] = user.reason
        if full:
            doc["emails"] = [{"address": user.email(), "verified": user.mail_verified}]
            if user.last_login is not None:
                doc["lastLogin"] = user.last_login
        return doc

    def me_doc(self, user: User) -> Doc:
        site = str(self.ws.setting("Site_Url") or "")
        return {
            **self.user_public(user, full=True),
            "statusConnection": "online",
            "settings": {"preferences": {}},
            "avatarUrl": f"{site}/avatar/{user.username}",
        }


def too_many_requests_body(seconds: int) -> dict[str, Any]:
    return {
        "success": False,
        "error": (
            "Error, too many requests. Please slow down. You must wait "
            f"{seconds} seconds before trying this endpoint again. [error-too-many-requests]"
        ),
        "errorType": "error-too-many-requests",
    }


# ---------------------------------------------------------------- authentication


def login(api: RestApi, call: Call) -> dict[str, Any]:
    p = call.params
    try:
        if p.get("resume"):
            user = api.ws.user_by_resume(str(p["resume"]))
            if user is None:
                raise MeteorError(403, "You've been logged out by the server. Please log in again.")
            token = str(p["resume"])
        else:
            login_name = p.get("user") or p.get("username") or p.get("email")
            if isinstance(login_name, dict):
                login_name = login_name.get("username") or login_name.get("email")
            if not login_name or not p.get("password"):
                raise MeteorError("Unauthorized", "Unauthorized")
            user = api.ws.login_with_password(str(login_name), password=str(p["password"]))
            # loginCompatibility: a 2FA code comes as body `code` or the x-2fa-code header.
            header = call.request.headers.get("x-2fa-code") if call.request is not None else None
            code = p.get("code") or header
            api.ws.validate_password_login(user, str(code) if code else None)
            token, _expires = api.ws.new_login_token(user)
        api.ws.mark_logged_in(user)
    except MeteorError as exc:
        # self.unauthorized() plus the Meteor error (ApiClass.ts, until applyBreakingChanges);
        # an unknown user is reported like a bad login, without revealing that it is unknown.
        error: str | int = "Unauthorized" if exc.reason == "User not found" else exc.error
        message = "Unauthorized" if exc.reason == "User not found" else (exc.reason or str(exc.error))
        body: dict[str, Any] = {"success": False, "status": "error", "error": error, "message": message}
        if exc.details is not None:
            body["details"] = to_rest(exc.details)
        raise RestFailure(401, body) from exc
    return {"status": "success", "data": {"userId": user.id, "authToken": token, "me": api.me_doc(user)}}


def logout(api: RestApi, call: Call) -> dict[str, Any]:
    assert call.user is not None and call.request is not None
    token = call.request.headers.get("X-Auth-Token", "")
    if call.user.tokens.get(token) is not None:  # PATs survive a logout
        del call.user.tokens[token]
    return {"status": "success", "data": {"message": "You've been logged out!"}}


def me(api: RestApi, call: Call) -> dict[str, Any]:
    assert call.user is not None
    return api.me_doc(call.user)


# ---------------------------------------------------------------- chat


def resolve_post_target(api: RestApi, call: Call) -> Doc:
    rid, channel = call.params.get("roomId"), call.params.get("channel")
    if not rid and not channel:
        raise invalid_params("roomId")
    target = str(rid or channel)
    room: Doc | None
    if target.startswith("#"):
        room = api.ws.room_by_id_or_name(name=target[1:])
    elif target.startswith("@"):
        room = api.ws.create_direct(call.uid, [target[1:]])
    else:
        room = api.ws.rooms.get(target) or api.ws.room_by_id_or_name(name=target)
    if room is None:
        raise MeteorError("invalid-channel")
    return room


def chat_post_message(api: RestApi, call: Call) -> dict[str, Any]:
    p = call.params
    # The route checks sizes itself and answers a bare failure code (RC-CHAT 7.x).
    max_size = api.ws.setting("Message_MaxAllowedSize") or 0
    texts = [p.get("text") or ""] + [
        a.get("text") or "" for a in p.get("attachments") or [] if isinstance(a, dict)
    ]
    if any(len(str(t)) > max_size for t in texts):
        raise RestFailure.failure("error-message-size-exceeded")
    room = resolve_post_target(api, call)
    message = api.ws.send_message(
        call.uid,
        room["_id"],
        str(p.get("text") or ""),
        tmid=p.get("tmid"),
        tshow=p.get("tshow"),
        alias=p.get("alias"),
        emoji=p.get("emoji"),
        avatar=p.get("avatar"),
        attachments=p.get("attachments"),
    )
    # The spec's `channel` is a string; the room's name (its id for a DM) as the docs show.
    return {"ts": ms(message["ts"]), "channel": room.get("name") or room["_id"], "message": message}


def chat_send_message(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "message")
    body = call.params["message"]
    if not isinstance(body, dict):
        raise invalid_params("message")
    if body.get("t") and body.get("t") != "e2e":
        # A plain Error on the server: a bare failure text.
        raise RestFailure.failure("Cannot send system messages using 'chat.sendMessage'")
    if not body.get("rid"):
        raise RestFailure.failure("The 'rid' property on the message object is missing.")
    message = api.ws.send_message(
        call.uid,
        str(body["rid"]),
        str(body.get("msg") or ""),
        mid=body.get("_id"),
        tmid=body.get("tmid"),
        tshow=body.get("tshow"),
        alias=body.get("alias"),
        emoji=body.get("emoji"),
        avatar=body.get("avatar"),
        attachments=body.get("attachments"),
    )
    return {"message": message}


def chat_update(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "roomId", "msgId", "text")
    message = api.message_or_failure(str(call.params["msgId"]))
    if message["rid"] != call.params["roomId"]:
        raise RestFailure.failure("The room id provided does not match where the message is from.")
    return {"message": api.ws.update_message(call.uid, message["_id"], str(call.params["text"]))}


def chat_delete(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "msgId", "roomId")
    message = api.message_or_failure(str(call.params["msgId"]))
    if message["rid"] != call.params["roomId"]:
        raise RestFailure.failure("The room id provided does not match where the message is from.")
    as_user = as_bool(call.params.get("asUser"))
    author = message["u"]
    if (
        as_user
        and author["_id"] != call.uid
        and not api.ws.has_permission(call.uid, "force-delete-message", message["rid"])
    ):
        raise RestFailure.failure(
            'Unauthorized. You must have the permission "force-delete-message" '
            "to delete other's message as them."
        )
    api.ws.delete_message(call.uid, message["_id"])
    return {
        "_id": message["_id"],
        "ts": str(ms(api.ws.now())),  # a string of epoch ms (C.1)
        "message": {"_id": message["_id"], "rid": message["rid"], "u": author},
    }


def chat_get_message(api: RestApi, call: Call) -> dict[str, Any]:
    if not call.params.get("msgId"):
        raise RestFailure.failure('The "msgId" query parameter must be provided.')
    return {"message": api.ws.get_message(call.uid, str(call.params["msgId"]))}


def chat_sync_messages(api: RestApi, call: Call) -> dict[str, Any]:
    rid = call.params.get("roomId")
    if not rid:
        raise MeteorError("error-param-required", 'The required "roomId" query param is missing')
    if not call.params.get("lastUpdate"):
        # The cursor form (next/previous + type) is not modelled; lastUpdate is required here.
        raise MeteorError("error-param-required", 'The "type" or "lastUpdate" parameters must be provided')
    last = from_iso(str(call.params["lastUpdate"]))
    if last is None:
        raise MeteorError(
            "error-lastUpdate-param-invalid", 'The "lastUpdate" query parameter must be a valid date'
        )
    updated, deleted = api.ws.sync_messages(call.uid, str(rid), last)
    return {"result": {"updated": updated, "deleted": deleted}}


def chat_pin_message(api: RestApi, call: Call) -> dict[str, Any]:
    mid = call.params.get("messageId")
    if not mid:
        raise MeteorError("error-messageid-param-not-provided", 'The required "messageId" param is missing.')
    if mid not in api.ws.messages:
        raise MeteorError(
            "error-message-not-found", 'The provided "messageId" does not match any existing message.'
        )
    return {"message": api.ws.pin_message(call.uid, str(mid))}


def chat_unpin_message(api: RestApi, call: Call) -> dict[str, Any]:
    mid = call.params.get("messageId")
    if not mid:
        raise MeteorError("error-messageid-param-not-provided", 'The required "messageId" param is missing.')
    if mid not in api.ws.messages:
        raise MeteorError(
            "error-message-not-found", 'The provided "messageId" does not match any existing message.'
        )
    api.ws.unpin_message(call.uid, str(mid))
    return {}


def chat_react(api: RestApi, call: Call) -> dict[str, Any]:
    mid = call.params.get("messageId")
    if not mid:
        raise MeteorError("error-messageid-param-not-provided", 'The required "messageId" param is missing.')
    if mid not in api.ws.messages:
        raise MeteorError(
            "error-message-not-found", 'The provided "messageId" does not match any existing message.'
        )
    emoji = call.params.get("emoji") or call.params.get("reaction")
    if not emoji:
        raise MeteorError("error-emoji-param-not-provided", 'The required "emoji" param is missing.')
    should = call.params.get("shouldReact")
    api.ws.set_reaction(call.uid, str(mid), str(emoji), None if should is None else as_bool(should))
    return {}


def chat_get_pinned_messages(api: RestApi, call: Call) -> dict[str, Any]:
    rid = call.params.get("roomId")
    if not rid:
        raise MeteorError("error-roomId-param-not-provided", 'The required "roomId" query param is missing.')
    room = api.ws.rooms.get(str(rid))
    if room is None or not api.ws.can_access_room(call.uid, room):
        raise MeteorError("error-not-allowed", "Not allowed")
    pinned = sorted(
        (m for m in api.ws.messages.values() if m["rid"] == rid and m.get("pinned")),
        key=lambda m: m["ts"],
        reverse=True,
    )
    return page(pinned, call, "messages")


def chat_report_message(api: RestApi, call: Call) -> dict[str, Any]:
    mid, description = call.params.get("messageId"), call.params.get("description")
    if not mid:
        raise RestFailure.failure('The required "messageId" param is missing.')
    if not description:
        raise RestFailure.failure('The required "description" param is missing.')
    api.ws.report_message(call.uid, str(mid), str(description))
    return {}


# ---------------------------------------------------------------- history and rooms


def history_params(call: Call) -> dict[str, Any]:
    offset, _count = pagination(call)
    return {
        "latest": as_date(call.params.get("latest"), "error-invalid-params", "latest"),
        "oldest": as_date(call.params.get("oldest"), "error-invalid-params", "oldest"),
        "inclusive": as_bool(call.params.get("inclusive")),
        "offset": offset,
        "count": int(call.params["count"]) if call.params.get("count") else 20,
        "show_thread_messages": as_bool(call.params.get("showThreadMessages"), default=True),
    }


def channels_history(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.channel_by_id_or_name(call)
    if not api.ws.can_access_room(call.uid, room):
        raise RestFailure(403, {"success": False, "error": "unauthorized"})
    return {"messages": api.ws.history(room["_id"], **history_params(call))}


def groups_history(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.group_by_id_or_name(call)
    return {"messages": api.ws.history(room["_id"], **history_params(call))}


def dm_history(api: RestApi, call: Call) -> dict[str, Any]:
    rid = call.params.get("roomId")
    if not rid:
        raise MeteorError("error-room-param-not-provided", 'Body param "roomId" or "username" is required')
    room = api.ws.rooms.get(str(rid))
    if room is None or room["t"] != "d":
        raise MeteorError(
            "error-room-not-found",
            'The required "roomId" or "username" param provided does not match any direct message',
        )
    if not api.ws.can_access_room(call.uid, room):
        raise MeteorError("error-not-allowed", "Not allowed")
    return {"messages": api.ws.history(room["_id"], **history_params(call))}


def dm_create(api: RestApi, call: Call) -> dict[str, Any]:
    username, usernames = call.params.get("username"), call.params.get("usernames")
    if username:
        names = [str(username)]
    elif usernames:
        names = [n.strip() for n in str(usernames).split(",") if n.strip()]
    else:
        raise MeteorError("error-invalid-params", 'Body param "username" or "usernames" is required')
    room = api.ws.create_direct(call.uid, names)
    return {"room": {**room, "rid": room["_id"]}}


def rooms_info(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.room_by_id_or_name(call)
    if not api.ws.can_access_room(call.uid, room):
        # Rocket.Chat's route literally answers failure('not-allowed', 'Not Allowed').
        raise RestFailure(400, {"success": False, "error": "not-allowed", "errorType": "Not Allowed"})
    return {"room": room}


def rooms_get(api: RestApi, call: Call) -> dict[str, Any]:
    since = as_date(call.params.get("updatedSince"), "error-updatedSince-param-invalid", "updatedSince")
    rooms = [api.ws.rooms[s["rid"]] for s in api.ws.subscriptions_of(call.uid)]
    if since is not None:
        rooms = [r for r in rooms if r["_updatedAt"] > since]
    return {"update": rooms, "remove": []}


def subscriptions_get(api: RestApi, call: Call) -> dict[str, Any]:
    since = as_date(call.params.get("updatedSince"), "error-updatedSince-param-invalid", "updatedSince")
    subs = api.ws.subscriptions_of(call.uid)
    if since is not None:
        subs = [s for s in subs if s["_updatedAt"] > since]
    return {"update": subs, "remove": []}


def channels_join(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.channel_by_id_or_name(call)
    return {"channel": api.ws.join_room(call.uid, room["_id"], call.params.get("joinCode"))}


def channels_list(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "view-c-room"):
        raise RestFailure.unauthorized()
    channels = sorted((r for r in api.ws.rooms.values() if r["t"] == "c"), key=lambda r: r["name"])
    return page(channels, call, "channels")


def rooms_save_room_settings(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "rid")
    rid = str(call.params["rid"])
    changes = {k: v for k, v in call.params.items() if k != "rid"}
    api.ws.save_room_settings(call.uid, rid, changes)
    return {"rid": rid}


def channels_set_announcement(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "roomId")
    if call.params.get("announcement") is None:
        raise invalid_params("announcement")
    room = api.channel_by_id_or_name(call)
    api.ws.save_room_settings(call.uid, room["_id"], {"roomAnnouncement": call.params["announcement"]})
    return {"announcement": call.params["announcement"]}


def groups_set_announcement(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "roomId")
    if call.params.get("announcement") is None:
        raise invalid_params("announcement")
    room = api.group_by_id_or_name(call)
    api.ws.save_room_settings(call.uid, room["_id"], {"roomAnnouncement": call.params["announcement"]})
    return {"announcement": call.params["announcement"]}


def rooms_clean_history(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.room_by_id_or_name(call)
    p = call.params
    if not p.get("latest"):
        raise RestFailure.failure('Body parameter "latest" is required.')
    if not p.get("oldest"):
        raise RestFailure.failure('Body parameter "oldest" is required.')
    latest = as_date(p["latest"], "error-invalid-params", "latest")
    oldest = as_date(p["oldest"], "error-invalid-params", "oldest")
    assert latest is not None and oldest is not None
    users = p.get("users") or []
    if not isinstance(users, list):
        raise invalid_params("users")
    count = api.ws.clean_history(
        call.uid,
        room["_id"],
        latest=latest,
        oldest=oldest,
        inclusive=as_bool(p.get("inclusive")),
        limit=int(p.get("limit") or 0),
        exclude_pinned=as_bool(p.get("excludePinned")),
        files_only=as_bool(p.get("filesOnly")),
        # Newer servers default both to false: threads and discussions are pruned (C.3).
        ignore_threads=as_bool(p.get("ignoreThreads")),
        ignore_discussion=as_bool(p.get("ignoreDiscussion")),
        users=[str(u) for u in users],
    )
    return {"_id": room["_id"], "count": count}


def _add_moderator(api: RestApi, call: Call, room: Doc) -> dict[str, Any]:
    required(call, "userId")
    api.ws.add_room_moderator(call.uid, room["_id"], str(call.params["userId"]))
    return {}


def channels_add_moderator(api: RestApi, call: Call) -> dict[str, Any]:
    return _add_moderator(api, call, api.channel_by_id_or_name(call))


def groups_add_moderator(api: RestApi, call: Call) -> dict[str, Any]:
    return _add_moderator(api, call, api.group_by_id_or_name(call))


def _validate_one_of(call: Call, branches: tuple[tuple[str, ...], ...], *, min_length: int = 0) -> None:
    """An ajv ``oneOf`` of objects with ``required`` string keys (at least ``min_length`` long)
    and ``additionalProperties: false``; the message lists every branch's errors as ajv does."""
    errors: list[str] = []
    matched = 0
    for keys in branches:
        branch = [f"must have required property '{k}'" for k in keys if k not in call.params]
        if set(call.params) - set(keys):
            branch.append("must NOT have additional properties")
        for key in (k for k in keys if k in call.params):
            value = call.params[key]
            if not isinstance(value, str):
                branch.append(f"/{key} must be string")
            elif len(value) < min_length:
                branch.append(f"/{key} must NOT have fewer than {min_length} characters")
        matched += not branch
        errors += branch
    if matched != 1:
        raise MeteorError("invalid-params", "\n ".join([*errors, "must match exactly one schema in oneOf"]))


def _mute_target(api: RestApi, call: Call) -> tuple[str, User]:
    """isRoomsMuteUnmuteUserProps: ``{userId, roomId}`` or ``{username, roomId}``, nothing else."""
    _validate_one_of(call, (("userId", "roomId"), ("username", "roomId")), min_length=1)
    return str(call.params["roomId"]), api.user_from_params(call)


def rooms_mute_user(api: RestApi, call: Call) -> dict[str, Any]:
    rid, user = _mute_target(api, call)
    api.ws.mute_user(call.uid, rid, user.username)
    return {}


def rooms_unmute_user(api: RestApi, call: Call) -> dict[str, Any]:
    rid, user = _mute_target(api, call)
    api.ws.unmute_user(call.uid, rid, user.username)
    return {}


def channels_kick(api: RestApi, call: Call) -> dict[str, Any]:
    """isChannelsKickProps: ``{roomId | roomName, userId}``; answers with the channel after the kick."""
    _validate_one_of(call, (("roomId", "userId"), ("roomName", "userId")))
    room = api.channel_by_id_or_name(call)
    user = api.user_from_params(call)
    api.ws.kick_user(call.uid, room["_id"], user.username)
    return {"channel": room}


def groups_kick(api: RestApi, call: Call) -> dict[str, Any]:
    """The caller must be in the group (findPrivateGroupByIdOrName). Unlike channels.kick and
    despite the OpenAPI example, 6.x/7.x answer a bare ``{"success": true}``."""
    room = api.group_by_id_or_name(call)
    user = api.user_from_params(call)
    api.ws.kick_user(call.uid, room["_id"], user.username)
    return {}


def _room_roles(api: RestApi, room: Doc) -> dict[str, Any]:
    roles = []
    for (rid, uid), sub in api.ws.subscriptions.items():
        if rid == room["_id"] and sub.get("roles"):
            user = api.ws.users[uid]
            roles.append({"_id": sub["_id"], "rid": rid, "u": user.ref(), "roles": list(sub["roles"])})
    return {"roles": roles}


def channels_roles(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.channel_by_id_or_name(call)
    if not api.ws.can_access_room(call.uid, room):
        raise MeteorError("error-not-allowed", "Not allowed", {"method": "getRoomRoles"})
    return _room_roles(api, room)


def groups_roles(api: RestApi, call: Call) -> dict[str, Any]:
    return _room_roles(api, api.group_by_id_or_name(call))


# ---------------------------------------------------------------- users, settings, permissions


def users_info(api: RestApi, call: Call) -> dict[str, Any]:
    uid, username = call.params.get("userId"), call.params.get("username")
    if not uid and not username:
        raise MeteorError(
            "error-user-param-not-provided", 'The required "userId" or "username" param was not provided'
        )
    user = api.ws.users.get(str(uid)) if uid else api.ws.user_by_username(str(username))
    if user is None:
        raise RestFailure.failure("User not found.")
    full = user.id == call.uid or api.ws.has_permission(call.uid, "view-full-other-user-info")
    return {"user": api.user_public(user, full=full)}


def users_list(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "view-d-room"):
        raise RestFailure.unauthorized()
    full = api.ws.has_permission(call.uid, "view-full-other-user-info")
    users = []
    for user in sorted(api.ws.users.values(), key=lambda u: u.username):
        doc = api.user_public(user, full=full)
        doc.pop("reason", None)  # not in users.list's projection (lastLogin is, for everyone)
        if user.last_login is not None:
            doc["lastLogin"] = user.last_login
        users.append(doc)
    return page(users, call, "users")


def users_list_by_status(api: RestApi, call: Call) -> dict[str, Any]:
    """users.listByStatus (6.8): what the admin's Users page tabs show. "Pending" is
    ``status=deactivated&hasLoggedIn=false&type=user``; the projection includes ``reason``."""
    if not api.ws.has_permission(call.uid, "view-d-room"):
        raise RestFailure.unauthorized()
    if api.ws.setting("API_Apply_permission_view-outside-room_on_users-list") and not api.ws.has_permission(
        call.uid, "view-outside-room"
    ):
        raise RestFailure(403, {"success": False, "error": "unauthorized"})
    p = call.params
    status = p.get("status")
    if status not in (None, "active", "deactivated"):
        raise MeteorError("invalid-params", "must be equal to one of the allowed values")
    users = sorted(api.ws.users.values(), key=lambda u: u.username)
    if status is not None:
        users = [u for u in users if u.active == (status == "active")]
    if p.get("hasLoggedIn") is not None:
        logged = as_bool(p["hasLoggedIn"])
        users = [u for u in users if (u.last_login is not None) == logged]
    if p.get("type"):
        users = [u for u in users if u.type == p["type"]]
    term = str(p.get("searchTerm") or "").strip().lower()
    if term:
        users = [u for u in users if term in u.username.lower() or term in u.name.lower()]
    if p.get("sort"):
        try:
            sort = json.loads(str(p["sort"]))
        except json.JSONDecodeError as exc:
            raise MeteorError("error-invalid-sort", "Invalid sort parameter provided") from exc
        for key, direction in reversed(list(sort.items()) if isinstance(sort, dict) else []):
            field = {"createdAt": "created_at", "name": "name", "username": "username"}.get(key)
            if field is not None:
                users.sort(key=operator.attrgetter(field), reverse=direction == -1)
    docs = []
    for user in users:
        doc: Doc = {
            "_id": user.id,
            "username": user.username,
            "emails": [{"address": user.email(), "verified": False}],
            "type": user.type,
            "roles": list(user.roles),
            "status": "online" if user.active else "offline",
            "active": user.active,
            "name": user.name,
        }
        if user.last_login is not None:
            doc["lastLogin"] = user.last_login
        if user.reason is not None:
            doc["reason"] = user.reason
        docs.append(doc)
    return page(docs, call, "users")


def users_register(api: RestApi, call: Call) -> dict[str, Any]:
    """users.register (no auth): the route's checks, then registerUser and setUsername."""
    if call.user is not None:
        raise RestFailure.failure("Logged in users can not register again.")
    required(call, "username", "email", "pass")
    p = call.params
    if p.get("name") and NAME_FORBIDDEN_CHARS.search(str(p["name"])):
        raise RestFailure.failure("Name contains invalid characters")
    if not USERNAME_PATTERN.fullmatch(str(p["username"])):
        raise RestFailure.failure("The username provided is not valid")
    name = str(p["username"])
    if api.ws.user_by_username(name) is not None or api.ws.room_by_id_or_name(name=name) is not None:
        raise RestFailure.failure("Username is already in use")
    user = api.ws.register_user(p)
    return {
        "user": {
            "_id": user.id,
            "type": user.type,
            "status": "offline",
            "active": user.active,
            "name": user.name,
            "utcOffset": 0,
            "username": user.username,
        }
    }


def users_update_own_basic_info(api: RestApi, call: Call) -> dict[str, Any]:
    """users.updateOwnBasicInfo for the identity fields (``name``, ``username``); e-mail and
    password changes (which need 2FA) are not modelled."""
    data = call.params.get("data")
    if not isinstance(data, dict):
        raise invalid_params("data")
    unsupported = set(data) - {"name", "username", "nickname", "bio", "statusText", "statusType"}
    if unsupported:
        raise MeteorError("invalid-params", "must NOT have additional properties")
    name = data.get("name")
    username = data.get("username")
    user = api.ws.save_user_identity(
        call.uid,
        name=str(name) if name is not None else None,
        username=str(username) if username else None,
    )
    return {"user": api.user_public(user, full=True)}


def users_set_active_status(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "edit-other-user-active-status"):
        raise RestFailure(403, {"success": False, "error": "unauthorized"})
    required(call, "userId")
    if not isinstance(call.params.get("activeStatus"), bool):
        raise invalid_params("activeStatus")
    user = api.ws.set_active_status(call.uid, str(call.params["userId"]), call.params["activeStatus"])
    return {"user": {"_id": user.id, "active": user.active}}


def users_create(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "create-user"):
        raise RestFailure.unauthorized()
    required(call, "name", "email", "password", "username")
    roles = call.params.get("roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise MeteorError("invalid-params", "must be array")
    user = api.ws.insert_user(call.uid, call.params)
    doc = api.user_public(user, full=True)
    doc["settings"] = {}
    doc.pop("utcOffset", None)
    return {"user": doc}


def users_delete(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "delete-user"):
        raise RestFailure(403, {"success": False, "error": "unauthorized"})
    uid, username = call.params.get("userId"), call.params.get("username")
    if not uid and not username:
        raise MeteorError(
            "error-user-param-not-provided", 'The required "userId" or "username" param was not provided'
        )
    user = api.ws.users.get(str(uid)) if uid else api.ws.user_by_username(str(username))
    if user is None:
        raise RestFailure.failure("User not found.")
    api.ws.delete_user(call.uid, user.id)
    return {"deletedRooms": []}


def users_generate_personal_access_token(api: RestApi, call: Call) -> dict[str, Any]:
    """A ``twoFactorRequired`` route: the 2FA check runs before the method's own checks."""
    assert call.user is not None and call.request is not None
    headers = call.request.headers
    api.ws.check_two_factor(
        call.user, headers.get("X-Auth-Token", ""), headers.get("x-2fa-code"), headers.get("x-2fa-method")
    )
    name = call.params.get("tokenName")
    if not name:
        raise RestFailure.failure("The 'tokenName' param is required")
    bypass = call.params.get("bypassTwoFactor", False)
    if not isinstance(bypass, bool):
        raise MeteorError("invalid-params", "must be boolean")
    token = api.ws.generate_personal_access_token(call.uid, str(name), bypass)
    return {"token": token}


def permissions_update(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "access-permissions"):
        raise RestFailure.unauthorized()
    entries = call.params.get("permissions")
    if entries is None:
        raise invalid_params("permissions")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("_id"), str) and isinstance(e.get("roles"), list)
        for e in entries
    ):
        raise RestFailure(
            400, {"success": False, "error": "Invalid body params", "errorType": "error-invalid-body-params"}
        )
    if any(e["_id"] not in api.ws.permissions for e in entries):
        raise RestFailure(
            400, {"success": False, "error": "Invalid permission", "errorType": "error-invalid-permission"}
        )
    if any(r not in api.ws.roles for e in entries for r in e["roles"]):
        raise RestFailure(400, {"success": False, "error": "Invalid role", "errorType": "error-invalid-role"})
    for entry in entries:
        api.ws.set_permission_roles(entry["_id"], [str(r) for r in entry["roles"]])
    return {"permissions": [{"_id": p["_id"], "roles": p["roles"]} for p in api.ws.permissions.values()]}


def _invite(api: RestApi, call: Call, room: Doc) -> None:
    required(call, "userId")
    api.ws.add_users_to_room(call.uid, room["_id"], [str(call.params["userId"])])


def channels_invite(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.channel_by_id_or_name(call)
    _invite(api, call, room)
    return {"channel": room}


def groups_invite(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.group_by_id_or_name(call)
    _invite(api, call, room)
    return {"group": room}


def settings_public(api: RestApi, call: Call) -> dict[str, Any]:
    wanted = [s for s in str(call.params.get("_id") or "").split(",") if s]
    settings = [
        {"_id": s["_id"], "value": s["value"]}
        for s in sorted(api.ws.settings.values(), key=lambda s: str(s["_id"]))
        if s.get("public") and (not wanted or s["_id"] in wanted)
    ]
    return page(settings, call, "settings")


def permissions_list_all(api: RestApi, call: Call) -> dict[str, Any]:
    since = as_date(call.params.get("updatedSince"), "error-updatedSince-param-invalid", "updatedSince")
    perms = list(api.ws.permissions.values())
    if since is not None:
        perms = [p for p in perms if p["_updatedAt"] > since]
    return {"update": perms, "remove": []}


def roles_list(api: RestApi, call: Call) -> dict[str, Any]:
    return {"roles": list(api.ws.roles.values())}


def commands_list(api: RestApi, call: Call) -> dict[str, Any]:
    return page(list(api.ws.commands), call, "commands")


# ---------------------------------------------------------------- moderation console


def moderation_report_user(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "userId", "description")
    if str(call.params["userId"]) not in api.ws.users:
        raise RestFailure.failure("Invalid user id provided.")
    api.ws.report_user(call.uid, str(call.params["userId"]), str(call.params["description"]))
    return {}


def moderation_reports_by_users(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "view-moderation-console"):
        raise RestFailure.unauthorized()
    latest = as_date(call.params.get("latest"), "error-invalid-params", "latest")
    oldest = as_date(call.params.get("oldest"), "error-invalid-params", "oldest")
    return page(api.ws.reports_by_users(latest, oldest), call, "reports")


def moderation_dismiss_reports(api: RestApi, call: Call) -> dict[str, Any]:
    if not api.ws.has_permission(call.uid, "manage-moderation-actions"):
        raise RestFailure.unauthorized()
    user_id, msg_id = call.params.get("userId"), call.params.get("msgId")
    if not user_id and not msg_id:
        raise RestFailure.failure("error-user-id-param-not-provided")
    hidden = api.ws.dismiss_reports(
        call.uid,
        user_id=str(user_id) if user_id else None,
        msg_id=str(msg_id) if msg_id else None,
        reason=call.params.get("reason"),
        action=call.params.get("action"),
    )
    if not hidden:
        raise RestFailure.failure("no-reports-found")
    return {}


def _major_minor(version: str) -> tuple[int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split("-")[0].split(".")[:2]]
    major, minor = [*parts, 0, 0][:2]
    return major, minor


def _keys(names: str) -> frozenset[str]:
    return frozenset(names.split())


# The whole REST surface in one table: method, route, handler and what dispatch() enforces.
ROUTES: tuple[Route, ...] = (
    Route("POST", "login", login, auth=False, success_flag=False),
    Route("POST", "logout", logout, success_flag=False),
    Route("GET", "me", me),
    Route(
        "POST",
        "chat.postMessage",
        chat_post_message,
        body_keys=_keys(
            "roomId channel text alias emoji avatar attachments tmid tshow customFields parseUrls"
        ),
    ),
    Route("POST", "chat.sendMessage", chat_send_message, body_keys=_keys("message previewUrls")),
    Route(
        "POST",
        "chat.update",
        chat_update,
        body_keys=_keys("roomId msgId text previewUrls customFields content"),
    ),
    Route("POST", "chat.delete", chat_delete, body_keys=_keys("roomId msgId asUser")),
    Route("GET", "chat.getMessage", chat_get_message),
    Route("GET", "chat.syncMessages", chat_sync_messages),
    Route("POST", "chat.pinMessage", chat_pin_message, body_keys=_keys("messageId")),
    Route("POST", "chat.unPinMessage", chat_unpin_message, body_keys=_keys("messageId")),
    Route("POST", "chat.react", chat_react, body_keys=_keys("messageId emoji reaction shouldReact")),
    Route("GET", "chat.getPinnedMessages", chat_get_pinned_messages),
    Route("POST", "chat.reportMessage", chat_report_message, body_keys=_keys("messageId description")),
    Route("GET", "channels.history", channels_history),
    Route("GET", "groups.history", groups_history),
    Route("GET", "dm.history", dm_history),
    Route("GET", "im.history", dm_history),
    Route("POST", "dm.create", dm_create, body_keys=_keys("username usernames excludeSelf")),
    Route("POST", "im.create", dm_create, body_keys=_keys("username usernames excludeSelf")),
    Route("GET", "rooms.info", rooms_info),
    Route("GET", "rooms.get", rooms_get),
    Route("GET", "subscriptions.get", subscriptions_get),
    Route("POST", "channels.join", channels_join),
    Route("GET", "channels.list", channels_list),
    Route("POST", "rooms.saveRoomSettings", rooms_save_room_settings),
    Route("POST", "channels.setAnnouncement", channels_set_announcement),
    Route("POST", "groups.setAnnouncement", groups_set_announcement),
    Route("POST", "rooms.cleanHistory", rooms_clean_history),
    Route("POST", "channels.addModerator", channels_add_moderator),
    Route("POST", "groups.addModerator", groups_add_moderator),
    Route("GET", "channels.roles", channels_roles),
    Route("GET", "groups.roles", groups_roles),
    Route("GET", "users.info", users_info),
    Route("GET", "users.list", users_list),
    Route("GET", "users.listByStatus", users_list_by_status, since=(6, 8)),
    Route(
        "POST",
        "users.register",
        users_register,
        auth=False,
        body_keys=_keys("username name email pass secret reason customFields"),
    ),
    Route(
        "POST", "users.updateOwnBasicInfo", users_update_own_basic_info, body_keys=_keys("data customFields")
    ),
    Route("POST", "users.setActiveStatus", users_set_active_status),
    Route(
        "POST",
        "users.create",
        users_create,
        body_keys=_keys(
            "name email password username active nickname bio joinDefaultChannels statusText roles "
            "requirePasswordChange setRandomPassword sendWelcomeEmail verified customFields"
        ),
    ),
    Route("POST", "users.delete", users_delete, body_keys=_keys("userId username confirmRelinquish")),
    Route(
        "POST",
        "users.generatePersonalAccessToken",
        users_generate_personal_access_token,
        body_keys=_keys("tokenName bypassTwoFactor"),
    ),
    Route("POST", "permissions.update", permissions_update, body_keys=_keys("permissions")),
    Route("POST", "channels.invite", channels_invite),
    Route("POST", "channels.kick", channels_kick),
    Route("POST", "groups.kick", groups_kick),
    Route("POST", "rooms.muteUser", rooms_mute_user, since=(6, 8)),
    Route("POST", "rooms.unmuteUser", rooms_unmute_user, since=(6, 8)),
    Route("POST", "groups.invite", groups_invite),
    Route("GET", "settings.public", settings_public, auth=False),
    Route("GET", "permissions.listAll", permissions_list_all),
    Route("GET", "roles.list", roles_list),
    Route("GET", "commands.list", commands_list),
    Route("POST", "moderation.reportUser", moderation_report_user),
    Route("GET", "moderation.reportsByUsers", moderation_reports_by_users),
    Route("POST", "moderation.dismissReports", moderation_dismiss_reports),
)
