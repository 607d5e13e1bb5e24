"""The sandbox's state model, without sockets: seed contract, permissions, events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.sandbox import Sandbox, Workspace
from bot.sandbox.errors import MeteorError
from bot.sandbox.seed import seed_workspace
from bot.sandbox.wire import to_ejson, to_rest
from bot.sandbox.workspace import Event, MessageChanged, RoomNotify, UserNotify
from tests.sandbox.test_sandbox_support import FIXTURES, FakeClock


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.ws = Workspace(self.clock, seed=7)
        self.tokens = seed_workspace(self.ws)
        self.events: list[Event] = []
        self.ws.listeners.append(self.events.append)

    def uid(self, username: str) -> str:
        user = self.ws.user_by_username(username)
        assert user is not None
        return user.id

    def rid(self, name: str) -> str:
        room = self.ws.room_by_id_or_name(name=name)
        assert room is not None
        return str(room["_id"])

    def post(self, username: str, room: str, text: str, **kw: Any) -> dict[str, Any]:
        self.clock.advance(1)
        return self.ws.send_message(self.uid(username), self.rid(room), text, **kw)


@pytest.fixture
def world() -> World:
    return World()


def test_seed_contract_users_rooms_and_roles() -> None:
    sandbox = Sandbox(clock=FakeClock())
    info = sandbox.seed_info()
    assert set(info) == {"url", "users", "rooms"}
    users = {u["username"]: u for u in info["users"]}
    assert set(users) >= {"admin", "mod1", "mod2", "alice", "bob", "carol", "rcmod.bot"}
    for user in users.values():
        assert set(user) == {"username", "password", "id", "token", "roles"}
        assert len(user["id"]) == 17 and user["id"].isalnum()
    assert users["admin"]["roles"] == ["admin"]
    assert users["rcmod.bot"]["roles"] == ["bot"]
    assert users["alice"]["roles"] == ["user"]
    rooms = {r["name"]: r for r in info["rooms"]}
    assert {n: r["type"] for n, r in rooms.items()} == {"general": "c", "random": "c", "staff": "p"}
    ws = sandbox.workspace

    def members(name: str) -> set[str]:
        return {ws.users[u].username for u in ws.members_of(rooms[name]["id"])}

    assert members("general") == set(users)
    assert {"alice", "bob", "carol", "mod1", "mod2", "rcmod.bot"} <= members("random")
    assert members("staff") == {"admin", "mod1", "mod2", "rcmod.bot"}
    for room in rooms.values():
        for moderator in ("mod1", "mod2"):
            assert "moderator" in ws.subscriptions[(room["id"], users[moderator]["id"])]["roles"]
    # The JSON line is the contract: it must serialise.
    json.dumps(info)


def test_seed_is_deterministic_per_seed() -> None:
    first = Sandbox(clock=FakeClock(), seed=3).seed_info()
    second = Sandbox(clock=FakeClock(), seed=3).seed_info()
    other = Sandbox(clock=FakeClock(), seed=4).seed_info()
    assert first == second
    assert first["users"][0]["id"] != other["users"][0]["id"]


def test_bot_permissions_granted_through_the_bot_role(world: World) -> None:
    bot = world.uid("rcmod.bot")
    for permission in (
        "delete-message",
        "clean-channel-history",
        "api-bypass-rate-limit",
    ):
        assert "bot" in world.ws.permissions[permission]["roles"]
        assert world.ws.has_permission(bot, permission)
    # Defaults the bot role does not get: mention-all (reference C.6); and what setup does not
    # grant either (least privilege: deleting needs only delete-message).
    assert not world.ws.has_permission(bot, "mention-all")
    assert not world.ws.has_permission(bot, "force-delete-message")


def test_room_scoped_roles_only_count_inside_their_room(world: World) -> None:
    mod1 = world.uid("mod1")
    assert world.ws.has_permission(mod1, "delete-message", world.rid("general"))
    assert not world.ws.has_permission(mod1, "delete-message")
    dm = world.ws.create_direct(mod1, ["alice"])
    assert not world.ws.has_permission(mod1, "delete-message", dm["_id"])


def test_member_cannot_delete_others_message_but_moderator_can(world: World) -> None:
    message = world.post("bob", "general", "hello")
    with pytest.raises(MeteorError) as err:
        world.ws.delete_message(world.uid("alice"), message["_id"])
    assert err.value.error == "error-action-not-allowed"
    world.ws.delete_message(world.uid("mod1"), message["_id"])
    assert message["_id"] not in world.ws.messages
    assert world.ws.trash[message["_id"]]["_deletedAt"] is not None
    assert RoomNotify(world.rid("general"), "deleteMessage", [{"_id": message["_id"]}]) in world.events


def test_own_message_can_be_deleted_and_edited(world: World) -> None:
    message = world.post("alice", "general", "typo")
    world.clock.advance(1)
    edited = world.ws.update_message(world.uid("alice"), message["_id"], "fixed")
    assert edited["editedBy"]["username"] == "alice" and edited["editedAt"] > edited["ts"]
    world.ws.delete_message(world.uid("alice"), message["_id"])


def test_edit_denied_for_others_without_edit_message(world: World) -> None:
    message = world.post("bob", "general", "hello")
    with pytest.raises(MeteorError) as err:
        world.ws.update_message(world.uid("alice"), message["_id"], "hacked")
    assert (err.value.error, err.value.reason) == ("error-action-not-allowed", "Message editing not allowed")


def test_thread_parent_deletion_leaves_a_tombstone(world: World) -> None:
    parent = world.post("alice", "general", "thread start")
    world.post("bob", "general", "reply", tmid=parent["_id"])
    assert parent["tcount"] == 1 and parent["replies"] == [world.uid("bob")]
    world.events.clear()
    world.ws.delete_message(world.uid("mod1"), parent["_id"])
    tombstone = world.ws.messages[parent["_id"]]
    assert tombstone["t"] == "rm" and tombstone["msg"] == "" and tombstone["editedBy"]["username"] == "mod1"
    assert not any(isinstance(e, RoomNotify) for e in world.events)
    assert any(isinstance(e, MessageChanged) and e.message["_id"] == parent["_id"] for e in world.events)
    # Same keys as the reference fixture's tombstone (except the md/blocks that are unset).
    fixture = json.loads((FIXTURES / "ddp_stream_message_deleted_tombstone.json").read_text())
    assert set(fixture["fields"]["args"][0]) <= set(to_ejson(tombstone))


def test_show_deleted_status_setting_turns_deletes_into_tombstones(world: World) -> None:
    world.ws.set_setting("Message_ShowDeletedStatus", True)
    message = world.post("bob", "general", "x")
    world.ws.delete_message(world.uid("admin"), message["_id"])
    assert world.ws.messages[message["_id"]]["t"] == "rm"


def test_pin_creates_system_message_and_repin_returns_original(world: World) -> None:
    message = world.post("alice", "general", "policy")
    with pytest.raises(MeteorError) as err:
        world.ws.pin_message(world.uid("bob"), message["_id"])
    assert (err.value.error, err.value.reason) == ("not-authorized", "Not Authorized")
    system = world.ws.pin_message(world.uid("rcmod.bot"), message["_id"])
    assert system["t"] == "message_pinned"
    assert system["attachments"][0]["text"] == "policy"
    assert system["attachments"][0]["author_name"] == "alice"
    assert message["pinned"] is True and message["pinnedBy"]["username"] == "rcmod.bot"
    again = world.ws.pin_message(world.uid("rcmod.bot"), message["_id"])
    assert again is message


def test_unpin_requires_a_subscription(world: World) -> None:
    message = world.post("alice", "general", "policy")
    world.ws.pin_message(world.uid("admin"), message["_id"])
    # An admin (global pin-message) who is not subscribed to the room may not unpin.
    del world.ws.subscriptions[(world.rid("general"), world.uid("admin"))]
    with pytest.raises(MeteorError) as err:
        world.ws.unpin_message(world.uid("admin"), message["_id"])
    assert err.value.error == "error-invalid-message"
    world.ws.unpin_message(world.uid("mod1"), message["_id"])
    assert message["pinned"] is False


def clean_random(world: World, start: datetime, **options: Any) -> int:
    """rooms.cleanHistory by the bot in #random, from ``start`` to now; the events start afresh."""
    world.events.clear()
    return world.ws.clean_history(
        world.uid("rcmod.bot"),
        world.rid("random"),
        latest=world.ws.now() + timedelta(seconds=1),
        oldest=start,
        **options,
    )


def test_clean_history_filters_by_username_pins_and_threads(world: World) -> None:
    start = world.ws.now()
    keep_pinned = world.post("bob", "random", "pinned spam")
    world.ws.pin_message(world.uid("admin"), keep_pinned["_id"])
    spam = [world.post("bob", "random", f"spam {i}") for i in range(3)]
    other = world.post("alice", "random", "not spam")
    parent = world.post("bob", "random", "thread spam")
    reply = world.post("alice", "random", "reply", tmid=parent["_id"])
    count = clean_random(world, start, exclude_pinned=True, users=["bob"])
    gone = {m["_id"] for m in [*spam, parent]}
    assert count == len(gone)
    assert not gone & set(world.ws.messages)
    # alice's reply is not bob's: no cascade from a pruned thread parent.
    kept = {keep_pinned["_id"], other["_id"], reply["_id"]}
    assert kept <= set(world.ws.messages)
    bulk = [e for e in world.events if isinstance(e, RoomNotify) and e.event == "deleteMessageBulk"]
    assert len(bulk) == 1
    payload = bulk[0].args[0]
    assert payload["users"] == ["bob"] and payload["excludePinned"] is True
    assert set(payload["ts"]) == {"$gt", "$lt"} and "ids" not in payload  # ids only with a limit


def test_clean_history_ignore_threads_and_limit(world: World) -> None:
    start = world.ws.now()
    parent = world.post("bob", "random", "thread")
    world.post("bob", "random", "reply", tmid=parent["_id"])
    plain = [world.post("bob", "random", f"plain {i}") for i in range(3)]
    count = clean_random(world, start, ignore_threads=True, limit=2)
    assert count == 2 and parent["_id"] in world.ws.messages
    bulk = next(e for e in world.events if isinstance(e, RoomNotify)).args[0]
    assert bulk["ids"] == [plain[0]["_id"], plain[1]["_id"]]


def test_clean_history_needs_permission(world: World) -> None:
    with pytest.raises(MeteorError) as err:
        world.ws.clean_history(
            world.uid("mod1"), world.rid("general"), latest=world.ws.now(), oldest=world.ws.now()
        )
    assert err.value.error == "error-not-allowed"


def test_at_all_needs_mention_all_and_notifies_sender(world: World) -> None:
    with pytest.raises(MeteorError) as err:
        world.post("rcmod.bot", "general", "@all hello")
    assert err.value.error == "error-action-not-allowed"
    notices = [e for e in world.events if isinstance(e, UserNotify) and e.event == "message"]
    assert notices and notices[0].uid == world.uid("rcmod.bot")
    assert world.post("alice", "general", "@all hi")["mentions"] == [{"_id": "all", "username": "all"}]


def test_add_user_emits_subscription_and_au_message(world: World) -> None:
    room = world.ws.create_room("p", "secret", world.ws.user_by_username("admin"), [world.uid("admin")])
    bot = world.ws.user_by_username("rcmod.bot")
    assert bot is not None
    world.events.clear()
    world.ws.add_user_to_room(room, bot, world.ws.user_by_username("admin"))
    inserted = [e for e in world.events if isinstance(e, UserNotify) and e.event == "subscriptions-changed"]
    assert inserted[0].args[0] == "inserted" and inserted[0].args[1]["rid"] == room["_id"]
    system = [e.message for e in world.events if isinstance(e, MessageChanged)]
    assert system[-1]["t"] == "au" and system[-1]["msg"] == "rcmod.bot"


def test_reports_grouped_by_reported_user_and_dismissed(world: World) -> None:
    bad = world.post("bob", "general", "bad")
    worse = world.post("bob", "random", "worse")
    world.ws.report_message(world.uid("alice"), bad["_id"], "rude")
    world.ws.report_message(world.uid("carol"), worse["_id"], "rude too")
    groups = world.ws.reports_by_users(None, None)
    assert len(groups) == 1 and groups[0]["username"] == "bob" and groups[0]["count"] == 2
    assert {r["_id"] for r in groups[0]["rooms"]} == {world.rid("general"), world.rid("random")}
    assert world.ws.dismiss_reports(
        world.uid("admin"), user_id=world.uid("bob"), msg_id=None, reason="ok", action=None
    )
    assert world.ws.reports_by_users(None, None) == []


def test_report_needs_room_access(world: World) -> None:
    secret = world.post("mod1", "staff", "staff only")
    with pytest.raises(MeteorError) as err:
        world.ws.report_message(world.uid("alice"), secret["_id"], "?")
    assert err.value.error == "error-not-allowed"


def test_sync_messages_reports_updates_and_deletions(world: World) -> None:
    old = world.post("alice", "general", "old")
    since = world.ws.now()
    world.clock.advance(1)
    world.ws.update_message(world.uid("alice"), old["_id"], "old, edited")
    gone = world.post("bob", "general", "gone")
    world.clock.advance(1)
    world.ws.delete_message(world.uid("bob"), gone["_id"])
    updated, deleted = world.ws.sync_messages(world.uid("carol"), world.rid("general"), since)
    assert [m["_id"] for m in updated] == [old["_id"]]
    assert [d["_id"] for d in deleted] == [gone["_id"]]


def test_room_reads_see_their_room_only_through_posts_deletions_and_cleaning(world: World) -> None:
    since = world.ws.now()
    world.clock.advance(1)
    here = [world.post("alice", "general", f"here {i}") for i in range(3)]
    there = [world.post("bob", "random", f"there {i}") for i in range(3)]
    world.clock.advance(1)
    world.ws.delete_message(world.uid("alice"), here[0]["_id"])
    assert clean_random(world, since, limit=1) == 1  # there[0] goes
    general, random = world.rid("general"), world.rid("random")
    updated, deleted = world.ws.sync_messages(world.uid("carol"), general, since)
    assert {m["_id"] for m in updated} == {m["_id"] for m in here[1:]}
    assert [d["_id"] for d in deleted] == [here[0]["_id"]]
    updated, deleted = world.ws.sync_messages(world.uid("carol"), random, since)
    assert {m["_id"] for m in updated} == {m["_id"] for m in there[1:]}
    assert [d["_id"] for d in deleted] == [there[0]["_id"]]
    history = world.ws.history(random, oldest=since, count=0)
    assert [m["_id"] for m in history] == [there[2]["_id"], there[1]["_id"]]


def test_wire_forms_of_dates(world: World) -> None:
    message = world.post("alice", "general", "hi")
    rest, ejson = to_rest(message), to_ejson(message)
    assert isinstance(rest["ts"], str) and rest["ts"].endswith("Z") and len(rest["ts"]) == 24
    assert set(ejson["ts"]) == {"$date"} and isinstance(ejson["ts"]["$date"], int)


def test_tokens_login_and_deactivation(world: World) -> None:
    alice = world.ws.user_by_username("alice")
    assert alice is not None
    pat = world.tokens["alice"]
    assert world.ws.user_by_token(alice.id, pat) is alice
    assert world.ws.user_by_token(world.uid("bob"), pat) is None
    with pytest.raises(MeteorError) as err:
        world.ws.login_with_password("alice", "wrong")
    assert (err.value.error, err.value.reason) == (403, "Incorrect password")
    assert world.ws.login_with_password("alice", alice.password) is alice
    world.ws.set_active_status(world.uid("admin"), alice.id, False)
    assert world.ws.user_by_token(alice.id, pat) is None


def test_a_room_is_written_by_new_messages_deletions_and_edits_of_its_last_message_only() -> None:
    """What the bot's catch-up reads from rooms.get?updatedSince=: the server writes a room (its
    message count, so its _updatedAt) on every new message, thread replies included; on an edit
    only when the edited message is the room's lastMessage; and on every deletion."""
    w = World()
    rid = w.rid("random")
    room = w.ws.rooms[rid]

    def written_by(act: Any) -> bool:
        before = room["_updatedAt"]
        w.clock.advance(1)
        act()
        return bool(room["_updatedAt"] > before)

    older = w.post("alice", "random", "first")
    last = w.post("alice", "random", "second")
    assert room["lastMessage"]["_id"] == last["_id"]
    assert not written_by(lambda: w.ws.update_message(w.uid("alice"), older["_id"], "first, edited"))
    assert written_by(lambda: w.ws.update_message(w.uid("alice"), last["_id"], "second, edited"))
    assert room["lastMessage"]["msg"] == "second, edited"
    assert written_by(lambda: w.ws.send_message(w.uid("bob"), rid, "in a thread", tmid=last["_id"]))
    assert room["lastMessage"]["_id"] == last["_id"]  # a reply only in its thread is not the last
    assert written_by(lambda: w.ws.delete_message(w.uid("alice"), older["_id"]))
    assert written_by(lambda: w.ws.delete_message(w.uid("alice"), last["_id"]))
