"""A workspace an administrator can drive: the REST routes a trial admin's client calls.

Rooms (channels.create / .info, groups.create / .info / .list, dm.list / im.list), settings by id
(settings/:_id GET and POST), admin edits of other accounts (users.update) and one subscription
(subscriptions.getOne), each with the server's permissions, answers and errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.ops.checks import SLASH_SETTING, Status, setting_checks
from bot.sandbox import Sandbox
from tests.sandbox.test_sandbox_support import FakeClock, Seed, running

UNAUTHORIZED = {
    "success": False,
    "error": "User does not have the permissions required for this action [error-unauthorized]",
}


class Client:
    def __init__(self, session: aiohttp.ClientSession, seed: Seed) -> None:
        self.session = session
        self.seed = seed

    async def get(self, route: str, who: str, **params: str) -> tuple[int, Any]:
        async with self.session.get(
            f"{self.seed.url}/api/v1/{route}", params=params, headers=self.seed.headers(who)
        ) as resp:
            return resp.status, await resp.json()

    async def post(
        self, route: str, who: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        send = {**self.seed.headers(who), **(headers or {})}
        async with self.session.post(f"{self.seed.url}/api/v1/{route}", json=body, headers=send) as resp:
            return resp.status, await resp.json()

    def password_2fa(self, who: str) -> dict[str, str]:
        """The password fallback of a twoFactorRequired route: the SHA-256 of the password."""
        digest = hashlib.sha256(self.seed.users[who]["password"].encode()).hexdigest()
        return {"x-2fa-code": digest, "x-2fa-method": "password"}


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Client, FakeClock]]:
    clock = FakeClock()
    async with running(clock) as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, Client(session, seed), clock


# ---------------------------------------------------------------- channels


async def test_channels_create_makes_a_public_room_owned_by_the_caller(
    env: tuple[Sandbox, Client, FakeClock],
) -> None:
    sandbox, client, _clock = env
    ws = sandbox.workspace
    alice, bob = client.seed.uid("alice"), client.seed.uid("bob")
    status, body = await client.post(
        "channels.create", "alice", {"name": "ops", "members": ["bob", "nobody"]}
    )
    assert status == 200 and body["success"] is True
    channel = body["channel"]
    assert (channel["name"], channel["fname"], channel["t"], channel["ro"]) == ("ops", "ops", "c", False)
    assert channel["u"] == {"_id": alice, "username": "alice", "name": "Alice"}
    assert channel["usersCount"] == 2 and channel["customFields"] == {} and "joinCode" not in channel
    rid = channel["_id"]
    assert ws.subscriptions[(rid, alice)]["roles"] == ["owner"]
    assert "roles" not in ws.subscriptions[(rid, bob)]
    # createRoom inserts subscriptions only: no join messages in the new room.
    assert [m for m in ws.messages.values() if m["rid"] == rid] == []
    status, body = await client.get("channels.info", "carol", roomName="ops")
    assert status == 200 and body["channel"]["_id"] == rid


async def test_channels_create_options_and_refusals(env: tuple[Sandbox, Client, FakeClock]) -> None:
    sandbox, client, _clock = env
    ws = sandbox.workspace
    admin, alice = client.seed.uid("admin"), client.seed.uid("alice")
    status, body = await client.post(
        "channels.create",
        "admin",
        {"name": "announcements", "members": ["alice"], "readOnly": True, "excludeSelf": True},
    )
    assert status == 200 and body["channel"]["ro"] is True and body["channel"]["u"]["_id"] == admin
    rid = body["channel"]["_id"]
    assert (rid, admin) not in ws.subscriptions and (rid, alice) in ws.subscriptions
    assert await client.post("channels.create", "alice", {}) == (
        400,
        {"success": False, "error": 'Param "name" is required'},
    )
    status, body = await client.post("channels.create", "alice", {"name": "x", "members": "bob"})
    assert (status, body["error"]) == (400, 'Param "members" must be an array if provided')
    status, body = await client.post("channels.create", "alice", {"name": "general"})
    assert (status, body["errorType"]) == (400, "error-duplicate-channel-name")
    assert body["error"] == "A channel with name 'general' exists [error-duplicate-channel-name]"
    status, body = await client.post("channels.create", "alice", {"name": "#ops"})
    assert (status, body["errorType"]) == (400, "error-invalid-room-name")
    status, body = await client.post("channels.create", "alice", {"name": "t", "extraData": {"teamId": "T1"}})
    assert (status, body["errorType"]) == (400, "error-team-not-found")
    # Without create-c the route's validator answers 403 "unauthorized".
    status, _ = await client.post(
        "permissions.update", "admin", {"permissions": [{"_id": "create-c", "roles": ["admin"]}]}
    )
    assert status == 200
    assert await client.post("channels.create", "alice", {"name": "later"}) == (
        403,
        {"success": False, "error": "unauthorized"},
    )


async def test_channels_info_shows_any_public_channel_and_nothing_else(
    env: tuple[Sandbox, Client, FakeClock],
) -> None:
    _sandbox, client, _clock = env
    status, body = await client.get("channels.info", "alice", roomId="GENERAL")
    assert status == 200 and body["channel"]["name"] == "general" and body["success"] is True
    not_a_channel = 'The required "roomId" or "roomName" param provided does not match any channel'
    for params in ({"roomName": "staff"}, {"roomId": client.seed.rid("staff")}, {}, {"roomName": "nowhere"}):
        status, body = await client.get("channels.info", "mod1", **params)
        assert (status, body["errorType"]) == (400, "error-room-not-found"), params
        assert body["error"] == f"{not_a_channel} [error-room-not-found]"


# ---------------------------------------------------------------- groups


async def test_groups_create_info_and_list(env: tuple[Sandbox, Client, FakeClock]) -> None:
    sandbox, client, _clock = env
    alice, bob = client.seed.uid("alice"), client.seed.uid("bob")
    status, body = await client.post("groups.create", "alice", {"name": "secret", "members": ["bob"]})
    assert status == 200
    group = body["group"]
    assert (group["t"], group["name"], group["u"]["_id"], group["usersCount"]) == ("p", "secret", alice, 2)
    assert sandbox.workspace.subscriptions[(group["_id"], alice)]["roles"] == ["owner"]
    status, body = await client.get("groups.info", "bob", roomName="secret")
    assert status == 200 and body["group"]["_id"] == group["_id"]
    status, body = await client.get("groups.info", "carol", roomId=group["_id"])
    assert (status, body["errorType"]) == (400, "error-room-not-found")
    status, body = await client.get("groups.list", "bob")
    assert status == 200 and [g["name"] for g in body["groups"]] == ["secret"]
    assert (body["count"], body["offset"], body["total"]) == (1, 0, 1)
    status, body = await client.get("groups.list", "mod1")
    assert [g["name"] for g in body["groups"]] == ["staff"]
    # No groups at all is an empty page, not a 404 (7.x).
    assert await client.get("groups.list", "carol") == (
        200,
        {"groups": [], "count": 0, "offset": 0, "total": 0, "success": True},
    )
    assert bob in {u for (rid, u) in sandbox.workspace.subscriptions if rid == group["_id"]}


async def test_groups_create_refusals(env: tuple[Sandbox, Client, FakeClock]) -> None:
    _sandbox, client, _clock = env
    assert await client.post("groups.create", "alice", {"members": []}) == (
        400,
        {"success": False, "error": 'Body param "name" is required'},
    )
    status, body = await client.post("groups.create", "alice", {"name": "g", "members": "bob"})
    assert (status, body["error"]) == (400, 'Body param "members" must be an array if provided')
    status, body = await client.post("groups.create", "alice", {"name": "staff"})
    assert (status, body["errorType"]) == (400, "error-duplicate-channel-name")
    status, _ = await client.post(
        "permissions.update", "admin", {"permissions": [{"_id": "create-p", "roles": ["admin"]}]}
    )
    assert status == 200
    status, body = await client.post("groups.create", "alice", {"name": "g"})
    assert (status, body["errorType"], body["details"]) == (
        400,
        "error-not-allowed",
        {"method": "createPrivateGroup"},
    )


# ---------------------------------------------------------------- direct rooms and subscriptions


@pytest.mark.parametrize("route", ["dm.list", "im.list"])
async def test_dm_list_shows_the_callers_direct_rooms(
    env: tuple[Sandbox, Client, FakeClock], route: str
) -> None:
    sandbox, client, _clock = env
    sandbox.dm_as("alice", "bob", "hi")
    sandbox.dm_as("alice", "carol", "hello")
    status, body = await client.get(route, "alice")
    assert status == 200 and (body["count"], body["total"], body["offset"]) == (2, 2, 0)
    rids = {room["_id"] for room in body["ims"]}
    alice, bob, carol = (client.seed.uid(n) for n in ("alice", "bob", "carol"))
    assert rids == {"".join(sorted([alice, bob])), "".join(sorted([alice, carol]))}
    assert all(room["t"] == "d" and room["lastMessage"]["msg"] for room in body["ims"])
    status, body = await client.get(route, "bob", count="1")
    assert [room["usernames"] for room in body["ims"]] == [["alice", "bob"]]
    assert (await client.get(route, "mod2"))[1]["ims"] == []


async def test_subscriptions_get_one(env: tuple[Sandbox, Client, FakeClock]) -> None:
    _sandbox, client, _clock = env
    status, body = await client.get("subscriptions.getOne", "alice", roomId="GENERAL")
    assert status == 200 and body["subscription"]["rid"] == "GENERAL"
    assert body["subscription"]["u"]["_id"] == client.seed.uid("alice")
    assert await client.get("subscriptions.getOne", "alice", roomId=client.seed.rid("staff")) == (
        200,
        {"subscription": None, "success": True},
    )
    status, body = await client.get("subscriptions.getOne", "alice")
    assert (status, body["errorType"]) == (400, "invalid-params")


# ---------------------------------------------------------------- settings/:_id


async def test_settings_by_id_read_and_write(env: tuple[Sandbox, Client, FakeClock]) -> None:
    sandbox, client, _clock = env
    assert await client.get(f"settings/{SLASH_SETTING}", "admin") == (
        200,
        {"_id": SLASH_SETTING, "value": False, "success": True},
    )
    # Private settings too: view-privileged-setting sees everything that is not hidden.
    status, body = await client.get("settings/API_Enable_Rate_Limiter_Limit_Calls_Default", "admin")
    assert (status, body["value"]) == (200, 10)
    assert await client.get(f"settings/{SLASH_SETTING}", "alice") == (403, UNAUTHORIZED)
    assert await client.get("settings/No_Such_Setting", "admin") == (400, {"success": False})
    assert await client.post(f"settings/{SLASH_SETTING}", "alice", {"value": True}) == (403, UNAUTHORIZED)
    assert await client.post("settings/No_Such_Setting", "admin", {"value": True}) == (
        400,
        {"success": False},
    )
    assert await client.post(f"settings/{SLASH_SETTING}", "admin", {}) == (400, {"success": False})
    assert sandbox.workspace.setting(SLASH_SETTING) is False
    # One segment only: a longer path is no route at all.
    status, _ = await client.get(f"settings/{SLASH_SETTING}/extra", "admin")
    assert status == 404


async def test_a_trial_admin_switches_on_what_doctor_asks_for(env: tuple[Sandbox, Client, FakeClock]) -> None:
    """`rcmod doctor` (commands typed in rooms) fails Message_AllowUnrecognizedSlashCommand while it
    is off; the admin turns it on with one real REST call (2FA by the password fallback) and the
    check passes."""
    _sandbox, client, clock = env

    async def doctor_says() -> Status:
        status, body = await client.get("settings.public", "alice", _id=SLASH_SETTING)
        assert status == 200
        values = {s["_id"]: s["value"] for s in body["settings"]}
        checks = setting_checks(values, (), commands="room")
        return next(c.status for c in checks if SLASH_SETTING in c.name)

    assert await doctor_says() == Status.FAIL
    clock.advance(3600)  # past Accounts_TwoFactorAuthentication_RememberFor: the 2FA check applies
    status, body = await client.post(f"settings/{SLASH_SETTING}", "admin", {"value": True})
    assert (status, body["errorType"]) == (400, "totp-required")
    assert await client.post(
        f"settings/{SLASH_SETTING}", "admin", {"value": True}, headers=client.password_2fa("admin")
    ) == (200, {"success": True})
    assert await doctor_says() == Status.OK


# ---------------------------------------------------------------- users.update


async def test_users_update_by_an_admin(env: tuple[Sandbox, Client, FakeClock]) -> None:
    sandbox, client, _clock = env
    ws = sandbox.workspace
    bob = client.seed.uid("bob")
    posted = sandbox.post_as("bob", "general", "before the rename")
    status, body = await client.post(
        "users.update",
        "admin",
        {
            "userId": bob,
            "data": {"name": "Robert", "username": "rob", "roles": ["user", "bot"], "email": "rob@x.invalid"},
        },
    )
    assert status == 200 and body["success"] is True
    user = body["user"]
    assert (user["_id"], user["name"], user["username"], user["roles"]) == (
        bob,
        "Robert",
        "rob",
        ["user", "bot"],
    )
    assert user["emails"][0]["address"] == "rob@x.invalid"
    assert ws.messages[posted["_id"]]["u"]["username"] == "rob"
    assert (await client.get("users.info", "admin", userId=bob))[1]["user"]["name"] == "Robert"
    # Deactivating logs the account out everywhere: its personal access token stops working.
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"active": False}})
    assert status == 200 and body["user"]["active"] is False
    status, _ = await client.get("me", "bob")
    assert status == 401
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"active": True}})
    assert status == 200 and body["user"]["active"] is True


async def test_users_update_refusals(env: tuple[Sandbox, Client, FakeClock]) -> None:
    _sandbox, client, clock = env
    carol, bob = client.seed.uid("carol"), client.seed.uid("bob")
    status, body = await client.post("users.update", "alice", {"userId": carol, "data": {"name": "C"}})
    assert (status, body["error"]) == (400, "Editing user is not allowed [error-action-not-allowed]")
    assert body["details"] == {"method": "insertOrUpdateUser", "action": "Editing_user"}
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"roles": ["wizard"]}})
    assert (status, body["error"]) == (
        400,
        "The field Roles consist invalid role id [error-action-not-allowed]",
    )
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"username": "alice"}})
    assert (status, body["errorType"]) == (400, "error-could-not-save-identity")
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"email": "nope"}})
    assert (status, body["errorType"]) == (400, "error-invalid-email")
    taken = "alice@sandbox.invalid"
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"email": taken}})
    assert (status, body["errorType"]) == (400, "error-field-unavailable")
    status, body = await client.post("users.update", "admin", {"userId": bob})
    assert (status, body["error"]) == (400, "must have required property 'data' [invalid-params]")
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"shoeSize": 42}})
    assert (status, body["errorType"]) == (400, "invalid-params")
    # A twoFactorRequired route: past the remember window the password fallback is asked for.
    clock.advance(3600)
    status, body = await client.post("users.update", "admin", {"userId": bob, "data": {"name": "B"}})
    assert (status, body["errorType"]) == (400, "totp-required")
    status, body = await client.post(
        "users.update", "admin", {"userId": bob, "data": {"name": "B"}}, headers=client.password_2fa("admin")
    )
    assert status == 200 and body["user"]["name"] == "B"
