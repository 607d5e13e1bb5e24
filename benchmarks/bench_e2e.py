"""End to end: several members flood the sandbox over REST while the bot handles every message.

Three processes share the machine's two cores: the sandbox (a subprocess), the load generator (a
subprocess) and the bot (this process, through the composition root, with a handler that records
post-to-handler latency: handler time minus the message's server timestamp). Prints throughput,
latency p50/p99 and each process's CPU time.

Run: .venv/bin/python -m benchmarks.bench_e2e [--members 4] [--messages 2000] [--rate 0]
(--rate 0: as fast as the members can post; otherwise messages per second in total).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import machine_line
from bot.app import BotApp, Extras
from bot.config import Settings
from bot.realtime.events import Connected, Event, MessageEvent

SANDBOX = """
import asyncio, json, sys
from bot.sandbox import RateLimits, Sandbox
async def main():
    sb = Sandbox(rate_limits=RateLimits(rest_enabled=False, ddp_enabled=False))
    await sb.start()
    print(json.dumps(sb.seed_info()), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

LOAD = """
import asyncio, json, sys, time
import aiohttp
async def member(http, url, user, room, n, interval):
    headers = {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}
    start = time.monotonic()
    for i in range(n):
        async with http.post(f"{url}/api/v1/chat.postMessage", headers=headers,
                             json={"roomId": room, "text": f"load message {i} from {user['username']}"}) as r:
            if r.status != 200:
                print("post failed", r.status, file=sys.stderr)
        if interval:  # paced by schedule, so the time a post takes does not lower the rate
            await asyncio.sleep(max(0.0, start + (i + 1) * interval - time.monotonic()))
async def prober(http, url, user, room, probes, gap):
    headers = {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}
    for i in range(probes):
        await asyncio.sleep(gap)
        async with http.post(f"{url}/api/v1/chat.postMessage", headers=headers,
                             json={"roomId": room, "text": f"alert probe{i} here"}) as r:
            if r.status != 200:
                print("probe failed", r.status, file=sys.stderr)
async def main():
    cfg = json.loads(sys.argv[1])
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(member(http, cfg["url"], u, cfg["room"], cfg["each"], cfg["interval"])
                               for u in cfg["users"]),
                             prober(http, cfg["url"], cfg["prober"], cfg["probe_room"], cfg["probes"],
                                    cfg["probe_gap"]))
asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> None:
    # Plain Popen on purpose: we read /proc/<pid>/stat of these processes for their CPU time.
    sandbox = subprocess.Popen([sys.executable, "-c", SANDBOX], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
    assert sandbox.stdout is not None
    seed = json.loads(sandbox.stdout.readline())
    latencies: list[float] = []
    connected = asyncio.Event()
    expected = args.members * (args.messages // args.members)
    done = asyncio.Event()

    async def record(event: Event) -> None:
        if isinstance(event, Connected):
            connected.set()
        elif isinstance(event, MessageEvent) and event.message.text.startswith("load message"):
            latencies.append(time.time() - event.message.ts.timestamp())
            if len(latencies) >= expected:
                done.set()

    members = [
        u for u in seed["users"] if u["username"] in ("alice", "bob", "carol", "mod1", "mod2", "admin")
    ]
    members = (members * args.members)[: args.members]
    general = next(r["id"] for r in seed["rooms"] if r["name"] == "general")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = _bot_settings(seed, Path(data_dir), args)
        app = BotApp(settings, Extras(handlers=[("bench", (object,), record)]))
        bot_task = asyncio.create_task(app.run())
        await asyncio.wait_for(connected.wait(), 10)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        sandbox_cpu0 = cpu_seconds(sandbox.pid)
        each = args.messages // args.members
        interval = args.members / args.rate if args.rate else 0
        duration = each * interval if interval else 1.0
        prober = next(u for u in seed["users"] if u["username"] == "carol")
        random_room = next(r["id"] for r in seed["rooms"] if r["name"] == "random")
        cfg = {
            "url": seed["url"],
            "users": members,
            "room": general,
            "each": each,
            "interval": interval,
            "prober": prober,
            "probe_room": random_room,
            "probes": args.probes,
            "probe_gap": duration / (args.probes + 1),
        }
        started = time.perf_counter()
        load = subprocess.Popen([sys.executable, "-c", LOAD, json.dumps(cfg)])  # noqa: ASYNC220
        load_cpu = 0.0
        while load.poll() is None:
            load_cpu = cpu_seconds(load.pid)
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            print(f"only {len(latencies)} of {expected} messages reached the handler in time")
        elapsed = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        sandbox_cpu = cpu_seconds(sandbox.pid) - sandbox_cpu0
        alert_latency = await _alert_latencies(seed, args.probes) if args.probes else []
        app.stop()
        await asyncio.wait_for(bot_task, 10)
    sandbox.terminate()
    sandbox.wait()
    bot_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    _report(args, expected, sorted(latencies), elapsed, alert_latency, (bot_cpu, sandbox_cpu, load_cpu))


def _bot_settings(seed: dict[str, Any], data_dir: Path, args: argparse.Namespace) -> Settings:
    """The bot logged in to the sandbox; with probes, one notify list per probe."""
    bot_user = next(u for u in seed["users"] if u["username"] == "rcmod.bot")
    lists = data_dir / "lists"
    lists.mkdir()
    # One list per probe: each alert is its own incident key, so none coalesces into another.
    for i in range(args.probes):
        (lists / f"probe{i}.txt").write_text(f"probe{i}\n")
        (lists / f"probe{i}.toml").write_text('kind = "notify"\n[notify]\nusers = ["mod1"]\n')
    return Settings.model_validate(
        {
            "server": {"url": seed["url"], "user_id": bot_user["id"], "auth_token": bot_user["token"]},
            "storage": {"data_dir": str(data_dir)},
            "http": {"port": 0},
            "moderation": {"wordlists": [str(lists)] if args.probes else [], "exempt_roles": []},
            # `--protections off` measures what the automatic protections cost on this path.
            "protections": {
                "flood": {"mode": "off"},
                "repeat": {"mode": "off"},
                "mentions": {"mode": "off"},
            }
            if args.protections == "off"
            else {},
        }
    )


def _report(
    args: argparse.Namespace,
    expected: int,
    lat: list[float],
    elapsed: float,
    alert_latency: list[float],
    cpu: tuple[float, float, float],
) -> None:
    bot_cpu, sandbox_cpu, load_cpu = cpu
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    print(machine_line())
    print(
        f"parameters: {args.members} members posting {expected} messages over REST "
        f"({'as fast as possible' if not args.rate else f'{args.rate}/s'}), sandbox rate limits off, "
        f"protections {'off' if args.protections == 'off' else 'as configured by default (alert only)'}"
    )
    print(f"handled {len(lat)} messages in {elapsed:.2f} s: {len(lat) / elapsed:,.0f} msg/s end to end")
    print(f"post-to-handler latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    if args.probes:
        al = sorted(alert_latency)
        if al:
            print(
                f"post-to-alert-DM latency over {len(al)} alerts: p50 {statistics.median(al) * 1000:.1f} ms, "
                f"p99 {al[min(len(al) - 1, int(len(al) * 0.99))] * 1000:.1f} ms, max {al[-1] * 1000:.1f} ms"
            )
        else:
            print("no alert DM arrived")
    print(
        f"CPU seconds: bot {bot_cpu:.2f}, sandbox {sandbox_cpu:.2f}, load generator {load_cpu:.2f} "
        f"(bot {bot_cpu / max(1, len(lat)) * 1e6:.0f} us CPU per message)"
    )


async def _alert_latencies(seed: dict[str, Any], probes: int) -> list[float]:
    """DM timestamp minus the probe message's timestamp, both stamped by the sandbox."""
    users = {u["username"]: u for u in seed["users"]}
    mod1, bot = users["mod1"], users["rcmod.bot"]
    dm_rid = "".join(sorted({mod1["id"], bot["id"]}))
    headers = {"X-User-Id": mod1["id"], "X-Auth-Token": mod1["token"]}
    deadline = time.monotonic() + 10
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(
                f"{seed['url']}/api/v1/dm.history", headers=headers, params={"roomId": dm_rid, "count": "100"}
            ) as r:
                dms = (await r.json()).get("messages", []) if r.status == 200 else []
            if len(dms) >= probes or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        out = []
        for dm in dms:
            m = re.search(r"\?msg=([A-Za-z0-9]+)", dm["msg"])
            if not m:
                continue
            async with http.get(
                f"{seed['url']}/api/v1/chat.getMessage", headers=headers, params={"msgId": m.group(1)}
            ) as r:
                probe = (await r.json())["message"]
            out.append(_iso(dm["ts"]) - _iso(probe["ts"]))
    return out


def _iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--probes", type=int, default=0, help="matching messages whose alert DM is timed")
    parser.add_argument("--protections", choices=("default", "off"), default="default")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
