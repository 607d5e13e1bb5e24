"""Background loops under one supervisor: a loop that dies of an unexpected exception is logged
(one line, the type only), shown in /readyz and the metrics while it is down, and restarted."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

import bot.services.policies
from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.services.test_policies import CONDUCT, write_policy


async def test_a_loop_that_dies_is_logged_shown_and_restarted(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "policies"
    write_policy(folder, "conduct", CONDUCT)
    real = bot.services.policies.read_policy_dir
    broken = {"on": True}

    def read_policy_dir(path: Path) -> object:
        # What a parser's own exception looks like to the keeper (before the files are fixed).
        if broken["on"]:
            raise RuntimeError("member text that must not reach the log")
        return real(path)

    monkeypatch.setattr(bot.services.policies, "read_policy_dir", read_policy_dir)
    caplog.set_level(logging.INFO)
    settings = bot_settings(sandbox, tmp_path / "data", policy={"dir": str(folder), "sync_interval": 600})
    running = await start_bot(settings)
    app = running.app
    try:
        assert app.web is not None and app.web.port is not None
        base = f"http://127.0.0.1:{app.web.port}"
        seen: dict[str, object] = {}
        async with aiohttp.ClientSession() as http:

            async def readyz() -> tuple[int, dict[str, object]]:
                async with http.get(f"{base}/readyz") as r:
                    return r.status, await r.json()

            async def poll_down() -> bool:
                status, body = await readyz()
                seen.update(status=status, body=body)
                return status == 503 and body["checks"].get("loop:policies") is False  # type: ignore[attr-defined]

            down = False
            for _ in range(500):
                if await poll_down():
                    down = True
                    break
            assert down, seen
            assert "loop policies died (RuntimeError)" in caplog.text
            assert "member text" not in caplog.text
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
            assert (
                'rcmod_loop_up{loop="policies"} 0.0' in metrics
                or 'rcmod_loop_restarts_total{loop="policies"}' in metrics
            )

            broken["on"] = False  # the cause goes away: the next restart keeps running
            assert await until(lambda: app.policies is not None and app.policies.syncs >= 1, within=15)
            status, body = await readyz()
            assert status == 200, body
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
            assert 'rcmod_loop_up{loop="policies"} 1.0' in metrics
            restarts = [
                line
                for line in metrics.splitlines()
                if line.startswith('rcmod_loop_restarts_total{loop="policies"}')
            ]
            assert restarts and float(restarts[0].split()[-1]) >= 1
            # Every long-running task of the app is supervised, not only this one.
            for name in (
                "outbox",
                "enforcer",
                "policies",
                "sanctions",
                "names",
                "lease",
                "housekeeping",
                "free-space",
            ):
                assert f'rcmod_loop_up{{loop="{name}"}}' in metrics, name
    finally:
        await running.stop()
