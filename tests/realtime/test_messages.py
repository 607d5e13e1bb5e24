"""What a person reads in the log and on disk: the bot says who it is logged in as (by name),
when it is ready (rooms, lists, terms) and when it stopped; a lost connection names the server;
the store holding evidence is private to the bot's account."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from tests.conftest import Connected, bot_settings, start_bot, until
from tests.helpers import write_lists


async def test_ready_and_stopped_are_logged_by_name(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = bot_settings(
        sandbox, tmp_path / "data", moderation={"wordlists": [str(write_lists(tmp_path))]}
    )
    running = await start_bot(settings)
    bot_id = next(u["id"] for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    try:
        assert await until(lambda: "ready:" in caplog.text)
        [ready] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ready:")]
        assert "logged in as rcmod.bot" in ready
        assert "1 list" in ready and "2 terms" in ready and "rooms" in ready, ready
        host = sandbox.url.split("://", 1)[1]
        assert host in ready

        # A lost connection names the server it lost.
        await sandbox.drop_connections()
        assert await until(lambda: "connection" in caplog.text and "lost" in caplog.text)
        [lost] = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
        assert host in lost, lost
        assert await until(lambda: running.recorder.count(Connected) >= 2)
        # Every line that names the bot's account names it by username, not by its id alone.
        for record in caplog.records:
            message = record.getMessage()
            if bot_id in message:
                assert "rcmod.bot" in message, message
    finally:
        await running.stop()
    assert caplog.records[-1].getMessage().startswith("stopped"), caplog.records[-1].getMessage()


async def test_the_data_folder_and_store_are_private(sandbox: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "data"
    running = await start_bot(bot_settings(sandbox, data))
    await running.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith("rcmod.sqlite3")]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
