"""POST /hooks/command: the companion app's contract — signature, 300 s window both ways, replay
cache, 400/401/413 — and a signed report through the running bot into the moderation console."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.dispatch import Caller
from bot.sandbox import Sandbox
from bot.web.hook import MAX_BODY, HookPayload, command_hook, sign
from tests.conftest import bot_settings, start_bot, until

SECRET = "s3cret-shared-with-the-app"
NOW = 1_800_000_000.0


def body(**overrides: Any) -> bytes:
    payload: dict[str, Any] = {
        "command": "mod",
        "args": "help",
        "user": {"id": "U1", "username": "alice"},
        "room": {"id": "R1", "name": None},
        "tmid": None,
        "trigger_id": None,
    }
    payload.update(overrides)
    return json.dumps(payload).encode()


def headers(raw: bytes, *, ts: float = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(ts))
    return {"X-Rcmod-Timestamp": stamp, "X-Rcmod-Signature": sign(secret, stamp, raw)}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hook() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], list[Caller], Clock]]:
    calls: list[Caller] = []
    clock = Clock()

    async def run(command: str, args: str, caller: Caller) -> str:
        calls.append(caller)
        return f"ran {command} {args}"

    app = web.Application()
    app.router.add_post("/hooks/command", command_hook(lambda: SECRET, run, clock=clock))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, calls, clock
    finally:
        await client.close()


async def test_a_signed_request_runs_and_answers_text(hook: Any) -> None:
    client, calls, _ = hook
    raw = body(args="help", room={"id": "DM1", "name": None}, tmid="T1", trigger_id="trig")
    resp = await client.post("/hooks/command", data=raw, headers=headers(raw))
    assert resp.status == 200
    assert await resp.json() == {"text": "ran mod help"}
    assert calls == [Caller("U1", "alice", "DM1", None, None, "T1", "hook")]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda raw: {}, 401),
        (lambda raw: {**headers(raw), "X-Rcmod-Signature": "sha256=" + "0" * 64}, 401),
        (lambda raw: headers(raw, secret="wrong"), 401),
        (lambda raw: headers(raw, ts=NOW - 301), 401),
        (lambda raw: headers(raw, ts=NOW + 301), 401),
        (lambda raw: {**headers(raw), "X-Rcmod-Timestamp": "yesterday"}, 401),
        (lambda raw: headers(raw, ts=NOW - 299), 200),
        (lambda raw: headers(raw, ts=NOW + 299), 200),
    ],
)
async def test_signature_and_window(hook: Any, make: Any, status: int) -> None:
    client, calls, _ = hook
    raw = body()
    resp = await client.post("/hooks/command", data=raw, headers=make(raw))
    assert resp.status == status
    assert len(calls) == (1 if status == 200 else 0)


async def test_a_replay_is_refused_until_the_window_has_passed(hook: Any) -> None:
    client, calls, clock = hook
    raw = body()
    sent = headers(raw)
    assert (await client.post("/hooks/command", data=raw, headers=sent)).status == 200
    assert (await client.post("/hooks/command", data=raw, headers=sent)).status == 401
    clock.now += 301  # by now the timestamp itself is stale: still refused
    assert (await client.post("/hooks/command", data=raw, headers=sent)).status == 401
    assert len(calls) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        body(command="shout"),
        body(args=42),
        body(user={"id": "U1"}),
        body(room=None),
        body(tmid=7),
        b'{"command": "mod", "args": "\xff\xfe"}',
    ],
)
async def test_a_body_outside_the_contract_is_400(hook: Any, raw: bytes) -> None:
    client, calls, _ = hook
    resp = await client.post("/hooks/command", data=raw, headers=headers(raw))
    assert resp.status == 400
    assert calls == []


async def test_an_oversized_body_is_413_before_anything_else(hook: Any) -> None:
    client, calls, _ = hook
    raw = body(args="x" * MAX_BODY)
    resp = await client.post("/hooks/command", data=raw, headers={})
    assert resp.status == 413
    assert calls == []


def test_payload_accepts_null_room_name_and_trigger() -> None:
    parsed = HookPayload.parse(body(room={"id": "R", "name": None}, trigger_id=None))
    assert isinstance(parsed, HookPayload) and parsed.room_name is None and parsed.trigger_id is None


async def test_a_report_through_the_hook_reaches_the_console_and_moderators(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = bot_settings(
        sandbox, tmp_path / "data", moderation={"moderators": ["mod1"]}, http={"webhook_secret": SECRET}
    )
    bot = await start_bot(settings)
    assert bot.app.web is not None
    url = f"http://127.0.0.1:{bot.app.web.port}/hooks/command"
    msg = sandbox.post_as("bob", "general", "buy my stuff")
    alice = sandbox.workspace.user_by_username("alice")
    general = sandbox.workspace.room_by_id_or_name(name="general")
    assert alice is not None and general is not None
    raw = body(
        command="report",
        args=f"spam {msg['_id']} selling",
        user={"id": alice.id, "username": "alice"},
        room={"id": general["_id"], "name": "general"},
    )
    import time

    async with aiohttp.ClientSession() as http:
        resp = await http.post(url, data=raw, headers=headers(raw, ts=time.time()))
        assert resp.status == 200
        answer = (await resp.json())["text"]
        usage = body(command="mod", args="resolve x", user={"id": alice.id, "username": "alice"})
        resp2 = await http.post(url, data=usage, headers=headers(usage, ts=time.time()))
        assert resp2.status == 200 and "must be a number" in (await resp2.json())["text"]
    assert "report is #1" in answer
    assert [r["message"]["_id"] for r in sandbox.workspace.reports] == [msg["_id"]]
    bot_user = sandbox.workspace.user_by_username("rcmod.bot")
    mod1 = sandbox.workspace.user_by_username("mod1")
    assert bot_user is not None and mod1 is not None
    rid = "".join(sorted({bot_user.id, mod1.id}))
    assert await until(lambda: sum(m["rid"] == rid for m in sandbox.workspace.messages.values()) == 1)
    await bot.stop()


def test_the_companion_app_signs_exactly_as_the_hook_verifies() -> None:
    """deploy/rc-app/test/vector.json is checked by the app's TypeScript tests too."""
    from bot.web.hook import ReplayCache, verify

    vector = json.loads(
        (Path(__file__).parents[1] / "deploy" / "rc-app" / "test" / "vector.json").read_text()
    )
    raw = vector["body"].encode()
    assert sign(vector["secret"], vector["timestamp"], raw) == vector["signature"]
    now = float(vector["timestamp"])
    assert verify(vector["secret"], vector["timestamp"], vector["signature"], raw, now, ReplayCache()) is None
    parsed = HookPayload.parse(raw)
    assert isinstance(parsed, HookPayload) and parsed.command == "report" and parsed.trigger_id == "T1"


async def test_without_a_secret_the_hook_refuses_everything() -> None:
    async def run(command: str, args: str, caller: Caller) -> str:
        raise AssertionError("must not run")

    app = web.Application()
    app.router.add_post("/hooks/command", command_hook(lambda: None, run))
    async with TestClient(TestServer(app)) as client:
        raw = body()
        resp = await client.post("/hooks/command", data=raw, headers=headers(raw, secret=""))
        assert resp.status == 503
