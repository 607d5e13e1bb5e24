"""The asyncio driver against a small DDP server on a real socket (websockets.serve, 127.0.0.1).

Waits the client chooses (backoff, pacing, rate limits) go through an injected sleep that records
them and returns at once; heartbeat tests use intervals of a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve

from bot.realtime.backoff import exponential_backoff
from bot.realtime.client import (
    CallTimeout,
    ConnectionLost,
    LoginFailed,
    MethodError,
    PasswordCredentials,
    ProtocolViolation,
    RateLimited,
    RealtimeClient,
    TokenCredentials,
    as_credentials,
    websocket_url,
)
from bot.realtime.events import (
    Connected,
    Disconnected,
    Event,
    FrameRejected,
    MessageDeleted,
    NewMessage,
    SubscriptionFailed,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fixtures"
USER_ID = "BOTuid0000000001"
TOKEN = "PAT-sekrit-7f3a9c"
USERNAME = "rcmod.bot"
PASSWORD = "pw-sekrit-42!"
DIGEST = hashlib.sha256(PASSWORD.encode()).hexdigest()
TOO_MANY = json.loads((FIXTURES / "ddp_result_error_too_many_requests.json").read_text())["error"]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


# --- a small DDP server -----------------------------------------------------------------------------


class FakeRocketChat:
    """Enough of Rocket.Chat's DDP server to drive the client: handshake, login, subs, methods."""

    def __init__(self) -> None:
        self.url = ""
        self.connections: list[ServerConnection] = []
        self.received: list[list[dict[str, Any]]] = []  # per connection
        self.answer_pings = True
        self.login_user_id = USER_ID
        self.refuse = 0  # close the next N connections right after they open
        self.sub_errors: dict[str, list[dict[str, Any]]] = {}  # event name -> errors to answer first
        self.held: dict[str, dict[str, Any]] = {}  # method calls not answered yet, by method name
        self.login_errors: list[dict[str, Any]] = []  # errors to answer the next logins with
        self.after_ready: dict[str, dict[str, Any]] = {}  # event name -> frame sent right after ready
        self.unanswered: dict[str, int] = {}  # event name -> subscriptions to leave unanswered first

    async def handler(self, ws: ServerConnection) -> None:
        if self.refuse:
            self.refuse -= 1
            await ws.close(1011, "try later")
            return
        self.connections.append(ws)
        frames: list[dict[str, Any]] = []
        self.received.append(frames)
        await ws.send(json.dumps({"server_id": "0"}))
        with contextlib.suppress(Exception):
            async for raw in ws:
                frame = json.loads(raw)
                frames.append(frame)
                await self.answer(ws, frame)

    async def answer(self, ws: ServerConnection, frame: dict[str, Any]) -> None:
        kind = frame.get("msg")
        if kind == "connect":
            await send(ws, {"msg": "connected", "session": f"sess-{len(self.connections)}"})
        elif kind == "ping" and self.answer_pings:
            await send(ws, {"msg": "pong", **({"id": frame["id"]} if "id" in frame else {})})
        elif kind == "method" and frame["method"] == "login":
            await send(ws, {"msg": "result", "id": frame["id"], **self.login(frame["params"][0])})
        elif kind == "method":
            await self.method(ws, frame)
        elif kind == "sub":
            errors = self.sub_errors.get(frame["params"][0])
            if self.unanswered.get(frame["params"][0], 0) > 0:
                self.unanswered[frame["params"][0]] -= 1
            elif errors:
                await send(ws, {"msg": "nosub", "id": frame["id"], "error": errors.pop(0)})
            else:
                await send(ws, {"msg": "ready", "subs": [frame["id"]]})
                if frame["params"][0] in self.after_ready:
                    await send(ws, self.after_ready.pop(frame["params"][0]))
        elif kind == "unsub":
            await send(ws, {"msg": "nosub", "id": frame["id"]})

    def login(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.login_errors:
            return {"error": self.login_errors.pop(0)}
        ok = params.get("resume") == TOKEN or (
            params.get("user") == {"username": USERNAME}
            and params.get("password") == {"digest": DIGEST, "algorithm": "sha-256"}
        )
        if not ok:
            return {"error": {"error": 403, "reason": "Incorrect password", "errorType": "Meteor.Error"}}
        return {"result": {"id": self.login_user_id, "token": "fresh", "type": "resume"}}

    async def method(self, ws: ServerConnection, frame: dict[str, Any]) -> None:
        name, params, call_id = frame["method"], frame["params"], frame["id"]
        if name == "echo":
            await send(ws, {"msg": "result", "id": call_id, "result": params})
        elif name == "nothing":
            await send(ws, {"msg": "result", "id": call_id})
        elif name == "forbidden":
            error = {
                "error": "error-action-not-allowed",
                "reason": "Not allowed",
                "errorType": "Meteor.Error",
            }
            await send(ws, {"msg": "result", "id": call_id, "error": error})
        elif name == "busy":
            await send(ws, {"msg": "result", "id": call_id, "error": TOO_MANY})
        elif name == "release":  # answer a held call after this one: out of order
            await send(ws, {"msg": "result", "id": call_id, "result": "released"})
            held = self.held.pop(params[0])
            await send(ws, {"msg": "result", "id": held["id"], "result": held["params"]})
        else:  # "slow" and anything else: held, never answered unless released
            self.held[name] = frame

    @property
    def ws(self) -> ServerConnection:
        return self.connections[-1]

    async def push(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def subs(self, connection: int = -1) -> list[str]:
        return [f["params"][0] for f in self.received[connection] if f.get("msg") == "sub"]

    def drop(self) -> None:
        """Kill the TCP connection without a close frame, like a crashed proxy."""
        self.ws.transport.abort()


async def send(ws: ServerConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


@pytest.fixture
async def server() -> AsyncIterator[FakeRocketChat]:
    fake = FakeRocketChat()
    # The fake server logs under its own name so the log test can tell it from the client.
    async with serve(fake.handler, "127.0.0.1", 0, logger=logging.getLogger("fake.server")) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        yield fake


class Sleeps:
    """The injected sleep: records every delay the client chooses and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def make_client(server: FakeRocketChat, sleeps: Sleeps, **kwargs: Any) -> RealtimeClient:
    options: dict[str, Any] = {
        "sleep": sleeps,
        "backoff": lambda: exponential_backoff(initial=1.0, maximum=8.0, rng=lambda: 0.5),
        "room_sub_interval": 0.25,
        "call_timeout": 2.0,
        "open_timeout": 2.0,
        "close_timeout": 0.5,
    }
    options.update(kwargs)
    creds = options.pop("credentials", TokenCredentials(user_id=USER_ID, token=SecretStr(TOKEN)))
    return RealtimeClient(server.url, creds, **options)


async def expect(events: AsyncIterator[Event], kind: type, within: float = 5.0) -> Any:
    """The next event of this type; FrameRejected on the way is tolerated, anything else is not."""
    while True:
        event = await asyncio.wait_for(anext(events), within)
        if isinstance(event, kind):
            return event
        assert isinstance(event, FrameRejected), f"expected {kind.__name__}, got {event!r}"


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll state the fake server or the client exposes (neither offers an event to wait on)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(client: RealtimeClient) -> AsyncIterator[AsyncIterator[Event]]:
    events = client.events()
    try:
        yield events
    finally:
        await client.close()
        await events.aclose()  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def watching_room1(
    server: FakeRocketChat, client: RealtimeClient
) -> AsyncIterator[AsyncIterator[Event]]:
    """``client`` running, connected and subscribed to room ROOM1's streams."""
    client.watch_room("ROOM1")
    async with running(client) as events:
        await expect(events, Connected)
        await until(lambda: "ROOM1/deleteMessageBulk" in server.subs())
        yield events


# --- pure bits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://chat.example.com", "wss://chat.example.com/websocket"),
        ("https://chat.example.com/", "wss://chat.example.com/websocket"),
        ("http://localhost:3000", "ws://localhost:3000/websocket"),
        ("https://example.com/rc/", "wss://example.com/rc/websocket"),
        ("https://example.com:8443/rc?x=1#y", "wss://example.com:8443/rc/websocket"),
        ("https://user:pw@example.com", "wss://example.com/websocket"),
        ("wss://example.com/websocket", "wss://example.com/websocket"),
    ],
)
def test_websocket_url(url: str, expected: str) -> None:
    assert websocket_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "https://"])
def test_websocket_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        websocket_url(url)


def test_credentials_keep_secrets_out_of_repr() -> None:
    token = TokenCredentials(user_id=USER_ID, token=TOKEN)  # type: ignore[arg-type]
    password = PasswordCredentials(username=USERNAME, password=PASSWORD)  # type: ignore[arg-type]
    for creds in (token, password):
        for text in (repr(creds), str(creds), creds.model_dump_json()):
            assert TOKEN not in text and PASSWORD not in text
    assert USER_ID in repr(token) and USERNAME in repr(password)
    with pytest.raises(ValueError):
        token.__setattr__("user_id", "other")


def test_settings_shaped_credentials_are_accepted() -> None:
    from bot.config import Credentials as SettingsCredentials

    token = as_credentials(SettingsCredentials(user_id=USER_ID, token=SecretStr(TOKEN)))
    assert isinstance(token, TokenCredentials) and token.token.get_secret_value() == TOKEN
    password = as_credentials(SettingsCredentials(username=USERNAME, password=SecretStr(PASSWORD)))
    assert isinstance(password, PasswordCredentials) and password.username == USERNAME
    with pytest.raises(ValueError) as info:
        as_credentials(SettingsCredentials(user_id=USER_ID))
    assert TOKEN not in str(info.value)


def test_backoff_is_exponential_capped_and_jitter_bounded() -> None:
    top = exponential_backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5, rng=lambda: 0.0)
    assert [next(top) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    bottom = exponential_backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5, rng=lambda: 1.0)
    assert [next(bottom) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    real = exponential_backoff(initial=1.0, maximum=60.0)
    for step in range(12):
        base = min(2.0**step, 60.0)
        assert base / 2 <= next(real) <= base
    with pytest.raises(ValueError):
        next(exponential_backoff(jitter=2.0))


# --- sessions -------------------------------------------------------------------------------------------


async def test_token_login_subscriptions_and_events(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    assert not client.connected and not client.logged_in and not client.subscribed
    async with running(client) as events:
        connected = await expect(events, Connected)
        assert connected == Connected(session="sess-1", user_id=USER_ID, reconnect=False)
        assert client.connected and client.logged_in and client.subscribed
        assert client.user_id == USER_ID
        frames = server.received[0]
        assert frames[0] == {"msg": "connect", "version": "1", "support": ["1"]}
        assert frames[1]["method"] == "login" and frames[1]["params"] == [{"resume": TOKEN}]
        assert server.subs() == [
            "__my_messages__",
            f"{USER_ID}/subscriptions-changed",
            f"{USER_ID}/rooms-changed",
            f"{USER_ID}/message",
        ]
        await server.push(fixture("ddp_stream_my_messages_new.json"))
        await server.push(fixture("ddp_stream_notify_room_deleteMessage.json"))
        message = await expect(events, NewMessage)
        assert message.message.id == "8gMsLe9A7pZjo2D2iB" and message.room.participant is True
        deleted = await expect(events, MessageDeleted)
        assert deleted.via == "notify"
    assert not client.connected


async def test_password_login_sends_digest(server: FakeRocketChat) -> None:
    creds = PasswordCredentials(username=USERNAME, password=SecretStr(PASSWORD))
    client = make_client(server, Sleeps(), credentials=creds)
    async with running(client) as events:
        connected = await expect(events, Connected)
        assert connected.user_id == USER_ID
    login = server.received[0][1]
    assert login["params"][0]["password"] == {"digest": DIGEST, "algorithm": "sha-256"}
    assert PASSWORD not in json.dumps(server.received)


@pytest.mark.parametrize(
    ("credentials", "login_user_id", "match"),
    [
        (PasswordCredentials(username=USERNAME, password=SecretStr("wrong")), USER_ID, "403"),
        (TokenCredentials(user_id=USER_ID, token=SecretStr("stale")), USER_ID, "403"),
        (TokenCredentials(user_id=USER_ID, token=SecretStr(TOKEN)), "SOMEONEELSE", "SOMEONEELSE"),
    ],
)
async def test_login_failure_is_fatal_not_retried(
    server: FakeRocketChat, credentials: Any, login_user_id: str, match: str
) -> None:
    server.login_user_id = login_user_id
    sleeps = Sleeps()
    client = make_client(server, sleeps, credentials=credentials)
    with pytest.raises(LoginFailed, match=match) as info:
        async for _ in client.events():
            pass
    assert len(server.connections) == 1
    assert sleeps.delays == []
    assert "wrong" not in str(info.value) and "stale" not in str(info.value)
    assert not client.logged_in


async def test_rate_limited_login_waits_and_reconnects(server: FakeRocketChat) -> None:
    server.login_errors = [TOO_MANY]
    sleeps = Sleeps()
    client = make_client(server, sleeps)
    async with running(client) as events:
        connected = await expect(events, Connected)
        assert connected.reconnect is False  # the first session never got as far as Connected
    assert len(server.connections) == 2
    assert sleeps.delays == [pytest.approx(53.009)]  # longer than the backoff's 0.75 s


async def test_refused_ddp_version_is_a_protocol_violation(server: FakeRocketChat) -> None:
    async def failing_answer(ws: ServerConnection, frame: dict[str, Any]) -> None:
        await send(ws, {"msg": "failed", "version": "pre2"})

    server.answer = failing_answer  # type: ignore[method-assign]
    client = make_client(server, Sleeps())
    with pytest.raises(ProtocolViolation, match="pre2"):
        async for _ in client.events():
            pass


async def test_drop_backoff_reconnect_relogin_resubscribe(server: FakeRocketChat) -> None:
    sleeps = Sleeps()
    client = make_client(server, sleeps)
    async with watching_room1(server, client) as events:
        await until(lambda: sleeps.delays.count(0.25) == 2)
        client.watch_room("ROOM2")
        await until(lambda: "ROOM2/deleteMessageBulk" in server.subs())
        server.refuse = 2  # the next two attempts fail before the handshake
        server.drop()
        disconnected = await expect(events, Disconnected)
        assert disconnected.reason == "closed 1006"
        again = await expect(events, Connected)
        assert again.reconnect is True and again.session == "sess-2"
        await until(lambda: "ROOM2/deleteMessageBulk" in server.subs(1))
        assert server.subs(1) == [
            "__my_messages__",
            f"{USER_ID}/subscriptions-changed",
            f"{USER_ID}/rooms-changed",
            f"{USER_ID}/message",
            "ROOM1/deleteMessage",
            "ROOM1/deleteMessageBulk",
            "ROOM2/deleteMessage",
            "ROOM2/deleteMessageBulk",
        ]
        assert [f["method"] for f in server.received[1] if f.get("msg") == "method"] == ["login"]
        # Three attempts after the drop: jittered exponential delays (rng fixed at 0.5 → 0.75 × base).
        backoff = [d for d in sleeps.delays if d != 0.25]
        assert backoff == [0.75, 1.5, 3.0]
        await server.push(fixture("ddp_stream_room_messages_new.json"))
        await expect(events, NewMessage)


async def test_backoff_resets_after_a_stable_connection(server: FakeRocketChat) -> None:
    now = [1000.0]
    sleeps = Sleeps()
    client = make_client(server, sleeps, clock=lambda: now[0], stable_after=60.0)
    async with running(client) as events:
        await expect(events, Connected)
        server.drop()  # short-lived: backoff goes on growing
        await expect(events, Disconnected)
        await expect(events, Connected)
        server.drop()
        await expect(events, Disconnected)
        await expect(events, Connected)
        now[0] += 61.0  # this one stayed up long enough
        server.drop()
        await expect(events, Disconnected)
        await expect(events, Connected)
    assert sleeps.delays == [0.75, 1.5, 0.75]


async def test_connected_comes_before_events_that_race_it(server: FakeRocketChat) -> None:
    server.after_ready[f"{USER_ID}/message"] = fixture("ddp_stream_my_messages_new.json")
    client = make_client(server, Sleeps())
    async with running(client) as events:
        assert isinstance(await asyncio.wait_for(anext(events), 5), Connected)
        assert isinstance(await asyncio.wait_for(anext(events), 5), NewMessage)


async def test_server_ending_a_base_subscription_forces_reconnect(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    async with running(client) as events:
        await expect(events, Connected)
        my_messages = next(f["id"] for f in server.received[0] if f.get("msg") == "sub")
        await server.push({"msg": "nosub", "id": my_messages})
        assert "base subscription" in (await expect(events, Disconnected)).reason
        assert (await expect(events, Connected)).reconnect


async def test_server_ping_is_answered(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    async with running(client) as events:
        await expect(events, Connected)
        await server.push({"msg": "ping", "id": "srv-1"})
        await until(lambda: {"msg": "pong", "id": "srv-1"} in server.received[0])


async def test_client_pings_when_silent_and_reconnects_without_pong(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps(), ping_interval=0.05, pong_timeout=0.1)
    async with running(client) as events:
        await expect(events, Connected)
        await until(lambda: any(f.get("msg") == "ping" for f in server.received[0]))
        assert client.connected  # pongs came back: still up
        server.answer_pings = False
        disconnected = await expect(events, Disconnected)
        assert "no pong" in disconnected.reason
        assert (await expect(events, Connected)).reconnect


async def test_frame_over_max_size_reconnects(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps(), max_frame_size=64 * 1024)
    async with running(client) as events:
        await expect(events, Connected)
        big = fixture("ddp_stream_room_messages_new.json")
        big["fields"]["args"][0]["msg"] = "x" * (100 * 1024)
        await server.push(big)
        disconnected = await expect(events, Disconnected)
        assert disconnected.reason == "closed 1009"
        await expect(events, Connected)


async def test_garbage_from_server_is_rejected_and_session_goes_on(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    async with running(client) as events:
        await expect(events, Connected)
        await server.push('{"msg": "changed", "collection": "stream-room-m')
        await server.push(fixture("ddp_stream_room_messages_new.json"))
        rejected = await asyncio.wait_for(anext(events), 5)
        assert isinstance(rejected, FrameRejected) and "malformed JSON" in rejected.reason
        await expect(events, NewMessage)
        assert client.connected


# --- calls ------------------------------------------------------------------------------------------------


async def test_calls_results_errors_and_out_of_order(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    with pytest.raises(ConnectionLost, match="not connected"):
        await client.call("echo", 1)
    async with running(client) as events:
        await expect(events, Connected)
        assert await client.call("echo", 1, {"a": "b"}) == [1, {"a": "b"}]
        assert await client.call("nothing") is None
        with pytest.raises(MethodError) as refused:
            await client.call("forbidden", "R1")
        assert refused.value.code == "error-action-not-allowed" and refused.value.reason == "Not allowed"
        with pytest.raises(RateLimited) as limited:
            await client.call("busy")
        assert limited.value.retry_after == pytest.approx(53.009)
        held = asyncio.create_task(client.call("held", "first"))
        await until(lambda: "held" in server.held)
        assert await client.call("release", "held") == "released"
        assert await held == ["first"]
        with pytest.raises(CallTimeout) as timed_out:
            await client.call("slow", timeout=0.05)
        assert isinstance(timed_out.value, TimeoutError)


async def test_pending_call_fails_when_connection_drops(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    async with running(client) as events:
        await expect(events, Connected)
        pending = asyncio.create_task(client.call("slow"))
        await until(lambda: "slow" in server.held)
        server.drop()
        with pytest.raises(ConnectionLost):
            await pending
        await expect(events, Disconnected)


# --- room subscriptions ------------------------------------------------------------------------------------


async def test_rate_limited_room_subscription_waits_time_to_reset(server: FakeRocketChat) -> None:
    server.sub_errors["ROOM1/deleteMessage"] = [TOO_MANY]
    sleeps = Sleeps()
    client = make_client(server, sleeps)
    async with watching_room1(server, client):
        await until(lambda: len(sleeps.delays) == 3)
    assert server.subs()[4:] == ["ROOM1/deleteMessage", "ROOM1/deleteMessage", "ROOM1/deleteMessageBulk"]
    # wait timeToReset, then the usual pace after each subscription
    assert sleeps.delays == [pytest.approx(53.009), 0.25, 0.25]


async def test_refused_room_subscription_is_reported_not_retried(server: FakeRocketChat) -> None:
    server.sub_errors["SECRET/deleteMessage"] = [fixture("ddp_nosub_not_allowed.json")["error"]]
    client = make_client(server, Sleeps())
    client.watch_room("SECRET")
    client.watch_room("OPEN")
    async with running(client) as events:
        await expect(events, Connected)
        failed = await expect(events, SubscriptionFailed)
        assert (failed.error, failed.event_name) == ("not-allowed", "SECRET/deleteMessage")
        await until(lambda: "OPEN/deleteMessageBulk" in server.subs())
        assert server.subs().count("SECRET/deleteMessage") == 1
        assert "SECRET/deleteMessageBulk" not in server.subs()
        client.watch_room("SECRET")  # e.g. after the bot was added to the room: try again
        await until(lambda: "SECRET/deleteMessageBulk" in server.subs())
        assert server.subs().count("SECRET/deleteMessage") == 2


async def test_an_unanswered_room_subscription_is_asked_again(server: FakeRocketChat) -> None:
    """On a busy connection a subscription's answer can come after the call timeout: that is no
    refusal, so the room is asked again rather than left without its deletion streams."""
    server.unanswered["ROOM1/deleteMessage"] = 1
    client = make_client(server, Sleeps(), call_timeout=0.2)
    async with watching_room1(server, client):
        pass
    assert server.subs().count("ROOM1/deleteMessage") == 2
    assert server.subs().count("ROOM1/deleteMessageBulk") == 1


async def test_a_room_subscription_never_answered_is_given_up_after_a_few_tries(
    server: FakeRocketChat,
) -> None:
    server.unanswered["ROOM1/deleteMessage"] = 10
    client = make_client(server, Sleeps(), call_timeout=0.1)
    client.watch_room("ROOM1")
    client.watch_room("OPEN")
    async with running(client) as events:
        await expect(events, Connected)
        await until(lambda: "OPEN/deleteMessageBulk" in server.subs())
    assert server.subs().count("ROOM1/deleteMessage") == 3
    assert "ROOM1/deleteMessageBulk" not in server.subs()


async def test_unwatch_room_unsubscribes(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    async with watching_room1(server, client) as events:
        sub_ids = [f["id"] for f in server.received[0] if f.get("msg") == "sub"][-2:]
        client.unwatch_room("ROOM1")
        await until(lambda: sum(f.get("msg") == "unsub" for f in server.received[0]) == 2)
        assert [f["id"] for f in server.received[0] if f.get("msg") == "unsub"] == sub_ids
        assert client.watched_rooms == ()
        client.watch_room("ROOM2")  # watched after ROOM1: its subscriptions come after ROOM1's would
        server.drop()
        await expect(events, Disconnected)
        await expect(events, Connected)
        await until(lambda: "ROOM2/deleteMessageBulk" in server.subs(1))
        assert not any(s.startswith("ROOM1/") for s in server.subs(1))


async def test_rate_limited_base_subscription_is_retried(server: FakeRocketChat) -> None:
    server.sub_errors["__my_messages__"] = [TOO_MANY]
    sleeps = Sleeps()
    client = make_client(server, sleeps)
    async with running(client) as events:
        await expect(events, Connected)
    assert server.subs().count("__my_messages__") == 2
    assert sleeps.delays == [pytest.approx(53.009)]


# --- shutdown and logs ---------------------------------------------------------------------------


async def test_close_stops_events_cleanly(server: FakeRocketChat) -> None:
    client = make_client(server, Sleeps())
    seen: list[Event] = []

    async def consume() -> None:
        async for event in client.events():
            seen.append(event)

    consumer = asyncio.create_task(consume())
    await until(lambda: bool(seen))
    await client.close()
    await asyncio.wait_for(consumer, 5)
    assert isinstance(seen[0], Connected)
    assert not client.connected and not client.logged_in


async def test_secrets_never_reach_logs(server: FakeRocketChat, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for creds in (
        TokenCredentials(user_id=USER_ID, token=SecretStr(TOKEN)),
        PasswordCredentials(username=USERNAME, password=SecretStr(PASSWORD)),
    ):
        client = make_client(server, Sleeps(), credentials=creds)
        async with running(client) as events:
            await expect(events, Connected)
            await server.push(fixture("ddp_stream_my_messages_new.json"))
            await expect(events, NewMessage)
            await server.push('{"msg": "changed", "collection": "stream-room-messages", "fields": "Hello W')
            await expect(events, FrameRejected)
            server.drop()
            await expect(events, Disconnected)
            await expect(events, Connected)
            assert repr(client)
    client_records = [r for r in caplog.records if not r.name.startswith("fake.server")]
    assert "rcmod.realtime" in {r.name for r in client_records}
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in client_records)
    for secret in (TOKEN, PASSWORD, DIGEST, "Hello World"):
        assert secret not in text


# --- the connect seam with an in-memory transport ---------------------------------------------------------


class MemoryTransport:
    """A websocket stand-in that answers the handshake, login and subscriptions itself."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str | BaseException] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    async def recv(self) -> str | bytes:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def send(self, message: str) -> None:
        frame = json.loads(message)
        self.sent.append(frame)
        if frame["msg"] == "connect":
            self.inbox.put_nowait(json.dumps({"msg": "connected", "session": "mem"}))
        elif frame["msg"] == "method":
            result = {"id": USER_ID}
            self.inbox.put_nowait(json.dumps({"msg": "result", "id": frame["id"], "result": result}))
        elif frame["msg"] == "sub":
            self.inbox.put_nowait(json.dumps({"msg": "ready", "subs": [frame["id"]]}))

    async def close(self) -> None:
        self.closed = True


async def test_injected_connect_and_unexpected_transport_error() -> None:
    opened: list[tuple[str, dict[str, Any], MemoryTransport]] = []

    async def connect(url: str, **kwargs: Any) -> MemoryTransport:
        transport = MemoryTransport()
        opened.append((url, kwargs, transport))
        return transport

    client = RealtimeClient(
        "https://chat.example.com/rc",
        TokenCredentials(user_id=USER_ID, token=SecretStr(TOKEN)),
        connect=connect,
        sleep=Sleeps(),
    )
    async with running(client) as events:
        await expect(events, Connected)
        url, kwargs, first = opened[0]
        assert url == "wss://chat.example.com/rc/websocket"
        assert kwargs["max_size"] == 16 * 1024 * 1024 and kwargs["ping_interval"] is None
        first.inbox.put_nowait(RuntimeError("socket exploded"))
        assert (await expect(events, Disconnected)).reason == "RuntimeError"
        assert first.closed
        assert (await expect(events, Connected)).reconnect
        assert len(opened) == 2
