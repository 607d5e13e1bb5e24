"""End to end, in a workspace's shape: the sandbox, the bot and the members as three processes.

- the sandbox (bot.sandbox, seeded with ``Sandbox.seed_bulk``: rooms, members, the bot in every room);
- the bot (benchmarks/e2e_bot.py: BotApp as `rcmod run` builds it, plus a handler that records
  when each message reached the handlers), its CPU and memory read from /proc/<pid>;
- the members (benchmarks/e2e_load.py): DDP connections posting with ``sendMessage`` at a steady
  rate, open loop (each post is sent when due, answered or not), within Rocket.Chat's limits;
- in this process, a moderator (mod1) connected over DDP, timing the alert DMs as they arrive.

Phases: first start (the bot sees every room); steady load (--rate msg/s for --seconds, or
--messages as fast as possible); drain (until every accepted post was handled: nothing lost);
restart (stop the bot, post --catch-up-messages across the rooms, start it, time the catch-up).

Latencies, all wall clock on this machine: post-to-handler = when the bot's handlers got the
message minus the server's timestamp of the post; post-to-alert-DM = when the moderator's
client received the alert DM (or its edit) citing the post minus the post's server timestamp.

Shapes (python -m benchmarks.bench_e2e ...):
  (no options)                       4 members posting 2000 messages in one room, as fast as they can
  --rooms 1000 --members 1000 --terms 100000 --rate 500 --seconds 60
                                     a workspace at a steady 500 msg/s, within the rate limits
  --catch-up-rooms 10000             restart with 10,000 rooms and 1000 posts waiting
  ... --bot-cpu-share 0.3 --rss-every 5
                                     the bot starved of CPU: RSS over time, nothing lost at the end

Every figure is one line starting with ``e2e <name>:`` followed by ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import bot_settings as common_bot_settings
from benchmarks.common import machine_line, pct, synthetic_terms

SANDBOX = """
import asyncio, json, sys
from bot.sandbox import RateLimits, Sandbox
async def main():
    cfg = json.loads(sys.argv[1])
    limits = RateLimits() if cfg["limits"] else RateLimits(rest_enabled=False, ddp_enabled=False)
    sb = Sandbox(rate_limits=limits)
    bulk = sb.seed_bulk(cfg["rooms"], cfg["members"], rooms_per_member=cfg["rooms_per_member"])
    await sb.start()
    print(json.dumps({**sb.seed_info(), "bulk": bulk}), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

# Rocket.Chat's defaults: sendMessage 5 per second per user (RateLimiter.limitMethod), and any
# DDP method 10 calls per 10 s per connection (DDP_Rate_Limit_Connection_By_Method). Posting
# stays under 90% of each: the fixed windows start with the first call, so a post on schedule
# can land a hair inside the previous window.
SEND_PER_USER = 5.0
DDP_PER_CONNECTION = 10 / 10
HEADROOM = 0.9
# The members' final report (every accepted id) and a catch-up's batch of handled ids are one line each.
LINE_LIMIT = 1 << 28


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def latency_line(name: str, seconds: list[float], extra: str = "") -> str:
    ms = sorted(s * 1000 for s in seconds)
    return (
        f"e2e {name}: p50={pct(ms, 0.5):.1f} p99={pct(ms, 0.99):.1f} p99.9={pct(ms, 0.999):.1f} "
        f"max={(ms[-1] if ms else float('nan')):.1f} n={len(ms)}{extra}"
    )


@dataclass
class Shape:
    rooms: int
    members: int
    rooms_per_member: int
    conns_per_member: int
    rate: float
    messages: int
    limits: bool
    catch_up_messages: int
    catch_up_rate: float

    @property
    def connections(self) -> int:
        return self.members * self.conns_per_member


def plan(args: argparse.Namespace) -> Shape:
    """The shape the options ask for, with enough connections to stay within the limits."""
    if args.catch_up_rooms:
        args.rooms = args.catch_up_rooms
        if args.members is None:
            args.members = 1000
        if args.catch_up_messages is None:
            args.catch_up_messages = 1000
        if args.seconds is None and args.messages is None:
            args.messages = 0
    members = args.members if args.members is not None else 4
    if args.seconds is not None:
        if not args.rate:
            raise SystemExit("bench_e2e: --seconds needs --rate (a steady rate); use --messages otherwise")
        messages = round(args.rate * args.seconds)
    else:
        messages = args.messages if args.messages is not None else 2000
    # auto: on for a steady rate the members can keep within the limits; off otherwise (as fast as
    # possible, or too few members for the rate: the small shapes measured before the limits were
    # modelled here).
    enough = args.rate <= members * SEND_PER_USER * HEADROOM
    limits = args.limits == "on" or (args.limits == "auto" and args.rate > 0 and enough)
    if limits and not args.rate:
        raise SystemExit("bench_e2e: with the server's rate limits on, give --rate (open loop)")
    conns = 1
    if limits:
        if args.rate > members * SEND_PER_USER * HEADROOM:
            need = math.ceil(args.rate / (SEND_PER_USER * HEADROOM))
            raise SystemExit(f"bench_e2e: {args.rate:g} msg/s needs at least {need} members (5/s each)")
        conns = math.ceil(args.rate / (DDP_PER_CONNECTION * HEADROOM) / members)
    catch_up = args.catch_up_messages if args.catch_up_messages is not None else 200
    # The backlog is posted while the bot is down: as fast as the limits allow.
    catch_up_rate = members * conns * DDP_PER_CONNECTION * HEADROOM if limits else 0.0
    rooms_per_member = args.rooms_per_member or max(1, min(5, args.rooms))
    return Shape(
        args.rooms, members, rooms_per_member, conns, args.rate, messages, limits, catch_up, catch_up_rate
    )


def limits_line(shape: Shape) -> str:
    if not shape.limits:
        return "e2e limits: off (the sandbox enforces no rate limits; members post as fast as they can" + (
            ", or as fast as --rate asks)" if shape.rate else ")"
        )
    per_conn = shape.rate / shape.connections
    need_conns = math.ceil(shape.rate / (DDP_PER_CONNECTION * HEADROOM))
    need_members = math.ceil(shape.rate / (SEND_PER_USER * HEADROOM))
    return (
        f"e2e limits: on (sendMessage 5/s per user; DDP 10 calls per 10 s per connection and method): "
        f"{shape.rate:g} msg/s needs >= {need_conns} connections and >= {need_members} members at 90% of "
        f"the limits; using {shape.members} members x {shape.conns_per_member} connection(s) = "
        f"{shape.connections} connections, {per_conn:.2f} msg/s per connection, "
        f"{shape.rate / shape.members:.2f} msg/s per member"
    )


@dataclass
class Bot:
    """One run of the bot process; what it handled is shared between runs (the same store)."""

    settings: Path
    log: Path
    handled: dict[str, tuple[float, float]]
    cpu_share: float | None
    cpus: str | None
    proc: asyncio.subprocess.Process | None = None
    spawned: float = 0.0
    ready_at: float | None = None
    peak_rss_kb: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        argv = [sys.executable, "-m", "benchmarks.e2e_bot", str(self.settings)]
        if self.cpus:
            argv = ["taskset", "-c", self.cpus, *argv]  # taskset execs: the pid stays the bot's
        self.ready_at = None
        self.spawned = time.time()
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.PIPE, stderr=err, limit=LINE_LIMIT
            )
        self.tasks = [asyncio.create_task(self._read())]

    def starve(self) -> None:
        """From now on (the steady phase) the bot gets ``cpu_share`` of the CPU, if one is set."""
        if self.cpu_share:
            self.tasks.append(asyncio.create_task(self._starve(self.cpu_share)))

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            kind, _, rest = line.decode().partition(" ")
            if kind == "H":
                for item in rest.split():
                    mid, ts, at = item.split(",")
                    self.handled.setdefault(mid, (float(ts), float(at)))
            elif kind == "R":
                self.ready_at = float(rest)

    async def _starve(self, share: float) -> None:
        """A CPU quota without cgroups: the bot runs ``share`` of every 100 ms, stopped the rest."""
        assert self.proc is not None
        pid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            while self.proc.returncode is None:
                os.kill(pid, signal.SIGCONT)
                await asyncio.sleep(0.1 * share)
                os.kill(pid, signal.SIGSTOP)
                await asyncio.sleep(0.1 * (1 - share))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample_peak(self) -> int:
        with contextlib.suppress(OSError):
            self.peak_rss_kb = max(self.peak_rss_kb, status_kb(self.pid, "VmHWM"))
        return self.peak_rss_kb

    async def wait_ready(self, within: float) -> float:
        deadline = time.monotonic() + within
        while self.ready_at is None:
            if self.proc is None or self.proc.returncode is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"bench_e2e: the bot did not become ready; its log ends:\n{tail}")
            await asyncio.sleep(0.05)
        return self.ready_at - self.spawned

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.sample_peak()
        for task in self.tasks[1:]:
            task.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Moderator:
    """mod1's client over DDP: the first arrival of an alert DM (or an edit of one) citing each post."""

    def __init__(self, url: str, token: str, bot_id: str) -> None:
        self.url, self.token, self.bot_id = url, token, bot_id
        self.cited: dict[str, float] = {}
        self.last_new = time.monotonic()

    async def run(self, ready: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(self.url.replace("http", "ws", 1) + "/websocket", max_msg_size=0)
            await ws.send_str('{"msg":"connect","version":"1","support":["1"]}')
            await ws.send_str(
                json.dumps(
                    {"msg": "method", "method": "login", "id": "1", "params": [{"resume": self.token}]}
                )
            )
            await ws.send_str(
                json.dumps(
                    {
                        "msg": "sub",
                        "id": "s",
                        "name": "stream-room-messages",
                        "params": ["__my_messages__", False],
                    }
                )
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                frame = json.loads(msg.data)
                if frame.get("msg") == "ping":
                    await ws.send_str('{"msg":"pong"}')
                elif frame.get("msg") == "ready":
                    ready.set()
                elif frame.get("msg") == "changed" and frame.get("collection") == "stream-room-messages":
                    message = frame["fields"]["args"][0]
                    if message.get("u", {}).get("_id") != self.bot_id:
                        continue
                    for mid in re.findall(r"\?msg=([A-Za-z0-9]+)", message.get("msg", "")):
                        if mid not in self.cited:
                            self.cited[mid] = now
                            self.last_new = time.monotonic()


@dataclass
class Progress:
    accepted: int = 0
    posting: asyncio.Event = field(default_factory=asyncio.Event)  # every member connected
    cpu_at_posting: float = 0.0


async def load(cfg: dict[str, Any], path: Path, progress: Progress) -> tuple[dict[str, Any], float]:
    """Run the members; returns their final report and their CPU seconds since posting began."""
    await asyncio.to_thread(path.write_text, json.dumps(cfg))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.e2e_load", str(path), stdout=subprocess.PIPE, limit=LINE_LIMIT
    )
    assert proc.stdout is not None
    final: dict[str, Any] = {}
    cpu = 0.0
    while line := await proc.stdout.readline():
        kind, _, rest = line.decode().partition(" ")
        with contextlib.suppress(OSError):
            cpu = cpu_seconds(proc.pid)
        if kind == "C":
            progress.cpu_at_posting = cpu
            progress.posting.set()
        elif kind == "P":
            progress.accepted = int(rest.split()[0])
        elif kind == "F":
            final = json.loads(rest)
    await proc.wait()
    if not final:
        raise SystemExit("bench_e2e: the load generator failed")
    return final, cpu - progress.cpu_at_posting


def load_config(
    seed: dict[str, Any], shape: Shape, terms_file: Path | None, args: argparse.Namespace
) -> dict[str, Any]:
    posters = [
        {"token": u["token"], "rooms": u["rooms"]}
        for u in seed["bulk"]["users"]
        for _ in range(shape.conns_per_member)
    ]
    return {
        "url": seed["url"],
        "conns": posters,
        "terms_file": str(terms_file) if terms_file else None,
        "match_share": args.match_share,
        "seed": 11,
    }


async def wait_handled(bot: Bot, ids: list[str], within: float, rss_every: float, t0: float) -> float:
    """Until every id in ``ids`` was handled (or ``within`` seconds); returns when the last one was."""
    deadline = time.monotonic() + within
    next_rss = time.monotonic() + rss_every if rss_every else math.inf
    while any(mid not in bot.handled for mid in ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if time.monotonic() >= next_rss:
            next_rss += rss_every
            print(rss_line(bot, t0, len(ids)), flush=True)
    return max((bot.handled[m][1] for m in ids if m in bot.handled), default=math.nan)


def rss_line(bot: Bot, t0: float, posted: int) -> str:
    try:
        rss = status_kb(bot.pid, "VmRSS")
    except OSError:
        rss = 0
    handled = len(bot.handled)
    return f"e2e rss: t={time.time() - t0:.1f}s rss_mb={rss / 1024:.1f} handled={handled} posted={posted}"


def keep_log(log: Path, into: Path) -> Path:
    """Copy the bot's log out of the run's temporary directory, which goes at the end."""
    into.mkdir(parents=True, exist_ok=True)
    if log.exists():
        shutil.copyfile(log, into / log.name)
    return into / log.name


async def run(args: argparse.Namespace) -> None:
    shape = plan(args)
    print(
        "command: "
        + " ".join(shlex.quote(a) for a in [sys.executable, "-m", "benchmarks.bench_e2e", *sys.argv[1:]])
    )
    print(machine_line())
    print(
        f"e2e shape: rooms={shape.rooms} members={shape.members} rooms_per_member={shape.rooms_per_member} "
        f"connections={shape.connections} terms={args.terms} match_share={args.match_share:g} "
        f"rate={'max' if not shape.rate else f'{shape.rate:g}'} messages={shape.messages} "
        f"catch_up_messages={shape.catch_up_messages} protections={args.protections} "
        f"bot_cpu_share={args.bot_cpu_share or 1:g} bot_cpus={args.bot_cpus or 'any'}"
    )
    print(limits_line(shape), flush=True)
    t_setup = time.perf_counter()
    sandbox_cfg = {
        "limits": shape.limits,
        "rooms": shape.rooms,
        "members": shape.members,
        "rooms_per_member": shape.rooms_per_member,
    }
    # Plain Popen on purpose: its CPU is read from /proc/<pid>/stat.
    sandbox = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", SANDBOX, json.dumps(sandbox_cfg)], stdout=subprocess.PIPE, text=True
    )
    assert sandbox.stdout is not None
    seed = json.loads(await asyncio.to_thread(sandbox.stdout.readline))
    users = {u["username"]: u for u in seed["users"]}
    print(
        f"e2e seeded: seconds={time.perf_counter() - t_setup:.2f} rooms={shape.rooms} members={shape.members}"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
            if args.store == "postgresql":
                # A throwaway PostgreSQL 15 with the server's own durability (fsync on), on a unix
                # socket in this folder; the bot's store is a fresh database in it.
                from tests.backends import PostgresServer

                # Its own folder: the server runs as nobody when this runs as root.
                pg_dir = Path(tempfile.mkdtemp(prefix="rcmod-pg-"))
                stack.callback(shutil.rmtree, pg_dir, ignore_errors=True)
                server = PostgresServer(pg_dir, durable=True)
                server.start()
                stack.callback(server.stop)
                args.storage_url = server.new_database()
                print("e2e store: postgresql (local, unix socket, fsync on)", flush=True)
            try:
                await _phases(args, shape, seed, users, Path(tmp_name), sandbox.pid)
            finally:
                if args.keep_logs:
                    kept = await asyncio.to_thread(keep_log, Path(tmp_name) / "bot.log", Path(args.keep_logs))
                    print(f"e2e bot_log: {kept}", flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait()


async def _phases(
    args: argparse.Namespace,
    shape: Shape,
    seed: dict[str, Any],
    users: dict[str, Any],
    tmp: Path,
    sandbox_pid: int,
) -> None:
    terms_file = None
    lists = tmp / "lists"
    lists.mkdir()
    if args.terms:
        terms_file = lists / "bench.txt"
        terms_file.write_text("\n".join(synthetic_terms(args.terms)) + "\n")
        (lists / "bench.toml").write_text('kind = "notify"\n[notify]\nusers = ["mod1"]\n')
    settings = tmp / "settings.json"
    settings.write_text(json.dumps(bot_settings(seed, tmp, lists if args.terms else None, args)))
    bot = Bot(settings, tmp / "bot.log", {}, args.bot_cpu_share, args.bot_cpus)
    moderator = Moderator(seed["url"], users["mod1"]["token"], users["rcmod.bot"]["id"])
    watching = asyncio.Event()
    mod_task = asyncio.create_task(moderator.run(watching))
    await asyncio.wait_for(watching.wait(), 30)
    await bot.start()
    print(f"e2e first_start: ready_s={await bot.wait_ready(args.ready_timeout):.2f}", flush=True)
    base = load_config(seed, shape, terms_file, args)
    rss_every = args.rss_every if args.rss_every is not None else (5.0 if args.bot_cpu_share else 0.0)
    idle_rate = 0.0
    if shape.messages and args.idle_seconds:
        # What the bot burns with no traffic (room subscriptions being paced in, sweeps): read the
        # per-message figure net of it too.
        cpu0 = cpu_seconds(bot.pid)
        await asyncio.sleep(args.idle_seconds)
        idle_rate = (cpu_seconds(bot.pid) - cpu0) / args.idle_seconds
        print(f"e2e bot_idle: cpu_percent={idle_rate * 100:.1f} over_s={args.idle_seconds:g}", flush=True)
    if shape.messages:
        await _steady(idle_rate, args, shape, bot, moderator, base, rss_every, tmp, sandbox_pid)
    if shape.catch_up_messages:
        await _catch_up(args, shape, bot, base, tmp)
    await bot.stop()
    print(f"e2e peak_rss_mb: {bot.peak_rss_kb / 1024:.1f} (VmHWM of the bot process, largest over its runs)")
    mod_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await mod_task


async def _steady(
    idle_rate: float,
    args: argparse.Namespace,
    shape: Shape,
    bot: Bot,
    moderator: Moderator,
    base: dict[str, Any],
    rss_every: float,
    tmp: Path,
    sandbox_pid: int,
) -> None:
    cfg = {
        **base,
        "total": shape.messages,
        "rate": shape.rate,
        "timeout": args.drain_timeout + shape.messages / max(shape.rate, 1),
    }
    progress = Progress()
    load_task = asyncio.create_task(load(cfg, tmp / "load.json", progress))
    # The members connect and log in first; the figures start when they begin to post.
    await asyncio.wait(
        {load_task, asyncio.create_task(progress.posting.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    bot_cpu0, sandbox_cpu0 = cpu_seconds(bot.pid), cpu_seconds(sandbox_pid)
    t0 = time.time()
    bot.starve()
    next_rss = time.monotonic() + rss_every if rss_every else math.inf
    while not load_task.done():
        await asyncio.sleep(0.05)
        bot.sample_peak()
        if time.monotonic() >= next_rss:
            next_rss += rss_every
            print(rss_line(bot, t0, progress.accepted), flush=True)
    report, load_cpu = load_task.result()
    accepted = [mid for mid, _ in report["accepted"]]
    last = await wait_handled(bot, accepted, args.drain_timeout, rss_every, t0)
    bot_cpu, busy = cpu_seconds(bot.pid) - bot_cpu0, time.time() - t0
    sandbox_cpu = cpu_seconds(sandbox_pid) - sandbox_cpu0
    bot.sample_peak()
    handled = [mid for mid in accepted if mid in bot.handled]
    lag = report["lag_ms"]
    print(
        f"e2e posts: offered={shape.messages} accepted={len(accepted)} rejected={report['rejected']} "
        f"errors={json.dumps(report['errors'], separators=(',', ':'))} send_lag_ms_p50={lag['p50']:.1f} "
        f"send_lag_ms_p99={lag['p99']:.1f} send_lag_ms_max={lag['max']:.1f}"
    )
    # From the first post's server timestamp to the last handled: the load's own start-up is not in it.
    elapsed = last - min((bot.handled[m][0] for m in handled), default=t0)
    print(
        f"e2e handled: handled={len(handled)} lost={len(accepted) - len(handled)} "
        f"elapsed_s={elapsed:.2f} msg_per_s={len(handled) / elapsed:.0f}"
    )
    net = bot_cpu - idle_rate * busy
    print(
        f"e2e bot_cpu: us_per_msg={bot_cpu / max(1, len(handled)) * 1e6:.0f} "
        f"us_per_msg_net_of_idle={net / max(1, len(handled)) * 1e6:.0f} bot_s={bot_cpu:.2f} "
        f"sandbox_s={sandbox_cpu:.2f} load_s={load_cpu:.2f} over_s={busy:.1f}"
    )
    print(latency_line("handler_latency_ms", [bot.handled[m][1] - bot.handled[m][0] for m in handled]))
    term_ids = [mid for mid, term in report["accepted"] if term]
    if term_ids:
        # The outbox sends (or edits) the DMs after the handlers: give it until the DMs settle.
        deadline = time.monotonic() + 30
        while True:
            if time.monotonic() >= min(deadline, moderator.last_new + 3):
                break
            await asyncio.sleep(0.1)
        cited = [m for m in term_ids if m in moderator.cited and m in bot.handled]
        print(
            latency_line(
                "alert_dm_latency_ms",
                [moderator.cited[m] - bot.handled[m][0] for m in cited],
                f" term_posts={len(term_ids)} (a burst by one author in one room is one DM: "
                "only the posts a DM cites are timed)",
            )
        )


async def _catch_up(
    args: argparse.Namespace, shape: Shape, bot: Bot, base: dict[str, Any], tmp: Path
) -> None:
    await bot.stop()
    cfg = {
        **base,
        "total": shape.catch_up_messages,
        "rate": shape.catch_up_rate,
        "timeout": 600,
        "match_share": 0.0,
    }
    report, _ = await load(cfg, tmp / "backlog.json", Progress())
    backlog = [mid for mid, _ in report["accepted"]]
    await bot.start()
    t0 = bot.spawned
    ready = await bot.wait_ready(max(args.ready_timeout, 600))
    cpu_at_ready = cpu_seconds(bot.pid)
    last = await wait_handled(bot, backlog, args.drain_timeout, 0, t0)
    handled = [m for m in backlog if m in bot.handled]
    bot.sample_peak()
    print(
        f"e2e catch_up: rooms={shape.rooms} backlog={len(backlog)} "
        f"handled={len(handled)} lost={len(backlog) - len(handled)} all_handled_s={last - t0:.2f} "
        f"ready_s={ready:.2f} bot_cpu_s_to_ready={cpu_at_ready:.2f} (seconds from starting the bot process)"
    )


def bot_settings(
    seed: dict[str, Any], data_dir: Path, lists: Path | None, args: argparse.Namespace
) -> dict[str, Any]:
    bot_user = next(u for u in seed["users"] if u["username"] == "rcmod.bot")
    settings = common_bot_settings(seed["url"], bot_user, data_dir, lists, protections=args.protections)
    settings["logging"]["level"] = args.bot_log_level
    if getattr(args, "storage_url", None):
        settings["storage"]["url"] = args.storage_url
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rooms",
        type=int,
        default=1,
        help="public channels the bot is in (bulk seeded; default %(default)s)",
    )
    parser.add_argument(
        "--members", type=int, default=None, help="active posters (default 4; 1000 with --catch-up-rooms)"
    )
    parser.add_argument(
        "--rooms-per-member",
        type=int,
        default=None,
        help="rooms each member posts in, round robin (default min(5, rooms))",
    )
    parser.add_argument(
        "--terms",
        type=int,
        default=0,
        help="synthetic terms in one notify list, alerts to mod1 (default %(default)s)",
    )
    parser.add_argument(
        "--match-share",
        type=float,
        default=0.01,
        help="share of posts carrying one term (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="steady msg/s across all posters, open loop (0: as fast as possible, closed loop)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="how long to post at --rate (messages = rate x seconds)"
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="posts in the steady phase when --seconds is not given (default 2000)",
    )
    parser.add_argument(
        "--limits",
        choices=("auto", "on", "off"),
        default="auto",
        help="Rocket.Chat's rate limits in the sandbox (auto, the default: on with a --rate the members "
        "can keep within them)",
    )
    parser.add_argument(
        "--protections",
        choices=("default", "off"),
        default="default",
        help="the automatic protections as configured by default, or off (default %(default)s)",
    )
    parser.add_argument(
        "--catch-up-messages",
        type=int,
        default=None,
        help="posted while the bot is stopped, then timed to be handled after a restart "
        "(default 200; 1000 with --catch-up-rooms; 0: no restart)",
    )
    parser.add_argument(
        "--catch-up-rooms",
        type=int,
        default=0,
        help="catch-up shape: this many rooms, no steady phase unless --seconds/--messages",
    )
    parser.add_argument(
        "--bot-cpu-share",
        type=float,
        default=None,
        help="starve the bot from the steady phase on, through its drain: "
        "it runs this share of each 100 ms (SIGSTOP/SIGCONT)",
    )
    parser.add_argument("--bot-cpus", default=None, help="pin the bot with taskset -c LIST")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the bot's store: SQLite in its data folder, or a throwaway local PostgreSQL 15",
    )
    parser.add_argument(
        "--rss-every",
        type=float,
        default=None,
        help="print the bot's RSS every S seconds (default 5 with --bot-cpu-share, else off)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=3.0,
        help="before the load, measure the bot's CPU with no traffic for this long (default %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the bot to handle every accepted post (default %(default)s)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=120.0,
        help="seconds the bot may take to be ready (default %(default)s)",
    )
    parser.add_argument(
        "--keep-logs",
        default=None,
        metavar="DIR",
        help="copy the bot's log (its stderr) to DIR/bot.log at the end, kept after the run",
    )
    parser.add_argument(
        "--bot-log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the bot's log level (default %(default)s; INFO shows connections and catch-up passes)",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=0,
        help="older option: N posts carry a term (sets --terms and --match-share)",
    )
    args = parser.parse_args()
    if args.probes:
        args.terms = args.terms or args.probes
        args.match_share = args.probes / (args.messages or 2000)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
