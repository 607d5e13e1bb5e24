"""The sandbox's REST surface over real HTTP: auth, error bodies, rate limits and faults."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox import RateLimits, Sandbox, serve
from tests.conftest import until
from tests.sandbox.test_sandbox_support import FIXTURES, FakeClock, Seed, running


class Api:
    def __init__(self, session: aiohttp.ClientSession, seed: Seed) -> None:
        self.session = session
        self.seed = seed

    async def get(self, route: str, who: str | None = None, /, **params: Any) -> tuple[int, Any]:
        headers = self.seed.headers(who) if who else {}
        async with self.session.get(
            f"{self.seed.url}/api/v1/{route}", params=params, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    async def post(self, route: str, who: str | None = None, /, **body: Any) -> tuple[int, Any]:
        headers = self.seed.headers(who) if who else {}
        async with self.session.post(f"{self.seed.url}/api/v1/{route}", json=body, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Api, FakeClock]]:
    clock = FakeClock()
    async with running(clock) as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, Api(session, seed), clock


async def test_info_is_public_and_versioned() -> None:
    async with (
        running(version="6.12.1") as (_sandbox, seed),
        aiohttp.ClientSession() as session,
        session.get(seed.url + "/api/info") as resp,
    ):
        assert await resp.json() == {"version": "6.12.1", "success": True}


async def test_missing_or_wrong_token_is_401(env: tuple[Sandbox, Api, FakeClock]) -> None:
    _sandbox, api, _clock = env
    status, body = await api.get("me")
    # ApiClass.ts (7.x): unauthorized('You must be logged in to do this.') plus the legacy fields
    # kept until applyBreakingChanges.
    text = "You must be logged in to do this."
    assert (status, body) == (401, {"success": False, "error": text, "status": "error", "message": text})
    headers = {"X-User-Id": api.seed.uid("alice"), "X-Auth-Token": api.seed.users["bob"]["token"]}
    async with api.session.get(api.seed.url + "/api/v1/me", headers=headers) as resp:
        assert resp.status == 401


async def test_login_with_password_and_resume(env: tuple[Sandbox, Api, FakeClock]) -> None:
    _sandbox, api, _clock = env
    alice = api.seed.users["alice"]
    status, body = await api.post("login", user=alice["username"], password=alice["password"])
    assert status == 200 and body["status"] == "success" and body["data"]["userId"] == alice["id"]
    status, body = await api.post("login", resume=alice["token"])
    assert status == 200 and body["data"]["me"]["username"] == "alice"
    # self.unauthorized() ({success: false, error}) with the Meteor error laid over it (ApiClass).
    refused = {"success": False, "status": "error"}
    status, body = await api.post("login", user="alice", password="nope")
    assert (status, body) == (401, {**refused, "error": 403, "message": "Incorrect password"})
    status, body = await api.post("login", user="nobody", password="nope")
    assert (status, body) == (401, {**refused, "error": "Unauthorized", "message": "Unauthorized"})


async def test_post_message_by_channel_name_and_dm(env: tuple[Sandbox, Api, FakeClock]) -> None:
    _sandbox, api, _clock = env
    status, body = await api.post("chat.postMessage", "alice", channel="#general", text="hi")
    assert status == 200 and body["channel"] == "general" and isinstance(body["ts"], int)
    assert body["message"]["rid"] == api.seed.rid("general")
    status, body = await api.post("chat.postMessage", "rcmod.bot", channel="@alice", text="psst")
    assert status == 200 and body["message"]["rid"] == "".join(
        sorted([api.seed.uid("alice"), api.seed.uid("rcmod.bot")])
    )
    status, body = await api.get("im.history", "alice", roomId=body["message"]["rid"])
    assert status == 200 and [m["msg"] for m in body["messages"]] == ["psst"]


async def test_permission_failure_is_400_with_error_type(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, _clock = env
    message = sandbox.post_as("bob", "general", "mine")
    status, body = await api.post(
        "chat.delete", "alice", roomId=api.seed.rid("general"), msgId=message["_id"]
    )
    assert status == 400
    assert body == {
        "success": False,
        "error": "Not allowed [error-action-not-allowed]",
        "errorType": "error-action-not-allowed",
        "details": {"method": "deleteMessage", "action": "Delete_message"},
    }
    status, body = await api.post(
        "chat.delete", "rcmod.bot", roomId=api.seed.rid("general"), msgId=message["_id"]
    )
    fixture = json.loads((FIXTURES / "rest_chat_delete_response.json").read_text())
    assert (
        status == 200 and set(body) == set(fixture) and isinstance(body["ts"], str) and body["ts"].isdigit()
    )


async def test_plain_failures_without_error_type(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, _clock = env
    message = sandbox.post_as("bob", "general", "x")
    status, body = await api.post(
        "chat.delete", "rcmod.bot", roomId=api.seed.rid("random"), msgId=message["_id"]
    )
    assert (status, body) == (
        400,
        {"success": False, "error": "The room id provided does not match where the message is from."},
    )


async def test_private_group_history_needs_membership(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, _clock = env
    sandbox.post_as("mod1", "staff", "staff talk")
    status, body = await api.get("groups.history", "alice", roomId=api.seed.rid("staff"))
    assert status == 400 and body["errorType"] == "error-room-not-found"
    status, body = await api.get("groups.history", "mod2", roomId=api.seed.rid("staff"))
    assert status == 200 and body["messages"][0]["msg"] == "staff talk"
    status, body = await api.get("rooms.info", "alice", roomId=api.seed.rid("staff"))
    assert status == 400 and body["error"] == "not-allowed"
    status, body = await api.get("channels.history", "alice", roomId=api.seed.rid("staff"))
    assert status == 400 and body["errorType"] == "error-room-not-found"


async def test_required_params_are_enforced(env: tuple[Sandbox, Api, FakeClock]) -> None:
    _sandbox, api, _clock = env
    status, body = await api.post("chat.update", "alice", roomId=api.seed.rid("general"))
    assert status == 400 and body["errorType"] == "invalid-params"
    status, body = await api.get("chat.syncMessages", "alice", roomId=api.seed.rid("general"))
    assert status == 400 and body["errorType"] == "error-param-required"
    long_text = "x" * 5001
    status, body = await api.post("chat.postMessage", "alice", roomId=api.seed.rid("general"), text=long_text)
    assert (status, body) == (400, {"success": False, "error": "error-message-size-exceeded"})
    status, body = await api.post("rooms.cleanHistory", "rcmod.bot", roomId=api.seed.rid("general"))
    assert (status, body) == (400, {"success": False, "error": 'Body parameter "latest" is required.'})
    status, body = await api.get("nope.endpoint", "alice")
    assert status == 404


async def test_history_pages_backwards(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, clock = env
    for i in range(5):
        clock.advance(1)
        sandbox.post_as("alice", "random", f"m{i}")
    clock.advance(1)
    status, body = await api.get("channels.history", "bob", roomId=api.seed.rid("random"), count=2)
    assert status == 200 and [m["msg"] for m in body["messages"]] == ["m4", "m3"]
    oldest = body["messages"][-1]["ts"]
    _status, body = await api.get(
        "channels.history", "bob", roomId=api.seed.rid("random"), count=2, latest=oldest
    )
    assert [m["msg"] for m in body["messages"]] == ["m2", "m1"]


async def test_sync_messages_shape(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, clock = env
    since = "2025-01-01T00:00:00.000Z"
    gone = sandbox.post_as("bob", "general", "gone")
    clock.advance(1)
    sandbox.delete_as("bob", gone["_id"])
    kept = sandbox.post_as("bob", "general", "kept")
    status, body = await api.get(
        "chat.syncMessages", "alice", roomId=api.seed.rid("general"), lastUpdate=since
    )
    assert status == 200 and set(body) == {"result", "success"}
    assert [m["_id"] for m in body["result"]["updated"]] == [kept["_id"]]
    assert body["result"]["deleted"] == [
        {"_id": gone["_id"], "_deletedAt": body["result"]["deleted"][0]["_deletedAt"]}
    ]


async def test_rest_rate_limit_uses_injected_clock() -> None:
    clock = FakeClock()
    limits = RateLimits(rest_calls=3, rest_window=5)
    async with running(clock, limits) as (_sandbox, seed), aiohttp.ClientSession() as session:
        api = Api(session, seed)
        url = seed.url + "/api/v1/me"
        for remaining in (2, 1, 0):
            async with session.get(url, headers=seed.headers("alice")) as resp:
                assert resp.status == 200
                assert resp.headers["X-RateLimit-Remaining"] == str(remaining)
        async with session.get(url, headers=seed.headers("alice")) as resp:
            assert resp.status == 429
            assert int(resp.headers["X-RateLimit-Reset"]) == int((clock() + 5) * 1000)
            body = await resp.json()
            assert body["errorType"] == "error-too-many-requests"
        # Another route and the bot (api-bypass-rate-limit) are not limited.
        assert (await api.get("rooms.get", "alice"))[0] == 200
        for _ in range(5):
            async with session.get(url, headers=seed.headers("rcmod.bot")) as resp:
                assert resp.status == 200 and "X-RateLimit-Limit" not in resp.headers
        clock.advance(5)
        async with session.get(url, headers=seed.headers("alice")) as resp:
            assert resp.status == 200


async def test_fail_next_429_and_500_html(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, clock = env
    sandbox.fail_next("chat.postMessage", 429)
    sandbox.fail_next("rooms.info", 500, "<html>oops</html>", "text/html", times=2)
    body = {"roomId": api.seed.rid("general"), "text": "hi"}
    headers = api.seed.headers("rcmod.bot")
    async with api.session.post(
        api.seed.url + "/api/v1/chat.postMessage", json=body, headers=headers
    ) as resp:
        assert resp.status == 429
        reset = int(resp.headers["X-RateLimit-Reset"])
        assert reset > clock() * 1000  # epoch milliseconds, not seconds
        assert (await resp.json())["errorType"] == "error-too-many-requests"
    for _ in range(2):
        async with api.session.get(
            api.seed.url + "/api/v1/rooms.info", params={"roomId": api.seed.rid("general")}, headers=headers
        ) as resp:
            assert resp.status == 500 and resp.content_type == "text/html"
            assert await resp.text() == "<html>oops</html>"
    assert (await api.post("chat.postMessage", "rcmod.bot", **body))[0] == 200
    assert (await api.get("rooms.info", "rcmod.bot", roomId=api.seed.rid("general")))[0] == 200
    sandbox.fail_next("me", 429, retry_after=60)
    async with api.session.get(api.seed.url + "/api/v1/me", headers=headers) as resp:
        assert resp.status == 429 and int(resp.headers["X-RateLimit-Reset"]) == int((clock() + 60) * 1000)
        assert "wait 60 seconds" in (await resp.json())["error"]


async def test_restart_keeps_state() -> None:
    async with running() as (sandbox, seed), aiohttp.ClientSession() as session:
        api = Api(session, seed)
        message = sandbox.post_as("alice", "general", "survives")
        await sandbox.restart()
        assert sandbox.url == seed.url
        status, body = await api.get("chat.getMessage", "bob", msgId=message["_id"])
        assert status == 200 and body["message"]["msg"] == "survives"


async def test_moderation_endpoints(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, _clock = env
    message = sandbox.post_as("bob", "general", "offensive")
    status, body = await api.post("chat.reportMessage", "alice", messageId=message["_id"], description="rude")
    assert (status, body) == (200, {"success": True})
    status, body = await api.get("moderation.reportsByUsers", "alice")
    assert status == 403 and "error-unauthorized" in body["error"]
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot")
    assert status == 200 and body["reports"][0]["userId"] == api.seed.uid("bob")
    status, body = await api.post(
        "moderation.reportUser", "alice", userId=api.seed.uid("bob"), description="spam"
    )
    assert status == 200
    status, body = await api.post("moderation.dismissReports", "rcmod.bot", userId=api.seed.uid("bob"))
    assert status == 200
    status, body = await api.post("moderation.dismissReports", "rcmod.bot", userId=api.seed.uid("bob"))
    assert (status, body) == (400, {"success": False, "error": "no-reports-found"})


async def test_room_administration(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sandbox, api, _clock = env
    rid = api.seed.rid("random")
    status, body = await api.post("channels.setAnnouncement", "alice", roomId=rid, announcement="x")
    assert status == 400 and body["errorType"] == "error-action-not-allowed"
    status, body = await api.post("channels.setAnnouncement", "rcmod.bot", roomId=rid, announcement="Be kind")
    assert (status, body) == (200, {"announcement": "Be kind", "success": True})
    status, body = await api.get("rooms.info", "alice", roomId=rid)
    assert body["room"]["announcement"] == "Be kind"
    status, body = await api.get("channels.history", "alice", roomId=rid, count=1)
    assert body["messages"][0]["t"] == "room_changed_announcement"
    status, body = await api.post(
        "channels.addModerator", "rcmod.bot", roomId=rid, userId=api.seed.uid("carol")
    )
    assert status == 200
    status, body = await api.get("channels.roles", "alice", roomId=rid)
    assert {r["u"]["username"] for r in body["roles"] if "moderator" in r["roles"]} == {
        "mod1",
        "mod2",
        "carol",
    }
    status, body = await api.post(
        "users.setActiveStatus", "rcmod.bot", userId=api.seed.uid("carol"), activeStatus=False
    )
    assert (status, body) == (403, {"success": False, "error": "unauthorized"})
    status, body = await api.post(
        "users.setActiveStatus", "admin", userId=api.seed.uid("carol"), activeStatus=False
    )
    assert body["user"] == {"_id": api.seed.uid("carol"), "active": False}
    assert sandbox.workspace.users[api.seed.uid("carol")].active is False


async def test_serve_prints_one_json_line_then_serves() -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve(0, out))
    try:
        assert await until(lambda: out.getvalue().endswith("\n"), within=1.0)
        lines = out.getvalue().splitlines()
        assert len(lines) == 1
        info = json.loads(lines[0])
        assert info["url"].startswith("http://127.0.0.1:")
        assert {u["username"] for u in info["users"]} >= {"admin", "rcmod.bot"}
        seed = Seed(info)
        async with (
            aiohttp.ClientSession() as session,
            session.get(seed.url + "/api/v1/me", headers=seed.headers("rcmod.bot")) as resp,
        ):
            assert (await resp.json())["username"] == "rcmod.bot"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_sandbox_imports_nothing_else_from_the_bot() -> None:
    """The sandbox is a separate room of the architecture: only bot.sandbox.* (or bot.models)."""
    package = Path(__file__).resolve().parents[2] / "bot" / "sandbox"
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "bot" or name.startswith("bot."):
                    assert name.startswith("bot.sandbox") or name == "bot.models", f"{source.name}: {name}"


async def test_unknown_body_keys_are_rejected_like_the_servers_validators(
    env: tuple[Sandbox, Api, FakeClock],
) -> None:
    """The spec cannot catch a misspelt field; Rocket.Chat's own ajv validators do."""
    _sandbox, api, _clock = env
    status, body = await api.post("chat.postMessage", "alice", roomId=api.seed.rid("general"), txt="typo")
    assert (status, body) == (
        400,
        {
            "success": False,
            "error": "must NOT have additional properties [invalid-params]",
            "errorType": "invalid-params",
        },
    )
