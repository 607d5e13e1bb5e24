"""Purge throughput against the sandbox: 10,000 messages over 10 rooms, deleted by a term purge
(chat.delete, message by message) and by a user purge (rooms.cleanHistory), with the sandbox's
REST rate limiter off (the ``bot`` role bypasses it on a real server) and with a scaled-down limit
the bot does not bypass, to show that a purge slows down and never fails.

The sandbox runs in its own thread and event loop (its own "server"); the purger, its REST client
and the SQLite journal run in the main one. Every run checks that exactly the selected messages
are gone and that each has one evidence record.

Run: .venv/bin/python -m benchmarks.bench_purge [--messages 10000] [--rooms 10]
     [--limited-messages 2000] [--limit 200] [--window 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import machine_line
from bot.models import Actor
from bot.moderation.purge import PurgeRequest
from bot.sandbox import Sandbox
from bot.sandbox.ratelimit import RateLimits
from bot.store import Store
from tests.helpers import bot_rest, purger_for, seed_user

OPERATOR = Actor("operator", "operator", operator=True)


class SandboxThread:
    def __init__(self, limits: RateLimits, bypass: bool) -> None:
        self.sandbox = Sandbox(rate_limits=limits)
        if not bypass:
            ws = self.sandbox.workspace
            roles = ws.permissions["api-bypass-rate-limit"]["roles"]
            ws.set_permission_roles("api-bypass-rate-limit", [r for r in roles if r != "bot"])
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.sandbox.start(), self.loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def seed(sb: Sandbox, messages: int, rooms: int) -> tuple[set[str], set[str]]:
    """``messages`` by bob containing the term, spread over ``rooms`` new rooms, plus 10% clean
    messages by alice that must survive. Returns (doomed ids, kept ids)."""
    ws = sb.workspace
    admin = ws.user_by_username("admin")
    members = [u.id for u in ws.users.values() if u.username in ("admin", "alice", "bob", "rcmod.bot")]
    names = [f"bench{i}" for i in range(rooms)]
    for name in names:
        ws.create_room("c", name, admin, members)
    doomed = {sb.post_as("bob", names[i % rooms], f"spam offer number {i}")["_id"] for i in range(messages)}
    kept = {sb.post_as("alice", names[i % rooms], f"hello {i}")["_id"] for i in range(messages // 10)}
    return doomed, kept


async def one_run(
    label: str, request: PurgeRequest, messages: int, rooms: int, limits: RateLimits, bypass: bool
) -> None:
    server = SandboxThread(limits, bypass)
    server.start()
    doomed, kept = seed(server.sandbox, messages, rooms)
    rest = bot_rest(server.sandbox)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "rcmod.sqlite3")
        purger = purger_for(store, rest, seed_user(server.sandbox, "rcmod.bot")["id"])
        t0 = time.perf_counter()
        plan = await purger.prepare(request, actor=OPERATOR)
        t1 = time.perf_counter()
        result = await purger.run(plan.job_id, token=plan.token)
        t2 = time.perf_counter()
        evidence = Counter(r.mid for r in store.evidence.all_evidence_rows())
        store.close()
    await rest.close()
    left = set(server.sandbox.workspace.messages)
    server.stop()
    exact = result.ok and not doomed & left and kept <= left and evidence == Counter(dict.fromkeys(doomed, 1))
    print(
        f"{label:<44} {result.deleted:>6} deleted  walk+preview {t1 - t0:6.1f} s  "
        f"evidence+delete {t2 - t1:6.1f} s  {result.deleted / (t2 - t0):7.0f} msg/s overall  "
        f"{'exact' if exact else 'MISMATCH'}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rooms", type=int, default=10)
    ap.add_argument("--limited-messages", type=int, default=2_000)
    ap.add_argument("--limit", type=int, default=200, help="REST calls per route per window (limited runs)")
    ap.add_argument("--window", type=float, default=1.0, help="seconds (limited runs)")
    a = ap.parse_args()
    print(machine_line())
    off = RateLimits(rest_enabled=False, ddp_enabled=False)
    on = RateLimits(rest_calls=a.limit, rest_window=a.window, ddp_enabled=False)
    term = PurgeRequest("term", "spam offer", everywhere=True)
    user = PurgeRequest("user", "bob", everywhere=True)
    await one_run("term purge, limiter off (chat.delete each)", term, a.messages, a.rooms, off, True)
    await one_run("user purge, limiter off (rooms.cleanHistory)", user, a.messages, a.rooms, off, True)
    lim = f"{a.limit}/{a.window:g}s"
    await one_run(f"term purge, limited {lim}, no bypass", term, a.limited_messages, a.rooms, on, False)
    await one_run(f"user purge, limited {lim}, no bypass", user, a.limited_messages, a.rooms, on, False)


if __name__ == "__main__":
    asyncio.run(main())
