"""Catch-up after a restart: how long until every room the bot is in has been caught up?

    .venv/bin/python -m benchmarks.bench_catch_up [--rooms N ...] [--busy FRACTION] [--per-room K]
        [--rtt-ms MS] [--concurrency C]

An in-process sandbox holds N rooms the bot is in; the bot had caught every room up to a moment
ago, then ``FRACTION`` of the rooms got ``K`` new messages each. The timed part is one
``Ingest.catch_up()`` through the real REST client (its default 4 threads) and a real store, up
to the last room handled. ``--rtt-ms`` holds every REST answer that long (a server over a
network: the client's thread waits, the sandbox does not), 0 for the sandbox's own speed.

Run the same script against another checkout (``PYTHONPATH=<checkout>``) to compare versions;
``--concurrency`` is ignored by a version without the parameter. The sandbox scans every
message for each room's query, so many rooms with news cost the sandbox, not the bot, most.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from benchmarks.common import machine_line
from bot.config import Credentials
from bot.metrics import Metrics
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DistantSandbox(Sandbox):
    """The sandbox, answering each REST call ``rtt`` seconds late (without blocking its loop)."""

    def __init__(self, rtt: float) -> None:
        super().__init__()
        self.rtt = rtt

    def _app(self) -> web.Application:
        app = super()._app()
        if self.rtt > 0:

            @web.middleware
            async def late(request: web.Request, handler: Handler) -> web.StreamResponse:
                if request.path.startswith("/api/"):
                    await asyncio.sleep(self.rtt)
                return await handler(request)

            app.middlewares.append(late)
        return app


async def scenario(rooms: int, busy: float, per_room: int, rtt: float, concurrency: int) -> dict[str, Any]:
    sandbox = DistantSandbox(rtt)
    await sandbox.start()
    ws = sandbox.workspace
    bot, alice = ws.user_by_username("rcmod.bot"), ws.user_by_username("alice")
    assert bot is not None and alice is not None
    token = next(u["token"] for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    names = [f"bench-{i:05d}" for i in range(rooms)]
    rids = [str(ws.create_room("c", name, None, [bot.id, alice.id])["_id"]) for name in names]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "s.sqlite3")
        seen = datetime.now(UTC) - timedelta(seconds=1)
        for rid in rids:  # caught up a moment ago
            store.messages.advance_room_cursor(rid, seen)
        every = max(1, round(1 / busy)) if busy > 0 else 0
        posted = 0
        for i, name in enumerate(names):
            if every and i % every == 0:
                for k in range(per_room):
                    sandbox.post_as("alice", name, f"message {k} while the bot was away")
                    posted += 1
        rest = RestClient(sandbox.url, Credentials(user_id=bot.id, token=SecretStr(token)))
        metrics = Metrics()
        extra: dict[str, Any] = {}
        if "catch_up_concurrency" in inspect.signature(Ingest).parameters:
            extra["catch_up_concurrency"] = concurrency
        ingest = Ingest(
            messages=store.messages,
            rest=rest,
            router=Router(metrics),
            metrics=metrics,
            bot_user_id=lambda: bot.id,
            server_now=rest.server_now,
            **extra,
        )
        try:
            t0 = time.perf_counter()
            recovered = await ingest.catch_up()
            elapsed = time.perf_counter() - t0
        finally:
            await rest.close()
            store.close()
            await sandbox.stop()
    assert recovered == posted, (recovered, posted)
    assert not ingest.pending_rooms
    return {"rooms": rooms, "messages": posted, "seconds": elapsed, "concurrent": bool(extra)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, nargs="+", default=[1000])
    parser.add_argument("--busy", type=float, default=1.0, help="fraction of rooms with news (0-1)")
    parser.add_argument("--per-room", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(machine_line())
    print(f"ingest: {inspect.getsourcefile(Ingest)}")
    for n in args.rooms:
        r = asyncio.run(scenario(n, args.busy, args.per_room, args.rtt_ms / 1000, args.concurrency))
        mode = f"concurrency {args.concurrency}" if r["concurrent"] else "one room at a time"
        print(
            f"{r['rooms']:>6} rooms, {r['messages']:>6} new messages ({args.busy:.0%} of rooms busy), "
            f"rtt {args.rtt_ms:g} ms, {mode}: caught up in {r['seconds']:.2f} s"
        )


if __name__ == "__main__":
    main()
