"""Catch-up after a restart: how long until every message posted meanwhile is handled (ready),
and until every room the bot is in has been asked (the full sweep)?

    .venv/bin/python -m benchmarks.bench_catch_up [--rooms N ...] [--busy FRACTION] [--per-room K]
        [--edited E] [--outage-s S] [--rtt-ms MS] [--concurrency C] [--threads T]

A sandbox in its own process (a server does not share the bot's interpreter; in one process the
two fight for one GIL) holds N rooms the bot is in, made an hour ago; the bot had caught every
room up to ``S`` seconds ago (the outage), then ``FRACTION`` of the rooms got ``K`` new messages
each, and ``E`` quiet rooms had an older message (posted before the outage) edited. The timed part
is one catch-up pass through the real REST client (its default thread pool) and a real store:
"ready" when ``Ingest.ready()`` returns (every room with a new message caught up; checked: every
posted message was handled by then), "full sweep" when the pass has asked every room (the edits
in quiet rooms included). A version without ``ready()`` reports its whole pass for both.
``--rtt-ms`` holds every REST answer that long (a server over a network: the client's thread
waits, the sandbox does not), 0 for the sandbox's own speed. CPU is reported for both processes
(the bot's ``process_time``, the sandbox's from /proc): they share the machine's cores.

Run the same script against another checkout (``PYTHONPATH=<checkout>``) to compare versions;
``--concurrency`` is ignored by a version without the parameter; without ``--concurrency`` or
``--threads`` each version runs with its own defaults (``catch_up_concurrency`` and the REST
client's thread pool), which the result line names.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from benchmarks.common import machine_line
from bot.config import Credentials
from bot.metrics import Metrics
from bot.realtime.events import NewMessage
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store

_HERE = str(Path(__file__).resolve())  # the server side runs this file with --serve
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DistantSandbox(Sandbox):
    """The sandbox, answering each REST call ``rtt`` seconds late (without blocking its loop)."""

    def __init__(self, rtt: float) -> None:
        self.offset = 0.0  # seconds the sandbox's clock is set back (to make the rooms' past)
        super().__init__(clock=lambda: time.time() - self.offset)
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


async def serve(rooms: int, busy: float, per_room: int, edited: int, outage: float, rtt: float) -> None:
    """The server side, in its own process (as a real server is: its work does not share the
    bot's interpreter): N rooms, news in some, one JSON line to stdout, then serve until killed."""
    sandbox = DistantSandbox(rtt)
    await sandbox.start()
    ws = sandbox.workspace
    bot, alice = ws.user_by_username("rcmod.bot"), ws.user_by_username("alice")
    assert bot is not None and alice is not None
    token = next(u["token"] for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    names = [f"bench-{i:05d}" for i in range(rooms)]
    sandbox.offset = 3600.0  # the rooms were made an hour ago
    rids = [str(ws.create_room("c", name, None, [bot.id, alice.id])["_id"]) for name in names]
    every = max(1, round(1 / busy)) if busy > 0 else 0
    quiet = [name for i, name in enumerate(names) if not (every and i % every == 0)]
    old = [str(sandbox.post_as("alice", name, "said before the outage")["_id"]) for name in quiet[:edited]]
    sandbox.offset = 0.0
    seen = datetime.now(UTC) - timedelta(seconds=outage)  # the bot had caught up to here
    posted = 0
    for i, name in enumerate(names):
        if every and i % every == 0:
            for k in range(per_room):
                sandbox.post_as("alice", name, f"message {k} while the bot was away")
                posted += 1
    for mid in old:
        sandbox.edit_as("alice", mid, "said before the outage, edited during it")
    info = {"url": sandbox.url, "bot": bot.id, "token": token, "rids": rids, "seen": seen.isoformat()}
    print(json.dumps({**info, "posted": posted, "edited": len(old)}), flush=True)
    await asyncio.Event().wait()


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_env() -> dict[str, str]:
    """The server side imports the same checkout as this side (``bot`` and ``benchmarks``)."""
    root = str(Path(inspect.getsourcefile(Ingest) or ".").resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}


async def scenario(
    rooms: int,
    busy: float,
    per_room: int,
    edited: int,
    outage: float,
    rtt: float,
    concurrency: int | None,
    threads: int | None,
) -> dict[str, Any]:
    args = [str(rooms), str(busy), str(per_room), str(edited), str(outage), str(rtt)]
    server = await asyncio.create_subprocess_exec(
        sys.executable, _HERE, "--serve", *args, stdout=PIPE, limit=2**26, env=_child_env()
    )
    try:
        assert server.stdout is not None
        info = json.loads(await server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "s.sqlite3")
            seen = datetime.fromisoformat(info["seen"])
            for rid in info["rids"]:
                store.messages.advance_room_cursor(rid, seen)
            pool: dict[str, Any] = {} if threads is None else {"threads": threads}
            creds = Credentials(user_id=info["bot"], token=SecretStr(info["token"]))
            rest = RestClient(info["url"], creds, **pool)
            metrics = Metrics()
            router = Router(metrics)
            handled = 0

            async def count(event: object) -> None:
                nonlocal handled
                handled += 1

            router.add("count", (NewMessage,), count)
            extra: dict[str, Any] = {}
            param = inspect.signature(Ingest).parameters.get("catch_up_concurrency")
            if param is not None:
                extra["catch_up_concurrency"] = param.default if concurrency is None else concurrency
            ingest = Ingest(
                messages=store.messages,
                rest=rest,
                router=router,
                metrics=metrics,
                bot_user_id=lambda: str(info["bot"]),
                server_now=rest.server_now,
                **extra,
            )
            two_tiers = hasattr(ingest, "ready")
            try:
                t0, cpu0, server0 = time.perf_counter(), time.process_time(), _cpu_of(server.pid)
                if two_tiers:
                    await ingest.begin_catch_up()
                    await ingest.ready()
                    at_ready = handled
                    ready, ready_cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    ready_server = _cpu_of(server.pid) - server0
                    recovered = await ingest.caught_up()
                else:
                    recovered = await ingest.catch_up()
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                server_cpu = _cpu_of(server.pid) - server0
                if not two_tiers:
                    at_ready, ready, ready_cpu, ready_server = handled, elapsed, cpu, server_cpu
            finally:
                await rest.close()
                store.close()
    finally:
        server.kill()
        await server.wait()
    assert recovered == info["posted"] + info["edited"], (recovered, info)
    assert at_ready == info["posted"], (at_ready, info["posted"])  # every posted message by ready
    assert not ingest.pending_rooms
    return {
        "rooms": rooms,
        "messages": recovered,
        "posted": info["posted"],
        "edited": info["edited"],
        "ready": ready,
        "ready_cpu": ready_cpu,
        "ready_server": ready_server,
        "seconds": elapsed,
        "cpu": cpu,
        "server_cpu": server_cpu,
        "concurrent": bool(extra),
        "concurrency": extra.get("catch_up_concurrency"),
        "threads": threads
        if threads is not None
        else inspect.signature(RestClient).parameters["threads"].default,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, nargs="+", default=[1000])
    parser.add_argument("--busy", type=float, default=1.0, help="fraction of rooms with news (0-1)")
    parser.add_argument("--per-room", type=int, default=3)
    parser.add_argument("--edited", type=int, default=10, help="quiet rooms with an old message edited")
    parser.add_argument("--outage-s", type=float, default=300.0, help="how long the bot was away")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=None, help="rooms at once (default: ingest's)")
    parser.add_argument("--threads", type=int, default=None, help="REST client threads")
    parser.add_argument("--serve", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        n, busy, per_room, edited, outage, rtt = args.serve
        asyncio.run(serve(int(n), float(busy), int(per_room), int(edited), float(outage), float(rtt)))
        return
    print(machine_line())
    print(f"ingest: {inspect.getsourcefile(Ingest)}")
    for n in args.rooms:
        r = asyncio.run(
            scenario(
                n,
                args.busy,
                args.per_room,
                args.edited,
                args.outage_s,
                args.rtt_ms / 1000,
                args.concurrency,
                args.threads,
            )
        )
        mode = f"concurrency {r['concurrency']}" if r["concurrent"] else "one room at a time"
        mode += f", {r['threads']} REST threads"
        print(
            f"{r['rooms']:>6} rooms, {r['posted']} new messages ({args.busy:.0%} of rooms busy), "
            f"{r['edited']} old messages edited in quiet rooms, rtt {args.rtt_ms:g} ms, {mode}:\n"
            f"    ready (every new message handled) in {r['ready']:.2f} s "
            f"(CPU: bot {r['ready_cpu']:.2f} s, sandbox {r['ready_server']:.2f} s)\n"
            f"    full sweep (every room asked, {r['messages']} events) in {r['seconds']:.2f} s "
            f"(CPU: bot {r['cpu']:.2f} s, sandbox {r['server_cpu']:.2f} s)"
        )


if __name__ == "__main__":
    main()
