"""Shared fixtures: a running sandbox workspace and a bot wired to it through the composition root."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp, Extras
from bot.config import Credentials, Settings
from bot.models import Message
from bot.realtime.events import Connected, Disconnected, Event, MessageDeleted, MessageEvent
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.store import Database, Store
from bot.store.db import SqliteDatabase
from tests.backends import Backend, PostgresServer, postgres_backend, postgres_server, sqlite_backend


class Recorder:
    """A handler that records what reached the bot's handlers."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def message_ids(self) -> Counter[str]:
        return Counter(e.message.id for e in self.events if isinstance(e, MessageEvent))

    def revisions(self) -> Counter[tuple[str, str]]:
        return Counter((e.message.id, e.message.version) for e in self.events if isinstance(e, MessageEvent))

    def deleted(self) -> Counter[str]:
        return Counter(e.mid for e in self.events if isinstance(e, MessageDeleted))

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)

    def ids(self, kind: type) -> list[str]:
        """The message ids of the events of ``kind`` (a MessageEvent type), in order."""
        return [e.message.id for e in self.events if isinstance(e, kind) and isinstance(e, MessageEvent)]

    def messages(self) -> list[Message]:
        return [e.message for e in self.events if isinstance(e, MessageEvent)]


async def until(predicate: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def handled(store: Store | None, *mids: str) -> bool:
    """The bot is done with these (unedited) messages: ingest marks a message handled only after
    every handler ran on it, and nothing it queued is left to send. Wait for this on a last message
    before asserting that nothing more arrives (a room's events are handled in order, after that
    room's catch-up)."""
    return (
        store is not None
        and all(store.messages.is_handled(mid, "") for mid in mids)
        and store.alerts.pending_deliveries() == 0
    )


class RunningBot:
    def __init__(self, app: BotApp, task: asyncio.Task[None], recorder: Recorder) -> None:
        self.app = app
        self.task = task
        self.recorder = recorder

    async def stop(self) -> None:
        self.app.stop()
        await asyncio.wait_for(self.task, timeout=10)


def bot_settings(sandbox: Sandbox, data_dir: Path, **overrides: Any) -> Settings:
    bot_user = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    data: dict[str, Any] = {
        "server": {"url": sandbox.url, "user_id": bot_user["id"], "auth_token": bot_user["token"]},
        "storage": {"data_dir": str(data_dir)},
        "http": {"port": 0},
        "realtime": {
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "room_sub_interval": 0.0,
            "ping_interval": 2.0,
            "pong_timeout": 2.0,
        },
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


async def start_bot(
    settings: Settings, recorder: Recorder | None = None, clock: Callable[[], float] | None = None
) -> RunningBot:
    recorder = recorder or Recorder()
    extras = Extras(handlers=[("recorder", (object,), recorder)])
    if clock is not None:
        extras.clock = clock
    app = BotApp(settings, extras)
    task = asyncio.create_task(app.run())
    ok = await until(lambda: recorder.count(Connected) >= 1 or task.done())
    if task.done():
        task.result()
    assert ok, "the bot did not connect"
    return RunningBot(app, task, recorder)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


@pytest.fixture
async def rest(sandbox: Sandbox) -> AsyncIterator[RestClient]:
    """The bot's own REST client on the sandbox."""
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    client = RestClient(sandbox.url, Credentials(user_id=bot["id"], token=bot["token"]))
    try:
        yield client
    finally:
        await client.close()


__all__ = [
    "Connected",
    "Disconnected",
    "Recorder",
    "RunningBot",
    "bot_settings",
    "handled",
    "start_bot",
    "until",
]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """PostgreSQL 15 for the session, on a unix socket in a temporary folder (see tests/backends.py)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The store contract suite: each test that takes it runs on SQLite and on PostgreSQL, each
    time over a fresh migrated database."""
    chosen = (
        sqlite_backend(tmp_path)
        if request.param == "sqlite"
        else postgres_backend(request.getfixturevalue("postgres"))
    )
    yield chosen
    chosen.close_all()


SQLITE_ONLY = "sqlite_only"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SQLITE_ONLY}(reason): the test is about SQLite itself (its file, a CLI that finds the "
        "store by that file, an old SQLite schema); under RCMOD_TEST_STORE=postgresql it is "
        "skipped with the reason",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``RCMOD_TEST_STORE=postgresql`` a test marked ``sqlite_only("why")`` is skipped, the
    reason shown (``-rs``); a mark without a reason is an error, so none is skipped unexplained."""
    if os.environ.get("RCMOD_TEST_STORE") != "postgresql":
        return
    for item in items:
        mark = item.get_closest_marker(SQLITE_ONLY)
        if mark is None:
            continue
        if not mark.args or not str(mark.args[0]).strip():
            raise pytest.UsageError(f"{item.nodeid}: sqlite_only needs a reason")
        item.add_marker(pytest.mark.skip(reason=f"SQLite-only: {mark.args[0]}"))


@pytest.fixture(scope="session", autouse=True)
def _every_store_on_postgresql(request: pytest.FixtureRequest) -> Iterator[None]:
    """``RCMOD_TEST_STORE=postgresql``: every SQLite store a test opens by path is a PostgreSQL
    database instead (one per path), so any part of the suite can be run against the second
    backend. Off by default: the contract suite (the ``backend`` fixture) runs both anyway."""
    if os.environ.get("RCMOD_TEST_STORE") != "postgresql":
        yield
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    urls: dict[Path, str] = {}
    opened = SqliteDatabase.open_file.__func__  # type: ignore[attr-defined]

    def open_file(cls: type[SqliteDatabase], path: Path, **kw: Any) -> Database:
        if path.suffix != ".sqlite3":
            return opened(cls, path, **kw)  # type: ignore[no-any-return]
        url = urls.get(path.resolve()) or urls.setdefault(path.resolve(), server.new_database())
        return Database.connect(url, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqliteDatabase, "open_file", classmethod(open_file))
        yield
