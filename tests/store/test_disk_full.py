"""A full disk: the bot stops with one clear line and exit status 1, loses nothing (what it could
not record is handled after a restart with free space), says the same on a restart while the disk
is still full, and warns before it happens (free space of the data folder as a metric).

No root tricks: SQLite is made to fail exactly as on a full disk (SQLITE_FULL, 'database or disk is
full') by capping the file at its current size with PRAGMA max_page_count and filling what is free.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from bot.store import Database
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import ROOT, dms_from_bot, free_port, ready, write_lists


def fill(db: Database) -> None:
    """Cap the database at its size and use up its free pages: the next page it needs is 'disk full'."""
    db.execute("CREATE TABLE IF NOT EXISTS test_filler (x BLOB)")
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        for _ in range(100_000):
            db.execute("INSERT INTO test_filler VALUES (randomblob(64))")
    except Exception as exc:  # sqlite3's error, or the store's translation of it
        assert "full" in str(exc), exc


async def test_disk_full_stops_the_bot_and_loses_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = bot_settings(sandbox, data, moderation={"wordlists": [str(write_lists(tmp_path))]})
    running = await start_bot(settings)
    assert running.app.store is not None
    fill(running.app.store.db)
    sent: list[str] = []
    while not running.task.done() and len(sent) < 400:
        sent.append(sandbox.post_as("alice", "general", f"a badword number {len(sent)}")["_id"])
        # One message at a time reaches the store: the next goes once the bot handled this one
        # (or died trying).
        assert await until(lambda: sent[-1] in running.recorder.message_ids() or running.task.done())
    assert await until(running.task.done, within=15)
    exc = running.task.exception()
    assert exc is not None and type(exc).__name__ == "DiskFull", repr(exc)
    assert str(exc) == f"disk full: the store cannot write; free space in {data}"
    alerted = len(dms_from_bot(sandbox, "mod1"))
    assert alerted < len(sent)

    # Space again (a new connection has no cap): catch-up handles what the full disk held back.
    again = await start_bot(settings)
    try:
        store = again.app.store
        assert store is not None
        marks = ",".join("?" * len(sent))

        def handled() -> int:
            query = f"SELECT COUNT(DISTINCT mid) FROM handled_message WHERE mid IN ({marks})"
            return int(store.db.execute(query, sent).fetchone()[0])

        assert await until(lambda: handled() == len(sent), within=20)

    finally:
        await again.stop()


HOOK = """
import sys
from bot.store import Store
from tests.store.test_disk_full import fill
opened = Store.open.__func__
def full_open(cls, path, **kw):
    store = opened(cls, path, **kw)
    fill(store.db)
    return store
Store.open = classmethod(full_open)
from bot.cli import main
sys.exit(main(["run"]))
"""


async def spawn_full(sandbox: Sandbox, data: Path, lists: Path, port: int) -> asyncio.subprocess.Process:
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    env = {
        **os.environ,
        "RCMOD_SERVER_URL": sandbox.url,
        "RCMOD_USER_ID": bot["id"],
        "RCMOD_AUTH_TOKEN": bot["token"],
        "RCMOD_DATA_DIR": str(data),
        "RCMOD_HTTP_PORT": str(port),
        "RCMOD_WORDLISTS": str(lists),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOOK,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_rcmod_run_on_a_full_disk_says_so_in_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "data"
    lists = write_lists(tmp_path)
    for attempt in ("first", "restart while still full"):
        port = free_port()
        proc = await spawn_full(sandbox, data, lists, port)
        if await ready(port, within=20):
            for n in range(400):
                if proc.returncode is not None:
                    break
                sandbox.post_as("bob", "general", f"a badword {attempt} {n}")
                await asyncio.sleep(0.02)  # a member's pace, not a wait: the process is only watched
        code = await asyncio.wait_for(proc.wait(), 20)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert code == 1, (attempt, err)
        assert "Traceback" not in err and "cannot rollback" not in err, (attempt, err)
        assert err.splitlines()[-1] == f"rcmod: disk full: the store cannot write; free space in {data}", err
        assert "badword" not in err


async def test_low_free_space_is_a_metric_and_a_warning(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    free = shutil.disk_usage(tmp_path).free
    # A threshold above what this disk has: the bot warns at once (and keeps running).
    settings = bot_settings(
        sandbox, tmp_path / "data", storage={"free_space_warning_mb": free // 2**20 + 1024}
    )
    running = await start_bot(settings)
    try:
        assert await until(lambda: "free space" in caplog.text)
        [line] = [r.getMessage() for r in caplog.records if "free space" in r.getMessage()]
        assert str(tmp_path / "data") in line and "MB" in line
        measured = running.app.metrics.data_free_bytes._value.get()
        assert abs(measured - free) < 2**30  # the same disk, give or take what others wrote since
        assert not running.task.done()
    finally:
        await running.stop()
