"""Turn a failed REST answer into an error from :mod:`bot.errors`. Pure: status, body, headers in.

Rocket.Chat reports most permission failures as HTTP 400 with an ``errorType`` (not 403), so the
body's ``errorType``/``error`` id is read first and the HTTP status only second.

A 401 is not always "log in again": ``API.v1.unauthorized()`` answers 401 since the 7.x
ApiClass, some routes still use it for a missing permission, and the next major (the
``applyBreakingChanges`` flag, 9.0 in the 8.x source) answers a thrown ``error-unauthorized``
with 401. Only the not-logged-in answer ("You must be logged in to do this.", and the login
route's ``status: "error"``) is an :class:`AuthError`; any other 401 is a refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bot.errors import (
    ActionRefused,
    AuthError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RcmodError,
    RetryableError,
    TwoFactorRequired,
)

__all__ = ["READ_ONLY_CODE", "classify", "error_code"]

# Server error ids by what the caller can do. Anything unknown falls back to the HTTP status.
_PERMISSION_CODES = frozenset(
    {
        "error-not-allowed",
        "error-action-not-allowed",
        "not-authorized",
        "error-unauthorized",
        "unauthorized",
        "error-app-prevented-deleting",
        "error-message-editing-blocked",
    }
)
_NOT_FOUND_CODES = frozenset(
    {
        "error-room-not-found",
        "error-invalid-room",
        "error-invalid-message",
        "error-invalid-message_id",  # reportMessage: no such message, or one the caller cannot read
        "error-message-not-found",
        "error-invalid-user",
        "error-user-not-found",
        "error-roomid-param-not-provided",
    }
)
# canSendMessage and canDeleteMessage throw plain Errors in a read-only room: the answer carries only
# the text, so the text is the only thing to recognise them by. Our own id for both.
READ_ONLY_CODE = "room-read-only"
_PLAIN_TEXT_CODES = {
    "You can't send messages because the room is readonly.": READ_ONLY_CODE,
    "You can't delete messages because the room is readonly.": READ_ONLY_CODE,
}
_PERMISSION_CODES = _PERMISSION_CODES | {READ_ONLY_CODE}
_RATE_CODES = frozenset({"error-too-many-requests", "too-many-requests"})
_TWO_FACTOR_CODES = frozenset({"totp-required", "totp-invalid", "totp-max-attempts"})
_AUTH_CODES = frozenset({"error-unauthorized-token"})

# Server ids mix case and underscores (error-roomId-param-not-provided, error-invalid-message_id).
_BRACKETED = re.compile(r"\[([A-Za-z0-9_-]+)\]\s*$")
_BARE_ID = re.compile(r"^[a-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+$")
_NOT_LOGGED_IN = "You must be logged in to do this"
_WAIT_SECONDS = re.compile(r"wait (\d+) seconds")


def error_code(body: Mapping[str, Any]) -> str | None:
    """The server's error id: ``errorType``, else the ``[code]`` at the end of ``error``."""
    kind = body.get("errorType")
    if isinstance(kind, str) and kind:
        return kind
    err = body.get("error")
    if isinstance(err, str):
        if err in _PLAIN_TEXT_CODES:
            return _PLAIN_TEXT_CODES[err]
        m = _BRACKETED.search(err)
        if m:
            return m.group(1)
        if _BARE_ID.match(err):  # failure("no-reports-found"): the whole error is an id
            return err
    if isinstance(err, int | str) and str(err).isdigit():
        return str(err)
    return None


def classify(status: int, text: str, headers: Mapping[str, str], *, endpoint: str, now_ms: int) -> RcmodError:
    """Map one failed answer to an exception. ``text`` is parsed, never quoted in the message."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = None
    where = f"{endpoint}: HTTP {status}"
    if not isinstance(body, dict):
        # HTML error pages from a proxy, or a server in trouble: try again later.
        if status == 429:
            return RateLimited(f"{where} (rate limited)", _retry_after(headers, {}, now_ms))
        if status in (401,):
            return AuthError(f"{where}: not logged in")
        return RetryableError(f"{where}: answer is not JSON")
    code = error_code(body)
    if status == 429 or code in _RATE_CODES:
        return RateLimited(f"{where} [{code or 'rate-limited'}]", _retry_after(headers, body, now_ms))
    if code in _TWO_FACTOR_CODES:
        # /login answers 401 with `error`, 2FA-protected routes 400 with `errorType`; both carry
        # details {method, codeGenerated, availableMethods, ...} (checkCodeForUser).
        details = body.get("details")
        method = details.get("method") if isinstance(details, dict) else None
        generated = details.get("codeGenerated") if isinstance(details, dict) else None
        return TwoFactorRequired(
            f"{where} [{code}]",
            code=str(code),
            method=method if isinstance(method, str) else None,
            code_generated=generated is True,
        )
    if code in _AUTH_CODES or (status == 401 and _not_logged_in(body)):
        return AuthError(f"{where} [{code or 'unauthorized'}]")
    if status == 401:
        return PermissionDenied(f"{where} [{code or 'unauthorized'}]", code=code, status=status)
    key = code.lower() if code else None  # the sets are lower-case; servers are not
    if key in _PERMISSION_CODES:
        return PermissionDenied(f"{where} [{code}]", code=code, status=status)
    if key in _NOT_FOUND_CODES:
        return NotFound(f"{where} [{code}]", code=code, status=status)
    if status >= 500:
        return RetryableError(f"{where} [{code or 'server-error'}]")
    if status == 403:
        return PermissionDenied(f"{where} [{code or 'forbidden'}]", code=code, status=status)
    if status == 404:
        return NotFound(f"{where} [{code or 'not-found'}]", code=code, status=status)
    return ActionRefused(f"{where} [{code or 'refused'}]", code=code, status=status)


def _not_logged_in(body: Mapping[str, Any]) -> bool:
    """The answer of a route that needs a user when the token names none (every release), or
    of the login route itself (``{"status": "error", ...}``)."""
    if body.get("status") == "error":
        return True
    texts = (body.get("error"), body.get("message"))
    return any(isinstance(t, str) and t.strip().rstrip(".") == _NOT_LOGGED_IN for t in texts)


def _retry_after(headers: Mapping[str, str], body: Mapping[str, Any], now_ms: int) -> float:
    # X-RateLimit-Reset is epoch *milliseconds* (Date.now() + timeToReset), not seconds.
    reset = _header(headers, "X-RateLimit-Reset")
    if reset is not None:
        try:
            return max(0.0, (float(reset) - now_ms) / 1000.0)
        except ValueError:
            pass
    details = body.get("details")
    if isinstance(details, Mapping) and isinstance(details.get("timeToReset"), int | float):
        return float(details["timeToReset"]) / 1000.0
    err = body.get("error")
    if isinstance(err, str):
        m = _WAIT_SECONDS.search(err)
        if m:
            return float(m.group(1))
    return 60.0  # Rocket.Chat's default window when it gives no hint


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None
