"""In-process throughput of the realtime path: recorded DDP frames through the protocol core,
then through ingest (dedup in SQLite, cursor, router) with a no-op handler.

Run: .venv/bin/python -m benchmarks.bench_protocol [--messages N]
Frames are built from the shape of the fixture ``ddp_stream_my_messages_new.json`` (a real
``__my_messages__`` frame), with texts from the matcher corpus when ../shared is present.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from benchmarks.common import machine_line
from bot.metrics import Metrics
from bot.models import Message
from bot.realtime.events import Event, MessageEvent
from bot.realtime.protocol import DDPProtocol
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def texts(n: int) -> list[str]:
    corpus = SHARED / "data" / "matcher-dev" / "corpus.jsonl"
    if corpus.exists():
        lines = [json.loads(line) for line in corpus.read_text().splitlines()[:n]]
        return (lines * (n // max(1, len(lines)) + 1))[:n]
    return [f"message number {i} about nothing in particular" for i in range(n)]


def frame(i: int, text: str) -> str:
    """Message number ``i`` as a ``__my_messages__`` frame, shaped like the real one."""
    base_ms = 1_764_000_000_000
    message = {
        "_id": f"m{i:016d}",
        "rid": "GENERAL",
        "msg": text,
        "ts": {"$date": base_ms + i},
        "u": {"_id": f"user{i % 7:013d}", "username": f"member{i % 7}", "name": "Member"},
        "_updatedAt": {"$date": base_ms + i},
        "urls": [],
        "mentions": [],
        "channels": [],
        "md": [{"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": text}]}],
    }
    hint = {"roomParticipant": True, "roomType": "c", "roomName": "general"}
    return json.dumps(
        {
            "msg": "changed",
            "collection": "stream-room-messages",
            "id": "id",
            "fields": {"eventName": "__my_messages__", "args": [message, hint]},
        }
    )


def frames(n: int) -> list[str]:
    return [frame(i, text) for i, text in enumerate(texts(n))]


def open_protocol() -> DDPProtocol:
    proto = DDPProtocol()
    proto.connect()
    proto.data_to_send()
    proto.receive_text('{"msg":"connected","session":"bench"}')
    proto.events_received()
    return proto


def bench_protocol(raw: list[str]) -> tuple[float, list[Event]]:
    proto = open_protocol()
    events: list[Event] = []
    start = time.perf_counter()
    for frame in raw:
        proto.receive_text(frame)
        events.extend(e for e in proto.events_received() if isinstance(e, MessageEvent))
    return time.perf_counter() - start, events


class NoRest:
    """Catch-up finds nothing: this benchmark measures the live path only."""

    async def subscriptions(self) -> list[dict[str, object]]:
        return []

    async def sync_messages(
        self, rid: str, last_update: datetime
    ) -> tuple[list[Message], list[tuple[str, datetime]]]:
        return [], []

    async def history(
        self, rid: str, room_type: str, *, oldest: datetime, latest: datetime | None = None, page: int = 100
    ) -> AsyncIterator[Message]:
        nothing: tuple[Message, ...] = ()
        for message in nothing:
            yield message


async def bench_ingest(events: list[Event], repeat_fraction: float) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite3")
        metrics = Metrics()
        router = Router(metrics)
        handled = 0

        async def noop(event: Event) -> None:
            nonlocal handled
            handled += 1

        router.add("noop", (MessageEvent,), noop)
        ingest = Ingest(
            messages=store.messages,
            rest=NoRest(),
            router=router,
            metrics=metrics,
            bot_user_id=lambda: "bot",
        )
        # re-emits (reactions, previews) are part of real traffic: replay a share of the frames
        replay = events[: int(len(events) * repeat_fraction)]
        start = time.perf_counter()
        for event in events + replay:
            await ingest.handle(event)
        ingest.close()  # the last batch of handled marks is part of the work
        elapsed = time.perf_counter() - start
        store.close()
        return elapsed, len(events) + len(replay), handled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--replay", type=float, default=0.2, help="share of frames re-emitted (dedup path)")
    args = parser.parse_args()
    print(machine_line())
    print(
        f"parameters: {args.messages} __my_messages__ frames, "
        f"{args.replay:.0%} replayed as re-emits; one core"
    )
    raw = frames(args.messages)
    size = sum(len(f) for f in raw) / len(raw)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t_proto, events = bench_protocol(raw)
    t_ingest, n_ingest, handled = asyncio.run(bench_ingest(events, args.replay))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(f"{'stage':<34} {'events':>8} {'seconds':>8} {'events/s':>10} {'us/event':>9}")
    print(
        f"{'protocol (JSON -> typed event)':<34} {len(raw):>8} {t_proto:>8.3f} {len(raw) / t_proto:>10,.0f} "
        f"{t_proto / len(raw) * 1e6:>9.1f}"
    )
    print(
        f"{'ingest (dedup+cursor+router)':<34} {n_ingest:>8} {t_ingest:>8.3f} {n_ingest / t_ingest:>10,.0f} "
        f"{t_ingest / n_ingest * 1e6:>9.1f}"
    )
    total = t_proto + t_ingest
    print(
        f"{'both, per new message':<34} {len(raw):>8} {total:>8.3f} {len(raw) / total:>10,.0f} "
        f"{total / len(raw) * 1e6:>9.1f}"
    )
    print(
        f"handled {handled} of {n_ingest} events (duplicates dropped: {n_ingest - handled}); "
        f"mean frame {size:.0f} bytes; CPU {cpu:.2f} s"
    )


if __name__ == "__main__":
    main()
