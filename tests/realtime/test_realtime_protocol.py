"""The sans-I/O DDP core: frames in, events and frames out. No event loop, no server."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.realtime.events import (
    BulkDeleted,
    EditedMessage,
    EncryptedMessage,
    FrameRejected,
    MessageDeleted,
    NewMessage,
    RoomChanged,
    RoomHint,
    SubscriptionChanged,
    SubscriptionFailed,
    SystemMessage,
    ThreadReply,
    UserNotice,
)
from bot.realtime.protocol import (
    CallResult,
    DDPError,
    DDPProtocol,
    Pong,
    ProtocolEvent,
    SessionFailed,
    SessionStarted,
    State,
    SubscriptionEnded,
    SubscriptionReady,
    login_user_id,
    password_digest,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def feed(proto: DDPProtocol, frame: Any) -> list[ProtocolEvent]:
    proto.receive_text(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    return proto.events_received()


def sent(proto: DDPProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in proto.data_to_send()]


# --- fixtures, table-driven ---------------------------------------------------------------------

STREAM_FIXTURES: list[tuple[str, type, dict[str, Any]]] = [
    (
        "ddp_stream_my_messages_new.json",
        NewMessage,
        {
            "message.id": "8gMsLe9A7pZjo2D2iB",
            "message.rid": "64a1f373376181965ab77f54",
            "message.text": "Hello World!",
            "message.author.username": "test.rc",
            "message.ts": ms(1688421337724),
            "room": RoomHint(participant=True, type="p", name="sandbox"),
        },
    ),
    (
        "ddp_stream_room_messages_new.json",
        NewMessage,
        {
            "message.id": "357Cde8axgiCYd3kY",
            "message.rid": "WNqBb5jkkFNeYswcp",
            "message.author.id": "vNW5eZW5Ma823XNt3",
            "room": RoomHint(),
        },
    ),
    (
        "ddp_stream_message_edited.json",
        EditedMessage,
        {
            "message.id": "8gMsLe9A7pZjo2D2iB",
            "message.text": "Hello World! (fixed)",
            "message.edited_at": ms(1688421399000),
            "message.edited_by.id": "LFdhbcNHx5zsMA7T4",
        },
    ),
    (
        "ddp_stream_message_thread_reply.json",
        ThreadReply,
        {"message.id": "Hsj2435g4bvrj4bjh", "message.tmid": "8gMsLe9A7pZjo2D2iB"},
    ),
    (
        "ddp_stream_message_pinned_system.json",
        SystemMessage,
        {"message.type": "message_pinned", "message.id": "64a64761605f9022b067fa3a"},
    ),
    (
        "ddp_stream_message_e2e.json",
        EncryptedMessage,
        {"message.type": "e2e", "message.rid": "68dad82a10815056615446aa", "message.text": ""},
    ),
    (
        "ddp_stream_message_deleted_tombstone.json",
        MessageDeleted,
        {
            "rid": "64a1f373376181965ab77f54",
            "mid": "8gMsLe9A7pZjo2D2iB",
            "via": "tombstone",
            "at": ms(1688422000000),
            "by": "aobEdbYhXfu5hkeqG",
        },
    ),
    (
        "ddp_stream_notify_room_deleteMessage.json",
        MessageDeleted,
        {"rid": "64a1f373376181965ab77f54", "mid": "8gMsLe9A7pZjo2D2iB", "via": "notify", "at": None},
    ),
    (
        "ddp_stream_notify_room_deleteMessageBulk.json",
        BulkDeleted,
        {
            "rid": "64a1f373376181965ab77f54",
            "oldest": ms(1688400000000),
            "latest": ms(1688425000000),
            "oldest_inclusive": True,
            "latest_inclusive": True,
            "usernames": ("test.rc",),
            "ids": (),
            "exclude_pinned": True,
            "ignore_discussion": True,
            "files_only": False,
        },
    ),
    (
        "ddp_stream_notify_user_subscriptions_changed_inserted.json",
        SubscriptionChanged,
        {
            "action": "inserted",
            "rid": "64a37803730ef04d3db2556f",
            "room_type": "p",
            "name": "test-private",
            "subscription_id": "64a37804730ef04d3db25571",
        },
    ),
]


def attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("name", "kind", "expected"), STREAM_FIXTURES, ids=[f[0] for f in STREAM_FIXTURES])
def test_stream_fixture_parses(name: str, kind: type, expected: dict[str, Any]) -> None:
    events = feed(DDPProtocol(), fixture(name))
    assert len(events) == 1
    assert type(events[0]) is kind
    for dotted, value in expected.items():
        assert attr(events[0], dotted) == value, dotted


def test_every_ddp_fixture_is_covered() -> None:
    ddp = {p.name for p in FIXTURES.glob("ddp_*.json")}
    covered = {f[0] for f in STREAM_FIXTURES} | {
        "ddp_login_result.json",
        "ddp_nosub_not_allowed.json",
        "ddp_result_error_login_failed.json",
        "ddp_result_error_too_many_requests.json",
    }
    assert ddp <= covered


def call_and_answer(fixture_name: str) -> CallResult:
    frame = fixture(fixture_name)
    proto = DDPProtocol()
    # Fixture ids are "42"/"17": issue calls until ours matches (ids are a counter).
    while True:
        call_id = proto.call("login", [])
        if call_id == frame["id"]:
            break
    (event,) = feed(proto, frame)
    assert isinstance(event, CallResult)
    assert event.call_id == frame["id"]
    return event


def test_login_result_fixture() -> None:
    event = call_and_answer("ddp_login_result.json")
    assert event.error is None
    assert login_user_id(event.result) == "LFdhbcNHx5zsMA7T4"


def test_login_failed_fixture_has_numeric_code() -> None:
    event = call_and_answer("ddp_result_error_login_failed.json")
    assert event.error is not None
    assert event.error.error == 403
    assert event.error.code == "403"
    assert event.error.reason == "Incorrect password"
    assert not event.error.is_rate_limit


def test_too_many_requests_fixture() -> None:
    event = call_and_answer("ddp_result_error_too_many_requests.json")
    assert event.error is not None
    assert event.error.code == "too-many-requests"
    assert event.error.is_rate_limit
    assert event.error.retry_after_ms == 53009


# --- handshake, heartbeat -------------------------------------------------------------------------


def test_handshake_ignores_server_id_preamble() -> None:
    proto = DDPProtocol()
    proto.connect()
    assert sent(proto) == [{"msg": "connect", "version": "1", "support": ["1"]}]
    assert feed(proto, {"server_id": "0"}) == []
    assert proto.state is State.CONNECTING
    assert feed(proto, {"msg": "connected", "session": "S1"}) == [SessionStarted("S1")]
    assert proto.state is State.OPEN
    assert proto.session == "S1"


def test_handshake_failed() -> None:
    proto = DDPProtocol()
    assert feed(proto, {"msg": "failed", "version": "pre2"}) == [SessionFailed("pre2")]
    assert proto.state is State.FAILED


@pytest.mark.parametrize(
    ("ping", "pong"),
    [({"msg": "ping"}, {"msg": "pong"}), ({"msg": "ping", "id": "x7"}, {"msg": "pong", "id": "x7"})],
)
def test_server_ping_is_answered_at_once(ping: dict[str, Any], pong: dict[str, Any]) -> None:
    proto = DDPProtocol()
    assert feed(proto, ping) == []
    assert sent(proto) == [pong]


def test_client_ping_and_pong() -> None:
    proto = DDPProtocol()
    ping_id = proto.send_ping()
    assert sent(proto) == [{"msg": "ping", "id": ping_id}]
    assert feed(proto, {"msg": "pong", "id": ping_id}) == [Pong(ping_id)]
    assert feed(proto, {"msg": "pong"}) == [Pong(None)]


# --- methods ----------------------------------------------------------------------------------------


def test_results_out_of_order_and_absent_result() -> None:
    proto = DDPProtocol()
    first = proto.call("a", [1])
    second = proto.call("b", ["x", {"y": 2}])
    frames = sent(proto)
    assert frames == [
        {"msg": "method", "method": "a", "id": first, "params": [1]},
        {"msg": "method", "method": "b", "id": second, "params": ["x", {"y": 2}]},
    ]
    assert first != second
    assert feed(proto, {"msg": "result", "id": second, "result": [1, 2]}) == [CallResult(second, [1, 2])]
    assert feed(proto, {"msg": "result", "id": first}) == [CallResult(first, None)]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"error": 404, "reason": "Method 'x' not found"}, "404"),
        ({"error": "error-not-allowed", "reason": "Not allowed"}, "error-not-allowed"),
        ({"error": 403.0}, "403"),
        ({"reason": "no code"}, "unknown-error"),
        ("not an object", "malformed-error"),
    ],
)
def test_error_codes_string_or_number(error: Any, code: str) -> None:
    proto = DDPProtocol()
    call_id = proto.call("x")
    (event,) = feed(proto, {"msg": "result", "id": call_id, "error": error})
    assert isinstance(event, CallResult)
    assert event.error is not None
    assert event.error.code == code


def test_ddp_error_without_details() -> None:
    err = DDPError.from_wire({"error": "too-many-requests", "details": {"timeToReset": "soon"}})
    assert err.is_rate_limit
    assert err.retry_after_ms is None


def test_result_for_unknown_call_is_rejected() -> None:
    proto = DDPProtocol()
    (event,) = feed(proto, {"msg": "result", "id": "999", "result": 1})
    assert isinstance(event, FrameRejected)
    assert "999" in event.reason


def test_login_frames() -> None:
    proto = DDPProtocol()
    proto.login_with_token("PAT-secret")
    proto.login_with_password("modbot", "hunter2")
    token_frame, password_frame = sent(proto)
    assert token_frame["params"] == [{"resume": "PAT-secret"}]
    digest = hashlib.sha256(b"hunter2").hexdigest()
    assert password_frame["params"] == [
        {"user": {"username": "modbot"}, "password": {"digest": digest, "algorithm": "sha-256"}}
    ]
    assert "hunter2" not in json.dumps(password_frame)
    assert password_digest("hunter2") == digest


@pytest.mark.parametrize("result", [None, {}, {"id": ""}, {"id": 5}, "x"])
def test_login_user_id_rejects_malformed(result: Any) -> None:
    with pytest.raises(ValueError):
        login_user_id(result)


# --- subscriptions ----------------------------------------------------------------------------------


def test_subscribe_ready_and_unsub() -> None:
    proto = DDPProtocol()
    a = proto.subscribe("stream-room-messages", "__my_messages__")
    b = proto.subscribe("stream-notify-user", "U1/rooms-changed")
    assert sent(proto) == [
        {"msg": "sub", "id": a, "name": "stream-room-messages", "params": ["__my_messages__", False]},
        {"msg": "sub", "id": b, "name": "stream-notify-user", "params": ["U1/rooms-changed", False]},
    ]
    assert feed(proto, {"msg": "ready", "subs": [a, b, "unknown"]}) == [
        SubscriptionReady(a),
        SubscriptionReady(b),
    ]
    proto.unsubscribe(a)
    assert sent(proto) == [{"msg": "unsub", "id": a}]
    assert feed(proto, {"msg": "nosub", "id": a}) == [SubscriptionEnded(a)]


def test_nosub_not_allowed_fixture() -> None:
    frame = fixture("ddp_nosub_not_allowed.json")
    proto = DDPProtocol()
    for _ in range(7):
        sub_id = proto.subscribe("stream-notify-room", "R1/deleteMessage")
    frame["id"] = sub_id
    assert feed(proto, frame) == [
        SubscriptionFailed(
            sub_id=sub_id,
            name="stream-notify-room",
            error="not-allowed",
            retry_after_ms=None,
            event_name="R1/deleteMessage",
        )
    ]
    assert proto.subscription(sub_id) is None


def test_nosub_too_many_requests() -> None:
    proto = DDPProtocol()
    sub_id = proto.subscribe("stream-notify-room", "R1/deleteMessageBulk")
    error = fixture("ddp_result_error_too_many_requests.json")["error"]
    (event,) = feed(proto, {"msg": "nosub", "id": sub_id, "error": error})
    assert isinstance(event, SubscriptionFailed)
    assert event.error == "too-many-requests"
    assert event.retry_after_ms == 53009


# --- stream routing details -------------------------------------------------------------------------


def stream_frame(collection: str, event_name: str, args: list[Any]) -> dict[str, Any]:
    return {
        "msg": "changed",
        "collection": collection,
        "id": "id",
        "fields": {"eventName": event_name, "args": args},
    }


def test_old_server_wraps_message_in_a_list() -> None:
    frame = fixture("ddp_stream_my_messages_new.json")
    message, hint = frame["fields"]["args"]
    frame["fields"]["args"] = [[message], hint]
    (event,) = feed(DDPProtocol(), frame)
    assert isinstance(event, NewMessage)
    assert event.room.participant is True
    assert event.message.id == "8gMsLe9A7pZjo2D2iB"


def test_routing_ignores_frame_id() -> None:
    frame = fixture("ddp_stream_notify_room_deleteMessage.json")
    frame["id"] = "something-else"
    (event,) = feed(DDPProtocol(), frame)
    assert isinstance(event, MessageDeleted)


def test_edited_thread_reply_is_an_edit_and_e2e_beats_edit() -> None:
    frame = fixture("ddp_stream_message_thread_reply.json")
    frame["fields"]["args"][0]["editedAt"] = {"$date": 1688421600000}
    (event,) = feed(DDPProtocol(), frame)
    assert isinstance(event, EditedMessage)
    assert event.message.tmid == "8gMsLe9A7pZjo2D2iB"
    e2e = fixture("ddp_stream_message_e2e.json")
    e2e["fields"]["args"][0]["editedAt"] = {"$date": 1759172829000}
    (event,) = feed(DDPProtocol(), e2e)
    assert isinstance(event, EncryptedMessage)


def test_tombstone_without_author_still_deletes() -> None:
    frame = fixture("ddp_stream_message_deleted_tombstone.json")
    del frame["fields"]["args"][0]["u"]
    (event,) = feed(DDPProtocol(), frame)
    assert event == MessageDeleted(
        rid="64a1f373376181965ab77f54",
        mid="8gMsLe9A7pZjo2D2iB",
        via="tombstone",
        at=ms(1688422000000),
        by="aobEdbYhXfu5hkeqG",
    )


def test_bulk_delete_exclusive_bounds_ids_and_files_only() -> None:
    spec = {
        "rid": "R1",
        "ts": {"$gt": {"$date": 1000}, "$lt": {"$date": 2000}},
        "ids": ["m1", "m2"],
        "filesOnly": True,
        "ignoreDiscussion": False,
    }
    (event,) = feed(DDPProtocol(), stream_frame("stream-notify-room", "R1/deleteMessageBulk", [spec]))
    assert event == BulkDeleted(
        rid="R1",
        ids=("m1", "m2"),
        usernames=(),
        oldest=ms(1000),
        latest=ms(2000),
        oldest_inclusive=False,
        latest_inclusive=False,
        exclude_pinned=False,
        ignore_discussion=False,
        files_only=True,
    )


def test_bulk_delete_without_ts_or_rid_in_body() -> None:
    (event,) = feed(DDPProtocol(), stream_frame("stream-notify-room", "R9/deleteMessageBulk", [{}]))
    assert event == BulkDeleted(rid="R9")


def test_subscription_removed_and_rooms_changed_and_user_notice() -> None:
    proto = DDPProtocol()
    (removed,) = feed(
        proto, stream_frame("stream-notify-user", "U1/subscriptions-changed", ["removed", {"_id": "S1"}])
    )
    assert removed == SubscriptionChanged(action="removed", rid="", subscription_id="S1")
    room = {"_id": "R1", "t": "c", "name": "general", "announcement": "be nice"}
    (changed,) = feed(proto, stream_frame("stream-notify-user", "U1/rooms-changed", ["updated", room]))
    assert isinstance(changed, RoomChanged)
    assert (changed.action, changed.rid, changed.room) == ("updated", "R1", room)
    notice = {"_id": "1700000000000", "rid": "R1", "msg": "You may not use @all", "ts": {"$date": 1}}
    (event,) = feed(proto, stream_frame("stream-notify-user", "U1/message", [notice]))
    assert isinstance(event, UserNotice)
    assert event.message.author.username == "rocket.cat"
    assert event.message.rid == "R1"


@pytest.mark.parametrize(
    "frame",
    [
        {"msg": "added", "collection": "users", "id": "U1", "fields": {"username": "bot"}},
        {"msg": "changed", "collection": "users", "id": "U1", "fields": {"status": "online"}},
        {"msg": "removed", "collection": "users", "id": "U1"},
        {"msg": "updated", "methods": ["1"]},
        stream_frame("stream-notify-room", "R1/typing", ["alice", True]),
        stream_frame("stream-notify-user", "U1/notification", [{}]),
        stream_frame("stream-notify-logged", "user-status", [["U1", "alice", 1]]),
        {"msg": "added", "collection": "stream-room-messages", "id": "id", "fields": {}},
    ],
)
def test_ignored_frames(frame: dict[str, Any]) -> None:
    proto = DDPProtocol()
    assert feed(proto, frame) == []
    assert proto.data_to_send() == []


# --- bad input never raises; the next frame still works ----------------------------------------------

GOOD = json.dumps(fixture("ddp_stream_notify_room_deleteMessage.json"))
BIG_TEXT = "x" * (10 * 1024 * 1024)


def broken_message(**changes: Any) -> dict[str, Any]:
    frame = copy.deepcopy(fixture("ddp_stream_my_messages_new.json"))
    message = frame["fields"]["args"][0]
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return frame


BAD_INPUT: list[tuple[str, Any, str]] = [
    ("malformed json", '{"msg": "ping"', "malformed JSON"),
    ("truncated", GOOD[: len(GOOD) // 2], "malformed JSON"),
    ("not utf-8", b'{"msg":"ping","id":"\xff\xfe"}', "not UTF-8"),
    ("array frame", "[1, 2, 3]", "not an object"),
    ("string frame", '"hello"', "not an object"),
    ("empty", "", "malformed JSON"),
    ("unknown msg", {"msg": "teleport"}, "unknown msg type (a 8-character string)"),
    ("msg not a string", {"msg": 5}, "unknown msg type"),
    ("message without _id", broken_message(_id=None), "_id"),
    ("message without u", broken_message(u=None), "message.u"),
    ("message without ts", broken_message(ts=None), "ts"),
    ("message with bad ts", broken_message(ts={"$date": "soon"}), "ts"),
    ("message text not a string", broken_message(msg=["x"]), "msg"),
    (
        "message not an object",
        {**fixture("ddp_stream_room_messages_new.json"), "fields": {"eventName": "R", "args": [7]}},
        "message",
    ),
    (
        "no args",
        {"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": {"eventName": "R"}},
        "args",
    ),
    (
        "fields not an object",
        {"msg": "changed", "collection": "stream-notify-room", "id": "id", "fields": 3},
        "fields",
    ),
    ("empty args", stream_frame("stream-room-messages", "R1", []), "no args"),
    ("deleteMessage without _id", stream_frame("stream-notify-room", "R1/deleteMessage", [{}]), "_id"),
    (
        "bulk with bad users",
        stream_frame("stream-notify-room", "R1/deleteMessageBulk", [{"users": "bob"}]),
        "users",
    ),
    (
        "bulk with bad ts",
        stream_frame("stream-notify-room", "R1/deleteMessageBulk", [{"ts": {"$gte": "x"}}]),
        "$gte",
    ),
    (
        "subscriptions-changed bad",
        stream_frame("stream-notify-user", "U/subscriptions-changed", ["inserted"]),
        "[action, object]",
    ),
    (
        "subscription without rid",
        stream_frame("stream-notify-user", "U/subscriptions-changed", ["inserted", {"_id": "S"}]),
        "rid",
    ),
    (
        "rooms-changed without _id",
        stream_frame("stream-notify-user", "U/rooms-changed", ["updated", {}]),
        "_id",
    ),
    ("user message bad", stream_frame("stream-notify-user", "U/message", []), "user message"),
    ("connected without session", {"msg": "connected"}, "session"),
    ("result without id", {"msg": "result", "result": 1}, "without id"),
    ("ready without subs", {"msg": "ready"}, "without subs"),
    ("nosub without id", {"msg": "nosub"}, "without id"),
    (
        "server error frame",
        {"msg": "error", "reason": "Bad request", "offendingMessage": {"msg": "x"}},
        "server error",
    ),
    ("huge int", '{"msg":"result","id":"1","result":' + "9" * 5000 + "}", "unparseable"),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "unparseable"),
    ("10 MB message", json.dumps(broken_message(msg=BIG_TEXT)), "too large"),
]


@pytest.mark.parametrize(("case", "frame", "reason"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_rejected_and_the_next_frame_works(case: str, frame: Any, reason: str) -> None:
    proto = DDPProtocol()
    proto.call("login")  # so a result for call "1" is expected
    events = feed(proto, frame)
    assert len(events) == 1, case
    rejected = events[0]
    assert isinstance(rejected, FrameRejected)
    assert reason in rejected.reason
    assert rejected.size == len(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    # The reason names the problem, never the content.
    assert "Hello World" not in rejected.reason and "xxxx" not in rejected.reason
    (event,) = feed(proto, GOOD)
    assert isinstance(event, MessageDeleted)


def test_size_limit_is_configurable() -> None:
    proto = DDPProtocol(max_message_size=100)
    (event,) = feed(proto, {"msg": "ping", "id": "x" * 200})
    assert isinstance(event, FrameRejected)
    assert proto.data_to_send() == []
    assert feed(proto, {"msg": "ping"}) == []
    assert sent(proto) == [{"msg": "pong"}]


@pytest.mark.parametrize(
    ("frame", "echoed"),
    [
        ('{"msg":"ping","id":"\\ud800"}', "\ud800"),  # a lone surrogate: valid JSON, not UTF-8
        ('{"msg":"ping","id":"a\\udfffb"}', "a\udfffb"),
        ('{"msg":"ping","id":{"x":1}}', None),  # not a string: a pong all the same, without it
        ('{"msg":"ping","id":12}', None),
    ],
)
def test_odd_ping_ids_are_answered_with_frames_that_can_be_sent(frame: str, echoed: str | None) -> None:
    proto = DDPProtocol()
    proto.receive_text(frame)
    [pong] = proto.data_to_send()
    pong.encode("utf-8")  # the websocket sends UTF-8: a frame that cannot be encoded forces a reconnect
    assert json.loads(pong) == ({"msg": "pong", "id": echoed} if echoed is not None else {"msg": "pong"})
    assert proto.events_received() == []
