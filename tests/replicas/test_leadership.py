"""Leadership on the real PostgreSQL: one lock holder, a token every write checks, a permit in time
for what the store cannot fence (bot.store.leadership)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from bot.errors import Deposed
from bot.store import Store
from bot.store.leadership import Leadership
from tests.backends import PostgresServer


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return postgres.new_database()


@pytest.fixture
def sessions(url: str) -> Iterator[list[Leadership]]:
    opened: list[Leadership] = []
    yield opened
    for s in opened:
        s.close()


def session(url: str, opened: list[Leadership], name: str, **kw: object) -> Leadership:
    s = Leadership.connect(url, name, **kw)  # type: ignore[arg-type]
    opened.append(s)
    return s


def acquired(s: Leadership, within: float = 10.0) -> bool:
    """Ask as a standby does until the lock is free: a closed or ended session's backend releases
    it as it exits, a moment after the client sees the session end."""
    deadline = time.monotonic() + within
    while not s.try_acquire():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def end_session(url: str, holder: str) -> None:
    """What a partition or a PostgreSQL restart does to a lock session: the server ends it."""
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"rcmod-leader {holder}",),
        ).fetchall()
    assert ended == [(True,)]


def test_one_leads_and_the_next_takes_over_when_it_goes(url: str, sessions: list[Leadership]) -> None:
    a, b = session(url, sessions, "a"), session(url, sessions, "b")
    assert a.try_acquire() is True
    assert b.try_acquire() is False and not b.leading
    a.close()
    assert acquired(b)
    assert (a.epoch, b.epoch) == (1, 2)


def test_a_deposed_leaders_store_writes_are_refused(url: str, sessions: list[Leadership]) -> None:
    a, b = session(url, sessions, "a"), session(url, sessions, "b")
    store_a, store_b = Store.connect(url), Store.connect(url)
    try:
        assert a.try_acquire()
        store_a.db.fence(a.epoch or 0)
        store_a.state.state_set("k", "by a")  # a leader writes
        end_session(url, "a")  # a does not know yet: its store connection is alive
        assert acquired(b)
        store_b.db.fence(b.epoch or 0)
        with pytest.raises(Deposed):
            store_a.state.state_set("k", "by a, deposed")
        with pytest.raises(Deposed):
            store_a.audit.append_audit(actor="rcmod", action="alert.sent", targets={})
        store_b.state.state_set("k", "by b")
        assert store_a.state.state_get("k") == "by b"  # a may still read; it wrote nothing more
        with pytest.raises(Deposed):
            a.check()
        assert a.lost is not None and not a.leading
    finally:
        store_a.close()
        store_b.close()


async def test_a_new_leader_waits_out_its_predecessors_permit(url: str, sessions: list[Leadership]) -> None:
    now = [100.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    clocks = {"monotonic": lambda: now[0], "window": 2.0, "sleep": sleep}
    a, b = session(url, sessions, "a", **clocks), session(url, sessions, "b", **clocks)
    assert a.try_acquire()
    await a.permit()  # a first waits out whoever led before it, then checks its session
    assert now[0] == 102.0
    a.close()  # its permit began with that check: it runs until 104.0
    now[0] = 103.0
    assert acquired(b)
    await b.permit()
    assert now[0] > 104.0  # b changes nothing on the server before a's permit has run out


async def test_a_deposed_leader_gets_no_permit(url: str, sessions: list[Leadership]) -> None:
    a, b = session(url, sessions, "a"), session(url, sessions, "b")
    assert a.try_acquire()
    end_session(url, "a")
    assert acquired(b)
    with pytest.raises(Deposed):
        await a.permit()
