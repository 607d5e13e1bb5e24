"""Room bans in the sandbox (rooms.banUser, rooms.unbanUser, rooms.bannedUsers; Rocket.Chat 8.3+),
through plain HTTP so the exact bodies show.

The facts come from the server's own end-to-end tests of bans and invitations and from
banUserFromRoomMethod / executeUnbanUserFromRoom: a ban takes the user out of the room (their
subscription list no longer has it), they cannot join again or read the room's info, an
invitation does not lift it, banning twice and unbanning someone not banned are refused, and an
unban leaves the user outside the room, free to join again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox
from bot.sandbox.workspace import Doc

BANS_RELEASE = "8.3.0"


@pytest.fixture
async def bans() -> AsyncIterator[Sandbox]:
    async with Sandbox(version=BANS_RELEASE) as sb:
        yield sb


def headers(sb: Sandbox, username: str) -> dict[str, str]:
    user = next(u for u in sb.seed_info()["users"] if u["username"] == username)
    return {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}


async def post(sb: Sandbox, username: str, route: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sb.url}/api/v1/{route}", json=body, headers=headers(sb, username)) as answer,
    ):
        return answer.status, await answer.json()


async def get(sb: Sandbox, username: str, route: str, **query: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sb.url}/api/v1/{route}", params=query, headers=headers(sb, username)) as answer,
    ):
        return answer.status, await answer.json()


def room(sb: Sandbox, name: str) -> Doc:
    found = sb.workspace.room_by_id_or_name(name=name)
    assert found is not None
    return found


def uid(sb: Sandbox, username: str) -> str:
    user = sb.workspace.user_by_username(username)
    assert user is not None
    return user.id


def system(sb: Sandbox, rid: str, kind: str) -> list[Doc]:
    return [m for m in sb.workspace.messages.values() if m["rid"] == rid and m.get("t") == kind]


async def test_a_ban_takes_the_user_out_and_keeps_them_out(bans: Sandbox) -> None:
    random = room(bans, "random")
    members_before = random["usersCount"]
    bob = {"roomId": random["_id"], "userId": uid(bans, "bob")}
    status, body = await post(bans, "admin", "rooms.banUser", bob)
    assert (status, body) == (200, {"success": True})
    assert uid(bans, "bob") not in bans.workspace.members_of(random["_id"])
    assert random["usersCount"] == members_before - 1
    [banned] = system(bans, random["_id"], "user-banned")
    assert banned["msg"] == "bob" and banned["u"]["username"] == "admin"
    # The banned user's own view: the room is gone from their subscriptions ...
    status, subs = await get(bans, "bob", "subscriptions.get")
    assert status == 200 and random["_id"] not in [s["rid"] for s in subs["update"]]
    # ... they cannot join it again, nor read its info.
    status, body = await post(bans, "bob", "channels.join", {"roomId": random["_id"]})
    assert status == 400 and body["success"] is False
    status, body = await get(bans, "bob", "rooms.info", roomId=random["_id"])
    assert status == 400 and body["success"] is False
    # An invitation does not lift the ban.
    status, body = await post(bans, "admin", "channels.invite", bob)
    assert status == 400 and body["errorType"] == "error-user-is-banned"
    status, listed = await get(bans, "admin", "rooms.bannedUsers", roomId=random["_id"])
    assert status == 200
    assert listed["bannedUsers"] == [{"_id": uid(bans, "bob"), "username": "bob", "name": "Bob"}]
    assert (listed["count"], listed["offset"], listed["total"]) == (1, 0, 1)


async def test_an_unban_lets_the_user_join_again(bans: Sandbox) -> None:
    random = room(bans, "random")
    await post(bans, "mod1", "rooms.banUser", {"roomId": random["_id"], "username": "bob"})
    status, body = await post(bans, "mod1", "rooms.unbanUser", {"roomId": random["_id"], "username": "bob"})
    assert (status, body) == (200, {"success": True})
    [unbanned] = system(bans, random["_id"], "user-unbanned")
    assert unbanned["msg"] == "bob" and unbanned["u"]["username"] == "mod1"
    # Unbanned is not re-admitted: the user is outside until they join or are invited.
    assert uid(bans, "bob") not in bans.workspace.members_of(random["_id"])
    status, listed = await get(bans, "admin", "rooms.bannedUsers", roomId=random["_id"])
    assert listed["bannedUsers"] == [] and listed["total"] == 0
    status, _ = await post(bans, "bob", "channels.join", {"roomId": random["_id"]})
    assert status == 200
    assert uid(bans, "bob") in bans.workspace.members_of(random["_id"])


async def test_banning_twice_and_unbanning_nobody_are_refused(bans: Sandbox) -> None:
    rid = room(bans, "random")["_id"]
    target = {"roomId": rid, "userId": uid(bans, "carol")}
    assert (await post(bans, "admin", "rooms.banUser", target))[0] == 200
    status, body = await post(bans, "admin", "rooms.banUser", target)
    assert status == 400 and body["errorType"] == "error-user-already-banned"
    assert (await post(bans, "admin", "rooms.unbanUser", target))[0] == 200
    status, body = await post(bans, "admin", "rooms.unbanUser", target)
    assert status == 400 and body["errorType"] == "error-user-not-banned"


@pytest.mark.parametrize(
    ("caller", "body", "error_type"),
    [
        # No user named: the body validator refuses it.
        ("admin", {"roomId": "ROOM"}, "invalid-params"),
        # A member without ban-user (only admins, owners and moderators hold it by default).
        ("alice", {"roomId": "ROOM", "username": "bob"}, "error-not-allowed"),
        ("admin", {"roomId": "no-such-room", "username": "bob"}, "error-not-allowed"),
        # getUserFromParams runs before the method, so an unknown user is error-invalid-user.
        ("admin", {"roomId": "ROOM", "userId": "no-such-user"}, "error-invalid-user"),
        ("admin", {"roomId": "STAFF", "username": "carol"}, "error-user-not-in-room"),
        # general was created without an owner; random's only owner is admin.
        ("mod1", {"roomId": "ROOM", "username": "admin"}, "error-you-are-last-owner"),
    ],
)
async def test_refused_bans_change_nothing(
    bans: Sandbox, caller: str, body: dict[str, str], error_type: str
) -> None:
    ids = {"ROOM": room(bans, "random")["_id"], "STAFF": room(bans, "staff")["_id"]}
    sent = {k: ids.get(v, v) for k, v in body.items()}
    status, answer = await post(bans, caller, "rooms.banUser", sent)
    assert status == 400 and answer["success"] is False
    assert answer["errorType"] == error_type
    assert bans.workspace.banned == {}


async def test_servers_before_8_3_have_no_ban_routes() -> None:
    async with Sandbox(version="8.2.0") as old:
        rid = room(old, "random")["_id"]
        assert (await post(old, "admin", "rooms.banUser", {"roomId": rid, "username": "bob"}))[0] == 404
        assert (await post(old, "admin", "rooms.unbanUser", {"roomId": rid, "username": "bob"}))[0] == 404
        assert (await get(old, "admin", "rooms.bannedUsers", roomId=rid))[0] == 404
        # The permission itself is older than the routes: it is in every release's table.
        assert "ban-user" in old.workspace.permissions
