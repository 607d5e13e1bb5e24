"""The in-process throughput target (>= 5,000 msg/s): recorded frames through the protocol core,
ingest, routing, the matcher and the alert rules, with a 100,000-term notify list and 1% of
messages matching.

Run: .venv/bin/python -m benchmarks.bench_notifier [--messages 30000] [--terms 100000] [--rate 0.01]
Needs ../shared/data/matcher-dev (the keyword list and the chat corpus). Alerts are decided and
written to the outbox (SQLite); delivery is not part of this figure (see bench_e2e for that path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.bench_protocol import SHARED, NoRest, frame, open_protocol
from benchmarks.common import machine_line
from bot.config import ModerationSettings
from bot.metrics import Metrics
from bot.moderation import load_matcher
from bot.realtime.events import Event, MessageEvent
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store
from tests.helpers import queued_alerts


def build_frames(n: int, keywords: list[str], rate: float, seed: int = 7) -> tuple[list[str], int]:
    """The chat corpus as frames, with a listed term planted in about ``rate`` of them."""
    rng = random.Random(seed)
    corpus = [
        json.loads(line) for line in (SHARED / "data/matcher-dev/corpus.jsonl").read_text().splitlines()
    ]
    out, planted = [], 0
    for i in range(n):
        text = corpus[i % len(corpus)]
        if rng.random() < rate:
            text = f"{text} {rng.choice(keywords)} !"
            planted += 1
        out.append(frame(i, text))
    return out, planted


async def run(args: argparse.Namespace) -> None:
    keywords = (SHARED / "data/matcher-dev/keywords.txt").read_text().splitlines()[: args.terms]
    with tempfile.TemporaryDirectory() as tmp:
        lists = Path(tmp) / "lists"
        lists.mkdir()
        (lists / "keywords.txt").write_text("\n".join(keywords) + "\n")
        (lists / "keywords.toml").write_text('kind = "notify"\n[notify]\nusers = ["mod1"]\n')
        t0 = time.perf_counter()
        matcher = load_matcher([lists])
        build = time.perf_counter() - t0
        raw, planted = build_frames(args.messages, keywords, args.rate)
        store = Store.open(Path(tmp) / "bench.sqlite3")
        metrics = Metrics()
        router = Router(metrics)
        moderation = ModerationSettings(exempt_roles=[])
        alerts = queued_alerts(store, lambda: matcher, moderation, metrics, rest=NoRest())
        router.add("alerts", (MessageEvent,), alerts.on_event)
        ingest = Ingest(
            messages=store.messages, rest=NoRest(), router=router, metrics=metrics, bot_user_id=lambda: "bot"
        )
        proto = open_protocol()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        for frame in raw:
            proto.receive_text(frame)
            for event in proto.events_received():
                if isinstance(event, MessageEvent):
                    ev: Event = event
                    await ingest.handle(ev)
        ingest.close()  # the last batch of handled marks is part of the work
        elapsed = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        raised = (
            metrics.alerts.labels("raised")._value.get() + metrics.alerts.labels("coalesced")._value.get()
        )
        store.close()
    print(machine_line())
    print(
        f"parameters: {args.messages} frames of chat, {planted} ({planted / args.messages:.1%}) "
        f"with a planted term; notify list of {len(keywords):,} terms (built in {build:.2f} s); one core"
    )
    print(
        f"protocol + ingest + routing + matcher + alert rules: {args.messages / elapsed:,.0f} msg/s "
        f"({elapsed / args.messages * 1e6:.0f} us per message; target >= 5,000 msg/s)"
    )
    print(
        f"incidents recorded: {int(raised)} (raised or coalesced into an open alert); "
        f"CPU {cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.01)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
