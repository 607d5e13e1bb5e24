"""The failover run: real `rcmod run` processes sharing one PostgreSQL and one sandbox process.

One leads, one waits as a standby. Each round, members post over DDP (within Rocket.Chat's rate
limits, as tests.journeys.conftest.Person paces them), some of it words that alert the
moderators, and the leader is killed with SIGKILL at once, so those messages land while nobody
leads; the standby takes over and a new process starts as the next standby. At the end every
posted message must be recorded as handled in the shared store, and the moderator must have each
alert once, counting each alerting message once: 0 lost, 0 doubled. The takeover time of each
round runs from the kill to the new leader's /readyz answering 200 as "leader" (logged in,
connected, caught up: every message posted meanwhile handled).

Used by tests/journeys/test_failover.py (a few kills) and benchmarks/bench_failover.py (20).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.store import Store
from tests.journeys.conftest import BotProcess, Person, World, alert_count, alert_number, free_port, poll

MEMBERS = ("alice", "bob", "carol")


@dataclass
class Figures:
    takeovers: list[float] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)
    alerting: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    alerted: int = 0  # alerting messages counted in the moderator's alerts
    duplicate_alert_dms: int = 0  # alerts the moderator got as more than one message

    @property
    def doubled(self) -> int:
        return max(0, self.alerted - len(self.alerting)) + self.duplicate_alert_dms


async def role(http: aiohttp.ClientSession, port: int) -> str | None:
    """What /readyz says: "leader" or "standby" when ready (200), else None."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
            if r.status != 200:
                return None
            body = await r.json()
            return str(body.get("role"))
    except (aiohttp.ClientError, TimeoutError):
        return None


async def start_instance(
    world: World, url: str, n: int, http: aiohttp.ClientSession, want: str
) -> BotProcess:
    env = world.bot_env(data_dir=world.tmp / f"data{n}", port=free_port(), RCMOD_STORAGE_URL=url)
    bot = BotProcess(world.procs, env)
    await bot.start(within=60)  # a standby answers 200 too
    assert await poll(lambda: _is(http, bot.port, want), 60, every=0.1), (
        f"instance {n} is not {want}\n{bot.proc.stderr() if bot.proc else ''}"
    )
    return bot


async def _is(http: aiohttp.ClientSession, port: int, want: str) -> bool:
    return await role(http, port) == want


async def run_failover(world: World, url: str, kills: int, *, per_round: int = 1) -> Figures:
    figures = Figures()
    mod = await world.person("mod1")
    members: list[Person] = await world.persons(*MEMBERS)
    general = world.seed.room_id("general")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        leader = await start_instance(world, url, 0, http, "leader")
        standby = await start_instance(world, url, 1, http, "standby")
        for k in range(kills):
            # Members write while the leader leads; the alerting ones go to the moderators.
            await post_round(members, general, k, "before", figures, per_round)
            leader.kill9()
            killed = time.monotonic()
            # and while nobody leads (catch-up must find these), beside the takeover: the members'
            # pacing must not count in its time.
            during = asyncio.create_task(post_round(members, general, k, "during", figures, per_round))
            took = await poll(functools.partial(_is, http, standby.port, "leader"), 60, every=0.05)
            assert took, f"no takeover after kill {k + 1}\n{standby.proc.stderr() if standby.proc else ''}"
            figures.takeovers.append(time.monotonic() - killed)
            await during
            await leader.stop()
            leader = standby
            standby = await start_instance(world, url, k + 2, http, "standby")
        await post_round(members, general, kills, "after", figures, per_round)
        await settle(url, figures)
        await count_alerts(mod, figures)
        await standby.stop()
        await leader.stop()
    return figures


async def post_round(
    members: list[Person], rid: str, k: int, phase: str, figures: Figures, per_round: int
) -> None:
    async def one(member: Person, i: int) -> None:
        for j in range(per_round):
            alerting = (i + j + k) % 2 == 0
            text = f"round {k} {phase} {j}: " + ("some badword here" if alerting else "hello there")
            mid = await member.send(rid, text)
            figures.posted.append(mid)
            if alerting:
                figures.alerting.append(mid)

    await asyncio.gather(*(one(m, i) for i, m in enumerate(members)))


async def settle(url: str, figures: Figures, within: float = 60.0) -> None:
    """Wait until the shared store has every posted message handled and nothing left to send."""
    store = Store.connect(url)
    try:

        def done() -> bool:
            figures.lost = [m for m in figures.posted if not store.messages.is_handled(m, "")]
            return not figures.lost and store.alerts.pending_deliveries() == 0

        await poll(done, within, every=0.2)
    finally:
        store.close()


async def count_alerts(mod: Person, figures: Figures, within: float = 30.0) -> None:
    """What the moderator got: each alert's latest copy, its number and how many messages it counts.
    An alert edited to a higher count is one message; the same alert number in two messages
    would be an alert sent twice."""

    def tally() -> bool:
        by_number: dict[int, list[str]] = {}
        counted = 0
        for message in mod.alerts():
            by_number.setdefault(alert_number(message), []).append(str(message["_id"]))
            counted += alert_count(message)
        figures.alerted = counted
        figures.duplicate_alert_dms = sum(len(v) - 1 for v in by_number.values())
        return counted >= len(figures.alerting)

    await poll(tally, within, every=0.2)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


__all__ = ["Figures", "Path", "percentile", "run_failover"]
