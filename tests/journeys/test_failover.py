"""Replicas on PostgreSQL, as an operator runs them: real `rcmod run` processes, the leader killed
with SIGKILL again and again while members write; nothing lost, nothing handled or alerted twice.
RCMOD_FAILOVER_KILLS sets the number of kills (benchmarks/bench_failover.py runs 20)."""

from __future__ import annotations

import os

from tests.backends import PostgresServer
from tests.journeys.conftest import World
from tests.journeys.failover import run_failover


async def test_killing_the_leader_loses_nothing_and_doubles_nothing(
    world: World, postgres: PostgresServer
) -> None:
    kills = int(os.environ.get("RCMOD_FAILOVER_KILLS", "3"))
    figures = await run_failover(world, postgres.new_database(), kills)
    assert len(figures.takeovers) == kills
    assert figures.lost == []
    assert figures.alerted == len(figures.alerting) and figures.duplicate_alert_dms == 0
