"""The sandbox against the server's source, for ledger lines no other test holds.

Each test states what a Rocket.Chat file does (the path is in the matching ``bot/sandbox/ledger.py``
line) and checks the sandbox does the same: answers, error codes and texts, who is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox
from tests.sandbox.test_sandbox_support import DDPClient, Seed, running


class Rest:
    def __init__(self, session: aiohttp.ClientSession, seed: Seed) -> None:
        self.session = session
        self.seed = seed

    async def get(self, route: str, who: str, /, **params: Any) -> tuple[int, Any]:
        url = f"{self.seed.url}/api/v1/{route}"
        async with self.session.get(url, params=params, headers=self.seed.headers(who)) as resp:
            return resp.status, await resp.json()

    async def post(self, route: str, who: str, /, **body: Any) -> tuple[int, Any]:
        url = f"{self.seed.url}/api/v1/{route}"
        async with self.session.post(url, json=body, headers=self.seed.headers(who)) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Seed, Rest]]:
    async with running() as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, seed, Rest(session, seed)


@asynccontextmanager
async def logged_in(seed: Seed, username: str) -> AsyncIterator[DDPClient]:
    async with DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users[username]["token"])
        yield ddp


# ---------------------------------------------------------------- REST


async def test_im_create_answers_like_dm_create(env: tuple[Sandbox, Seed, Rest]) -> None:
    """im.ts registers im.create and dm.create on one action: {room: {...room, _id: room.rid}}."""
    _sandbox, _seed, rest = env
    status, im = await rest.post("im.create", "alice", username="bob")
    assert status == 200 and im["success"] is True
    assert im["room"]["t"] == "d" and im["room"]["_id"] == im["room"]["rid"]
    status, dm = await rest.post("dm.create", "alice", username="bob")
    assert status == 200 and dm["room"]["_id"] == im["room"]["_id"]


async def test_rooms_info_without_a_room_param(env: tuple[Sandbox, Seed, Rest]) -> None:
    """rooms.ts findRoomByIdOrName: error-roomid-param-not-provided (lower-case id), unlike groups.ts."""
    _sandbox, _seed, rest = env
    status, body = await rest.get("rooms.info", "alice")
    assert (status, body) == (
        400,
        {
            "success": False,
            "error": 'The parameter "roomId" or "roomName" is required [error-roomid-param-not-provided]',
            "errorType": "error-roomid-param-not-provided",
        },
    )


async def test_subscriptions_get_with_a_bad_date(env: tuple[Sandbox, Seed, Rest]) -> None:
    """subscriptions.ts throws error-roomId-param-invalid and names the parameter lastUpdate."""
    _sandbox, _seed, rest = env
    status, body = await rest.get("subscriptions.get", "alice", updatedSince="not a date")
    assert status == 400 and body["errorType"] == "error-roomId-param-invalid"
    assert body["error"] == (
        'The "lastUpdate" query parameter must be a valid date. [error-roomId-param-invalid]'
    )
    status, body = await rest.get("subscriptions.get", "alice", updatedSince="2000-01-01T00:00:00.000Z")
    assert status == 200 and body["remove"] == [] and len(body["update"]) >= 1


async def test_permissions_list_all_with_a_bad_date(env: tuple[Sandbox, Seed, Rest]) -> None:
    """permissions.ts throws error-roomId-param-invalid for a bad updatedSince too."""
    _sandbox, _seed, rest = env
    status, body = await rest.get("permissions.listAll", "alice", updatedSince="yesterday-ish")
    assert status == 400 and body["errorType"] == "error-roomId-param-invalid"
    assert body["error"].startswith('The "updatedSince" query parameter must be a valid date.')


# ---------------------------------------------------------------- DDP methods


async def test_ddp_logout_forgets_the_user(env: tuple[Sandbox, Seed, Rest]) -> None:
    _sandbox, seed, _rest = env
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("logout")
        assert "error" not in reply and "result" not in reply
        reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": "still here?"})
        assert reply["error"]["error"] == "error-invalid-user"


async def test_ddp_update_message_edits_and_refuses_strangers(env: tuple[Sandbox, Seed, Rest]) -> None:
    """updateMessage: own message with Message_AllowEditing, else edit-message; the refusal is
    error-action-not-allowed 'Message editing not allowed' with action Message_editing."""
    sandbox, seed, _rest = env
    posted = sandbox.post_as("alice", "general", "helo")
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("updateMessage", {"_id": posted["_id"], "rid": posted["rid"], "msg": "hello"})
        assert "error" not in reply
    assert sandbox.workspace.messages[posted["_id"]]["msg"] == "hello"
    async with logged_in(seed, "bob") as ddp:
        reply = await ddp.call(
            "updateMessage", {"_id": posted["_id"], "rid": posted["rid"], "msg": "mine now"}
        )
        assert reply["error"]["error"] == "error-action-not-allowed"
        assert reply["error"]["reason"] == "Message editing not allowed"
        assert reply["error"]["details"] == {"method": "updateMessage", "action": "Message_editing"}
    assert sandbox.workspace.messages[posted["_id"]]["msg"] == "hello"


async def test_ddp_update_message_replaces_attachments_and_only_those(
    env: tuple[Sandbox, Seed, Rest],
) -> None:
    """executeUpdateMessage lets tshow, alias, attachments, avatar, emoji and msg change (the
    attachments replaced whole); any other key that differs is error-invalid-update-key, and the
    same text is no edit at all."""
    sandbox, seed, _rest = env
    buttons = [{"actions": [{"type": "button", "text": "Go", "msg": "go"}]}]
    posted = sandbox.post_as("alice", "general", "pick one")
    sandbox.workspace.messages[posted["_id"]]["attachments"] = buttons
    async with logged_in(seed, "alice") as ddp:
        same = {"_id": posted["_id"], "rid": posted["rid"], "msg": "pick one", "attachments": []}
        assert "error" not in await ddp.call("updateMessage", same)
        assert sandbox.workspace.messages[posted["_id"]]["attachments"] == buttons  # same text: no edit
        moved = {"_id": posted["_id"], "rid": "elsewhere", "msg": "picked"}
        reply = await ddp.call("updateMessage", moved)
        assert reply["error"]["error"] == "error-invalid-update-key"
        assert reply["error"]["reason"] == "Cannot update the message rid"
        edit = {"_id": posted["_id"], "rid": posted["rid"], "msg": "picked", "attachments": []}
        assert "error" not in await ddp.call("updateMessage", edit)
    stored = sandbox.workspace.messages[posted["_id"]]
    assert stored["msg"] == "picked" and stored["attachments"] == []


async def test_ddp_unpin_message_answers_true(env: tuple[Sandbox, Seed, Rest]) -> None:
    """unpinMessage returns true; someone not subscribed is told the message was not found."""
    sandbox, seed, _rest = env
    posted = sandbox.post_as("mod1", "staff", "rules")
    async with logged_in(seed, "rcmod.bot") as ddp:
        assert (await ddp.call("pinMessage", {"_id": posted["_id"]}))["result"]["t"] == "message_pinned"
        assert (await ddp.call("unpinMessage", {"_id": posted["_id"]}))["result"] is True
    assert not sandbox.workspace.messages[posted["_id"]].get("pinned")
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("unpinMessage", {"_id": posted["_id"]})
        assert reply["error"]["error"] == "error-invalid-message"
        assert reply["error"]["reason"] == "Message you are unpinning was not found"


async def test_ddp_set_reaction_toggles_and_an_unknown_message_is_not_allowed(
    env: tuple[Sandbox, Seed, Rest],
) -> None:
    """setReaction(reaction, messageId, shouldReact?) toggles when shouldReact is left out and
    resolves with no result; executeSetReaction answers an unknown message with error-not-allowed."""
    sandbox, seed, _rest = env
    posted = sandbox.post_as("bob", "general", "nice")
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("setReaction", ":tada:", posted["_id"])
        assert "error" not in reply and "result" not in reply
        assert sandbox.workspace.messages[posted["_id"]]["reactions"] == {":tada:": {"usernames": ["alice"]}}
        await ddp.call("setReaction", ":tada:", posted["_id"])
        assert not sandbox.workspace.messages[posted["_id"]].get("reactions")
        reply = await ddp.call("setReaction", ":tada:", "no-such-message")
        assert reply["error"]["error"] == "error-not-allowed" and reply["error"]["reason"] == "Not allowed"


async def test_ddp_save_room_settings_answers_result_and_rid(env: tuple[Sandbox, Seed, Rest]) -> None:
    """saveRoomSettings resolves {result: true, rid}; without edit-room: 'Editing room is not allowed'."""
    sandbox, seed, _rest = env
    rid = seed.rid("general")
    async with logged_in(seed, "rcmod.bot") as ddp:
        reply = await ddp.call("saveRoomSettings", rid, "roomTopic", "be kind")
        assert reply["result"] == {"result": True, "rid": rid}
    assert sandbox.workspace.rooms[rid]["topic"] == "be kind"
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("saveRoomSettings", rid, {"roomTopic": "anything goes"})
        assert reply["error"]["error"] == "error-action-not-allowed"
        assert reply["error"]["reason"] == "Editing room is not allowed"
        assert reply["error"]["details"] == {"method": "saveRoomSettings", "action": "Editing_room"}


async def test_ddp_subscriptions_get_since_a_date(env: tuple[Sandbox, Seed, Rest]) -> None:
    """getSubscriptions: a list without a date, {update, remove} with one."""
    _sandbox, seed, _rest = env
    async with logged_in(seed, "alice") as ddp:
        plain = (await ddp.call("subscriptions/get"))["result"]
        assert {s["rid"] for s in plain} >= {seed.rid("general"), seed.rid("random")}
        since = (await ddp.call("subscriptions/get", {"$date": 0}))["result"]
        assert since["remove"] == [] and {s["_id"] for s in since["update"]} == {s["_id"] for s in plain}


async def test_ddp_room_and_subscription_lists_before_login_are_empty(
    env: tuple[Sandbox, Seed, Rest],
) -> None:
    """rooms/get and subscriptions/get answer [] to a connection without a user, not an error."""
    _sandbox, seed, _rest = env
    async with DDPClient.connect(seed.url) as ddp:
        assert (await ddp.call("rooms/get"))["result"] == []
        assert (await ddp.call("subscriptions/get"))["result"] == []


async def test_ddp_join_room_joins_a_channel_and_refuses_a_private_group(
    env: tuple[Sandbox, Seed, Rest],
) -> None:
    """joinRoom: canAccessRoom decides; a private group the caller is not in is error-not-allowed."""
    sandbox, seed, _rest = env
    lobby = sandbox.workspace.create_room("c", "lobby", None, [seed.uid("alice")])
    async with logged_in(seed, "bob") as ddp:
        reply = await ddp.call("joinRoom", lobby["_id"])
        assert "error" not in reply
        assert (lobby["_id"], seed.uid("bob")) in sandbox.workspace.subscriptions
        reply = await ddp.call("joinRoom", seed.rid("staff"))
        assert reply["error"]["error"] == "error-not-allowed"
        assert reply["error"]["details"] == {"method": "joinRoom"}
        reply = await ddp.call("joinRoom", "no-such-room")
        assert reply["error"]["error"] == "error-invalid-room"


async def test_ddp_mute_and_unmute_user_in_room(env: tuple[Sandbox, Seed, Rest]) -> None:
    """muteUserInRoom / unmuteUserInRoom({rid, username}) answer true; check() refuses a partial
    argument with 'Match failed'; without mute-user: error-not-allowed."""
    sandbox, seed, _rest = env
    rid = seed.rid("general")
    async with logged_in(seed, "mod1") as ddp:
        assert (await ddp.call("muteUserInRoom", {"rid": rid, "username": "bob"}))["result"] is True
        assert "bob" in sandbox.workspace.rooms[rid].get("muted", [])
        assert (await ddp.call("unmuteUserInRoom", {"rid": rid, "username": "bob"}))["result"] is True
        assert "bob" not in sandbox.workspace.rooms[rid].get("muted", [])
        reply = await ddp.call("muteUserInRoom", {"rid": rid})
        assert reply["error"]["error"] == 400 and reply["error"]["reason"] == "Match failed"
    async with logged_in(seed, "alice") as ddp:
        reply = await ddp.call("muteUserInRoom", {"rid": rid, "username": "bob"})
        assert reply["error"]["error"] == "error-not-allowed"
        assert reply["error"]["details"] == {"method": "muteUserInRoom"}


# ---------------------------------------------------------------- streams


async def test_open_streams_need_a_login_and_take_any_event(env: tuple[Sandbox, Seed, Rest]) -> None:
    """notifications.module.ts: stream-notify-logged allowRead('logged'); stream-notify-all
    allowRead('all'), except private-settings-changed for those who may see private settings."""
    _sandbox, seed, _rest = env
    async with DDPClient.connect(seed.url) as ddp:
        reply = await ddp.sub("stream-notify-logged", "user-status", False)
        assert reply["msg"] == "nosub" and reply["error"]["error"] == "not-allowed"
        assert (await ddp.sub("stream-notify-all", "public-settings-changed", False))["msg"] == "ready"
        reply = await ddp.sub("stream-notify-all", "", False)
        assert reply["error"]["error"] == "invalid-event-name"
    async with logged_in(seed, "alice") as ddp:
        assert (await ddp.sub("stream-notify-logged", "user-status", False))["msg"] == "ready"
        assert (await ddp.sub("stream-notify-logged", "Users:NameChanged", False))["msg"] == "ready"
        reply = await ddp.sub("stream-notify-all", "private-settings-changed", False)
        assert reply["msg"] == "nosub" and reply["error"]["error"] == "not-allowed"
    async with logged_in(seed, "admin") as ddp:
        assert (await ddp.sub("stream-notify-all", "private-settings-changed", False))["msg"] == "ready"
