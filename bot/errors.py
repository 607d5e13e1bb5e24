"""The errors rcmod raises, grouped by what the caller can do about them.

    RcmodError
    ├── ConfigError            stop: fix the configuration (exit status 2)
    ├── RetryableError         retry later: the transport failed or the server had a fault
    │   └── RateLimited        wait ``retry_after`` seconds, then retry
    ├── AuthError              log in again (an expired session); with a bad credential, stop
    │   └── TwoFactorRequired  a person must supply a second factor (e-mailed or app code)
    ├── ActionRefused          report and move on: the server said no to this one request
    │   ├── PermissionDenied
    │   └── NotFound
    ├── FileRefused            count and move on: a file the bot will not inspect
    └── ProtocolError          stop this connection: the peer is not speaking the protocol

    Fatal                      stop the bot (exit status 1)
    ├── DiskFull               the data folder's disk is full
    └── Deposed                another instance leads now (replicas on PostgreSQL)

``Fatal`` stands outside ``RcmodError`` on purpose: loops and handlers catch ``RcmodError`` to
report and go on, and going on without a store to write to (or, deposed, without the right to
act) would only fail again and again. It passes them by and ends the bot; what was not recorded
stays unhandled, and nothing is lost.

Modules that touch a foreign library translate its exceptions into these, chained with
``from``, so nothing above them needs to know about requests, websockets or sqlite3.
Messages carry ids and error codes, never message content or secrets.
"""

from __future__ import annotations


class RcmodError(Exception):
    """Base of every error rcmod raises on purpose."""


class ConfigError(RcmodError):
    """The configuration (file, environment, wordlists) is unusable. Names the field."""


class Fatal(Exception):
    """Going on cannot help: the bot stops (see the module's docstring)."""


class DiskFull(Fatal):
    """The store could not write: the disk holding the data folder is full (SQLITE_FULL, ENOSPC).
    Fatal for the bot: what was not recorded stays unhandled, so a restart takes it up again."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"disk full: the store cannot write; free space in {folder}")
        self.folder = folder


class Deposed(Fatal):
    """This instance no longer leads (bot.store.leadership): another may be acting already, so
    it does nothing more — no store write, no call that changes the server — and stops."""


class RetryableError(RcmodError):
    """A transport failure or a server-side fault (5xx, HTML instead of JSON)."""


class RateLimited(RetryableError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)


class AuthError(RcmodError):
    """The server does not accept our credentials (401, or DDP login refused)."""


class TwoFactorRequired(AuthError):
    """The server wants a second factor (``totp-required``; ``totp-invalid`` or
    ``totp-max-attempts`` when a code was given and refused). ``method`` is ``email``, ``totp`` or
    ``password``; with ``email`` the server has e-mailed a code (``code_generated``) or one is
    still valid. A bot cannot answer this: only a person at a terminal can."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "totp-required",
        method: str | None = None,
        code_generated: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.method = method
        self.code_generated = code_generated

    @property
    def refused_code(self) -> bool:
        """A code was sent and the server said it is wrong (or tried too often)."""
        return self.code != "totp-required"


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


class FileRefused(RcmodError):
    """A file the bot will not inspect, and will not retry: ``reason`` says why (one of
    :data:`FILE_REFUSALS`). Counted per reason; never carries the file's name or contents."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"file refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason


# too_large: over the size cap (declared or as read); too_slow: the download passed its time
# limit; not_image: not a format the checker decodes; corrupt: does not decode; bomb: its
# declared pixel count is past the cap (a decompression bomb); encrypted: an end-to-end room's
# file, which the bot cannot read.
FILE_REFUSALS = ("too_large", "too_slow", "not_image", "corrupt", "bomb", "encrypted")


class ProtocolError(RcmodError):
    """The peer answered something that is not Rocket.Chat's protocol."""
