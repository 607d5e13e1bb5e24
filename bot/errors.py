"""The errors rcmod raises, grouped by what the caller can do about them.

    RcmodError
    ├── ConfigError            stop: fix the configuration (exit status 2)
    ├── RetryableError         retry later: the transport failed or the server had a fault
    │   └── RateLimited        wait ``retry_after`` seconds, then retry
    ├── AuthError              log in again (an expired session); with a bad credential, stop
    ├── ActionRefused          report and move on: the server said no to this one request
    │   ├── PermissionDenied
    │   └── NotFound
    └── ProtocolError          stop this connection: the peer is not speaking the protocol

Modules that touch a foreign library translate its exceptions into these, chained with
``from``, so nothing above them needs to know about requests, websockets or sqlite3.
Messages carry ids and error codes, never message content or secrets.
"""

from __future__ import annotations


class RcmodError(Exception):
    """Base of every error rcmod raises on purpose."""


class ConfigError(RcmodError):
    """The configuration (file, environment, wordlists) is unusable. Names the field."""


class RetryableError(RcmodError):
    """A transport failure or a server-side fault (5xx, HTML instead of JSON)."""


class RateLimited(RetryableError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)


class AuthError(RcmodError):
    """The server does not accept our credentials (401, or DDP login refused)."""


class ActionRefused(RcmodError):
    """The server refused one request; ``code`` is its ``errorType``/``error`` id when it gave one."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class PermissionDenied(ActionRefused):
    pass


class NotFound(ActionRefused):
    pass


class ProtocolError(RcmodError):
    """The peer answered something that is not Rocket.Chat's protocol."""
