"""Two bots, one PostgreSQL store, one sandbox: one leads and the other waits warm; when the
leader's lock session ends (a partition, a PostgreSQL restart, pg_terminate_backend) before it
has noticed, the standby takes over, the old leader acts on nothing more and stops, and every
message is handled, and alerted, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psycopg
import pytest

from bot.app import BotApp, Extras
from bot.errors import Deposed
from bot.sandbox import Sandbox
from tests.backends import PostgresServer
from tests.conftest import Recorder, bot_settings, handled, until
from tests.helpers import ask, dms_from_bot, write_lists


class Instance:
    def __init__(self, sandbox: Sandbox, folder: Path, url: str, lists: Path) -> None:
        settings = bot_settings(
            sandbox,
            folder,
            storage={"url": url},
            moderation={"wordlists": [str(lists)], "moderators": ["mod1"]},
        )
        self.recorder = Recorder()
        self.app = BotApp(settings, Extras(handlers=[("recorder", (object,), self.recorder)]))
        self.task: asyncio.Task[None] = asyncio.create_task(self.app.run())

    async def readyz(self) -> tuple[int, dict[str, object]]:
        assert self.app.web is not None and self.app.web.port is not None
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.app.web.port}/readyz") as r,
        ):
            return r.status, await r.json()


@pytest.fixture
async def pair() -> AsyncIterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for i in started:
        i.app.stop()
        await asyncio.wait([i.task], timeout=15)


def end_lock_session(url: str, app: BotApp) -> None:
    assert app.leadership is not None
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"rcmod-leader {app.leadership.holder}"[:63],),
        ).fetchall()
    assert ended == [(True,)]


async def test_one_leads_the_standby_takes_over_and_the_deposed_one_acts_on_nothing(
    sandbox: Sandbox, postgres: PostgresServer, tmp_path: Path, pair: list[Instance]
) -> None:
    url = postgres.new_database()
    lists = write_lists(tmp_path / "lists")
    a = Instance(sandbox, tmp_path / "a", url, lists)
    pair.append(a)
    assert await until(a.app.ready.is_set, within=20), "the first instance did not become ready"
    b = Instance(sandbox, tmp_path / "b", url, lists)
    pair.append(b)
    assert await until(lambda: b.app.web is not None and b.app.leadership is not None, within=20)
    status, body = await b.readyz()
    assert (status, body["role"]) == (200, "standby")
    status, body = await a.readyz()
    assert (status, body["role"]) == (200, "leader")

    first = str(sandbox.post_as("alice", "general", "this is a badword, first")["_id"])
    assert await until(lambda: a.recorder.message_ids()[first] == 1)
    assert not b.recorder.events  # a standby handles nothing

    # The leader's lock session ends while its process knows nothing of it yet: a message
    # posted now must be handled by exactly one of them.
    end_lock_session(url, a.app)
    second = str(sandbox.post_as("bob", "general", "another badword, second")["_id"])
    with pytest.raises(Deposed):
        await asyncio.wait_for(a.task, timeout=15)
    assert await until(b.app.ready.is_set, within=20), "the standby did not take over"
    status, body = await b.readyz()
    assert (status, body["role"]) == (200, "leader")
    third = str(sandbox.post_as("carol", "general", "a third badword")["_id"])
    assert await until(lambda: b.recorder.message_ids()[third] == 1)

    for mid in (first, second, third):
        assert a.recorder.message_ids()[mid] + b.recorder.message_ids()[mid] >= 1, mid

    # The second message may have reached the old leader's handlers before it noticed; its
    # writes were then refused, and the new leader handled it: the outbox's keys and pre-chosen
    # ids make that one alert. What the moderator sees is each alert once (three authors: three
    # alerts, none coalesced).
    def alerts_about(mid: str) -> int:
        return sum(f"?msg={mid})" in str(m["msg"]) for m in dms_from_bot(sandbox, "mod1"))

    assert await until(lambda: all(alerts_about(m) == 1 for m in (first, second, third)), within=15), [
        m["msg"][:80] for m in dms_from_bot(sandbox, "mod1")
    ]
    assert len(dms_from_bot(sandbox, "mod1")) == 3
    store = b.app.store
    assert store is not None
    assert all(store.messages.is_handled(m, "") for m in (first, second, third))


async def test_a_replica_taking_over_applies_the_previous_leaders_list_edits(
    sandbox: Sandbox, postgres: PostgresServer, tmp_path: Path, pair: list[Instance]
) -> None:
    url = postgres.new_database()
    lists = write_lists(tmp_path / "lists")
    a = Instance(sandbox, tmp_path / "a", url, lists)
    pair.append(a)
    assert await until(a.app.ready.is_set, within=20), "the first instance did not become ready"
    b = Instance(sandbox, tmp_path / "b", url, lists)  # its own data folder, as a second pod has
    pair.append(b)
    assert await until(lambda: b.app.web is not None and b.app.leadership is not None, within=20)
    assert b.app.matcher is not None and {o.name for o in b.app.matcher.lists} == {"watch"}

    # Edits made on the leader, after the standby compiled its (warm) matcher.
    assert "never matches" in await ask(sandbox, "mod1", 'mod allow "harmless badword"')
    assert "is now matched" in await ask(sandbox, "mod1", 'mod deny "casino night"')
    assert b.app.matcher is not None and {o.name for o in b.app.matcher.lists} == {"watch"}

    end_lock_session(url, a.app)
    with pytest.raises(Deposed):
        await asyncio.wait_for(a.task, timeout=15)
    assert await until(b.app.ready.is_set, within=20), "the standby did not take over"
    matcher = b.app.matcher
    assert matcher is not None
    assert {o.name for o in matcher.lists} == {"watch", "runtime", "runtime-allow"}
    before = len(dms_from_bot(sandbox, "mod1"))
    allowed = str(sandbox.post_as("alice", "general", "only a harmless badword")["_id"])
    denied = str(sandbox.post_as("bob", "general", "casino night at nine")["_id"])
    assert await until(lambda: any(f"?msg={denied})" in str(m["msg"]) for m in dms_from_bot(sandbox, "mod1")))
    assert await until(lambda: b.recorder.message_ids()[allowed] == 1)
    assert await until(lambda: handled(b.app.store, allowed, denied))
    assert not any(f"?msg={allowed})" in str(m["msg"]) for m in dms_from_bot(sandbox, "mod1")[before:])
    store = b.app.store
    assert store is not None
    assert {c.name for c in store.lists.lists()} == {"runtime", "runtime-allow"}
    assert not (tmp_path / "b" / "lists").exists()  # nothing of it in a data folder
