"""How long the ingest loop is held when new authors' account ages must be looked up.

A stream of messages where every ``--new-every``-th message comes from an author the bot has not
seen (users.info answers after ``--lookup-ms``), the rest from known members, goes through ingest
and the protector (probation on). Prints the time to get through the stream and the longest time
one event held the loop; with the lookup beside the path only the new authors' own checks wait.

Run: .venv/bin/python -m benchmarks.bench_probation [--messages 2000] [--new-every 20] [--lookup-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from benchmarks.bench_protocol import NoRest
from benchmarks.common import machine_line
from bot.config import ModerationSettings, ProtectionSettings
from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.realtime.events import MessageEvent, NewMessage, RoomHint
from bot.services.ingest import Ingest
from bot.services.protections import Protector
from bot.services.router import Router
from bot.store import Store

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class SlowUsers:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def user_info(self, *, user_id: str) -> dict[str, Any]:
        await asyncio.sleep(self.seconds)
        return {"_id": user_id, "createdAt": (T0 - timedelta(days=30)).isoformat()}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite3")
        protector = Protector(
            audit=store.audit,
            evidence=store.evidence,
            sanctions=store.sanctions,
            rest=cast(Any, SlowUsers(args.lookup_ms / 1000)),
            executor=cast(Any, None),  # old accounts, no links: no trigger fires
            outbox=cast(Any, None),
            sanctioner=cast(Any, None),
            settings=ProtectionSettings.model_validate(
                {
                    "probation_days": 3,
                    "flood": {"mode": "off"},
                    "repeat": {"mode": "off"},
                    "links": {"mode": "alert"},
                }
            ),
            moderation=ModerationSettings(),
            bot_username=lambda: "rcmod.bot",
            site_url=lambda: "",
        )
        metrics = Metrics()
        router = Router(metrics, routes=[("protector", (MessageEvent,), protector.on_event)])
        extra: dict[str, Any] = {}
        if "unfinished" in inspect.signature(Ingest).parameters:  # so it runs before the change too
            extra["unfinished"] = protector.unfinished
        ingest = Ingest(
            messages=store.messages,
            rest=NoRest(),
            router=router,
            metrics=metrics,
            bot_user_id=lambda: "bot",
            **extra,
        )
        known = [f"member{i}" for i in range(10)]
        events = []
        for i in range(args.messages):
            author = f"newcomer{i}" if i % args.new_every == 0 else known[i % len(known)]
            at = T0 + timedelta(milliseconds=i)
            message = Message(
                id=f"m{i:08d}",
                rid="GENERAL",
                text=f"hello {i}",
                ts=at,
                author=UserRef(author, author),
                updated_at=at,
            )
            events.append(NewMessage(message, RoomHint(True, "c", "general")))
        for member in known:  # the regulars are known already
            await protector._on_probation(UserRef(member, member))
        longest = 0.0
        start = time.perf_counter()
        for event in events:
            t = time.perf_counter()
            await ingest.handle(event)
            longest = max(longest, time.perf_counter() - t)
        through = time.perf_counter() - start
        settled = getattr(protector, "settled", None)
        if settled is not None:
            await settled()
        getattr(ingest, "close", lambda: None)()
        done = time.perf_counter() - start
        store.close()
    new = len(range(0, args.messages, args.new_every))
    print(machine_line())
    print(
        f"parameters: {args.messages} messages, {new} from new authors (users.info answers after "
        f"{args.lookup_ms} ms), the rest from 10 known members"
    )
    print(
        f"ingest loop through the stream: {through:.3f} s ({args.messages / through:,.0f} msg/s); "
        f"longest one event held it: {longest * 1000:.1f} ms; every check done after {done:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--new-every", type=int, default=20)
    parser.add_argument("--lookup-ms", type=float, default=50.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
