"""Release differences: the sandbox answers refusals as the asked release does (ApiClass.ts and
its ``applyBreakingChanges`` flag), ``rcmod sandbox --version`` picks the release, and the bot
tells a permission refusal from a bad token whatever the status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.config import Credentials
from bot.errors import AuthError, PermissionDenied
from bot.rest import RestClient
from bot.rest.errors import classify
from bot.sandbox import Sandbox
from bot.sandbox.releases import Release, ReleaseError
from tests.helpers import rcmod_process, rcmod_sandbox, seed_user

NOW_MS = 1_700_000_000_000
NOT_LOGGED_IN = "You must be logged in to do this."
PERMISSIONS = "User does not have the permissions required for this action [error-unauthorized]"


@pytest.fixture
async def newest() -> AsyncIterator[Sandbox]:
    async with Sandbox(version="9.0.0") as sb:
        yield sb


async def call(
    sb: Sandbox, method: str, route: str, who: str | None, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {}
    if who is not None:
        user = seed_user(sb, who)
        headers = {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{sb.url}/api/v1/{route}", json=body, headers=headers) as resp,
    ):
        return resp.status, dict(await resp.json())


# -- the bot: a 401 is a bad token only when the body says so -------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "error": PERMISSIONS},  # a thrown error-unauthorized, from 9.0
        {"success": False, "error": "unauthorized"},  # a route's own API.v1.unauthorized()
        {"success": False, "error": {"error": "error-not-authorized"}},  # unauthorized({...})
    ],
)
def test_a_401_permission_refusal_is_a_refusal(body: dict[str, Any]) -> None:
    exc = classify(401, json.dumps(body), {}, endpoint="x", now_ms=NOW_MS)
    assert isinstance(exc, PermissionDenied) and exc.status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"status": "error", "message": NOT_LOGGED_IN},  # before 7.0
        {"success": False, "error": NOT_LOGGED_IN, "status": "error", "message": NOT_LOGGED_IN},  # 7.x, 8.x
        {"success": False, "error": NOT_LOGGED_IN},  # from 9.0
        {"status": "error", "error": 403, "message": "Incorrect password"},  # the login route
    ],
)
def test_the_not_logged_in_answer_is_an_auth_error(body: dict[str, Any]) -> None:
    assert isinstance(classify(401, json.dumps(body), {}, endpoint="x", now_ms=NOW_MS), AuthError)


async def test_a_401_refusal_neither_logs_in_again_nor_reads_as_a_bad_token(newest: Sandbox) -> None:
    bot = seed_user(newest, "rcmod.bot")
    rest = RestClient(newest.url, Credentials(username="rcmod.bot", password=bot["password"]))
    try:
        await rest.login()
        logins = sum(1 for _, path in newest.faults.requests if path.endswith("/login"))
        newest.fail_next("users.list", 401, {"success": False, "error": PERMISSIONS})
        with pytest.raises(PermissionDenied):
            await rest.users_page(0)
        assert sum(1 for _, path in newest.faults.requests if path.endswith("/login")) == logins
        assert (await rest.users_page(0))[0]  # the session is still good
    finally:
        await rest.close()


async def test_a_bad_token_is_still_an_auth_error(newest: Sandbox) -> None:
    rest = RestClient(newest.url, Credentials(user_id=seed_user(newest, "alice")["id"], token="wrong"))
    try:
        with pytest.raises(AuthError):
            await rest.me()
    finally:
        await rest.close()


# -- the sandbox answers as the asked release ----------------------------------------------------


@pytest.mark.parametrize(
    ("version", "not_logged_in", "permissions", "forbidden"),
    [
        (
            "6.5.0",
            {"status": "error", "message": NOT_LOGGED_IN},
            {"success": False, "error": PERMISSIONS},
            {"success": False, "error": "unauthorized"},
        ),
        (
            "7.10.0",
            {"success": False, "error": NOT_LOGGED_IN, "status": "error", "message": NOT_LOGGED_IN},
            {"success": False, "error": PERMISSIONS},
            {"success": False, "error": "unauthorized"},
        ),
        (
            "9.0.0",
            {"success": False, "error": NOT_LOGGED_IN},
            {"success": False, "error": "forbidden"},
            {"success": False, "error": "forbidden"},
        ),
    ],
)
async def test_refusals_by_release(
    version: str, not_logged_in: dict[str, Any], permissions: dict[str, Any], forbidden: dict[str, Any]
) -> None:
    async with Sandbox(version=version) as sb:
        assert await call(sb, "GET", "me", None) == (401, not_logged_in)
        # moderation.reportsByUsers: permissionsRequired view-moderation-console (admin only)
        assert await call(sb, "GET", "moderation.reportsByUsers", "alice") == (403, permissions)
        # users.setActiveStatus: the route's own check, API.v1.forbidden()
        bob = seed_user(sb, "bob")["id"]
        body = {"userId": bob, "activeStatus": False}
        assert await call(sb, "POST", "users.setActiveStatus", "alice", body) == (403, forbidden)


async def test_routes_a_release_does_not_have_answer_404() -> None:
    async with Sandbox(version="6.5.0") as sb:
        status, body = await call(sb, "POST", "rooms.muteUser", "admin", {"roomId": "x", "userId": "y"})
        assert status == 404 and body == {"success": False, "error": "Resource not found"}


@pytest.mark.parametrize("version", ["banana", "7.10", "v7.10.0", "10.0.0", ""])
def test_a_version_the_sandbox_cannot_act_as_is_refused(version: str) -> None:
    with pytest.raises(ReleaseError):
        Release.parse(version)
    with pytest.raises(ReleaseError):
        Sandbox(version=version)


async def test_rcmod_sandbox_version_picks_the_release() -> None:
    async with (
        rcmod_sandbox("--version", "6.5.0", stderr=asyncio.subprocess.PIPE) as seed,
        aiohttp.ClientSession() as http,
        http.get(f"{seed['url']}/api/info") as resp,
    ):
        assert (await resp.json())["version"] == "6.5.0"


async def test_rcmod_sandbox_refuses_an_unknown_version() -> None:
    proc = await rcmod_process(
        "sandbox", "--version", "seven", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and out == b""
    assert b"--version" in err and b"seven" in err
