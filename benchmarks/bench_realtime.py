"""In-process throughput of the realtime client: recorded ``__my_messages__`` frames from an
in-memory websocket through RealtimeClient (reader, heartbeat, queue) to a no-op consumer, and
what a consumer that does not keep up leaves in memory.

Run: .venv/bin/python -m benchmarks.bench_realtime [--messages N] [--repeat R]

Two consumers over the same client: a plain ``async for`` (how bot.app consumes events now), and
one that wraps every ``anext`` in a task raced against a stop task with ``asyncio.wait`` (how it
consumed them before). The memory stage offers every frame at once to a consumer that takes
nothing, and reports what the client holds once its reader has stopped (or read everything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import SecretStr

from benchmarks.bench_protocol import frames
from benchmarks.common import machine_line
from bot.realtime.client import RealtimeClient, TokenCredentials
from bot.realtime.events import Connected, Event

USER_ID = "BENCHuid00000001"


class FloodTransport:
    """Answers the handshake, login and subscriptions; then hands out the frames as fast as read."""

    def __init__(self, flood: list[str]) -> None:
        self.answers: deque[str] = deque()
        self.flood: Iterator[str] = iter(())
        self.frames = flood
        self.more = asyncio.Event()
        self.read = 0

    def start(self) -> None:
        self.flood = iter(self.frames)
        self.more.set()

    async def recv(self) -> str:
        while True:
            if self.answers:
                return self.answers.popleft()
            frame = next(self.flood, None)
            if frame is not None:
                self.read += 1
                return frame
            self.more.clear()
            await self.more.wait()

    async def send(self, message: str) -> None:
        frame = json.loads(message)
        if frame["msg"] == "connect":
            self.answers.append('{"msg":"connected","session":"bench"}')
        elif frame["msg"] == "method":
            self.answers.append(json.dumps({"msg": "result", "id": frame["id"], "result": {"id": USER_ID}}))
        elif frame["msg"] == "sub":
            self.answers.append(json.dumps({"msg": "ready", "subs": [frame["id"]]}))
        elif frame["msg"] == "ping":
            self.answers.append(json.dumps({"msg": "pong", "id": frame["id"]}))
        self.more.set()

    async def close(self) -> None:
        pass


def client_for(transport: FloodTransport) -> RealtimeClient:
    async def connect(url: str, **kwargs: Any) -> FloodTransport:
        return transport

    return RealtimeClient(
        "https://chat.example.com", TokenCredentials(user_id=USER_ID, token=SecretStr("t")), connect=connect
    )


def queued(client: RealtimeClient) -> int:
    depth = getattr(client, "queue_depth", None)
    if isinstance(depth, int):
        return depth
    return int(client._queue.qsize())  # type: ignore[attr-defined]  # a client before queue_depth


async def plain(events: AsyncIterator[Event], n: int, stopping: asyncio.Event) -> None:
    got = 0
    async for _event in events:
        got += 1
        if got == n:
            return


async def task_per_event(events: AsyncIterator[Event], n: int, stopping: asyncio.Event) -> None:
    stop = asyncio.create_task(stopping.wait())
    got = 0
    while got < n:
        nxt: asyncio.Task[Event] = asyncio.create_task(anext(events))  # type: ignore[arg-type]
        await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
        nxt.result()
        got += 1
    stop.cancel()


async def throughput(raw: list[str], consumer: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) from the first frame offered to the last event consumed."""
    transport = FloodTransport(raw)
    client = client_for(transport)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    cpu, wall = time.process_time(), time.perf_counter()
    transport.start()
    await consumer(events, len(raw), asyncio.Event())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await client.close()
    await events.aclose()  # type: ignore[attr-defined]
    return cpu, wall


async def held_by_paused_consumer(raw: list[str]) -> tuple[int, int, float]:
    transport = FloodTransport(raw)
    client = client_for(transport)
    events = client.events()
    assert isinstance(await anext(events), Connected)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    transport.start()
    last = -1
    while transport.read != last:  # until the reader stops reading (or has read everything)
        last = transport.read
        await asyncio.sleep(0.05)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    depth = queued(client)
    await client.close()
    await events.aclose()  # type: ignore[attr-defined]
    return transport.read, depth, held / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs per consumer")
    args = parser.parse_args()
    logging.getLogger("rcmod.realtime").setLevel(logging.ERROR)  # backpressure lines are expected here
    print(machine_line())
    print(f"parameters: {args.messages} __my_messages__ frames from memory, best of {args.repeat}; one core")
    raw = frames(args.messages)
    # CPU time of this (single-threaded) process: wall time on a shared machine measures the
    # neighbours too. Wall time is shown for reference.
    head = f"{'consumer':<38} {'events':>7} {'CPU s':>7} {'wall s':>7}"
    print(f"{head} {'events/CPU s':>12} {'CPU us/event':>12}")
    for name, consumer in (
        ("async for (plain await per event)", plain),
        ("task + asyncio.wait per event", task_per_event),
    ):
        cpu, wall = min(asyncio.run(throughput(raw, consumer)) for _ in range(args.repeat))
        n = len(raw)
        print(f"{name:<38} {n:>7} {cpu:>7.3f} {wall:>7.3f} {n / cpu:>12,.0f} {cpu / n * 1e6:>12.1f}")
    read, depth, mib = asyncio.run(held_by_paused_consumer(raw))
    print(
        f"paused consumer: reader took {read} of {len(raw)} frames offered; {depth} events queued; "
        f"{mib:.1f} MiB held (tracemalloc)"
    )


if __name__ == "__main__":
    main()
