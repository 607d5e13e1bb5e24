"""Errors the simulated workspace raises, shaped like Rocket.Chat's own.

Rocket.Chat has two error families that reach clients differently:

- ``MeteorError`` — thrown inside server methods. Over DDP it is serialised as a Meteor.Error
  object; over REST it becomes HTTP 400 ``{"success": false, "error": "<reason> [<code>]",
  "errorType": "<code>", "details"?}`` (reference C.0, A.4).
- ``RestFailure`` — a REST route answering ``failure("text")`` or a route-level check
  (403 ``error-unauthorized``, 404, 401). These never travel over DDP.

Server code also throws plain JavaScript ``Error`` objects (``PlainError`` here), e.g. canSendMessage's
``You_have_been_muted``: REST answers them 400 ``{"success": false, "error": "<message>"}`` with no
``errorType``, and Meteor hides them from DDP clients as ``500 Internal server error``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MeteorError", "PlainError", "RestFailure", "meteor_error_object"]


class MeteorError(Exception):
    """A Meteor.Error: ``error`` is a string code or an old-style number (e.g. 403, 404)."""

    def __init__(self, error: str | int, reason: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(f"{reason} [{error}]" if reason else f"[{error}]")
        self.error = error
        self.reason = reason
        self.details = details

    @property
    def message(self) -> str:
        return f"{self.reason} [{self.error}]" if self.reason else f"[{self.error}]"

    def rest_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": False, "error": self.message, "errorType": str(self.error)}
        if self.details is not None:
            body["details"] = self.details
        return body


class PlainError(Exception):
    """A plain ``Error`` thrown by server code. ``notice`` is the i18n text the sender is shown in
    an ephemeral message when the error comes from sending a message."""

    def __init__(self, message: str, notice: str | None = None):
        super().__init__(message)
        self.message = message
        self.notice = notice

    def rest_body(self) -> dict[str, Any]:
        # API.v1.failure(e.message, e.error): a plain Error has no `error` property, so no errorType.
        return {"success": False, "error": self.message}


def meteor_error_object(exc: MeteorError, client_safe: bool = True) -> dict[str, Any]:
    """The DDP serialisation (reference A.4)."""
    obj: dict[str, Any] = {}
    if client_safe:
        obj["isClientSafe"] = True
    obj["error"] = exc.error
    if exc.reason is not None:
        obj["reason"] = exc.reason
    if exc.details is not None:
        obj["details"] = exc.details
    obj["message"] = exc.message
    obj["errorType"] = "Meteor.Error"
    return obj


class RestFailure(Exception):
    """A REST-only error with a fixed status and body."""

    def __init__(self, status: int, body: dict[str, Any], kind: str | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        # A refusal whose answer depends on the release (bot.sandbox.releases): "permissions"
        # or "forbidden"; the dispatcher rewrites status and body for the release it acts as.
        self.kind = kind

    @classmethod
    def failure(cls, text: str) -> RestFailure:
        return cls(400, {"success": False, "error": text})

    @classmethod
    def unauthorized(cls) -> RestFailure:
        """Route-level ``permissionsRequired`` failed (reference C.0, 403)."""
        return cls(
            403,
            {
                "success": False,
                "error": "User does not have the permissions required for this action [error-unauthorized]",
            },
            kind="permissions",
        )

    @classmethod
    def forbidden(cls) -> RestFailure:
        """A route's own ``API.v1.forbidden()`` (named ``unauthorized()`` before 7.x)."""
        return cls(403, {"success": False, "error": "unauthorized"}, kind="forbidden")

    @classmethod
    def not_logged_in(cls) -> RestFailure:
        return cls(401, {"status": "error", "message": "You must be logged in to do this."})

    @classmethod
    def not_found(cls) -> RestFailure:
        return cls(404, {"success": False, "error": "Resource not found"})
