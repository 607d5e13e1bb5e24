"""Exceptions of the realtime client, grouped by what the caller can do about them.

See the tree in :mod:`bot.realtime.client`. Each class also derives from the matching class of
:mod:`bot.errors`, so code above the realtime layer handles REST and DDP failures alike. Every
message here carries codes, method names and ids only: never a token, a password, a digest or
message content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot import errors

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "CallTimeout",
    "ConnectionLost",
    "FatalError",
    "LoginFailed",
    "MethodError",
    "ProtocolViolation",
    "RateLimited",
    "RealtimeError",
    "TransientError",
]

# Rocket.Chat's per-method DDP limit window; used when the server gives no timeToReset.
DEFAULT_RETRY_AFTER = 10.0


class RealtimeError(errors.RcmodError):
    """Base class of everything :class:`~bot.realtime.client.RealtimeClient` raises."""


class TransientError(RealtimeError, errors.RetryableError):
    """Retry: the request may not have reached the server, or its answer was lost."""


class ConnectionLost(TransientError):
    """No connection, or it dropped before the answer came. The client reconnects by itself."""


class CallTimeout(TransientError, TimeoutError):
    """No answer within the call timeout. The call may still have taken effect server-side."""

    def __init__(self, method: str, call_id: str, timeout: float) -> None:
        super().__init__(f"{method} (call {call_id}): no answer within {timeout:g}s")
        self.method = method
        self.call_id = call_id
        self.timeout = timeout


class RateLimited(RealtimeError, errors.RateLimited):
    """Wait ``retry_after`` seconds, then retry (``too-many-requests``)."""

    def __init__(self, method: str, code: str, retry_after: float) -> None:
        errors.RateLimited.__init__(
            self, f"{method}: rate limited ({code}), retry after {retry_after:g}s", retry_after
        )
        self.method = method
        self.code = code
        self.retry_after = retry_after


class MethodError(RealtimeError, errors.ActionRefused):
    """Report and go on: the server refused this call (permission, not found, invalid ...)."""

    def __init__(
        self,
        method: str,
        code: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        text = f"{method}: {code}"
        if reason:
            text += f" ({reason})"
        errors.ActionRefused.__init__(self, text, code=code)
        self.method = method
        self.reason = reason
        self.details: Mapping[str, Any] = details or {}


class FatalError(RealtimeError):
    """Stop: retrying cannot help until someone changes the configuration or the server."""


class LoginFailed(FatalError, errors.AuthError):
    """The credentials were refused (wrong token or password, 2FA required, wrong user id)."""


class TwoFactorLoginRequired(LoginFailed, errors.TwoFactorRequired):
    """The password login wants a second factor (``totp-required``): a bot cannot give one."""


class ProtocolViolation(FatalError, errors.ProtocolError):
    """The server does not speak DDP as Rocket.Chat does (refused version, malformed login)."""
