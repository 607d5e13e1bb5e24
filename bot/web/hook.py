"""``POST /hooks/command``: slash-command invocations from the companion Apps-Engine app.

Contract (PRODUCT.md): headers ``X-Rcmod-Timestamp`` (Unix seconds) and ``X-Rcmod-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`` with the shared secret; body
``{"command": "report"|"mod", "args", "user": {"id", "username"}, "room": {"id", "name"},
"tmid", "trigger_id"}``; answer ``{"text": ...}`` for the app to show the sender privately.

Answers: 413 above 64 KiB (checked before anything is parsed or hashed); 415 unless the body
is ``application/json``; 401 when the signature is wrong (compared in constant time), the timestamp
is more than 300 s from now either way, or the same signature was already accepted within 300 s
(a replay, refused after a restart too when the replays are kept in the store); 400 for a body
that is not the contract's JSON (nesting too deep included); usage errors are 200 with the usage
text. The whole body is read (it may arrive in several TCP segments) before it is verified. A
refusal is logged with its reason, never with the body or the secret.

Identity comes from ``user.id`` alone: the dispatcher looks the username up by that id
(users.info), so a body whose ``user.username`` names someone else changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from bot.commands import Caller

if TYPE_CHECKING:
    from bot.store.hooks import HookReplayLedger

__all__ = [
    "MAX_BODY",
    "WINDOW",
    "HookPayload",
    "ReplayCache",
    "Replays",
    "StoredReplays",
    "command_hook",
    "sign",
    "verify",
]

log = logging.getLogger("rcmod.hook")

MAX_BODY = 64 * 1024
WINDOW = 300.0
_MAX_REMEMBERED = 100_000  # signatures kept for replay detection; oldest dropped first


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Replays(Protocol):
    """Signatures of accepted requests. A request whose timestamp is more than ``WINDOW`` old is
    refused anyway, so a signature needs remembering only until ``timestamp + WINDOW``."""

    def seen(self, signature: str) -> bool: ...

    def remember(self, signature: str, timestamp: int) -> None: ...


class StoredReplays:
    """Replays kept in the store, so a request captured before a restart is still refused after."""

    def __init__(
        self, hooks: HookReplayLedger, clock: Callable[[], float] = time.time, window: float = WINDOW
    ) -> None:
        self._hooks = hooks
        self._clock = clock
        self._window = window

    def seen(self, signature: str) -> bool:
        return self._hooks.hook_signature_seen(signature, stale_before=self._clock() - self._window)

    def remember(self, signature: str, timestamp: int) -> None:
        self._hooks.remember_hook_signature(signature, timestamp, keep_at_most=_MAX_REMEMBERED)


class ReplayCache:
    """Replays in memory (forgotten on restart): for tests and offline checks."""

    def __init__(self, clock: Callable[[], float] = time.time, window: float = WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, signature: str) -> bool:
        self._prune()
        return signature in self._seen

    def remember(self, signature: str, timestamp: int) -> None:
        self._seen[signature] = timestamp + self._window
        while len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def _prune(self) -> None:
        now = self._clock()
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float, replays: Replays
) -> str | None:
    """None when the request is authentic and fresh, else the reason (for the log)."""
    if not timestamp or not signature:
        return "missing timestamp or signature header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp is not Unix seconds"
    if abs(now - ts) > WINDOW:
        return "timestamp outside the 300 s window"
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace")):
        return "bad signature"
    if replays.seen(expected):
        return "replayed request"
    return None


@dataclass(frozen=True, slots=True)
class HookPayload:
    command: str
    args: str
    user_id: str
    username: str
    room_id: str
    room_name: str | None
    tmid: str | None
    trigger_id: str | None

    @classmethod
    def parse(cls, body: bytes) -> HookPayload | str:
        """The payload, or what is wrong with it (no part of the body is echoed)."""
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return "body is not JSON"
        except RecursionError:
            # json's C scanner stops at the interpreter's recursion limit; the contract nests 2 deep.
            return "body is nested too deeply"
        if not isinstance(data, dict):
            return "body is not a JSON object"
        command, args = data.get("command"), data.get("args", "")
        user, room = data.get("user"), data.get("room")
        if command not in ("report", "mod"):
            return 'command must be "report" or "mod"'
        if not isinstance(args, str):
            return "args must be a string"
        if not isinstance(user, dict) or not _nonempty(user.get("id")) or not _nonempty(user.get("username")):
            return "user must be {id, username}"
        if not isinstance(room, dict) or not _nonempty(room.get("id")):
            return "room must be {id, name}"
        name, tmid, trigger = room.get("name"), data.get("tmid"), data.get("trigger_id")
        for label, value in (("room.name", name), ("tmid", tmid), ("trigger_id", trigger)):
            if value is not None and not isinstance(value, str):
                return f"{label} must be a string or null"
        return cls(
            command, args, user["id"], user["username"], room["id"], name or None, tmid or None, trigger
        )


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


Run = Callable[[str, str, Caller], Awaitable[str]]


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, however many segments it arrives in; None once it exceeds ``MAX_BODY``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return None


def command_hook(
    secret: Callable[[], str | None],
    run: Run,
    *,
    clock: Callable[[], float] = time.time,
    replays: Replays | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    seen: Replays = replays if replays is not None else ReplayCache(clock)

    async def handle(request: web.Request) -> web.Response:
        key = secret()
        if not key:
            log.warning("hook refused: no webhook secret configured (http.webhook_secret)")
            return web.json_response({"error": "the companion app is not configured"}, status=503)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": "body too large"}, status=413)
        if request.content_type != "application/json":  # the media type, parameters aside
            log.warning("hook refused (415): content type is not application/json")
            return web.json_response({"error": "the body must be application/json"}, status=415)
        body = await _read_body(request)
        if body is None:
            return web.json_response({"error": "body too large"}, status=413)
        timestamp = request.headers.get("X-Rcmod-Timestamp")
        reason = verify(key, timestamp, request.headers.get("X-Rcmod-Signature"), body, clock(), seen)
        if reason is not None:
            log.warning("hook refused (401): %s", reason)
            return web.json_response({"error": "unauthorized"}, status=401)
        assert timestamp is not None  # verify() refused a missing or non-integer one
        seen.remember(sign(key, timestamp, body), int(timestamp))  # accepted once; a replay is refused
        payload = HookPayload.parse(body)
        if isinstance(payload, str):
            log.warning("hook refused (400): %s", payload)
            return web.json_response({"error": payload}, status=400)
        caller = Caller(
            payload.user_id,
            payload.username,
            payload.room_id,
            payload.room_name,
            None,
            payload.tmid,
            "hook",
        )
        text = await run(payload.command, payload.args, caller)
        return web.json_response({"text": text})

    return handle
