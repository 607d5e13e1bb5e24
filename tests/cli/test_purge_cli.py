"""`rcmod purge` as a real process: the contract's flags and exit codes, a rate-limited purge that
slows down and never fails, and a purge killed with kill -9 halfway that resumes when run again
and ends with exactly the expected messages deleted and one evidence record each."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from bot.sandbox.ratelimit import RateLimits
from tests.conftest import until
from tests.helpers import rcmod_process


@pytest.fixture
async def slow_sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox whose REST limiter applies to the bot too: 20 calls per route per 0.2 s."""
    sb = Sandbox(rate_limits=RateLimits(rest_calls=20, rest_window=0.2))
    ws = sb.workspace
    roles = ws.permissions["api-bypass-rate-limit"]["roles"]
    ws.set_permission_roles("api-bypass-rate-limit", [r for r in roles if r != "bot"])
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


def env_for(sb: Sandbox, data: Path) -> dict[str, str]:
    bot = next(u for u in sb.seed_info()["users"] if u["username"] == "rcmod.bot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCMOD_")}
    return {
        **env,
        "RCMOD_SERVER_URL": sb.url,
        "RCMOD_USER_ID": bot["id"],
        "RCMOD_AUTH_TOKEN": bot["token"],
        "RCMOD_DATA_DIR": str(data),
    }


async def rcmod(env: dict[str, str], *args: str, stdin: bytes = b"") -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    return await rcmod_process(*args, env=env, stdin=pipe, stdout=pipe, stderr=pipe)


async def finish(proc: asyncio.subprocess.Process, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def evidence(data: Path) -> Counter[str]:
    with sqlite3.connect(data / "rcmod.sqlite3") as conn:
        return Counter(r[0] for r in conn.execute("SELECT mid FROM evidence"))


async def test_usage_errors_exit_2_and_delete_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    mid = sandbox.post_as("bob", "general", "a badword")["_id"]
    env = env_for(sandbox, tmp_path / "data")
    cases = [
        ("purge", "term", "badword"),  # neither --room nor --everywhere
        ("purge", "term", "!!!", "--everywhere"),  # normalises to nothing
        ("purge", "user", "bob", "--everywhere", "--since", "2026-02-01", "--until", "2026-01-01"),
        ("purge", "user", "nobody", "--everywhere", "--yes"),
        ("purge", "user", "bob", "--room", "nowhere", "--yes"),
    ]
    for args in cases:
        code, _out, err = await finish(await rcmod(env, *args))
        assert code == 2, (args, err)
        assert "Traceback" not in err
    assert mid in sandbox.workspace.messages


async def test_dry_run_then_declined_then_confirmed(sandbox: Sandbox, tmp_path: Path) -> None:
    ids = {sandbox.post_as("alice", "random", f"badword {i}")["_id"] for i in range(3)}
    env = env_for(sandbox, tmp_path / "data")
    code, out, _ = await finish(await rcmod(env, "purge", "term", "badword", "--room", "random", "--dry-run"))
    assert code == 0 and "3 message(s) selected" in out and "dry run" in out
    code, out, _ = await finish(await rcmod(env, "purge", "term", "badword", "--room", "random"), b"no\n")
    assert code == 1 and "declined" in out
    assert ids <= set(sandbox.workspace.messages)
    code, out, err = await finish(await rcmod(env, "purge", "term", "badword", "--room", "random"), b"yes\n")
    assert code == 0, err
    assert "3 deleted, 0 failed of 3" in out
    assert "\r" not in err and "\x1b" not in err  # no progress bar in a pipe: it is for terminals
    assert not ids & set(sandbox.workspace.messages)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_killed_halfway_resumes_exactly(
    slow_sandbox: Sandbox, tmp_path: Path, sig: signal.Signals
) -> None:
    sb = slow_sandbox
    rooms = ("general", "random")
    hits = {sb.post_as("bob", rooms[i % 2], f"badword number {i}")["_id"] for i in range(240)}
    pinned = sb.post_as("alice", "general", "the rule: no badword")["_id"]
    sb.workspace.pin_message(next(u.id for u in sb.workspace.users.values() if u.username == "admin"), pinned)
    keep = {sb.post_as("carol", "random", f"fine message {i}")["_id"] for i in range(20)} | {pinned}
    data = tmp_path / "data"
    env = env_for(sb, data)

    def deleted() -> int:
        return len(hits - set(sb.workspace.messages))

    first = await rcmod(env, "purge", "term", "badword", "--everywhere", "--yes")
    assert await until(lambda: deleted() >= 60, within=30)
    first.send_signal(sig)  # SIGKILL: no cleanup at all; SIGTERM: what systemd and docker send
    await first.wait()
    halfway = deleted()
    assert 0 < halfway < len(hits)

    code, out, err = await finish(await rcmod(env, "purge", "term", "badword", "--everywhere", "--yes"))
    assert code == 0, err
    assert "resuming purge job" in out
    assert "240 deleted, 0 failed of 240" in out  # each message counted once across both runs
    assert not hits & set(sb.workspace.messages)
    assert keep <= set(sb.workspace.messages)  # the pinned rule and the clean messages survive
    assert evidence(data) == Counter(dict.fromkeys(hits, 1))  # one evidence record each
    assert "Traceback" not in err and "badword number" not in err  # no content in the logs
