"""Backpressure: a consumer slower than the server bounds the client's memory, loses nothing, and
neither the heartbeat nor a call made from the consumer suffers from it.

An in-memory transport plays a server whose frames are all "in the pipe" at once, in order:
whatever it answers (a pong, a call result) comes after the frames it sent before. It notes the
client's queue depth each time the reader asks for a frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.metrics import Metrics
from bot.realtime.client import RealtimeClient, TokenCredentials
from bot.realtime.events import Connected, Disconnected, Event, MessageDeleted
from tests.realtime.test_realtime_client import USER_ID, Sleeps, until

BOUND = 100


def deletion(n: int) -> str:
    """Stream frame number ``n``: cheap to parse, and its id tells its place in the stream."""
    return json.dumps(
        {
            "msg": "changed",
            "collection": "stream-notify-room",
            "id": "id",
            "fields": {"eventName": "ROOM1/deleteMessage", "args": [{"_id": f"m{n:07d}"}]},
        }
    )


class PipeTransport:
    def __init__(self) -> None:
        self.pipe: deque[str | Iterator[str]] = deque()
        self.arrived = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.client: RealtimeClient | None = None
        self.depths: list[int] = []
        self.answer_calls_with: Any = "ok"
        self.answer_pings = True

    def offer(self, item: str | Iterator[str]) -> None:
        self.pipe.append(item)
        self.arrived.set()

    async def recv(self) -> str | bytes:
        assert self.client is not None
        self.depths.append(self.client.queue_depth)
        while True:
            while self.pipe:
                head = self.pipe[0]
                if isinstance(head, str):
                    self.pipe.popleft()
                    return head
                frame = next(head, None)
                if frame is not None:
                    return frame
                self.pipe.popleft()
            self.arrived.clear()
            await self.arrived.wait()

    async def send(self, message: str) -> None:
        frame = json.loads(message)
        self.sent.append(frame)
        kind = frame["msg"]
        if kind == "connect":
            self.offer(json.dumps({"msg": "connected", "session": "pipe"}))
        elif kind == "method":
            result = {"id": USER_ID} if frame["method"] == "login" else self.answer_calls_with
            self.offer(json.dumps({"msg": "result", "id": frame["id"], "result": result}))
        elif kind == "sub":
            self.offer(json.dumps({"msg": "ready", "subs": [frame["id"]]}))
        elif kind == "ping" and self.answer_pings:
            self.offer(json.dumps({"msg": "pong", "id": frame["id"]}))

    async def close(self) -> None:
        pass

    def pings(self) -> int:
        return sum(f["msg"] == "ping" for f in self.sent)


def piped_client(transport: PipeTransport, **options: Any) -> RealtimeClient:
    async def connect(url: str, **kwargs: Any) -> PipeTransport:
        return transport

    client = RealtimeClient(
        "https://chat.example.com",
        TokenCredentials(user_id=USER_ID, token=SecretStr("t")),
        connect=connect,
        sleep=Sleeps(),
        queue_size=BOUND,
        **options,
    )
    transport.client = client
    return client


async def take(events: AsyncIterator[Event], deletions: int) -> list[Event]:
    """Events until ``deletions`` MessageDeleted have come."""
    seen: list[Event] = []
    async with asyncio.timeout(60):
        while deletions:
            event = await anext(events)
            seen.append(event)
            deletions -= isinstance(event, MessageDeleted)
    return seen


def mids(events: list[Event]) -> list[str]:
    return [e.mid for e in events if isinstance(e, MessageDeleted)]


async def test_a_paused_consumer_bounds_the_queue_and_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rcmod.realtime")
    total = 100_000
    transport = PipeTransport()
    full = 0

    def count_full() -> None:
        nonlocal full
        full += 1

    client = piped_client(transport, on_queue_full=count_full)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    transport.offer(deletion(n) for n in range(total))
    # The consumer does not ask for anything: the reader reads until the queue is full, then stops.
    await until(lambda: client.reading_paused)  # parked: it reads nothing more until woken
    read = len(transport.depths)
    assert client.queue_depth == BOUND
    assert read < BOUND + 20  # the handshake's frames and the bound, not the 100k on offer
    assert full == 1

    seen = await take(events, total)
    waiting = asyncio.ensure_future(anext(events))  # caught up: the consumer waits for more
    await until(lambda: any("backpressure over" in r.getMessage() for r in caplog.records))
    waiting.cancel()
    await client.close()
    await events.aclose()

    assert max(transport.depths) <= BOUND
    assert mids(seen) == [f"m{n:07d}" for n in range(total)]  # every one, in order
    assert not any(isinstance(e, Disconnected) for e in seen)
    assert full > 1  # it paused again and again as the consumer drained it...
    lines = [r.getMessage() for r in caplog.records if "backpressure" in r.getMessage()]
    assert len(lines) == 2  # ...yet logged one start and one end
    assert lines[0].startswith("realtime backpressure: 100 events wait")
    assert lines[1].startswith("realtime backpressure over")


async def test_the_heartbeat_does_not_give_up_on_a_connection_paused_by_a_slow_consumer() -> None:
    transport = PipeTransport()
    client = piped_client(transport, ping_interval=0.02, pong_timeout=0.05)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    transport.offer(deletion(n) for n in range(1000))
    await until(lambda: client.queue_depth == BOUND)
    # Paused for many pong timeouts; its pings go out, their pongs wait behind unread frames.
    await until(lambda: transport.pings() >= 5)
    seen = await take(events, 1000)
    assert mids(seen) == [f"m{n:07d}" for n in range(1000)]
    assert not any(isinstance(e, Disconnected) for e in seen)
    assert client.connected
    # Once nothing is left to read and pongs stop coming, the deadline holds again.
    transport.answer_pings = False
    lost = await asyncio.wait_for(_next_of(events, Disconnected), 5)
    assert "no pong" in lost.reason
    await client.close()
    await events.aclose()


async def test_a_bot_reading_slower_than_the_server_sends_keeps_pinging_and_stays_connected() -> None:
    """A starved bot reads a stream that never pauses (its queue never fills): the server hears
    its pings all along (it drops a client it has not heard from), and the pongs, behind the
    frames still unread, coming late lose no connection while frames keep arriving."""
    transport = PipeTransport()
    client = piped_client(transport, ping_interval=0.02, pong_timeout=0.2)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    transport.answer_pings = False  # the server's pongs wait behind the frames it is still sending
    pings_before = transport.pings()

    async def trickle() -> None:
        # A frame after each of the bot's pings: frames never stop for a pong timeout, and 20
        # ping intervals (0.4 s) are two pong timeouts without a single pong.
        for n in range(FRAMES):
            transport.offer(deletion(n))
            await until(lambda n=n: transport.pings() > pings_before + n)

    FRAMES = 20
    sender = asyncio.create_task(trickle())
    seen = await take(events, FRAMES)
    await sender
    assert mids(seen) == [f"m{n:07d}" for n in range(FRAMES)]
    assert not any(isinstance(e, Disconnected) for e in seen)
    assert transport.pings() - pings_before >= FRAMES
    assert client.connected
    # The stream is over and no pong comes: silence for a pong timeout loses the connection.
    lost = await asyncio.wait_for(_next_of(events, Disconnected), 5)
    assert "no pong" in lost.reason
    await client.close()
    await events.aclose()


async def _next_of(events: Any, kind: type) -> Any:
    while True:
        event = await anext(events)
        if isinstance(event, kind):
            return event


async def test_a_call_made_by_the_consumer_is_answered_while_the_queue_is_full() -> None:
    transport = PipeTransport()
    client = piped_client(transport, call_timeout=5.0)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    transport.offer(deletion(n) for n in range(1000))
    await until(lambda: client.queue_depth == BOUND)
    # A handler calls the server while the reader is parked: its answer is behind 900 frames.
    assert await asyncio.wait_for(client.call("updateMessage", {"_id": "m1"}), 5) == "ok"
    seen = await take(events, 1000)
    assert mids(seen) == [f"m{n:07d}" for n in range(1000)]
    await client.close()
    await events.aclose()


def test_queue_metrics_are_exported() -> None:
    metrics = Metrics()
    metrics.count_queue_full()
    metrics.watch_queue_depth(lambda: 42)
    text = metrics.render().decode()
    assert "rcmod_realtime_queue_full_total 1.0" in text
    assert "rcmod_realtime_queue_depth 42.0" in text


async def test_stop_events_ends_the_stream_before_queued_events() -> None:
    transport = PipeTransport()
    client = piped_client(transport)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    transport.offer(deletion(n) for n in range(10))
    await until(lambda: client.queue_depth == 10)
    client.stop_events()  # from sync code, as BotApp.stop() does through its consumer
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)
    assert not client.connected
    await client.close()
