"""The sandbox's DDP endpoint with a real websocket client (websockets)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import aiohttp
import pytest
import websockets

from bot.sandbox import RateLimits, Sandbox
from tests.sandbox.test_sandbox_support import FIXTURES, DDPClient, FakeClock, running


async def wait_closed(ws: Any) -> websockets.ConnectionClosed:
    """Read (and discard) frames until the connection closes; return how it closed."""

    async def drain() -> websockets.ConnectionClosed:
        while True:
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                return exc

    return await asyncio.wait_for(drain(), 2)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


async def test_handshake_login_with_pat_and_password() -> None:
    async with running() as (_sandbox, seed), DDPClient.connect(seed.url) as ddp:
        bot = seed.users["rcmod.bot"]
        reply = await ddp.login(bot["token"])
        result = reply["result"]
        assert set(result) == set(fixture("ddp_login_result.json")["result"])
        assert result["id"] == bot["id"] and result["type"] == "resume" and "$date" in result["tokenExpires"]
        digest = hashlib.sha256(bot["password"].encode()).hexdigest()
        reply = await ddp.call(
            "login",
            {"user": {"username": "rcmod.bot"}, "password": {"digest": digest, "algorithm": "sha-256"}},
        )
        assert reply["result"]["type"] == "password" and reply["result"]["token"] != bot["token"]
        # The fresh login token works on REST too.
        headers = {"X-User-Id": bot["id"], "X-Auth-Token": reply["result"]["token"]}
        async with (
            aiohttp.ClientSession() as session,
            session.get(seed.url + "/api/v1/me", headers=headers) as resp,
        ):
            assert resp.status == 200


async def test_login_failures_match_reference() -> None:
    async with running() as (_sandbox, seed), DDPClient.connect(seed.url) as ddp:
        digest = hashlib.sha256(b"wrong").hexdigest()
        reply = await ddp.call(
            "login", {"user": {"username": "alice"}, "password": {"digest": digest, "algorithm": "sha-256"}}
        )
        assert reply["error"] == fixture("ddp_result_error_login_failed.json")["error"]
        reply = await ddp.call("login", {"resume": "not-a-token"})
        assert reply["error"]["error"] == 403


async def test_methods_need_login_and_unknown_method_is_404() -> None:
    async with running() as (_sandbox, seed), DDPClient.connect(seed.url) as ddp:
        reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": "hi"})
        assert reply["error"]["error"] == "error-invalid-user"
        reply = await ddp.call("no.such.method")
        assert reply["error"]["error"] == 404
        assert reply["error"]["message"] == "Method 'no.such.method' not found [404]"
        assert reply["error"]["errorType"] == "Meteor.Error"


async def test_ping_pong_both_ways() -> None:
    async with (
        running(ping_interval=0.2, ping_timeout=0.3) as (_sandbox, seed),
        DDPClient.connect(seed.url) as ddp,
    ):
        await ddp.send({"msg": "ping", "id": "p1"})
        assert await ddp.expect(lambda f: f.get("msg") == "pong") == {"msg": "pong", "id": "p1"}
        assert await ddp.expect(lambda f: f.get("msg") == "ping") == {"msg": "ping"}
        await ddp.send({"msg": "pong"})
        # Silence after the next ping: the server gives up with 4000 (ddp-streamer behaviour).
        await ddp.expect(lambda f: f.get("msg") == "ping")
        closed = await wait_closed(ddp.ws)
        assert closed.rcvd is not None and closed.rcvd.code == 4000


async def test_my_messages_with_participant_hint_and_edit() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users["rcmod.bot"]["token"])
        assert (await ddp.sub("stream-room-messages", "__my_messages__", False))["msg"] == "ready"
        posted = sandbox.post_as("alice", "general", "hello bot")
        frame = await ddp.changed("stream-room-messages", "__my_messages__")
        message, hint = frame["fields"]["args"]
        assert frame["id"] == "id"
        assert message["_id"] == posted["_id"] and message["ts"] == {"$date": message["ts"]["$date"]}
        assert hint == {"roomParticipant": True, "roomType": "c", "roomName": "general"}
        template = fixture("ddp_stream_my_messages_new.json")["fields"]["args"][0]
        assert set(template) <= set(message)

        sandbox.edit_as("alice", posted["_id"], "hello bot (edited)")
        frame = await ddp.changed("stream-room-messages", "__my_messages__")
        edited = frame["fields"]["args"][0]
        assert edited["msg"] == "hello bot (edited)" and "$date" in edited["editedAt"]
        assert edited["editedBy"]["username"] == "alice"


async def test_my_messages_includes_public_rooms_not_joined() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users["admin"]["token"])
        await ddp.sub("stream-room-messages", "__my_messages__", False)
        sandbox.workspace.create_room("c", "lobby", None, [seed.uid("alice")])
        sandbox.post_as("alice", "lobby", "anyone there?")
        frame = await ddp.changed("stream-room-messages", "__my_messages__")
        assert frame["fields"]["args"][1]["roomParticipant"] is False
        # A private group the user is not in never shows up.
        sandbox.workspace.create_room("p", "hidden", None, [seed.uid("alice")])
        sandbox.post_as("alice", "hidden", "secret")
        await ddp.no_changed("stream-room-messages", "__my_messages__")


async def test_per_room_stream_and_delete_notification() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users["rcmod.bot"]["token"])
        rid = seed.rid("random")
        assert (await ddp.sub("stream-room-messages", rid, False))["msg"] == "ready"
        assert (await ddp.sub("stream-notify-room", f"{rid}/deleteMessage", False))["msg"] == "ready"
        posted = sandbox.post_as("bob", "random", "oops")
        frame = await ddp.changed("stream-room-messages", rid)
        assert (
            frame["fields"]["args"] == [frame["fields"]["args"][0]]
            and frame["fields"]["args"][0]["msg"] == "oops"
        )
        sandbox.delete_as("bob", posted["_id"])
        frame = await ddp.changed("stream-notify-room", f"{rid}/deleteMessage")
        expected = fixture("ddp_stream_notify_room_deleteMessage.json")
        assert frame["fields"]["args"] == [{"_id": posted["_id"]}]
        assert set(frame) == set(expected)


async def test_delete_via_ddp_method_and_bulk_notification() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users["rcmod.bot"]["token"])
        rid = seed.rid("general")
        await ddp.sub("stream-notify-room", f"{rid}/deleteMessageBulk", False)
        posted = sandbox.post_as("bob", "general", "spam")
        reply = await ddp.call("deleteMessage", {"_id": posted["_id"]})
        assert "error" not in reply and "result" not in reply
        sandbox.post_as("bob", "general", "more spam")
        async with aiohttp.ClientSession() as session:
            body = {
                "roomId": rid,
                "latest": "2100-01-01T00:00:00.000Z",
                "oldest": "2000-01-01T00:00:00.000Z",
                "users": ["bob"],
            }
            async with session.post(
                seed.url + "/api/v1/rooms.cleanHistory", json=body, headers=seed.headers("rcmod.bot")
            ) as resp:
                assert (await resp.json())["count"] == 1
        frame = await ddp.changed("stream-notify-room", f"{rid}/deleteMessageBulk")
        payload = frame["fields"]["args"][0]
        assert payload["users"] == ["bob"] and set(payload["ts"]) == {"$gt", "$lt"}
        assert "$date" in payload["ts"]["$gt"]


async def test_subscription_permissions() -> None:
    async with running() as (_sandbox, seed), DDPClient.connect(seed.url) as ddp:
        reply = await ddp.sub("stream-room-messages", "__my_messages__", False)
        assert reply["msg"] == "nosub" and reply["error"]["error"] == "not-allowed"
        await ddp.login(seed.users["alice"]["token"])
        reply = await ddp.sub("stream-notify-user", f"{seed.uid('bob')}/subscriptions-changed", False)
        assert reply["msg"] == "nosub" and reply["error"] == fixture("ddp_nosub_not_allowed.json")["error"]
        reply = await ddp.sub("stream-notify-room", f"{seed.rid('staff')}/deleteMessage", False)
        assert reply["error"]["error"] == "not-allowed"
        reply = await ddp.sub("stream-room-messages", seed.rid("staff"), False)
        assert reply["error"]["error"] == "not-allowed"
        assert (await ddp.sub("stream-notify-user", f"{seed.uid('alice')}/rooms-changed", False))[
            "msg"
        ] == "ready"
        await ddp.send({"msg": "unsub", "id": "never-subscribed"})
        assert await ddp.expect(lambda f: f.get("msg") == "nosub") == {
            "msg": "nosub",
            "id": "never-subscribed",
        }


async def test_added_to_room_emits_subscription_inserted_and_au() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        bot = seed.users["rcmod.bot"]
        await ddp.login(bot["token"])
        await ddp.sub("stream-notify-user", f"{bot['id']}/subscriptions-changed", False)
        await ddp.sub("stream-room-messages", "__my_messages__", False)
        sandbox.workspace.create_room("p", "mods-only", None, [seed.uid("admin")])
        sandbox.add_member("mods-only", "rcmod.bot")
        frame = await ddp.changed("stream-notify-user", f"{bot['id']}/subscriptions-changed")
        kind, sub = frame["fields"]["args"]
        template = fixture("ddp_stream_notify_user_subscriptions_changed_inserted.json")["fields"]["args"][1]
        assert kind == "inserted" and set(template) <= set(sub) and sub["name"] == "mods-only"
        frame = await ddp.changed("stream-room-messages", "__my_messages__")
        assert frame["fields"]["args"][0]["t"] == "au"


async def test_ddp_method_rate_limit() -> None:
    clock = FakeClock()
    async with (
        running(clock, RateLimits(ddp_calls=2, ddp_window=3)) as (_sandbox, seed),
        DDPClient.connect(seed.url) as ddp,
    ):
        await ddp.login(seed.users["rcmod.bot"]["token"])
        for _ in range(2):
            assert "error" not in await ddp.call("rooms/get")
        reply = await ddp.call("rooms/get")
        expected = fixture("ddp_result_error_too_many_requests.json")["error"]
        assert set(reply["error"]) == set(expected)
        assert (
            reply["error"]["error"] == "too-many-requests"
            and reply["error"]["details"]["timeToReset"] == 3000
        )
        clock.advance(3)
        assert "error" not in await ddp.call("rooms/get")


async def test_ddp_subscription_rate_limit_is_nosub_and_streams_get_times_four() -> None:
    async with (
        running(FakeClock(), RateLimits(ddp_calls=1, ddp_window=10)) as (_sandbox, seed),
        DDPClient.connect(seed.url) as ddp,
    ):
        await ddp.login(seed.users["rcmod.bot"]["token"])
        uid = seed.uid("rcmod.bot")
        for event in ("subscriptions-changed", "rooms-changed", "message", "notification"):
            assert (await ddp.sub("stream-notify-user", f"{uid}/{event}", False))["msg"] == "ready"
        reply = await ddp.sub("stream-notify-user", f"{uid}/userData", False)
        assert reply["msg"] == "nosub" and reply["error"]["error"] == "too-many-requests"
        assert reply["error"]["details"]["timeToReset"] == 40000


async def test_send_message_limit_per_user_without_send_many_messages() -> None:
    async with (
        running(FakeClock(), RateLimits(send_message_calls=2)) as (_sandbox, seed),
        DDPClient.connect(seed.url) as ddp,
    ):
        await ddp.login(seed.users["alice"]["token"])
        for i in range(2):
            reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": f"m{i}"})
            assert reply["result"]["msg"] == f"m{i}" and "$date" in reply["result"]["ts"]
        reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": "m3"})
        assert reply["error"]["error"] == "too-many-requests"


async def test_send_message_failures_resolve_empty_with_an_ephemeral_notice() -> None:
    """The server's sendMessage swallows most errors; the sender only gets an ephemeral message."""
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        bot = seed.users["rcmod.bot"]
        await ddp.login(bot["token"])
        await ddp.sub("stream-notify-user", f"{bot['id']}/message", False)
        reply = await ddp.call("sendMessage", {"rid": seed.rid("general"), "msg": "@all listen"})
        assert "result" not in reply and "error" not in reply
        frame = await ddp.changed("stream-notify-user", f"{bot['id']}/message")
        assert frame["fields"]["args"][0]["msg"] == "Notify all in this room not allowed"
        sandbox.workspace.create_room("p", "closed", None, [seed.uid("admin")])
        closed = sandbox.workspace.room_by_id_or_name(name="closed")
        assert closed is not None
        reply = await ddp.call("sendMessage", {"rid": closed["_id"], "msg": "let me in"})
        assert reply["error"]["error"] == "error-not-allowed"


async def test_first_frame_must_be_connect() -> None:
    async with running() as (_sandbox, seed):
        async with DDPClient.connect(seed.url, handshake=False) as ddp:
            assert json.loads(await ddp.ws.recv()) == {"server_id": "0"}
            await ddp.send({"msg": "method", "method": "login", "id": "1", "params": []})
            closed = await wait_closed(ddp.ws)
            assert closed.rcvd is not None and closed.rcvd.code == 1002
        async with DDPClient.connect(seed.url, handshake=False) as ddp:
            await ddp.ws.recv()
            await ddp.ws.send("{not json")
            closed = await wait_closed(ddp.ws)
            assert closed.rcvd is not None and closed.rcvd.code == 1007


async def test_drop_refuse_and_restart() -> None:
    async with running() as (sandbox, seed):
        async with DDPClient.connect(seed.url) as ddp:
            await ddp.login(seed.users["rcmod.bot"]["token"])
            await sandbox.drop_connections()
            closed = await wait_closed(ddp.ws)
            assert closed.rcvd is None  # no close frame: abnormal closure (1006)
        sandbox.refuse_connections(True)
        with pytest.raises(websockets.InvalidStatus):
            async with DDPClient.connect(seed.url):
                pass
        message = sandbox.post_as("alice", "general", "REST and post_as keep working")
        sandbox.refuse_connections(False)
        async with DDPClient.connect(seed.url) as ddp:
            await ddp.login(seed.users["rcmod.bot"]["token"])
            await sandbox.restart()
            await wait_closed(ddp.ws)
        async with DDPClient.connect(seed.url) as ddp:
            await ddp.login(seed.users["rcmod.bot"]["token"])
            assert message["_id"] in sandbox.workspace.messages


async def test_frame_delay() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        sandbox.set_frame_delay(0.15)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await ddp.send({"msg": "ping", "id": "slow"})
        await ddp.expect(lambda f: f.get("msg") == "pong")
        assert loop.time() - started >= 0.14


async def test_reaction_and_pin_re_emit_without_touching_edited_at() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        await ddp.login(seed.users["rcmod.bot"]["token"])
        rid = seed.rid("general")
        await ddp.sub("stream-room-messages", rid, False)
        posted = sandbox.post_as("alice", "general", "nice")
        await ddp.changed("stream-room-messages", rid)
        sandbox.react_as("bob", posted["_id"], "thumbsup")
        reacted = (await ddp.changed("stream-room-messages", rid))["fields"]["args"][0]
        assert reacted["reactions"] == {":thumbsup:": {"usernames": ["bob"]}} and "editedAt" not in reacted
        reply = await ddp.call("pinMessage", {"_id": posted["_id"]})
        assert reply["result"]["t"] == "message_pinned"
        original = (await ddp.changed("stream-room-messages", rid))["fields"]["args"][0]
        assert original["_id"] == posted["_id"] and original["pinned"] is True and "editedAt" not in original
        system = (await ddp.changed("stream-room-messages", rid))["fields"]["args"][0]
        template = fixture("ddp_stream_message_pinned_system.json")["fields"]["args"][0]
        assert set(template) <= set(system) and "$date" in system["attachments"][0]["ts"]


async def test_removed_from_room_stops_per_room_stream() -> None:
    async with running() as (sandbox, seed), DDPClient.connect(seed.url) as ddp:
        bot = seed.users["rcmod.bot"]
        await ddp.login(bot["token"])
        rid = seed.rid("staff")
        await ddp.sub("stream-room-messages", rid, False)
        await ddp.sub("stream-notify-user", f"{bot['id']}/subscriptions-changed", False)
        sandbox.remove_member("staff", "rcmod.bot")
        frame = await ddp.changed("stream-notify-user", f"{bot['id']}/subscriptions-changed")
        assert frame["fields"]["args"][0] == "removed" and frame["fields"]["args"][1]["rid"] == rid
        sandbox.post_as("mod1", "staff", "now without the bot")
        await ddp.no_changed("stream-room-messages", rid)


async def test_session_core_without_sockets() -> None:
    """The protocol core is plain values in, frames out (no event loop needed for the logic)."""
    from bot.sandbox.ddp import DDPSession
    from bot.sandbox.ratelimit import FixedWindowLimiter

    sandbox = Sandbox(clock=FakeClock())
    sent: list[dict[str, Any]] = []
    closed: list[tuple[int, str]] = []
    session = DDPSession(
        sandbox.workspace,
        FixedWindowLimiter(sandbox.clock),
        sandbox.rate_limits,
        "session-1",
        send=sent.append,
        close=lambda code, reason: closed.append((code, reason)),
    )
    session.receive(json.dumps({"msg": "connect", "version": "1", "support": ["1"]}))
    token = sandbox.seed_info()["users"][-1]["token"]
    session.receive(
        json.dumps({"msg": "method", "method": "login", "id": "1", "params": [{"resume": token}]})
    )
    session.receive(
        json.dumps({"msg": "sub", "id": "s", "name": "stream-room-messages", "params": ["__my_messages__"]})
    )
    sandbox.post_as("alice", "general", "hi")
    assert [f["msg"] for f in sent] == ["connected", "result", "updated", "ready", "changed"]
    session.receive("[1, 2]")
    assert closed == [(1007, "Invalid payload")]
