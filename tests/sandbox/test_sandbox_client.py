"""The real REST client of the design card (rocketchat_API, synchronous) against the sandbox.

The client blocks, so every call runs in a worker thread while the sandbox serves on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from rocketchat_API.APIExceptions.RocketExceptions import (
    RocketApiException,
    RocketAuthenticationException,
    RocketBadStatusCodeException,
)
from rocketchat_API.rocketchat import RocketChat

from bot.sandbox import Sandbox
from tests.sandbox.test_sandbox_support import FakeClock, Seed, running

T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Seed]]:
    async with running(FakeClock()) as pair:
        yield pair


def client(seed: Seed, username: str) -> RocketChat:
    user = seed.users[username]
    return RocketChat(user_id=user["id"], auth_token=user["token"], server_url=seed.url)


def error_type(exc: RocketApiException) -> str:
    return str(exc.error_type or exc.error)


async def test_password_login_and_me(env: tuple[Sandbox, Seed]) -> None:
    _sandbox, seed = env
    alice = seed.users["alice"]
    rc = await run(RocketChat, "alice", alice["password"], server_url=seed.url)
    me = await run(rc.me)
    assert me["username"] == "alice" and me["success"] is True
    with pytest.raises(RocketAuthenticationException):
        await run(RocketChat, "alice", "wrong", server_url=seed.url)


async def test_post_edit_pin_report_delete_as_bot(env: tuple[Sandbox, Seed]) -> None:
    sandbox, seed = env
    bot = client(seed, "rcmod.bot")
    general = seed.rid("general")
    posted = await run(bot.chat_post_message, "policy: be kind", room_id=general)
    mid = posted["message"]["_id"]
    assert posted["channel"] == "general"
    updated = await run(bot.chat_update, general, mid, "policy: be kind!")
    assert updated["message"]["editedBy"]["username"] == "rcmod.bot"
    pinned = await run(bot.chat_pin_message, mid)
    assert pinned["message"]["t"] == "message_pinned"
    pins = await run(lambda: list(bot.chat_get_pinned_messages(general)))
    assert [m["_id"] for m in pins] == [mid]
    spam = sandbox.post_as("bob", "general", "buy now")
    alice = client(seed, "alice")
    assert await run(alice.chat_report_message, spam["_id"], "spam") == {"success": True}
    reports = await run(lambda: list(bot.moderation_reports_by_users()))
    assert reports[0]["username"] == "bob"
    deleted = await run(bot.chat_delete, general, spam["_id"])
    assert deleted["_id"] == spam["_id"] and isinstance(deleted["ts"], str)
    got = await run(bot.chat_get_message, mid)
    assert got["message"]["pinned"] is True


async def test_permission_failures_raise_with_error_type(env: tuple[Sandbox, Seed]) -> None:
    sandbox, seed = env
    bobs = sandbox.post_as("bob", "general", "bob's words")
    alice = client(seed, "alice")
    with pytest.raises(RocketApiException) as err:
        await run(alice.chat_delete, seed.rid("general"), bobs["_id"])
    assert err.value.status_code == 400 and error_type(err.value) == "error-action-not-allowed"
    with pytest.raises(RocketApiException) as err:
        await run(lambda: list(alice.groups_history(seed.rid("staff"))))
    assert error_type(err.value) == "error-room-not-found"
    with pytest.raises(RocketApiException) as err:
        await run(
            alice.rooms_clean_history,
            seed.rid("general"),
            "2100-01-01T00:00:00.000Z",
            "2000-01-01T00:00:00.000Z",
        )
    assert error_type(err.value) == "error-not-allowed"


async def test_history_announcements_moderators_and_dm(env: tuple[Sandbox, Seed]) -> None:
    sandbox, seed = env
    bot = client(seed, "rcmod.bot")
    sandbox.post_as("alice", "random", "hello random")
    history = await run(lambda: list(bot.channels_history(seed.rid("random"), count=5)))
    assert history[0]["msg"] == "hello random"
    staff = await run(lambda: list(bot.groups_history(seed.rid("staff"))))
    assert all(m["rid"] == seed.rid("staff") for m in staff)
    assert (await run(bot.channels_set_announcement, seed.rid("random"), "Read the rules"))["success"]
    assert (await run(bot.groups_set_announcement, seed.rid("staff"), "Staff only"))["success"]
    assert (await run(bot.channels_add_moderator, seed.rid("random"), seed.uid("carol")))["success"]
    dm = await run(bot.dm_create, "alice")
    rid = dm["room"]["rid"]
    await run(bot.chat_post_message, "hi alice", room_id=rid)
    dm_history = await run(lambda: list(client(seed, "alice").dm_history(rid)))
    assert [m["msg"] for m in dm_history] == ["hi alice"]
    info = await run(bot.users_info, username="alice")
    assert info["user"]["_id"] == seed.uid("alice")
    settings = await run(bot.call_api_get, "settings.public", _id="Message_AllowPinning")
    assert settings["settings"] == [{"_id": "Message_AllowPinning", "value": True}]
    saved = await run(
        bot.call_api_post, "rooms.saveRoomSettings", rid=seed.rid("general"), roomAnnouncement="Hi"
    )
    assert saved == {"rid": seed.rid("general"), "success": True}


async def test_clean_history_and_moderation_console(env: tuple[Sandbox, Seed]) -> None:
    sandbox, seed = env
    bot = client(seed, "rcmod.bot")
    for i in range(3):
        sandbox.post_as("bob", "general", f"spam {i}")
    sandbox.post_as("alice", "general", "fine")
    cleaned = await run(
        bot.rooms_clean_history,
        seed.rid("general"),
        "2100-01-01T00:00:00.000Z",
        "2000-01-01T00:00:00.000Z",
        users=["bob"],
        ignoreThreads=True,
    )
    assert cleaned == {"_id": seed.rid("general"), "count": 3, "success": True}
    alice = client(seed, "alice")
    assert (await run(alice.moderation_report_user, seed.uid("bob"), "spammer"))["success"]
    message = sandbox.post_as("bob", "general", "again")
    await run(alice.chat_report_message, message["_id"], "again")
    assert (await run(bot.moderation_dismiss_reports, user_id=seed.uid("bob")))["success"]


async def test_unencoded_query_strings_reach_the_server_as_sent(env: tuple[Sandbox, Seed]) -> None:
    """rocketchat_API does not URL-encode GET parameters: '#general' becomes a URL fragment."""
    _sandbox, seed = env
    bot = client(seed, "rcmod.bot")
    with pytest.raises(RocketApiException) as err:
        await run(bot.call_api_get, "channels.history", roomName="#general")
    assert error_type(err.value) == "error-room-param-not-provided"
    by_name = await run(bot.call_api_get, "channels.history", roomName="general")
    assert by_name["success"] is True


async def test_rate_limit_and_injected_failures_surface_as_exceptions(env: tuple[Sandbox, Seed]) -> None:
    sandbox, seed = env
    alice = client(seed, "alice")
    sandbox.fail_next("me", 429)
    with pytest.raises(RocketApiException) as err:
        await run(alice.me)
    assert err.value.status_code == 429
    sandbox.fail_next("rooms.info", 500, "<html>oops</html>", "text/html")
    with pytest.raises(RocketBadStatusCodeException):
        await run(alice.rooms_info, seed.rid("general"))
