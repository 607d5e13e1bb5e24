"""REST handlers of the simulated server: ``/api/info`` and ``/api/v1/<route>``.

Thin: each handler reads and checks parameters the way the real route does, calls one
:class:`Workspace` method and shapes the answer. Auth, the REST rate limiter and error bodies
are handled once in :meth:`RestApi.dispatch` (reference C.0).
"""

from __future__ import annotations

import gzip
import json
import math
import operator
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web

from bot.sandbox.errors import MeteorError, PlainError, RestFailure
from bot.sandbox.ratelimit import FixedWindowLimiter, RateLimits
from bot.sandbox.releases import Release
from bot.sandbox.uploads import content_disposition
from bot.sandbox.wire import from_iso, ms, to_rest
from bot.sandbox.workspace import (
    NAME_FORBIDDEN_CHARS,
    USERNAME_PATTERN,
    Doc,
    User,
    Workspace,
    message_options,
)

__all__ = ["ROUTES", "RestApi", "Route", "json_answer", "parse_query"]


@dataclass
class Call:
    request: web.Request | None
    params: dict[str, Any]
    user: User | None
    # Values of ``:name`` segments in the route (``settings/:_id``).
    url_params: dict[str, str] = field(default_factory=dict)

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
    # A multipart upload: the form is read (streamed, capped) only after the caller passed the
    # login, rate-limit and room checks, as getUploadFormData runs inside the route.
    multipart: bool = False


# ---------------------------------------------------------------- parameter helpers


def invalid_params(name: str) -> MeteorError:
    """The ajv validators' message for a missing property (rest-typings)."""
    return MeteorError("invalid-params", f"must have required property '{name}'")


def room_not_found(kind: str) -> MeteorError:
    """What findChannelByIdOrName and its kin answer when ``roomId``/``roomName`` names no ``kind``."""
    return MeteorError(
        "error-room-not-found",
        f'The required "roomId" or "roomName" param provided does not match any {kind}',
    )


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


def as_date(value: Any, code: str, name: str, text: str | None = None) -> datetime | None:
    """An optional date parameter; a bad one is ``code`` with ``text`` (the server's usual words
    about ``name`` unless given)."""
    if value is None or value == "":
        return None
    parsed = from_iso(str(value))
    if parsed is None:
        raise MeteorError(code, text or f'The "{name}" query parameter must be a valid date.')
    return parsed


def pagination(api: RestApi, call: Call) -> tuple[int, int | None]:
    """offset/count as getPaginationItems: ``count`` defaults to API_Default_Count and is clamped
    to API_Upper_Count_Limit (a setting <= 0 means 100 and 50); 0 asks for everything, allowed
    only with API_Allow_Infinite_Count. None: no limit."""
    upper = _int_setting(api, "API_Upper_Count_Limit", 100)
    default = _int_setting(api, "API_Default_Count", 50)
    try:
        offset = int(call.params.get("offset") or 0)
        given = call.params.get("count")
        count = default if given is None else int(given or 0)
    except ValueError as exc:
        raise MeteorError("invalid-params", "offset and count must be integers") from exc
    count = min(count, upper)
    if count == 0:
        if api.ws.setting("API_Allow_Infinite_Count"):
            return max(0, offset), None
        count = default
    return max(0, offset), max(1, count)


def _int_setting(api: RestApi, key: str, fallback: int) -> int:
    value = api.ws.setting(key)
    return value if isinstance(value, int) and value > 0 else fallback


def page(api: RestApi, items: list[Any], call: Call, key: str) -> dict[str, Any]:
    offset, count = pagination(api, call)
    chunk = items[offset:] if count is None else items[offset : offset + count]
    return {key: chunk, "count": len(chunk), "offset": offset, "total": len(items)}


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer as the server's router writes it: ``Content-Type: application/json`` exactly
    (aiohttp's json_response would add ``; charset=utf-8``), and JSON.stringify's compact form."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


# qs.parse(query, {arrayLimit: 500, throwOnLimitExceeded: true}) (http-router parseQueryParams).
_ARRAY_LIMIT = 500
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


def parse_query(query: str) -> dict[str, Any]:
    """The query string as the server's ``qs`` parser reads it: ``a[]=x&a[]=y`` and ``a=x&a=y``
    give lists, ``a[0]=x`` a list by index, ``a[b]=c`` an object. More than 500 items in one
    bracket list is refused (``RestFailure`` 400 "Invalid query parameters")."""
    root: dict[str, Any] = {}
    appended = 0
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        match = _KEY.fullmatch(raw_key)
        if match is None or not match.group(2):
            previous = root.get(raw_key)
            if previous is None:
                root[raw_key] = value
            else:
                root[raw_key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for segment in path[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {} if child is None else {"0": child}
                node[segment] = child
            node = child
        last = path[-1]
        if last == "":
            appended += 1
            last = f"\x00{appended:09d}"
        node[last] = value
    return {key: _arrays(value) for key, value in root.items()}


def _arrays(value: Any) -> Any:
    """Objects whose keys are all indices (or appends) become lists, in index order."""
    if not isinstance(value, dict):
        return value
    items = {key: _arrays(child) for key, child in value.items()}
    indices = [k for k in items if k.isdigit() and int(k) <= _ARRAY_LIMIT]
    appends = [k for k in items if k.startswith("\x00")]
    if items and len(indices) + len(appends) == len(items):
        if len(items) > _ARRAY_LIMIT:
            raise RestFailure(400, {"success": False, "error": "Invalid query parameters"})
        return [items[k] for k in sorted(indices, key=int)] + [items[k] for k in sorted(appends)]
    return {key.lstrip("\x00"): child for key, child in items.items()}


class RestApi:
    def __init__(
        self, workspace: Workspace, limits: RateLimits, limiter: FixedWindowLimiter, version: str
    ) -> None:
        self.ws = workspace
        self.limits = limits
        self.limiter = limiter
        self.version = version
        self.release = Release.parse(version)  # what differs by release: bot.sandbox.releases
        self._routes = {(r.method, r.name): r for r in ROUTES if ":" not in r.name}
        # Routes with ``:name`` segments match one path segment each, as the server's router does.
        self._patterns = [
            (re.compile(re.sub(r":(\w+)", r"(?P<\1>[^/]+)", re.escape(r.name))), r)
            for r in ROUTES
            if ":" in r.name
        ]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/info", self.info)
        app.router.add_route("*", "/api/v1/{name:.+}", self.dispatch)
        app.router.add_get("/file-upload/{path:.*}", self.file_upload)

    async def info(self, request: web.Request) -> web.Response:
        return json_answer({"version": self.version, "success": True})

    async def dispatch(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found, url_params = self._route(request.method, name)
        if found is not None and not self.release.serves(found.method, found.name):
            found = None  # added in a later release: this one answers as for any unknown route
        if found is None:
            return json_answer(RestFailure.not_found().body, status=404)
        try:
            params = {} if found.multipart else await self._params(request)
        except RestFailure as exc:
            return json_answer(exc.body, status=exc.status)
        caller = self.ws.user_by_token(request.headers.get("X-User-Id"), request.headers.get("X-Auth-Token"))
        if found.auth and caller is None:
            status, body = self.release.not_logged_in()
            return json_answer(body, status=status)
        # The server reads the auth headers only on routes that require a login: on the others
        # (login, users.register, settings.public) the route sees an anonymous caller whatever
        # it sends.
        user = caller if found.auth else None
        headers: dict[str, str] = {}
        # The server's limiter on those routes knows no user either, so a caller holding
        # api-bypass-rate-limit is limited there too (10/min per address).
        if self._rate_limited_for(user):
            # Keyed by the route as declared (rooms.media/:rid), not the path asked for.
            key = (user.id if user else request.remote, request.method, found.name)
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
                return json_answer(too_many_requests_body(seconds), status=429, headers=headers)
        call = Call(request, params, user, url_params)
        try:
            if found.body_keys is not None and set(params) - found.body_keys:
                raise MeteorError("invalid-params", "must NOT have additional properties")
            if found.multipart:
                await read_upload_form(self, call)
            result = found.handler(self, call)
        except MeteorError as exc:
            if exc.error in ("error-unauthorized", "unauthorized"):
                status, body = self.release.thrown_unauthorized(exc.message)
                return json_answer(body, status=status, headers=headers)
            return json_answer(to_rest(exc.rest_body()), status=400, headers=headers)
        except PlainError as exc:
            return json_answer(to_rest(exc.rest_body()), status=400, headers=headers)
        except RestFailure as exc:
            status, body = exc.status, exc.body
            if exc.kind == "permissions":
                status, body = self.release.permissions_required()
            elif exc.kind == "forbidden":
                status, body = self.release.forbidden()
            return json_answer(body, status=status, headers=headers)
        if found.success_flag:
            result["success"] = True
        return json_answer(to_rest(result), headers=headers)

    async def file_upload(self, request: web.Request) -> web.StreamResponse:
        """``GET /file-upload/<id>/<name>`` (file-upload/server/lib/requests.ts): the file by id
        (the name is not checked), 403 with no body where requestCanAccessFiles says no, 404 with
        no body for an unknown id; answered as the default GridFS store does."""
        match = re.match(r"^([^/]+)/(.*)", request.match_info["path"])
        upload = self.ws.uploads.get(match.group(1)) if match else None
        if upload is None or upload["_id"] not in self.ws.upload_data:
            return web.Response(status=404)
        if not self._can_read_file(request, upload):
            return web.Response(status=403)
        data = self.ws.upload_data[upload["_id"]]
        headers = {
            "Content-Security-Policy": "default-src 'none'",
            "Cache-Control": "max-age=31536000",
            "Content-Disposition": content_disposition(str(upload["name"])),
            "Last-Modified": upload["uploadedAt"].strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Content-Type": str(upload["type"] or "application/octet-stream"),
        }
        accept = request.headers.get("Accept-Encoding", "")
        if re.search(r"\bgzip\b", accept):
            # readFromGridFS compresses on request and drops Content-Length.
            return await _stream(request, headers | {"Content-Encoding": "gzip"}, gzip.compress(data))
        if re.search(r"\bdeflate\b", accept):
            return await _stream(request, headers | {"Content-Encoding": "deflate"}, zlib.compress(data))
        return web.Response(body=data, headers=headers | {"Content-Length": str(len(data))})

    def _can_read_file(self, request: web.Request, upload: Doc) -> bool:
        """requestCanAccessFiles: open to all with FileUpload_ProtectFiles off; else the user
        named by the ``rc_uid``/``rc_token`` query, else those cookies, else the
        X-User-Id/X-Auth-Token headers. (The room-type and JWT grants are not modelled.)"""
        if not self.ws.setting("FileUpload_ProtectFiles"):
            return True
        uid, token = request.query.get("rc_uid"), request.query.get("rc_token")
        if not uid:
            uid, token = request.cookies.get("rc_uid"), request.cookies.get("rc_token")
        uid = uid or request.headers.get("X-User-Id")
        token = token or request.headers.get("X-Auth-Token")
        return self.ws.can_read_file(upload, uid, token)

    def _route(self, method: str, name: str) -> tuple[Route | None, dict[str, str]]:
        found = self._routes.get((method, name))
        if found is not None:
            return found, {}
        for pattern, route in self._patterns:
            match = pattern.fullmatch(name)
            if match is not None and route.method == method:
                return route, match.groupdict()
        return None, {}

    def _rate_limited_for(self, user: User | None) -> bool:
        if not self.limits.rest_enabled or not self.ws.setting("API_Enable_Rate_Limiter"):
            return False
        return user is None or not self.ws.has_permission(user.id, "api-bypass-rate-limit")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return parse_query(request.query_string)
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

    def _named_room(self, call: Call, code: str = "error-room-param-not-provided") -> Doc | None:
        """The room ``roomId`` or ``roomName`` names (None if none); one of them is required. The
        server's helpers disagree on the code: rooms.ts's findRoomByIdOrName spells it roomid."""
        rid, name = call.params.get("roomId"), call.params.get("roomName")
        if not rid and not name:
            raise MeteorError(code, 'The parameter "roomId" or "roomName" is required')
        return self.ws.room_by_id_or_name(rid, name)

    def channel_by_id_or_name(self, call: Call, kind: str = "channel") -> Doc:
        """findChannelByIdOrName: public channels only (C.3)."""
        room = self._named_room(call)
        if room is None or room["t"] != "c":
            raise room_not_found(kind)
        return room

    def group_by_id_or_name(self, call: Call) -> Doc:
        """findPrivateGroupByIdOrName: a group the caller is not in looks like no group at all."""
        room = self._named_room(call)
        if room is None or room["t"] != "p" or (room["_id"], call.uid) not in self.ws.subscriptions:
            raise room_not_found("group")
        return room

    def room_by_id_or_name(self, call: Call) -> Doc:
        """findRoomByIdOrName of rooms.ts (rooms.info, rooms.cleanHistory): any room type."""
        room = self._named_room(call, "error-roomid-param-not-provided")
        if room is None:
            raise room_not_found("channel")
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
        **message_options(p),
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
        **message_options(body),
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


def _message_id(api: RestApi, call: Call) -> str:
    """chat.pinMessage / unPinMessage / react: the ``messageId`` param, of a message that exists."""
    mid = call.params.get("messageId")
    if not mid:
        raise MeteorError("error-messageid-param-not-provided", 'The required "messageId" param is missing.')
    if mid not in api.ws.messages:
        raise MeteorError(
            "error-message-not-found", 'The provided "messageId" does not match any existing message.'
        )
    return str(mid)


def chat_pin_message(api: RestApi, call: Call) -> dict[str, Any]:
    return {"message": api.ws.pin_message(call.uid, _message_id(api, call))}


def chat_unpin_message(api: RestApi, call: Call) -> dict[str, Any]:
    api.ws.unpin_message(call.uid, _message_id(api, call))
    return {}


def chat_react(api: RestApi, call: Call) -> dict[str, Any]:
    mid = _message_id(api, call)
    emoji = call.params.get("emoji") or call.params.get("reaction")
    if not emoji:
        raise MeteorError("error-emoji-param-not-provided", 'The required "emoji" param is missing.')
    should = call.params.get("shouldReact")
    api.ws.set_reaction(call.uid, mid, str(emoji), None if should is None else as_bool(should))
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
    return page(api, pinned, call, "messages")


def chat_report_message(api: RestApi, call: Call) -> dict[str, Any]:
    mid, description = call.params.get("messageId"), call.params.get("description")
    if not mid:
        raise RestFailure.failure('The required "messageId" param is missing.')
    if not description:
        raise RestFailure.failure('The required "description" param is missing.')
    api.ws.report_message(call.uid, str(mid), str(description))
    return {}


# ---------------------------------------------------------------- history and rooms


def history_params(api: RestApi, call: Call, *, threads_unless_false: bool = False) -> dict[str, Any]:
    """The history routes' own reading of the query. channels.history and dm/im.history pass
    ``showThreadMessages === 'true'`` (so thread replies are left out unless asked, though the
    getChannelHistory method defaults to true), while groups.history passes ``!== 'false'``
    (replies included unless refused): ``threads_unless_false``. A reply also sent to the room
    (``tshow``) is always kept. ``inclusive`` is on only for the exact string ``'true'``. They
    page with getPaginationItems too (their ``count = 20`` default is dead code:
    getPaginationItems always answers a count)."""
    offset, count = pagination(api, call)
    flag = call.params.get("showThreadMessages")
    return {
        "latest": as_date(call.params.get("latest"), "error-invalid-params", "latest"),
        "oldest": as_date(call.params.get("oldest"), "error-invalid-params", "oldest"),
        "inclusive": call.params.get("inclusive") == "true",
        "offset": offset,
        "count": count or 0,  # the workspace's 0: everything
        "show_thread_messages": flag != "false" if threads_unless_false else flag == "true",
    }


def channels_history(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.channel_by_id_or_name(call)
    if not api.ws.can_access_room(call.uid, room):
        raise RestFailure.forbidden()
    return {"messages": api.ws.history(room["_id"], **history_params(api, call))}


def groups_history(api: RestApi, call: Call) -> dict[str, Any]:
    room = api.group_by_id_or_name(call)
    return {"messages": api.ws.history(room["_id"], **history_params(api, call, threads_unless_false=True))}


def dm_history(api: RestApi, call: Call) -> dict[str, Any]:
    rid = call.params.get("roomId")
    if not rid:
        raise MeteorError("error-room-param-not-provided", 'Query param "roomId" is required')
    room = api.ws.rooms.get(str(rid))
    if room is None or room["t"] != "d":
        raise MeteorError(
            "error-room-not-found",
            'The required "roomId" or "username" param provided does not match any direct message',
        )
    if not api.ws.can_access_room(call.uid, room):
        raise MeteorError("error-not-allowed", "Not allowed")
    return {"messages": api.ws.history(room["_id"], **history_params(api, call))}


def dm_create(api: RestApi, call: Call) -> dict[str, Any]:
    username, usernames = call.params.get("username"), call.params.get("usernames")
    if username:
        names = [str(username)]
    elif usernames:
        names = [n.strip() for n in str(usernames).split(",") if n.strip()]
    else:
        raise MeteorError("error-invalid-params", 'Body param "username" or "usernames" is required')
    exclude_self = call.params.get("excludeSelf", False)
    if not isinstance(exclude_self, bool):
        raise MeteorError("invalid-params", "must be boolean")
    room = api.ws.create_direct(call.uid, names, exclude_self=exclude_self)
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
    # The server's code and text for a bad updatedSince here really are these (subscriptions.ts).
    since = as_date(call.params.get("updatedSince"), "error-roomId-param-invalid", "lastUpdate")
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
    return page(api, channels, call, "channels")


def rooms_save_room_settings(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "rid")
    rid = str(call.params["rid"])
    changes = {k: v for k, v in call.params.items() if k != "rid"}
    api.ws.save_room_settings(call.uid, rid, changes)
    return {"rid": rid}


# channels.* and groups.* routes that differ only in how they find the room.
RoomLookup = Callable[["RestApi", Call], Doc]


def set_announcement(lookup: RoomLookup) -> Handler:
    def handler(api: RestApi, call: Call) -> dict[str, Any]:
        required(call, "roomId")
        if call.params.get("announcement") is None:
            raise invalid_params("announcement")
        room = lookup(api, call)
        api.ws.save_room_settings(call.uid, room["_id"], {"roomAnnouncement": call.params["announcement"]})
        return {"announcement": call.params["announcement"]}

    return handler


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


def add_moderator(lookup: RoomLookup) -> Handler:
    def handler(api: RestApi, call: Call) -> dict[str, Any]:
        room = lookup(api, call)
        required(call, "userId")
        api.ws.add_room_moderator(call.uid, room["_id"], str(call.params["userId"]))
        return {}

    return handler


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


def room_user_action(act: Callable[[Workspace, str, str, str], None]) -> Handler:
    """rooms.muteUser/unmuteUser/banUser/unbanUser: ``act(ws, caller, rid, username)``.
    isRoomsBanUserProps (8.3+) has the mute routes' shape; the user is looked up by
    getUserFromParams first, so an unknown user is ``error-invalid-user`` here."""

    def handler(api: RestApi, call: Call) -> dict[str, Any]:
        rid, user = _mute_target(api, call)
        act(api.ws, call.uid, rid, user.username)
        return {}

    return handler


def rooms_banned_users(api: RestApi, call: Call) -> dict[str, Any]:
    """Anyone with access to the room may list its banned users; no permission is checked."""
    required(call, "roomId")
    room = api.ws.rooms.get(str(call.params["roomId"]))
    if room is None or not api.ws.can_access_room(call.uid, room):
        raise RestFailure.unauthorized()
    users = [{"_id": u.id, "username": u.username, "name": u.name} for u in api.ws.banned_users(room["_id"])]
    return page(api, users, call, "bannedUsers")


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


def _user_param(api: RestApi, call: Call) -> User:
    """users.info / users.delete: the user named by ``userId`` or ``username``."""
    uid, username = call.params.get("userId"), call.params.get("username")
    if not uid and not username:
        raise MeteorError(
            "error-user-param-not-provided", 'The required "userId" or "username" param was not provided'
        )
    user = api.ws.users.get(str(uid)) if uid else api.ws.user_by_username(str(username))
    if user is None:
        raise RestFailure.failure("User not found.")
    return user


def users_info(api: RestApi, call: Call) -> dict[str, Any]:
    user = _user_param(api, call)
    # getFullUserData: another user's full fields (roles among them) need the permission.
    full = user.id == call.uid or api.ws.has_permission(call.uid, "view-full-other-user-info")
    doc = api.user_public(user, full=full)
    doc.pop("_updatedAt", None)  # in neither projection
    if not full:
        for hidden in LIMITED_USER_INFO_FIELDS:
            doc.pop(hidden, None)
    doc["canViewAllInfo"] = full
    return {"user": doc}


# getFullUserData's fullFields that user_public() models: left out of another user's users.info
# for a caller without view-full-other-user-info.
LIMITED_USER_INFO_FIELDS = ("roles", "createdAt", "emails", "lastLogin")


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
    return page(api, users, call, "users")


def users_list_by_status(api: RestApi, call: Call) -> dict[str, Any]:
    """users.listByStatus (6.8): what the admin's Users page tabs show. "Pending" is
    ``status=deactivated&hasLoggedIn=false&type=user``; the projection includes ``reason``."""
    if not api.ws.has_permission(call.uid, "view-d-room"):
        raise RestFailure.unauthorized()
    if api.ws.setting("API_Apply_permission_view-outside-room_on_users-list") and not api.ws.has_permission(
        call.uid, "view-outside-room"
    ):
        raise RestFailure.forbidden()
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
    roles = p.get("roles")
    if roles is not None:
        # isUsersListStatusProps types `roles` as an array: `roles[]=admin` in the query string.
        if not isinstance(roles, list):
            raise MeteorError("invalid-params", "must be array")
        users = [u for u in users if set(u.roles) & set(roles)]
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
    return page(api, docs, call, "users")


def users_register(api: RestApi, call: Call) -> dict[str, Any]:
    """users.register (no auth): the route's checks, then registerUser and setUsername.

    The route refuses "Logged in users can not register again." only when it knows the caller,
    and a route without ``authRequired`` never reads the auth headers: a logged-in client's
    headers change nothing here (dispatch leaves ``call.user`` empty)."""
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
        raise RestFailure.forbidden()
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
        raise RestFailure.forbidden()
    user = _user_param(api, call)
    api.ws.delete_user(call.uid, user.id)
    return {"deletedRooms": []}


def users_generate_personal_access_token(api: RestApi, call: Call) -> dict[str, Any]:
    """A ``twoFactorRequired`` route: the 2FA check runs before the method's own checks."""
    _two_factor(api, call)
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


def invite(lookup: RoomLookup, key: str) -> Handler:
    """channels.invite / groups.invite: the room comes back under ``key``."""

    def handler(api: RestApi, call: Call) -> dict[str, Any]:
        room = lookup(api, call)
        _invite(api, call, room)
        return {key: room}

    return handler


def settings_public(api: RestApi, call: Call) -> dict[str, Any]:
    wanted = [s for s in str(call.params.get("_id") or "").split(",") if s]
    settings = [
        {"_id": s["_id"], "value": s["value"]}
        for s in sorted(api.ws.settings.values(), key=lambda s: str(s["_id"]))
        if s.get("public") and (not wanted or s["_id"] in wanted)
    ]
    return page(api, settings, call, "settings")


def permissions_list_all(api: RestApi, call: Call) -> dict[str, Any]:
    # permissions.ts reuses the roomId code for a bad updatedSince.
    since = as_date(call.params.get("updatedSince"), "error-roomId-param-invalid", "updatedSince")
    perms = list(api.ws.permissions.values())
    if since is not None:
        perms = [p for p in perms if p["_updatedAt"] > since]
    return {"update": perms, "remove": []}


def roles_list(api: RestApi, call: Call) -> dict[str, Any]:
    return {"roles": list(api.ws.roles.values())}


def commands_list(api: RestApi, call: Call) -> dict[str, Any]:
    return page(api, list(api.ws.commands), call, "commands")


# ---------------------------------------------------------------- moderation console


def moderation_report_user(api: RestApi, call: Call) -> dict[str, Any]:
    required(call, "userId", "description")
    if str(call.params["userId"]) not in api.ws.users:
        raise RestFailure.failure("Invalid user id provided.")
    api.ws.report_user(call.uid, str(call.params["userId"]), str(call.params["description"]))
    return {}


def _console_viewer(api: RestApi, call: Call) -> None:
    if not api.ws.has_permission(call.uid, "view-moderation-console"):
        raise RestFailure.unauthorized()


def _console_moderator(api: RestApi, call: Call) -> None:
    if not api.ws.has_permission(call.uid, "manage-moderation-actions"):
        raise RestFailure.unauthorized()


def json_sort(call: Call) -> dict[str, int] | None:
    """parseJsonQuery's ``sort``: a JSON object of field -> 1 | -1."""
    raw = call.params.get("sort")
    if not raw:
        return None
    try:
        sort = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise MeteorError("error-invalid-sort", "Invalid sort parameter provided") from exc
    if not isinstance(sort, dict) or not all(v in (1, -1) for v in sort.values()):
        raise MeteorError("error-invalid-sort-parameter", "Invalid sort parameter provided")
    return {str(k): int(v) for k, v in sort.items()}


def _date_time(call: Call, name: str) -> datetime | None:
    """A ``format: 'date-time'`` query property of the console's ajv schemas."""
    return as_date(call.params.get(name), "invalid-params", name, 'must match format "date-time"')


def _non_empty(call: Call, name: str) -> str:
    """A required ``minLength: 1`` string property."""
    value = call.params.get(name)
    if value is None:
        raise invalid_params(name)
    if not isinstance(value, str) or value == "":
        raise MeteorError("invalid-params", "must NOT have fewer than 1 characters")
    return value


def _exactly_one_of_user_or_message(call: Call) -> None:
    """isArchiveReportProps: ``oneOf: [{required: ['msgId']}, {required: ['userId']}]`` — by
    presence, so two empty strings fail as both, and one empty string passes."""
    present = [k for k in ("msgId", "userId") if k in call.params]
    if len(present) == 1:
        return
    if not present:
        raise MeteorError(
            "invalid-params",
            "must have required property 'msgId'\n must have required property 'userId'"
            "\n must match exactly one schema in oneOf",
        )
    raise MeteorError("invalid-params", "must match exactly one schema in oneOf")


def _report_groups(api: RestApi, call: Call, grouped: Callable[..., list[Doc]]) -> dict[str, Any]:
    _console_viewer(api, call)
    groups = grouped(
        _date_time(call, "latest"),
        _date_time(call, "oldest"),
        selector=str(call.params.get("selector") or ""),
        sort=json_sort(call),
    )
    return page(api, groups, call, "reports")


def moderation_reports_by_users(api: RestApi, call: Call) -> dict[str, Any]:
    # total: getTotalUniqueReportedUsers, i.e. the number of groups (0 when the page is empty).
    return _report_groups(api, call, api.ws.reports_by_users)


def moderation_user_reports(api: RestApi, call: Call) -> dict[str, Any]:
    return _report_groups(api, call, api.ws.user_reports_grouped)


def moderation_user_reported_messages(api: RestApi, call: Call) -> dict[str, Any]:
    """One entry per reported message *on this page*: the page is of reports (newest first) and
    is deduplicated by message after the cut, so ``count`` is the number of reports on the page
    (at least the number of messages) and ``total`` the number of open reports; a message with
    reports on two pages appears on both."""
    _console_viewer(api, call)
    user_id = _non_empty(call, "userId")
    user = api.ws.users.get(user_id)
    reports = api.ws.reported_messages_of(
        user_id, selector=str(call.params.get("selector") or ""), sort=json_sort(call)
    )
    offset, count = pagination(api, call)
    chunk = reports[offset:] if count is None else reports[offset : offset + count]
    seen: set[str] = set()
    messages = []
    for report in chunk:
        if report["message"]["_id"] not in seen:
            seen.add(report["message"]["_id"])
            messages.append(report)
    return {
        "user": {"_id": user.id, "username": user.username, "name": user.name} if user else None,
        "messages": messages,
        "count": len(chunk),
        "total": len(reports),
        "offset": offset,
    }


def moderation_user_reports_by_user_id(api: RestApi, call: Call) -> dict[str, Any]:
    _console_viewer(api, call)
    user_id = _non_empty(call, "userId")
    reports = api.ws.user_reports_of(
        user_id, selector=str(call.params.get("selector") or ""), sort=json_sort(call)
    )
    offset, count = pagination(api, call)
    chunk = reports[offset:] if count is None else reports[offset : offset + count]
    found = api.ws.users.get(user_id)
    user: Doc | None = None
    if found is not None:
        user = {
            "_id": found.id,
            "username": found.username,
            "name": found.name,
            "active": found.active,
            "roles": list(found.roles),
            "createdAt": found.created_at,
        }
        # The user's own e-mails are replaced by those the page's reports recorded, deduplicated.
        emails: dict[str, Doc] = {}
        for report in chunk:
            first = (report.get("reportedUser", {}).get("emails") or [None])[0]
            if isinstance(first, dict):
                emails[str(first.get("address"))] = first
        user["emails"] = list(emails.values())
    return {"user": user, "reports": chunk, "count": len(chunk), "total": len(reports), "offset": offset}


def moderation_reports(api: RestApi, call: Call) -> dict[str, Any]:
    _console_viewer(api, call)
    msg_id = _non_empty(call, "msgId")
    reports = api.ws.reports_of_message(
        msg_id, selector=str(call.params.get("selector") or ""), sort=json_sort(call)
    )
    return page(api, reports, call, "reports")  # findPaginated: total counts every match


def moderation_dismiss_reports(api: RestApi, call: Call) -> dict[str, Any]:
    _console_moderator(api, call)
    _exactly_one_of_user_or_message(call)
    user_id, msg_id = call.params.get("userId"), call.params.get("msgId")
    if user_id and not api.ws.has_open_message_report(user_id=str(user_id)):
        raise RestFailure.failure("no-reports-found")
    if msg_id and not api.ws.has_open_message_report(msg_id=str(msg_id)):
        raise RestFailure.failure("no-reports-found")
    reason = call.params.get("reason")
    api.ws.dismiss_reports(
        call.uid,
        user_id=str(user_id) if user_id else None,
        # An empty userId passes the schema and falls through to "hide by message id" with no
        # id: the server then matches no message report (what it does with user reports in that
        # case is not modelled).
        msg_id=str(msg_id) if msg_id else "",
        reason=reason if isinstance(reason, str) and reason.strip() else "No reason provided",
        action=call.params.get("action"),
    )
    return {}


def moderation_dismiss_user_reports(api: RestApi, call: Call) -> dict[str, Any]:
    _console_moderator(api, call)
    _exactly_one_of_user_or_message(call)
    user_id = call.params.get("userId")
    if not user_id:
        raise RestFailure.failure("error-user-id-param-not-provided")
    reason, action = call.params.get("reason"), call.params.get("action")
    # `reason ?? 'No reason provided'`: an empty reason is kept (dismissReports trims instead).
    api.ws.dismiss_user_reports(
        call.uid,
        user_id=str(user_id),
        reason=str(reason) if reason is not None else "No reason provided",
        action=str(action) if action is not None else "None",
    )
    return {}


# ---------------------------------------------------------------- workspace administration

# API.v1.defaultFieldsToExclude: what room answers never carry.
_ROOM_FIELDS_EXCLUDED = ("joinCode", "members", "importIds", "e2e")


def room_out(room: Doc) -> Doc:
    return {k: v for k, v in room.items() if k not in _ROOM_FIELDS_EXCLUDED}


def _string_list(value: Any) -> list[str]:
    """check(members, Match.Optional([String])) in the create methods."""
    if not all(isinstance(item, str) for item in value):
        raise MeteorError(400, "Match failed")
    return list(value)


def _create_room(api: RestApi, call: Call, kind: Literal["c", "p"], members: Any, extra: Doc) -> Doc:
    """The create method's own check of the name, then the room (``kind`` "c" or "p") as answers
    show it."""
    p = call.params
    if not isinstance(p["name"], str):
        raise MeteorError(400, "Match failed")
    room = api.ws.create_channel(
        call.uid,
        kind,
        p["name"],
        _string_list(members or []),
        read_only=p.get("readOnly") is True,
        exclude_self=p.get("excludeSelf") is True,
        extra={"customFields": p.get("customFields") or {}, **extra},
    )
    return room_out(room)


def channels_create(api: RestApi, call: Call) -> dict[str, Any]:
    """channels.create: createChannelValidator (403 without create-c, then name and members),
    then createChannelMethod; the answer is the channel as channels.info shows it."""
    p = call.params
    extra: Doc = p["extraData"] if isinstance(p.get("extraData"), dict) else {}
    if extra.get("teamId"):
        # Teams are not modelled: every teamId is unknown, as createChannelMethod reports one.
        raise MeteorError(
            "error-team-not-found",
            'The "teamId" param provided does not match any team',
            {"method": "createChannel"},
        )
    if not api.ws.has_permission(call.uid, "create-c"):
        raise RestFailure(403, {"success": False, "error": "unauthorized"})
    if not p.get("name"):
        raise RestFailure.failure('Param "name" is required')
    members = p.get("members")
    if members and not isinstance(members, list):
        raise RestFailure.failure('Param "members" must be an array if provided')
    return {"channel": _create_room(api, call, "c", members, extra)}


def channels_info(api: RestApi, call: Call) -> dict[str, Any]:
    """channels.info: findChannelByIdOrName with no access check (any logged-in user sees any
    public channel); no roomId/roomName at all looks like a channel that does not exist."""
    p = call.params
    room: Doc | None = None
    if "roomId" in p:
        room = api.ws.room_by_id_or_name(rid=str(p["roomId"] or ""))
    elif "roomName" in p:
        room = api.ws.room_by_id_or_name(name=str(p["roomName"] or ""))
    if room is None or room["t"] not in ("c", "l"):
        raise room_not_found("channel")
    return {"channel": room_out(room)}


def groups_create(api: RestApi, call: Call) -> dict[str, Any]:
    """groups.create: the route's own body checks, then createPrivateGroupMethod. Without
    create-p the method's error-not-allowed comes back as a 400 (the route maps only an error
    whose *reason* is 'error-not-allowed' to 401, and the method's reason is 'Not allowed')."""
    p = call.params
    if not p.get("name"):
        raise RestFailure.failure('Body param "name" is required')
    members = p.get("members")
    if members and not isinstance(members, list):
        raise RestFailure.failure('Body param "members" must be an array if provided')
    if p.get("customFields") and not isinstance(p["customFields"], dict):
        raise RestFailure.failure('Body param "customFields" must be an object if provided')
    if p.get("extraData") and not isinstance(p["extraData"], dict):
        raise RestFailure.failure('Body param "extraData" must be an object if provided')
    return {"group": _create_room(api, call, "p", members, p.get("extraData") or {})}


def groups_info(api: RestApi, call: Call) -> dict[str, Any]:
    return {"group": room_out(api.group_by_id_or_name(call))}


def groups_list(api: RestApi, call: Call) -> dict[str, Any]:
    """The caller's private groups by name; none at all is an empty page (7.x)."""
    rooms = [api.ws.rooms[s["rid"]] for s in api.ws.subscriptions_of(call.uid) if s["t"] == "p"]
    return page(api, [room_out(r) for r in sorted(rooms, key=lambda r: str(r.get("name")))], call, "groups")


def dm_list(api: RestApi, call: Call) -> dict[str, Any]:
    """dm.list / im.list: the caller's direct rooms (default sort by name, which DMs lack)."""
    rooms = [api.ws.rooms[s["rid"]] for s in api.ws.subscriptions_of(call.uid) if s["t"] == "d"]
    return page(api, [room_out(r) for r in rooms], call, "ims")


def subscriptions_get_one(api: RestApi, call: Call) -> dict[str, Any]:
    """The caller's subscription to ``roomId``, or null when there is none."""
    required(call, "roomId")
    return {"subscription": api.ws.subscriptions.get((str(call.params["roomId"]), call.uid))}


def settings_get(api: RestApi, call: Call) -> dict[str, Any]:
    """settings/:_id GET (permissionsRequired view-privileged-setting): ``_id`` and ``value``
    only; an unknown id is API.v1.failure() with nothing in it."""
    if not api.ws.has_permission(call.uid, "view-privileged-setting"):
        raise RestFailure.unauthorized()
    setting = api.ws.setting_doc(call.url_params["_id"])
    if setting is None:
        raise RestFailure(400, {"success": False})
    return {"_id": setting["_id"], "value": setting["value"]}


def settings_post(api: RestApi, call: Call) -> dict[str, Any]:
    """settings/:_id POST (edit-privileged-setting, then the 2FA check): ``{"value": ...}``
    stores the value. An unknown id, or a body without ``value``, is a bare failure."""
    assert call.user is not None and call.request is not None
    if not api.ws.has_permission(call.uid, "edit-privileged-setting"):
        raise RestFailure.unauthorized()
    _two_factor(api, call)
    if api.ws.setting_doc(call.url_params["_id"]) is None or "value" not in call.params:
        raise RestFailure(400, {"success": False})
    api.ws.update_setting_value(call.url_params["_id"], call.params["value"])
    return {}


def _two_factor(api: RestApi, call: Call) -> None:
    """A ``twoFactorRequired`` route's check, before the action runs."""
    assert call.user is not None and call.request is not None
    headers = call.request.headers
    api.ws.check_two_factor(
        call.user, headers.get("X-Auth-Token", ""), headers.get("x-2fa-code"), headers.get("x-2fa-method")
    )


# isUsersUpdateParamsPOST: the keys `data` may carry (additionalProperties: false).
_USER_UPDATE_KEYS = frozenset(
    (
        "email",
        "name",
        "password",
        "username",
        "bio",
        "nickname",
        "statusText",
        "active",
        "roles",
        "joinDefaultChannels",
        "requirePasswordChange",
        "setRandomPassword",
        "sendWelcomeEmail",
        "verified",
        "customFields",
        "status",
    )
)


def users_update(api: RestApi, call: Call) -> dict[str, Any]:
    """users.update (an admin edits another account): the body validator, the 2FA check, then
    saveUser and, when ``data.active`` is given, setUserActiveStatus. Password, bio, nickname
    and custom fields are accepted and not modelled."""
    p = call.params
    if not isinstance(p.get("userId"), str) or not p["userId"]:
        raise invalid_params("userId")
    data = p.get("data")
    if not isinstance(data, dict):
        raise invalid_params("data")
    if set(data) - _USER_UPDATE_KEYS:
        raise MeteorError("invalid-params", "must NOT have additional properties")
    roles = data.get("roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise MeteorError("invalid-params", "must be array")
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        raise MeteorError("invalid-params", "must be boolean")
    _two_factor(api, call)
    target = str(p["userId"])
    user = api.ws.save_user(call.uid, target, data)
    if active is not None:
        if not api.ws.has_permission(call.uid, "edit-other-user-active-status"):
            raise MeteorError("error-not-allowed", "Not allowed", {"method": "setUserActiveStatus"})
        user = api.ws.set_active_status(call.uid, target, active)
    return {"user": api.user_public(user, full=True)}


# ---------------------------------------------------------------- uploads

_FIELD_LIMIT = 1024 * 1024  # busboy's default fieldSize: a longer field value is cut there
_CHUNK = 64 * 1024


async def read_upload_form(api: RestApi, call: Call) -> None:
    """The route's own access check (``API.v1.forbidden()``), then getUploadFormData: one file in
    the ``file`` field, at most FileUpload_MaxFileSize bytes (busboy's fileSize limit; -1: none),
    other parts as text fields. Streams the body, so an oversized file is refused, not held."""
    assert call.request is not None
    rid = call.url_params.get("rid", "")
    room = api.ws.rooms.get(rid)
    if room is None or not api.ws.can_access_room(call.uid, room):
        raise RestFailure.forbidden()
    if not call.request.content_type.startswith("multipart/"):
        raise MeteorError("No file uploaded")  # busboy: not a form it can read (text unconfirmed)
    limit = api.ws.setting("FileUpload_MaxFileSize")
    cap = limit if isinstance(limit, int) and limit > -1 else None
    # The sandbox holds files in memory: past its store bound nothing more is read either.
    cap = min(cap, api.ws.upload_store_bytes) if cap is not None else api.ws.upload_store_bytes
    try:
        file = await _read_form(call, await call.request.multipart(), cap)
    except ValueError as exc:
        # A form busboy cannot parse (a broken boundary, a cut-off body): its error, 400.
        raise RestFailure.failure("Unexpected end of form") from exc
    if file is None:
        raise MeteorError("No file uploaded")
    call.params["__file__"] = file


async def _read_form(call: Call, reader: MultipartReader, cap: int) -> tuple[str, str, bytes] | None:
    file: tuple[str, str, bytes] | None = None
    while True:
        part = await reader.next()
        if part is None:
            return file
        if not isinstance(part, BodyPartReader):
            raise MeteorError("No file uploaded")
        if part.filename is None:
            value = await _read_capped(part, _FIELD_LIMIT, truncate=True)
            call.params[str(part.name)] = value.decode("utf-8", "replace")
            continue
        if part.name != "file":
            raise MeteorError("invalid-field")
        if file is not None:
            raise RestFailure.failure("Just 1 file is allowed")  # busboy filesLimit (unconfirmed)
        data = await _read_capped(part, cap, truncate=False)
        file = (part.filename, part.headers.get("Content-Type", ""), data)


async def _read_capped(part: BodyPartReader, cap: int, *, truncate: bool) -> bytes:
    out = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        out += chunk
        if len(out) > cap:
            if truncate:
                return bytes(out[:cap])
            raise MeteorError("error-file-too-large")
    return bytes(out)


def _form_file(call: Call) -> tuple[str, str, bytes]:
    file = call.params.pop("__file__")
    assert isinstance(file, tuple)
    return file


def _file_content(call: Call) -> Doc | None:
    """rooms.media's ``content`` field: the JSON of an end-to-end file's key material."""
    raw = call.params.get("content")
    if not raw:
        return None
    try:
        content = json.loads(str(raw))
    except ValueError as exc:
        raise MeteorError("invalid-field-content") from exc
    return content if isinstance(content, dict) else None


def rooms_media(api: RestApi, call: Call) -> dict[str, Any]:
    """rooms.media/:rid: stores a temporary file (24 h) and posts nothing."""
    name, declared, data = _form_file(call)
    upload = api.ws.insert_upload(
        call.uid,
        call.url_params["rid"],
        name=name,
        declared_type=declared,
        data=data,
        content=_file_content(call),
    )
    return {"file": {"_id": upload["_id"], "url": upload["path"]}}


def _message_fields(call: Call, skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in call.params.items() if k not in skip}


def rooms_media_confirm(api: RestApi, call: Call) -> dict[str, Any]:
    """rooms.mediaConfirm/:rid/:fileId: posts the file's message (sendFileMessage); ``fileName``
    renames the file, the body's other keys (msg, tmid, alias, ...) are the message's."""
    rid, file_id = call.url_params["rid"], call.url_params["fileId"]
    room = api.ws.rooms.get(rid)
    if room is None or not api.ws.can_access_room(call.uid, room):
        raise RestFailure.forbidden()
    description, file_name = call.params.get("description"), call.params.get("fileName")
    msg_data = _message_fields(call, ("description", "fileName"))
    message = api.ws.send_file_message(
        call.uid,
        rid,
        file_id,
        msg_data,
        None if description is None else str(description),
        str(file_name) if file_name else None,
    )
    return {"message": message}


def rooms_upload(api: RestApi, call: Call) -> dict[str, Any]:
    """rooms.upload/:rid (deprecated; gone in 8.0): store and post in one call, the form's other
    fields (msg, description, tmid, ...) being the message's."""
    name, declared, data = _form_file(call)
    rid = call.url_params["rid"]
    upload = api.ws.insert_upload(
        call.uid, rid, name=name, declared_type=declared, data=data, temporary=False
    )
    description = call.params.get("description")
    message = api.ws.send_file_message(
        call.uid, rid, upload["_id"], _message_fields(call, ("description",)), description
    )
    return {"message": message}


async def _stream(request: web.Request, headers: dict[str, str], body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    await response.write(body)
    await response.write_eof()
    return response


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
    Route("POST", "channels.setAnnouncement", set_announcement(RestApi.channel_by_id_or_name)),
    Route("POST", "groups.setAnnouncement", set_announcement(RestApi.group_by_id_or_name)),
    Route("POST", "rooms.cleanHistory", rooms_clean_history),
    Route("POST", "channels.addModerator", add_moderator(RestApi.channel_by_id_or_name)),
    Route("POST", "groups.addModerator", add_moderator(RestApi.group_by_id_or_name)),
    Route("GET", "channels.roles", channels_roles),
    Route("GET", "groups.roles", groups_roles),
    Route("GET", "users.info", users_info),
    Route("GET", "users.list", users_list),
    Route("GET", "users.listByStatus", users_list_by_status),
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
    Route("POST", "channels.invite", invite(RestApi.channel_by_id_or_name, "channel")),
    Route("POST", "channels.kick", channels_kick),
    Route("POST", "groups.kick", groups_kick),
    Route("POST", "rooms.muteUser", room_user_action(Workspace.mute_user)),
    Route("POST", "rooms.unmuteUser", room_user_action(Workspace.unmute_user)),
    Route("POST", "rooms.banUser", room_user_action(Workspace.ban_user)),
    Route("POST", "rooms.unbanUser", room_user_action(Workspace.unban_user)),
    Route("GET", "rooms.bannedUsers", rooms_banned_users),
    Route("POST", "groups.invite", invite(RestApi.group_by_id_or_name, "group")),
    Route("GET", "settings.public", settings_public, auth=False),
    Route("GET", "permissions.listAll", permissions_list_all),
    Route("GET", "roles.list", roles_list),
    Route("GET", "commands.list", commands_list),
    Route("POST", "moderation.reportUser", moderation_report_user),
    Route(
        "GET",
        "moderation.reportsByUsers",
        moderation_reports_by_users,
        body_keys=_keys("latest oldest selector count offset sort"),
    ),
    Route(
        "GET",
        "moderation.userReports",
        moderation_user_reports,
        body_keys=_keys("latest oldest selector count offset sort"),
    ),
    Route(
        "GET",
        "moderation.user.reportedMessages",
        moderation_user_reported_messages,
        body_keys=_keys("userId selector count offset sort"),
    ),
    Route(
        "GET",
        "moderation.user.reportsByUserId",
        moderation_user_reports_by_user_id,
        body_keys=_keys("userId selector count offset sort"),
    ),
    Route(
        "GET",
        "moderation.reports",
        moderation_reports,
        body_keys=_keys("msgId selector count offset sort"),
    ),
    Route(
        "POST",
        "moderation.dismissReports",
        moderation_dismiss_reports,
        body_keys=_keys("userId msgId reason action"),
    ),
    Route(
        "POST",
        "moderation.dismissUserReports",
        moderation_dismiss_user_reports,
        body_keys=_keys("userId msgId reason action"),
    ),
    # Workspace administration: what an administrator's client calls on a trial workspace.
    Route("POST", "channels.create", channels_create),
    Route("GET", "channels.info", channels_info),
    Route("POST", "groups.create", groups_create),
    Route("GET", "groups.info", groups_info),
    Route("GET", "groups.list", groups_list),
    Route("GET", "dm.list", dm_list),
    Route("GET", "im.list", dm_list),
    Route("GET", "settings/:_id", settings_get),
    Route("POST", "settings/:_id", settings_post),
    Route("POST", "users.update", users_update, body_keys=_keys("userId data confirmRelinquish")),
    Route("GET", "subscriptions.getOne", subscriptions_get_one),
    # Uploads: rooms.media then rooms.mediaConfirm; rooms.upload until 8.0 (bot.sandbox.releases).
    Route("POST", "rooms.media/:rid", rooms_media, multipart=True),
    Route("POST", "rooms.mediaConfirm/:rid/:fileId", rooms_media_confirm),
    Route("POST", "rooms.upload/:rid", rooms_upload, multipart=True),
)
