"""The bot's whole handling path in one process, as fast as one core goes: message events through
``Ingest.handle`` of the bot's own composition (BotApp's build steps: store, executor, outbox,
alerts, enforcer, protections with their defaults, names, policies, commands, router), with a
notify list of --terms synthetic terms and --match-share of messages carrying one.

The server is the sandbox, in this process (bulk seeded: --rooms, --members): the bot logs in to
it over REST as at start-up; the realtime connection is built but never opened, the events are
recorded ``__my_messages__`` frames parsed beforehand (parsing is not timed; bench_protocol
measures it). Background loops do not run, so decided alerts stay queued in the store, as in
bench_notifier. The bot's clock is simulated: it advances 1/--workspace-rate s per message, so
the protections' windows see a workspace posting at that rate, not at the benchmark's speed.

Run: .venv/bin/python -m benchmarks.bench_path --help
Figures are lines starting with ``path <name>:`` followed by ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import random
import re
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_protocol import open_protocol
from benchmarks.common import bot_settings, machine_line, synthetic_terms
from benchmarks.e2e_load import text_for
from bot.app import BotApp, Extras, load_wordlists, open_store
from bot.config import Settings
from bot.realtime.events import Event, MessageEvent
from bot.sandbox import Sandbox


class SimClock:
    """Wall-clock time that moves only when told: one tick per message."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> float:
        self.now += self.step
        return self.now


def frame(mid: str, ts_ms: int, user: dict[str, Any], rid: str, room: str, text: str) -> str:
    """A ``__my_messages__`` frame shaped like the real one (see bench_protocol.frame)."""
    message = {
        "_id": mid,
        "rid": rid,
        "msg": text,
        "ts": {"$date": ts_ms},
        "u": {"_id": user["id"], "username": user["username"], "name": user["username"]},
        "_updatedAt": {"$date": ts_ms},
        "urls": [],
        "mentions": [],
        "channels": [],
        "md": [{"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": text}]}],
    }
    hint = {"roomParticipant": True, "roomType": "c", "roomName": room}
    args = [message, hint]
    fields = {"eventName": "__my_messages__", "args": args}
    return json.dumps({"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": fields})


def build_events(
    n: int, bulk: dict[str, Any], terms: list[str], share: float, clock: SimClock
) -> tuple[list[Event], int]:
    """``n`` new messages, member k % members posting in its rooms in turn; ``share`` carry a term."""
    rng = random.Random(11)
    names = {r["id"]: r["name"] for r in bulk["rooms"]}
    users = bulk["users"]
    proto = open_protocol()
    events: list[Event] = []
    planted = 0
    start = clock.now
    for k in range(n):
        user = users[k % len(users)]
        rid = user["rooms"][(k // len(users)) % len(user["rooms"])]
        term = rng.choice(terms) if terms and rng.random() < share else None
        planted += term is not None
        text = text_for(random.Random(rng.randrange(1 << 30)), k, term)
        ts_ms = int((start + (k + 1) * clock.step) * 1000)
        proto.receive_text(frame(f"P{k:016d}", ts_ms, user, rid, names[rid], text))
        events.extend(e for e in proto.events_received() if isinstance(e, MessageEvent))
    return events, planted


async def run(args: argparse.Namespace) -> None:
    print("command: " + shlex.join([sys.executable, "-m", "benchmarks.bench_path", *sys.argv[1:]]))
    print(machine_line())
    if args.images != "both":
        await one_pass(args, images=args.images == "on")
        return
    # Image checks on, in a workspace posting no pictures: what watching uploads costs every
    # other message. Each pass is a fresh process (a second build in one process carries the
    # first one's heap), alternated, so both settings see the same machine.
    rates: dict[str, list[float]] = {"off": [], "on": []}
    base: list[str] = []
    argv = iter(sys.argv[1:])
    for arg in argv:
        if arg == "--images":
            next(argv, None)  # and its value
        elif not arg.startswith("--images="):
            base.append(arg)
    for _ in range(args.rounds):
        for setting in ("off", "on"):
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.bench_path",
                *base,
                "--images",
                setting,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await child.communicate()
            found = re.search(r"msg_per_cpu_s=(\d+)", out.decode())
            if child.returncode != 0 or found is None:
                raise SystemExit(f"bench_path --images {setting} failed (exit {child.returncode})")
            rates[setting].append(float(found.group(1)))
    off, on = rates["off"], rates["on"]
    print(
        f"path images: msg_per_cpu_s off={'/'.join(f'{x:.0f}' for x in off)} "
        f"on={'/'.join(f'{x:.0f}' for x in on)} "
        f"ratio_of_means_on_to_off={statistics.fmean(on) / statistics.fmean(off):.3f}"
    )


async def one_pass(args: argparse.Namespace, *, images: bool) -> float:
    """One build of the bot and one timed pass; returns messages per CPU-second."""
    total = args.warmup + args.messages
    print(
        f"path shape: messages={args.messages} warmup={args.warmup} terms={args.terms} "
        f"match_share={args.match_share:g} rooms={args.rooms} members={args.members} "
        f"workspace_rate={args.workspace_rate:g} protections={args.protections} "
        f"images={'on' if images else 'off'} one_process=yes"
    )
    sandbox = Sandbox()
    bulk = sandbox.seed_bulk(args.rooms, args.members, rooms_per_member=min(5, args.rooms))
    await sandbox.start()
    clock = SimClock(time.time(), 1 / args.workspace_rate)
    terms = synthetic_terms(args.terms)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lists = tmp / "lists"
        lists.mkdir()
        if terms:
            (lists / "bench.txt").write_text("\n".join(terms) + "\n")
            (lists / "bench.toml").write_text('kind = "notify"\n[notify]\nusers = ["mod1"]\n')
        raw = _settings(sandbox, tmp, lists if terms else None, args)
        if images:
            raw["images"] = {"default": "alert"}  # every room's uploads checked (none are posted)
        settings = Settings.model_validate(raw)
        events, planted = build_events(total, bulk, terms, args.match_share, clock)
        app = BotApp(settings, Extras(clock=clock))
        t0 = time.perf_counter()
        app.matcher = await load_wordlists(settings)
        matcher_s = time.perf_counter() - t0
        store = open_store(settings, clock=clock, on_audit=app.metrics.count_action)
        try:
            async with contextlib.AsyncExitStack() as running:
                # The bot's own build steps (its endpoints, then login, clients, every service and
                # the router), not a copy.
                await app._serve(running)
                services = await app._build(store, running)
                handle = services.ingest.handle
                stages = _time_stages(services) if args.stages else None
                for event in events[: args.warmup]:
                    clock.tick()
                    await handle(event)
                await services.protector.settled()  # new authors' account ages, looked up beside the path
                timed = events[args.warmup :]
                if stages is not None:
                    stages.update(dict.fromkeys(stages, 0.0))  # the timed messages only
                profiler = cProfile.Profile() if args.profile else None
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                start = time.perf_counter()
                if profiler:
                    profiler.enable()
                for event in timed:
                    clock.tick()
                    await handle(event)
                # Part of handling: checks still waiting on a lookup, and the last batch of marks.
                await services.protector.settled()
                services.ingest.flush()
                if profiler:
                    profiler.disable()
                elapsed = time.perf_counter() - start
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                if profiler:
                    profiler.dump_stats(args.profile)
                alerts = app.metrics.alerts
                raised = alerts.labels("raised")._value.get()
                coalesced = alerts.labels("coalesced")._value.get()
        finally:
            store.close()
            await sandbox.stop()
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    n = len(timed)
    print(f"path build: matcher_s={matcher_s:.2f} terms={args.terms}")
    print(
        f"path throughput: msg_per_s={n / elapsed:.0f} us_per_msg={elapsed / n * 1e6:.1f} "
        f"msg_per_cpu_s={n / cpu:.0f} cpu_us_per_msg={cpu / n * 1e6:.1f} cpu_s={cpu:.2f} "
        f"wall_s={elapsed:.2f} "
        f"n={n} (target >= 25,000 msg/s; on a shared machine msg_per_cpu_s is the steadier figure)"
    )
    if stages is not None:
        known = sum(stages.values())
        parts = " ".join(f"{name}={s / n * 1e6:.1f}" for name, s in stages.items())
        print(
            f"path stages: us_per_msg {parts} rest={(elapsed - known) / n * 1e6:.1f} "
            "(wall time per stage, timers included; rest is ingest, dedup and the event loop)"
        )
    print(
        f"path outcomes: term_messages={planted} alerts_raised={int(raised)} "
        f"alerts_coalesced={int(coalesced)} (over warm-up and timed messages; delivery is not in this path)"
    )
    return n / cpu


def _time_stages(services: Any) -> dict[str, float]:
    """Wrap each router handler, and ingest's marks, in a wall-clock timer (``--stages``): where a
    message's time goes. Reset by the caller after the warm-up."""
    spent: dict[str, float] = {}
    clock = time.perf_counter
    router = services.router

    def timed(name: str, fn: Any, *, coroutine: bool) -> Any:
        spent[name] = 0.0
        if coroutine:

            async def run_async(*a: Any, **k: Any) -> Any:
                t = clock()
                try:
                    return await fn(*a, **k)
                finally:
                    spent[name] += clock() - t

            return run_async

        def run(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += clock() - t

        return run

    router._routes = [
        type(r)(r.name, r.types, timed(r.name, r.handler, coroutine=True)) for r in router._routes
    ]
    router._by_type.clear()
    ingest = services.ingest
    ingest._add = timed("marks", ingest._add, coroutine=False)
    ingest._seen = timed("dedup", ingest._seen, coroutine=False)
    return spent


def _settings(sandbox: Sandbox, tmp: Path, lists: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    return bot_settings(sandbox.url, bot, tmp, lists, protections=args.protections)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_path",
        description="The bot's whole handling path (Ingest.handle of its own composition) on one core.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=50_000, help="timed message events")
    parser.add_argument("--warmup", type=int, default=2_000, help="events handled first, not timed (caches)")
    parser.add_argument("--terms", type=int, default=100_000, help="synthetic terms in one notify list")
    parser.add_argument("--match-share", type=float, default=0.01, help="share of messages carrying a term")
    parser.add_argument(
        "--rooms", type=int, default=1000, help="rooms (bulk seeded in the in-process sandbox)"
    )
    parser.add_argument("--members", type=int, default=1000, help="members posting, in turn")
    parser.add_argument(
        "--workspace-rate",
        type=float,
        default=500.0,
        help="msg/s the simulated clock advances at (protections)",
    )
    parser.add_argument("--protections", choices=("default", "off"), default="default")
    parser.add_argument(
        "--images",
        choices=("off", "on", "both"),
        default="off",
        help="image checks in every room (no pictures posted); both: --rounds of off then on, each "
        "in a fresh process, and their ratio",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --images both: off/on pairs")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="write a cProfile of the timed messages to FILE (the figures then include its overhead)",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also print the wall time per message of each handler and of ingest's marks (timers add to it)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
