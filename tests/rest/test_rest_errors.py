"""REST failures map to errors by what the caller can do: body's errorType first, status second."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.errors import ActionRefused, AuthError, NotFound, PermissionDenied, RateLimited, RetryableError
from bot.rest.client import ServerInfo
from bot.rest.errors import classify, error_code

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fixtures"
NOW_MS = 1_700_000_000_000


def _body(**kw: object) -> str:
    return json.dumps({"success": False, **kw})


@pytest.mark.parametrize(
    ("status", "text", "headers", "expected", "code"),
    [
        # permission failures come as 400 with an errorType, not 403
        (
            400,
            _body(error="Not allowed [error-action-not-allowed]", errorType="error-action-not-allowed"),
            {},
            PermissionDenied,
            "error-action-not-allowed",
        ),
        (
            400,
            _body(error="Editing room is not allowed [error-action-not-allowed]"),
            {},
            PermissionDenied,
            "error-action-not-allowed",
        ),
        (
            403,
            _body(error="User does not have the permissions required for this action [error-unauthorized]"),
            {},
            PermissionDenied,
            "error-unauthorized",
        ),
        (403, _body(error="unauthorized"), {}, PermissionDenied, None),
        (
            400,
            _body(error="The room id provided does not match where the message is from."),
            {},
            ActionRefused,
            None,
        ),
        (
            400,
            _body(error="[error-room-not-found]", errorType="error-room-not-found"),
            {},
            NotFound,
            "error-room-not-found",
        ),
        (404, _body(error="Resource not found"), {}, NotFound, None),
        (
            401,
            json.dumps({"status": "error", "message": "You must be logged in to do this."}),
            {},
            AuthError,
            None,
        ),
        (500, _body(error="Internal error occured"), {}, RetryableError, None),
        (502, "<html><body>Bad gateway</body></html>", {}, RetryableError, None),
        (200, "<html>maintenance</html>", {}, RetryableError, None),
        (
            429,
            _body(error="Error, too many requests. [error-too-many-requests]"),
            {"X-RateLimit-Reset": str(NOW_MS + 42_000)},
            RateLimited,
            None,
        ),
    ],
)
def test_classify(status: int, text: str, headers: dict[str, str], expected: type, code: str | None) -> None:
    err = classify(status, text, headers, endpoint="x", now_ms=NOW_MS)
    assert type(err) is expected
    if isinstance(err, ActionRefused):
        assert err.code == code
    assert "<html>" not in str(err)  # bodies are parsed, never quoted


def test_rate_limit_reset_header_is_epoch_milliseconds() -> None:
    err = classify(429, "{}", {"x-ratelimit-reset": str(NOW_MS + 42_000)}, endpoint="x", now_ms=NOW_MS)
    assert isinstance(err, RateLimited)
    assert err.retry_after == pytest.approx(42.0)


def test_rate_limit_from_real_429_fixture_without_header() -> None:
    text = (FIXTURES / "rest_error_429_too_many_requests.json").read_text()
    err = classify(429, text, {}, endpoint="x", now_ms=NOW_MS)
    assert isinstance(err, RateLimited)
    assert err.retry_after == pytest.approx(60.0)  # "You must wait 60 seconds"


def test_error_code_accepts_number_and_bracket_forms() -> None:
    assert error_code({"error": 403}) == "403"
    assert error_code({"error": "TOTP Required [totp-required]"}) == "totp-required"
    assert error_code({"errorType": "error-not-allowed", "error": "x"}) == "error-not-allowed"


@pytest.mark.parametrize(
    ("version", "console", "report_user", "mute", "bans", "notes"),
    [
        ("8.3.0", True, True, True, True, 0),
        ("8.2.1", True, True, True, False, 1),
        ("7.10.0", True, True, True, False, 1),
        ("6.8.0", True, True, True, False, 1),
        ("6.7.2", True, True, False, False, 2),
        ("6.3.1", True, False, False, False, 4),
        ("6.1.0", False, False, False, False, 5),
        ("5.4.0", False, False, False, False, 6),
    ],
)
def test_server_version_switches_features(
    version: str, console: bool, report_user: bool, mute: bool, bans: bool, notes: int
) -> None:
    info = ServerInfo.from_version(version)
    assert info.features.moderation_console is console
    assert info.features.report_user is report_user
    assert info.features.mute_endpoints is mute
    assert info.features.room_bans is bans
    assert len(info.notes) == notes


@pytest.mark.parametrize(
    "text",
    [
        # reportMessage's Meteor.Error for an unknown (or unreadable) message...
        _body(error="Invalid message id [error-invalid-message_id]"),
        # ...and the plain Error the newer reportMessage throws: the whole error is the id.
        _body(error="error-invalid-message_id"),
    ],
)
def test_an_error_id_with_an_underscore_is_kept(text: str) -> None:
    exc = classify(400, text, {}, endpoint="chat.reportMessage", now_ms=NOW_MS)
    assert isinstance(exc, NotFound) and exc.code == "error-invalid-message_id"
    assert error_code(json.loads(text)) == "error-invalid-message_id"


def test_a_camel_case_error_id_is_matched_whatever_its_case() -> None:
    text = _body(error='The required "roomId" query param is missing. [error-roomId-param-not-provided]')
    exc = classify(400, text, {}, endpoint="chat.getPinnedMessages", now_ms=NOW_MS)
    assert isinstance(exc, NotFound) and exc.code == "error-roomId-param-not-provided"


@pytest.mark.parametrize(
    ("status", "body", "code", "method", "generated"),
    [
        # /login (ApiClass _initAuth): 401, the Meteor error laid over unauthorized(), no errorType.
        (
            401,
            {
                "success": False,
                "status": "error",
                "error": "totp-required",
                "message": "TOTP Required",
                "details": {"method": "email", "codeGenerated": True, "availableMethods": ["email"]},
            },
            "totp-required",
            "email",
            True,
        ),
        (401, {"success": False, "status": "error", "error": "totp-invalid"}, "totp-invalid", None, False),
        # A twoFactorRequired route (users.generatePersonalAccessToken): 400 with errorType.
        (
            400,
            {
                "success": False,
                "error": "TOTP Required [totp-required]",
                "errorType": "totp-required",
                "details": {"method": "password", "codeGenerated": False, "availableMethods": []},
            },
            "totp-required",
            "password",
            False,
        ),
    ],
)
def test_two_factor_answers_say_what_a_person_must_do(
    status: int, body: dict[str, object], code: str, method: str | None, generated: bool
) -> None:
    from bot.errors import TwoFactorRequired

    exc = classify(status, json.dumps(body), {}, endpoint="login", now_ms=NOW_MS)
    assert isinstance(exc, TwoFactorRequired) and isinstance(exc, AuthError)
    assert (exc.code, exc.method, exc.code_generated) == (code, method, generated)
    assert exc.refused_code is (code != "totp-required")


def test_read_only_plain_errors_are_recognised_by_their_text() -> None:
    for text in (
        "You can't send messages because the room is readonly.",
        "You can't delete messages because the room is readonly.",
    ):
        exc = classify(400, _body(error=text), {}, endpoint="chat.delete", now_ms=NOW_MS)
        assert isinstance(exc, PermissionDenied) and exc.code == "room-read-only"
