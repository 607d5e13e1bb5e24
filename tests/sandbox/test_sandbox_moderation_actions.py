"""Mutes, kicks and read-only rooms: the sandbox behaving as Rocket.Chat 6.x/7.x does, reached
through the REST facade (RestClient) and, where the exact body matters, plain HTTP.

What each refusal looks like on the real server (muteUserInRoom, unmuteUserInRoom,
removeUserFromRoomMethod, canSendMessage, saveRoomSettings / saveRoomReadOnly) is noted in the
sandbox code these tests exercise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.config import Credentials
from bot.errors import ActionRefused, NotFound, PermissionDenied
from bot.models import parse_date
from bot.rest import RestClient, RetryPolicy
from bot.sandbox import Sandbox
from bot.sandbox.errors import MeteorError, PlainError
from bot.sandbox.workspace import Doc, Event, MessageChanged, UserNotify
from tests.sandbox.test_sandbox_support import DDPClient, FakeClock, Seed


class World:
    """A running sandbox on a fake clock, its seed, and every event the workspace announced."""

    def __init__(self, sandbox: Sandbox, clock: FakeClock) -> None:
        self.sb = sandbox
        self.clock = clock
        self.seed = Seed(sandbox.seed_info())
        self.events: list[Event] = []
        self.clients: list[RestClient] = []
        self.slept: list[float] = []
        sandbox.workspace.listeners.append(self.events.append)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def rest(self, username: str) -> RestClient:
        user = self.seed.users[username]
        creds = Credentials(user_id=user["id"], token=SecretStr(user["token"]))
        client = RestClient(
            self.seed.url, creds, clock=self.clock, sleep=self.sleep, retry=RetryPolicy(attempts=2)
        )
        self.clients.append(client)
        return client

    def room(self, name: str) -> Doc:
        room = self.sb.workspace.room_by_id_or_name(name=name)
        assert room is not None
        return room

    def system(self, rid: str, kind: str) -> list[Doc]:
        return [
            e.message
            for e in self.events
            if isinstance(e, MessageChanged) and e.message["rid"] == rid and e.message.get("t") == kind
        ]

    def notices(self, uid: str, event: str) -> list[list[Any]]:
        return [
            e.args for e in self.events if isinstance(e, UserNotify) and e.uid == uid and e.event == event
        ]

    async def post(self, route: str, who: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.seed.url}/api/v1/{route}", json=body, headers=self.seed.headers(who)
            ) as resp,
        ):
            return resp.status, await resp.json()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    sandbox = Sandbox(clock=clock)
    await sandbox.start()
    w = World(sandbox, clock)
    try:
        yield w
    finally:
        for client in w.clients:
            await client.close()
        await sandbox.stop()


async def refused(call: Callable[[], Awaitable[Any]]) -> ActionRefused:
    with pytest.raises(ActionRefused) as info:
        await call()
    return info.value


# ---------------------------------------------------------------- mute / unmute


async def test_a_muted_member_cannot_post_until_unmuted(world: World) -> None:
    bot, alice = world.rest("rcmod.bot"), world.rest("alice")
    random = world.seed.rid("random")
    alice_id = world.seed.uid("alice")

    await bot.mute_user(random, alice_id)
    assert await bot.room_muted(random) == ["alice"]
    [muted] = world.system(random, "user-muted")
    assert (muted["msg"], muted["u"]["username"]) == ("alice", "rcmod.bot")
    # Every member's client hears the room change, with the new muted list.
    changed = world.notices(world.seed.uid("bob"), "rooms-changed")
    assert changed[-1][0] == "updated" and changed[-1][1]["muted"] == ["alice"]

    # canSendMessage's plain Error: a bare text, no errorType, and the sender is told why.
    status, body = await world.post("chat.postMessage", "alice", {"roomId": random, "text": "hello?"})
    assert (status, body) == (400, {"success": False, "error": "You_have_been_muted"})
    notice = world.notices(alice_id, "message")[-1][0]
    assert notice["msg"] == "You have been muted and cannot speak in this room" and notice["rid"] == random
    error = await refused(lambda: alice.send_message(random, "still muted?"))
    assert type(error) is ActionRefused and error.code is None  # reported, not a permission error
    assert world.sb.workspace.rooms[random]["msgs"] == 1  # only the user-muted notice got in
    assert world.slept == []  # a refusal: nothing was retried or waited for

    await bot.unmute_user(random, alice_id)
    assert await bot.room_muted(random) == []
    [unmuted] = world.system(random, "user-unmuted")
    assert (unmuted["msg"], unmuted["u"]["username"]) == ("alice", "rcmod.bot")
    mid = await alice.send_message(random, "thanks")
    assert world.sb.workspace.messages[mid]["msg"] == "thanks"


async def test_mute_applies_to_moderators_too_and_other_rooms_are_untouched(world: World) -> None:
    bot = world.rest("rcmod.bot")
    await bot.mute_user(world.seed.rid("random"), world.seed.uid("mod1"))
    with pytest.raises(PlainError, match="You_have_been_muted"):
        world.sb.post_as("mod1", "random", "a moderator, muted")
    assert world.sb.post_as("mod1", "general", "elsewhere")["msg"] == "elsewhere"


async def test_unmuting_someone_who_is_not_muted_succeeds_with_a_notice(world: World) -> None:
    bot = world.rest("rcmod.bot")
    general = world.seed.rid("general")
    await bot.unmute_user(general, world.seed.uid("bob"))
    assert "muted" not in world.sb.workspace.rooms[general]  # $pull never creates the list
    assert [m["msg"] for m in world.system(general, "user-unmuted")] == ["bob"]


async def test_mute_refusals(world: World) -> None:
    bot, alice, mod1 = world.rest("rcmod.bot"), world.rest("alice"), world.rest("mod1")
    ws = world.sb.workspace
    admin = ws.user_by_username("admin")
    lobby = ws.create_room("c", "lobby", admin, [world.seed.uid(n) for n in ("admin", "mod1", "bob")])
    bob, carol = world.seed.uid("bob"), world.seed.uid("carol")

    error = await refused(lambda: alice.mute_user(world.seed.rid("random"), bob))
    assert isinstance(error, PermissionDenied) and error.code == "error-not-allowed"
    # A room moderator mutes in their own room only: room roles count inside that room.
    await mod1.mute_user(world.seed.rid("random"), bob)
    error = await refused(lambda: mod1.mute_user(lobby["_id"], bob))
    assert isinstance(error, PermissionDenied) and error.code == "error-not-allowed"

    error = await refused(lambda: bot.mute_user(world.seed.rid("staff"), carol))
    assert error.code == "error-user-not-in-room" and error.status == 400
    error = await refused(lambda: bot.unmute_user(world.seed.rid("staff"), carol))
    assert error.code == "error-user-not-in-room"
    error = await refused(lambda: bot.mute_user("no-such-room", carol))
    assert isinstance(error, NotFound) and error.code == "error-invalid-room"

    dm = await bot.dm_room("alice")
    error = await refused(lambda: bot.mute_user(dm, world.seed.uid("alice")))
    assert error.code == "error-invalid-room-type"
    # Without mute-user the permission check comes first, even in a direct room.
    error = await refused(lambda: alice.mute_user(dm, world.seed.uid("rcmod.bot")))
    assert error.code == "error-not-allowed"

    assert (
        "muted" not in lobby
        and "muted" not in ws.rooms[dm]
        and "muted" not in ws.rooms[world.seed.rid("staff")]
    )
    assert ws.rooms[world.seed.rid("random")]["muted"] == ["bob"]


async def test_mute_request_body_is_validated_like_the_server(world: World) -> None:
    random = world.seed.rid("random")
    status, body = await world.post("rooms.muteUser", "rcmod.bot", {"roomId": random, "username": "ALICE"})
    assert (status, body) == (200, {"success": True})  # usernames match ignoring case
    assert world.sb.workspace.rooms[random]["muted"] == ["alice"]
    both = {"roomId": random, "userId": world.seed.uid("bob"), "username": "bob"}
    status, body = await world.post("rooms.muteUser", "rcmod.bot", both)
    assert status == 400 and body["errorType"] == "invalid-params"
    assert body["error"].endswith("must match exactly one schema in oneOf [invalid-params]")
    status, body = await world.post("rooms.unmuteUser", "rcmod.bot", {"roomId": random, "username": "nobody"})
    assert (status, body["errorType"]) == (400, "error-invalid-user")
    assert body["error"] == (
        'The required "userId" or "username" param provided does not match any users [error-invalid-user]'
    )
    assert world.sb.workspace.rooms[random]["muted"] == ["alice"]


async def test_a_muted_senders_ddp_message_resolves_empty() -> None:
    """Meteor's sendMessage swallows canSendMessage's plain Error: no result, no error frame."""
    clock = FakeClock()
    async with Sandbox(clock=clock) as sandbox:
        seed = Seed(sandbox.seed_info())
        sandbox.workspace.mute_user(seed.uid("rcmod.bot"), seed.rid("general"), "alice")
        async with DDPClient.connect(seed.url) as ddp:
            await ddp.login(seed.users["alice"]["token"])
            reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": "psst"})
        assert "result" not in reply and "error" not in reply
        assert all(m.get("msg") != "psst" for m in sandbox.workspace.messages.values())


# ---------------------------------------------------------------- kick


async def test_kick_from_a_channel_and_a_group(world: World) -> None:
    bot = world.rest("rcmod.bot")
    random, staff = world.seed.rid("random"), world.seed.rid("staff")
    carol = world.seed.uid("carol")
    before = world.sb.workspace.rooms[random]["usersCount"]

    await bot.kick_user(random, "c", carol)
    assert (random, carol) not in world.sb.workspace.subscriptions
    assert world.sb.workspace.rooms[random]["usersCount"] == before - 1
    removed = world.notices(carol, "subscriptions-changed")[-1]
    assert removed[0] == "removed" and removed[1]["rid"] == random
    [ru] = world.system(random, "ru")
    assert (ru["msg"], ru["u"]["username"]) == ("carol", "rcmod.bot")
    assert world.notices(world.seed.uid("bob"), "rooms-changed")[-1][0] == "updated"

    world.sb.add_member("staff", "carol")
    await bot.kick_user(staff, "p", carol)
    assert (staff, carol) not in world.sb.workspace.subscriptions
    assert [m["msg"] for m in world.system(staff, "ru")] == ["carol"]


async def test_channels_kick_answers_with_the_channel_and_groups_kick_with_nothing(world: World) -> None:
    random, staff = world.seed.rid("random"), world.seed.rid("staff")
    status, body = await world.post(
        "channels.kick", "rcmod.bot", {"roomId": random, "userId": world.seed.uid("bob")}
    )
    assert status == 200 and body["channel"]["_id"] == random and body["channel"]["lastMessage"]["t"] == "ru"
    world.sb.add_member("staff", "bob")
    status, body = await world.post(
        "groups.kick", "rcmod.bot", {"roomId": staff, "userId": world.seed.uid("bob")}
    )
    assert (status, body) == (200, {"success": True})


async def test_kick_refusals(world: World) -> None:
    bot, alice = world.rest("rcmod.bot"), world.rest("alice")
    ws = world.sb.workspace
    random, staff = world.seed.rid("random"), world.seed.rid("staff")
    admin = world.seed.uid("admin")
    lobby = ws.create_room("c", "lobby", ws.user_by_username("admin"), [admin, world.seed.uid("rcmod.bot")])
    dm = await bot.dm_room("alice")
    members = set(ws.subscriptions)

    error = await refused(lambda: alice.kick_user(random, "c", world.seed.uid("bob")))
    assert isinstance(error, PermissionDenied) and error.code == "error-not-allowed"
    error = await refused(lambda: bot.kick_user(lobby["_id"], "c", world.seed.uid("carol")))
    assert error.code == "error-user-not-in-room"
    error = await refused(lambda: bot.kick_user(staff, "p", world.seed.uid("carol")))
    assert error.code == "error-user-not-in-room"
    # The room's only owner stays; a second owner makes the kick possible.
    error = await refused(lambda: bot.kick_user(random, "c", admin))
    assert error.code == "error-you-are-last-owner"
    # A private group the caller is not in looks like no group at all.
    error = await refused(lambda: alice.kick_user(staff, "p", world.seed.uid("mod1")))
    assert isinstance(error, NotFound) and error.code == "error-room-not-found"
    # Direct messages have no kick: refused before any request is sent.
    sent = len(world.events)
    error = await refused(lambda: bot.kick_user(dm, "d", world.seed.uid("alice")))
    assert error.code == "error-invalid-room-type" and len(world.events) == sent
    status, body = await world.post(
        "channels.kick", "rcmod.bot", {"roomId": dm, "userId": world.seed.uid("alice")}
    )
    assert (status, body["errorType"]) == (400, "error-room-not-found")

    assert set(ws.subscriptions) == members and world.system(random, "ru") == []
    ws.subscriptions[(random, world.seed.uid("mod2"))]["roles"] = ["owner"]
    await bot.kick_user(random, "c", admin)
    assert (random, admin) not in ws.subscriptions


async def test_an_admin_may_kick_from_any_public_channel_even_a_non_member(world: World) -> None:
    """7.x removeUserFromRoom: kick-user-from-any-c-room (admin) skips the membership check, and
    the `ru` message is posted all the same."""
    lobby = world.sb.workspace.create_room("c", "lobby", None, [world.seed.uid("bob")])
    await world.rest("admin").kick_user(lobby["_id"], "c", world.seed.uid("carol"))
    assert [(m["msg"], m["u"]["username"]) for m in world.system(lobby["_id"], "ru")] == [("carol", "admin")]


# ---------------------------------------------------------------- read-only rooms


async def test_read_only_room_lets_only_privileged_and_unmuted_members_post(world: World) -> None:
    bot, alice = world.rest("rcmod.bot"), world.rest("alice")
    random = world.seed.rid("random")
    alice_id = world.seed.uid("alice")

    await bot.set_read_only(random, True)
    assert (await bot.room_info(random))["ro"] is True
    [locked] = world.system(random, "room-set-read-only")
    assert (locked["msg"], locked["u"]["username"]) == ("", "rcmod.bot")
    await bot.set_read_only(random, True)  # no change: the saver does not run, no second notice
    assert len(world.system(random, "room-set-read-only")) == 1

    # canSendMessage throws a plain Error: the REST answer has only its text, no errorType.
    error = await refused(lambda: alice.send_message(random, "let me speak"))
    assert isinstance(error, PermissionDenied) and error.code == "room-read-only"
    with pytest.raises(PlainError, match="room is readonly"):
        world.sb.post_as("carol", "random", "members hold no post-readonly")
    assert world.sb.post_as("rcmod.bot", "random", "setup grants post-readonly")["msg"]
    assert world.sb.post_as("mod1", "random", "room moderator")["msg"] == "room moderator"
    assert world.sb.post_as("admin", "random", "owner and admin")["msg"] == "owner and admin"

    # In a read-only room an unmute is an exemption, and a mute takes it back.
    await bot.unmute_user(random, alice_id)
    assert world.sb.workspace.rooms[random]["unmuted"] == ["alice"]
    await alice.send_message(random, "unmuted in a read-only room")
    await bot.mute_user(random, alice_id)
    assert world.sb.workspace.rooms[random]["unmuted"] == []
    assert "alice" not in world.sb.workspace.rooms[random].get("muted", [])
    with pytest.raises(PlainError, match="room is readonly"):
        world.sb.post_as("alice", "random", "muted again")

    await bot.set_read_only(random, False)
    [unlocked] = world.system(random, "room-removed-read-only")
    assert unlocked["u"]["username"] == "rcmod.bot"
    assert world.sb.post_as("bob", "random", "open again")["msg"] == "open again"

    error = await refused(lambda: alice.set_read_only(random, True))
    assert isinstance(error, PermissionDenied) and error.code == "error-action-not-allowed"
    assert world.sb.workspace.rooms[random]["ro"] is False


# ---------------------------------------------------------------- facade helpers


async def test_new_accounts_and_joining(world: World) -> None:
    bot = world.rest("rcmod.bot")
    newbie = world.sb.create_user("newbie", created_days_ago=2)
    # An account's age is among getFullUserData's full fields, shown only to holders of
    # view-full-other-user-info: the seeded bot holds it (setup grants it for probation) ...
    assert "createdAt" in await bot.user_info(username="newbie")
    # ... and without it, the age is hidden.
    world.sb.workspace.set_permission_roles("view-full-other-user-info", ["admin"])
    assert "createdAt" not in await bot.user_info(username="newbie")
    info = await world.rest("admin").user_info(username="newbie")
    age = world.sb.workspace.now() - parse_date(info["createdAt"])
    assert timedelta(days=2) - timedelta(seconds=1) < age < timedelta(days=2) + timedelta(seconds=1)
    # Like users.create: the account joined the default channel, and its token works.
    assert (world.seed.rid("general"), newbie["id"]) in world.sb.workspace.subscriptions
    assert [m["u"]["username"] for m in world.system(world.seed.rid("general"), "uj")] == ["newbie"]
    world.seed.users["newbie"] = newbie
    assert (await world.rest("newbie").me())["username"] == "newbie"
    with pytest.raises(MeteorError):
        world.sb.create_user("newbie")

    world.sb.join_as("newbie", "random")
    [joined] = world.system(world.seed.rid("random"), "uj")
    assert (joined["msg"], joined["u"]["username"]) == ("newbie", "newbie")
    with pytest.raises(MeteorError) as err:
        world.sb.join_as("newbie", "staff")  # a private group cannot be joined
    assert err.value.error == "error-room-not-found"

    when = world.sb.workspace.now() - timedelta(days=400)
    world.sb.set_user_created("alice", when)
    admin = world.rest("admin")  # createdAt is a full field: the bot does not see it
    assert parse_date((await admin.user_info(username="alice"))["createdAt"]) == when
