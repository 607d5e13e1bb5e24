"""Helpers shared by tests and benchmarks: real `rcmod` processes (``python -m bot ...``), and the
sandbox as a test reads it (the bot's DMs and answers, rooms, audit records, word-list folders)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import Credentials, ModerationSettings
from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.alerts import KeywordAlerts
from bot.services.executor import Executor, RecordingExecutor
from bot.services.lookups import Lookups
from bot.services.outbox import Outbox
from bot.services.purge import Purger
from bot.store import Store
from tests.conftest import RunningBot, until

__all__ = [
    "ROOT",
    "Clock",
    "ask",
    "audit",
    "block_lists",
    "bot_login_env",
    "bot_rest",
    "chat_message",
    "dms_from_bot",
    "exists",
    "free_port",
    "list_folder",
    "muted",
    "native_reports",
    "post",
    "purger_for",
    "queued_alerts",
    "rcmod_process",
    "rcmod_sandbox",
    "ready",
    "rid",
    "seed_user",
    "settled",
    "told",
    "triggered",
    "upload",
    "write_lists",
]

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


def seed_user(sb: Sandbox, username: str) -> dict[str, Any]:
    """``username`` as the sandbox seeded it: id, token, password."""
    return next(u for u in sb.seed_info()["users"] if u["username"] == username)


def bot_rest(sb: Sandbox) -> RestClient:
    """A REST client logged in as the sandbox's (started) bot."""
    bot = seed_user(sb, "rcmod.bot")
    return RestClient(sb.url, Credentials(user_id=bot["id"], token=bot["token"]))


def purger_for(store: Store, rest: RestClient, bot_id: str, *, dry_run: bool = False, **kw: Any) -> Purger:
    """A purger acting through the bot's real executor (in dry-run mode with ``dry_run``)."""
    return Purger(
        audit=store.audit,
        purges=store.purges,
        lease=store.lease,
        rest=rest,
        executor=Executor(rest=rest, audit=store.audit, retention_days=90, dry_run=lambda: dry_run),
        bot_user_id=bot_id,
        **kw,
    )


def queued_alerts(
    store: Store, matcher: Any, moderation: ModerationSettings, metrics: Metrics, rest: Any = None
) -> KeywordAlerts:
    """Keyword alerts queuing their notices in an outbox whose loop does not run here: nothing is
    sent (``rest`` is only for lookups)."""
    box = Outbox(
        alerts=store.alerts,
        audit=store.audit,
        rest=rest,
        executor=RecordingExecutor(),
        moderation=moderation,
        site_url=lambda: "",
        metrics=metrics,
    )
    return KeywordAlerts(
        alerts=store.alerts,
        outbox=box,
        matcher=matcher,
        moderation=moderation,
        metrics=metrics,
        lookups=Lookups(rest),
    )


def bot_login_env(sandbox: Sandbox, data_dir: Path) -> dict[str, str]:
    """The environment that logs `rcmod` in as the sandbox's bot, keeping its data in ``data_dir``."""
    bot = seed_user(sandbox, "rcmod.bot")
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


@asynccontextmanager
async def rcmod_sandbox(
    *args: str, stderr: int = asyncio.subprocess.DEVNULL
) -> AsyncIterator[dict[str, Any]]:
    """`rcmod sandbox ARGS` running: its seed, the JSON line it prints first. Stopped after."""
    proc = await rcmod_process("sandbox", *args, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        yield json.loads(line)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)


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


# -- the sandbox as a test reads it: the bot's DMs, rooms, word lists ------------------------------


def dms_from_bot(sb: Sandbox, username: str) -> list[dict[str, Any]]:
    ws = sb.workspace
    bot = ws.user_by_username("rcmod.bot")
    other = ws.user_by_username(username)
    assert bot is not None and other is not None
    rid = "".join(sorted({bot.id, other.id}))
    return [m for m in ws.messages.values() if m["rid"] == rid and m["u"]["_id"] == bot.id]


async def ask(sb: Sandbox, username: str, text: str, tmid: str | None = None) -> str:
    """DM the bot as ``username`` and return its answer."""
    before = {m["_id"] for m in dms_from_bot(sb, username)}

    def answers() -> list[str]:
        # Alert and report DMs may land in the same conversation meanwhile: skip those.
        return [
            str(m["msg"])
            for m in dms_from_bot(sb, username)
            if m["_id"] not in before
            and not str(m["msg"]).startswith((":triangular_flag", "*rcmod alert", "*rcmod protection"))
            and "*rcmod alert" not in str(m["msg"]).split("\n")[0]
        ]

    sb.dm_as(username, "rcmod.bot", text, tmid=tmid)
    assert await until(lambda: bool(answers())), f"no answer to {text[:30]!r}"
    return answers()[0]


def told(sb: Sandbox, username: str, words: str) -> bool:
    return any(words in str(m["msg"]) for m in dms_from_bot(sb, username))


def muted(sb: Sandbox, room: str) -> list[str]:
    found = sb.workspace.room_by_id_or_name(name=room)
    assert found is not None
    return list(found.get("muted") or [])


def rid(sb: Sandbox, room: str) -> str:
    found = sb.workspace.room_by_id_or_name(name=room)
    assert found is not None
    return str(found["_id"])


def native_reports(sb: Sandbox, mid: str) -> list[dict[str, Any]]:
    return [r for r in sb.workspace.reports if r["message"]["_id"] == mid]


async def settled(bot: RunningBot) -> None:
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.alerts.pending_deliveries() == 0)


def audit(bot: RunningBot, action: str) -> list[Any]:
    store = bot.app.store
    assert store is not None
    return [r for r in store.audit.audit_records() if r.action == action]


async def post(bot: RunningBot, sb: Sandbox, user: str, room: str, text: str) -> str:
    """Post, and wait until every handler (the protector included) has seen the message."""
    mid = str(sb.post_as(user, room, text)["_id"])
    assert await until(lambda: bot.recorder.message_ids()[mid] >= 1)
    return mid


async def upload(
    url: str,
    user: Mapping[str, Any],
    rid: str,
    data: bytes,
    *,
    filename: str,
    content_type: str,
    msg: str = "",
    description: str | None = None,
    http: aiohttp.ClientSession | None = None,
) -> dict[str, Any]:
    """Post a file as a member's client does, over REST with the member's own token (``user`` as
    in ``seed_info()["users"]``): ``rooms.media/:rid`` (multipart, the file in field ``file``),
    then ``rooms.mediaConfirm/:rid/:fileId`` with the caption. Returns the posted message as the
    confirm answered it; either call refused is an AssertionError carrying the answer."""
    headers = {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}
    # quote_fields=False: the file name goes as a browser sends it, not percent-encoded.
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", data, filename=filename, content_type=content_type)
    confirm: dict[str, Any] = {"msg": msg}
    if description is not None:
        confirm["description"] = description
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(f"{url}/api/v1/rooms.media/{rid}", data=form, headers=headers) as r:
            stored = await r.json(content_type=None)
            assert r.status == 200 and stored.get("success"), (r.status, stored)
        fid = stored["file"]["_id"]
        async with http.post(
            f"{url}/api/v1/rooms.mediaConfirm/{rid}/{fid}", json=confirm, headers=headers
        ) as r:
            posted = await r.json(content_type=None)
            assert r.status == 200 and posted.get("success"), (r.status, posted)
    message = posted["message"]
    assert isinstance(message, dict), posted
    return message


def triggered(bot: RunningBot, protection: str) -> list[Any]:
    store = bot.app.store
    assert store is not None
    return [
        r
        for r in store.audit.audit_records()
        if r.action == "protection.triggered" and r.reason["protection"] == protection
    ]


def exists(sb: Sandbox, mid: str) -> bool:
    return mid in sb.workspace.messages


def list_folder(root: Path, **lists: tuple[str, str]) -> Path:
    """``root``/lists with, for each keyword, ``NAME.txt`` (its terms) and ``NAME.toml`` (its options)."""
    folder = root / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (terms, options) in lists.items():
        (folder / f"{name}.txt").write_text(terms)
        (folder / f"{name}.toml").write_text(options)
    return folder


def write_lists(root: Path, notify_users: list[str] | None = None, severity: str = "high") -> Path:
    users = notify_users if notify_users is not None else ["mod1"]
    options = (
        f'kind = "notify"\nseverity = "{severity}"\ncategories = ["harassment"]\n\n'
        f"[notify]\nusers = {users!r}\n".replace("'", '"')
    )
    terms = "# terms the moderators want to hear about\nbadword\nscam link\n"
    return list_folder(root, watch=(terms, options))


def block_lists(root: Path, *, action: str = "delete", reveal: bool = False) -> Path:
    options = (
        f'kind = "block"\naction = "{action}"\nreveal_term = {str(reveal).lower()}\n'
        'severity = "high"\n\n[notify]\nusers = ["mod1"]\n'
    )
    return list_folder(root, banned=("badword\nscam link\n", options))
