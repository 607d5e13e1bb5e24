"""Lists stay complete when an administrator lowers ``API_Upper_Count_Limit`` below the bot's page
size (getPaginationItems clamps ``count`` to it silently): every walk pages on ``total``, or,
where a route gives none (the history routes), until an empty page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.models import Room
from bot.rest import RestClient
from bot.rest.history import walk_room
from bot.sandbox import Sandbox

LIMIT = 7


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox whose administrator lowered API_Upper_Count_Limit (tests/conftest.py's ``rest``
    logs in to this one)."""
    sb = Sandbox()
    sb.workspace.set_setting("API_Upper_Count_Limit", LIMIT)
    async with sb:
        yield sb


def uid(sb: Sandbox, username: str) -> str:
    user = sb.workspace.user_by_username(username)
    assert user is not None
    return user.id


async def get(sb: Sandbox, route: str, **params: Any) -> dict[str, Any]:
    bot = next(u for u in sb.seed_info()["users"] if u["username"] == "rcmod.bot")
    headers = {"X-User-Id": bot["id"], "X-Auth-Token": bot["token"]}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sb.url}/api/v1/{route}", params=params, headers=headers) as resp,
    ):
        assert resp.status == 200
        return dict(await resp.json())


async def test_the_sandbox_clamps_count_as_get_pagination_items(sandbox: Sandbox) -> None:
    for i in range(10):
        sandbox.create_user(f"member{i}")
    everyone = len(sandbox.workspace.users)
    asked = await get(sandbox, "users.list", count="100")
    assert asked["count"] == LIMIT and len(asked["users"]) == LIMIT and asked["total"] == everyone
    assert (await get(sandbox, "users.list"))["count"] == LIMIT  # the default 50, clamped too
    assert (await get(sandbox, "users.list", count="0"))["count"] == everyone  # infinite count allowed
    sandbox.workspace.set_setting("API_Allow_Infinite_Count", False)
    assert (await get(sandbox, "users.list", count="0"))["count"] == everyone  # 0 → the default 50
    for i in range(10):
        sandbox.post_as("alice", "general", f"hello {i}")
    general = sandbox.workspace.room_by_id_or_name(name="general")
    assert general is not None
    history = await get(sandbox, "channels.history", roomId=general["_id"], count="100")
    assert len(history["messages"]) == LIMIT


async def test_users_and_roles_are_complete(sandbox: Sandbox, rest: RestClient) -> None:
    for i in range(12):
        sandbox.create_user(f"member{i}", roles=("user", "admin") if i == 11 else ("user",))
    users = await rest.all_users()
    assert len(users) == len(sandbox.workspace.users) > LIMIT
    assert sorted(await rest.users_with_role("admin")) == ["admin", "member11"]


async def test_channels_are_complete(sandbox: Sandbox, rest: RestClient) -> None:
    ws = sandbox.workspace
    admin = ws.user_by_username("admin")
    for i in range(10):
        ws.create_room("c", f"topic-{i:02d}", admin, [uid(sandbox, "admin")])
    names = {c["name"] for c in await rest.public_channels()}
    assert {f"topic-{i:02d}" for i in range(10)} | {"general", "random"} <= names


async def test_reports_and_pins_are_complete(sandbox: Sandbox, rest: RestClient) -> None:
    ws = sandbox.workspace
    reporter = uid(sandbox, "alice")
    mids = []
    for i in range(10):
        sandbox.create_user(f"poster{i}")
        mid = str(sandbox.post_as(f"poster{i}", "general", f"post {i}")["_id"])
        ws.report_message(reporter, mid, "not nice")
        ws.pin_message(uid(sandbox, "admin"), mid)
        mids.append(mid)
    reported = {r["username"] for r in await rest.reports_by_users()}
    assert reported == {f"poster{i}" for i in range(10)}
    general = ws.room_by_id_or_name(name="general")
    assert general is not None
    assert await rest.pinned_message_ids(general["_id"]) >= set(mids)


async def test_history_walks_are_complete(sandbox: Sandbox, rest: RestClient) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    posted = {str(sandbox.post_as("bob", "random", f"message {i}")["_id"]) for i in range(20)}
    random = sandbox.workspace.room_by_id_or_name(name="random")
    assert random is not None
    room = Room(random["_id"], "random", "c")
    walked = [m.id async for m in walk_room(rest, room, oldest=None, latest=None)]
    assert posted <= set(walked) and len(walked) == len(set(walked))
    caught_up = [m.id async for m in rest.history(random["_id"], "c", oldest=start)]
    assert posted <= set(caught_up)
