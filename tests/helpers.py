"""Helpers for tests and benchmarks that run real `rcmod` processes (``python -m bot ...``)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.models import Message, UserRef
from bot.sandbox import Sandbox

__all__ = ["ROOT", "Clock", "bot_login_env", "chat_message", "free_port", "rcmod_process", "ready"]

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """A clock the test sets: ``clock.now`` is what the code under test reads."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def chat_message(
    mid: str,
    author: str = "u1",
    text: str = "offending text",
    *,
    rid: str = "r1",
    username: str | None = None,
) -> Message:
    """A plain chat message as the server would send it (author ``username`` defaults to the id)."""
    name = username or author
    return Message(
        id=mid,
        rid=rid,
        text=text,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        author=UserRef(author, name),
        raw={"_id": mid, "rid": rid, "msg": text, "u": {"_id": author, "username": name}},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_login_env(sandbox: Sandbox, data_dir: Path) -> dict[str, str]:
    """The environment that logs `rcmod` in as the sandbox's bot, keeping its data in ``data_dir``."""
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    return {
        "RCMOD_SERVER_URL": sandbox.url,
        "RCMOD_USER_ID": bot["id"],
        "RCMOD_AUTH_TOKEN": bot["token"],
        "RCMOD_DATA_DIR": str(data_dir),
    }


async def rcmod_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, **pipes: Any
) -> asyncio.subprocess.Process:
    """``python -m bot ARGS`` with ``env`` over this process's environment (no other RCMOD_*
    variable leaks in); ``pipes`` are stdin/stdout/stderr as for create_subprocess_exec."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RCMOD_")}
    full = {**clean, "PYTHONPATH": str(ROOT), **(env or {})}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=full, **pipes
    )


async def ready(port: int, within: float = 20.0, every: float = 0.1) -> bool:
    """Poll the bot's /readyz until it answers 200 (True) or the deadline passes (False)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(every)
    return False
