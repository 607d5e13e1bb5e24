"""Replicas on PostgreSQL: kill -9 the leader again and again; how long is nobody leading, and is
anything lost or doubled? Real `rcmod run` processes, a sandbox process, a throwaway PostgreSQL 15
with the server's own durability (fsync on).

    .venv/bin/python -m benchmarks.bench_failover [KILLS] [MESSAGES_PER_MEMBER_PER_PHASE]

Each round: three members post over DDP (paced under Rocket.Chat's limits), half of it words that
alert the moderators; the leader is killed (SIGKILL) and the members post again while nobody
leads; the standby takes over; a new process starts as the next standby. Takeover time: from the
kill to the new leader's /readyz answering 200 as "leader" (logged in, connected, caught up).
Lost: posted messages never recorded as handled. Doubled: alerting messages counted more than
once in the moderator's alerts, plus alerts the moderator got as two messages.
(tests/journeys/failover.py holds the run; tests/journeys/test_failover.py runs a few kills.)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import aiohttp

from benchmarks.common import machine_line
from tests.backends import postgres_server
from tests.journeys.conftest import Processes, SandboxProcess, World
from tests.journeys.failover import percentile, run_failover


async def main(kills: int, per_round: int) -> None:
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="rcmod-failover-") as tmp, postgres_server(durable=True) as pg:
        procs = Processes(Path(tmp))
        sandbox = SandboxProcess(procs)
        try:
            seed = await sandbox.start()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
                world = World(Path(tmp), procs, sandbox, seed, http)
                try:
                    figures = await run_failover(world, pg.new_database(), kills, per_round=per_round)
                finally:
                    for person in world.people.values():
                        await person.close()
        finally:
            await procs.stop_all()
    t = figures.takeovers
    print(f"kills: {kills}; messages posted: {len(figures.posted)}, alerting: {len(figures.alerting)}")
    print(
        f"takeover (kill -> new leader ready): p50 {percentile(t, 50):.2f} s, "
        f"p90 {percentile(t, 90):.2f} s, max {max(t):.2f} s"
    )
    print(f"takeovers: {' '.join(f'{x:.2f}' for x in t)}")
    print(f"lost: {len(figures.lost)}; doubled: {figures.doubled}")


if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    )
