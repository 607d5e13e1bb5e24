"""Replicas on PostgreSQL, as an operator runs them: real `rcmod run` processes, the leader killed
with SIGKILL again and again while members write; nothing lost, nothing handled or alerted twice.
RCMOD_FAILOVER_KILLS sets the number of kills (benchmarks/bench_failover.py runs 20)."""

from __future__ import annotations

import asyncio
import functools
import os
import signal

import aiohttp
import psycopg

from tests.backends import PostgresServer
from tests.journeys.conftest import World, alert_mid, alert_number, poll, quiet_for
from tests.journeys.failover import _is, run_failover, start_instance


async def test_killing_the_leader_loses_nothing_and_doubles_nothing(
    world: World, postgres: PostgresServer
) -> None:
    kills = int(os.environ.get("RCMOD_FAILOVER_KILLS", "3"))
    figures = await run_failover(world, postgres.new_database(), kills)
    assert len(figures.takeovers) == kills
    assert figures.lost == []
    assert figures.alerted == len(figures.alerting) and figures.duplicate_alert_dms == 0


async def test_a_paused_leader_past_its_lock_acts_on_nothing_when_resumed(
    world: World, postgres: PostgresServer
) -> None:
    """SIGSTOP the leader, and end its lock session as a partition would: the standby takes over;
    the old leader, resumed, sends nothing, writes nothing, and exits."""
    url = postgres.new_database()
    mod, alice, bob, carol = await world.persons("mod1", "alice", "bob", "carol")
    general = world.seed.room_id("general")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        old = await start_instance(world, url, 0, http, "leader")
        standby = await start_instance(world, url, 1, http, "standby")
        assert old.proc is not None
        before = await alice.send(general, "a badword before the pause")
        assert await poll(lambda: any(alert_mid(a) == before for a in mod.alerts()), 20)
        old.proc.proc.send_signal(signal.SIGSTOP)
        try:
            with psycopg.connect(url, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
                    (f"rcmod-leader %:{old.proc.proc.pid}:%",),
                ).fetchall()
            assert ended == [(True,)]
            assert await poll(functools.partial(_is, http, standby.port, "leader"), 30)
            during = await bob.send(general, "a badword while the old leader sleeps")
            assert await poll(lambda: any(alert_mid(a) == during for a in mod.alerts()), 20)
        finally:
            old.proc.proc.send_signal(signal.SIGCONT)
        # Resumed, it finds its lock gone and stops: exit status 1, one line saying why.
        assert await asyncio.wait_for(old.proc.proc.wait(), 30) == 1
        assert "leadership lost" in old.proc.stderr()
        after = await carol.send(general, "and a badword after it resumed")
        assert await poll(lambda: any(alert_mid(a) == after for a in mod.alerts()), 20)
        assert await quiet_for(lambda: len(mod.alerts()) == len({alert_number(a) for a in mod.alerts()}), 3)
        numbers = [alert_number(a) for a in mod.alerts()]
        assert len(numbers) == len(set(numbers)) == 3, [a["msg"][:60] for a in mod.alerts()]
        await standby.stop()
