"""POST /hooks/command: the companion app's contract — signature, 300 s window both ways, replay
cache, 400/401/413 — and a signed report through the running bot into the moderation console."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.commands.handlers.dispatch import Caller
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
    return {
        "Content-Type": "application/json",
        "X-Rcmod-Timestamp": stamp,
        "X-Rcmod-Signature": sign(secret, stamp, raw),
    }


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
        (lambda raw: {"Content-Type": "application/json"}, 401),
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
        (Path(__file__).parents[2] / "deploy" / "rc-app" / "test" / "vector.json").read_text()
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


async def test_a_body_split_across_tcp_segments_is_read_whole_before_verifying() -> None:
    """The app's HTTP client may send the headers and the body in several writes; the signature
    covers the whole body, so the hook must not check the first read alone."""
    calls: list[Caller] = []
    entered = asyncio.Event()

    async def run(command: str, args: str, caller: Caller) -> str:
        calls.append(caller)
        return "ok"

    @web.middleware
    async def mark_entered(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        entered.set()  # headers parsed and the handler about to read the body
        return await handler(request)

    app = web.Application(middlewares=[mark_entered])
    app.router.add_post("/hooks/command", command_hook(lambda: SECRET, run, clock=lambda: NOW))
    async with TestServer(app) as server:
        raw = body(args="help " + "x" * 2000)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers(raw).items())
        request = (
            f"POST /hooks/command HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(raw)}\r\n"
            f"Connection: close\r\n{head}\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(server.host, server.port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(request + raw[: len(raw) // 2])
        await writer.drain()
        await asyncio.wait_for(entered.wait(), 10)
        writer.write(raw[len(raw) // 2 :])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:60]
    assert b'"text": "ok"' in answer
    assert len(calls) == 1


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_only_json_is_accepted(hook: Any, content_type: str | None) -> None:
    client, calls, _ = hook
    raw = body()
    sent = {k: v for k, v in headers(raw).items() if k != "Content-Type"}
    if content_type is not None:
        sent["Content-Type"] = content_type
    resp = await client.post("/hooks/command", data=raw, headers=sent)
    assert resp.status == 415
    assert calls == []


async def test_json_with_a_charset_is_accepted(hook: Any) -> None:
    client, calls, _ = hook
    raw = body()
    sent = {**headers(raw), "Content-Type": "application/json; charset=utf-8"}
    resp = await client.post("/hooks/command", data=raw, headers=sent)
    assert resp.status == 200 and len(calls) == 1


@pytest.mark.parametrize("depth", [1_000, 20_000])
async def test_deeply_nested_json_is_a_clean_400(hook: Any, depth: int) -> None:
    client, calls, _ = hook
    raw = b"[" * depth + b"]" * depth
    for nested in (raw, b'{"command": "mod", "args": ' + raw + b"}"):
        resp = await client.post("/hooks/command", data=nested, headers=headers(nested))
        assert resp.status == 400
        assert (await resp.json())["error"]
    assert calls == []


async def test_a_replay_is_refused_after_a_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(sandbox, tmp_path / "data", http={"webhook_secret": SECRET})
    alice = sandbox.workspace.user_by_username("alice")
    assert alice is not None
    raw = body(user={"id": alice.id, "username": "alice"})
    sent = headers(raw, ts=time.time())
    bot = await start_bot(settings)
    assert bot.app.web is not None
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{bot.app.web.port}/hooks/command"
        assert (await http.post(url, data=raw, headers=sent)).status == 200
        assert (await http.post(url, data=raw, headers=sent)).status == 401
    await bot.stop()
    bot = await start_bot(settings)
    assert bot.app.web is not None
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{bot.app.web.port}/hooks/command"
        assert (await http.post(url, data=raw, headers=sent)).status == 401
        fresh = body(user={"id": alice.id, "username": "alice"}, trigger_id="another")
        assert (await http.post(url, data=fresh, headers=headers(fresh, ts=time.time()))).status == 200
    await bot.stop()


def test_remembered_signatures_are_pruned_once_their_timestamp_is_stale(tmp_path: Path) -> None:
    from bot.store import Store
    from bot.web.hook import StoredReplays

    clock = Clock()
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    replays = StoredReplays(store.hooks, clock)
    replays.remember("sha256=a", int(NOW))
    replays.remember("sha256=b", int(NOW) + 200)
    assert replays.seen("sha256=a") and replays.seen("sha256=b")
    clock.now = NOW + 301
    assert not replays.seen("sha256=a") and replays.seen("sha256=b")
    assert store.hooks.hook_signatures_kept() == 1
    store.close()


def test_remembered_signatures_are_bounded_oldest_first(tmp_path: Path) -> None:
    from bot.store import Store

    store = Store.open(tmp_path / "s.sqlite3")
    for i in range(5):
        store.hooks.remember_hook_signature(f"sha256={i}", int(NOW) + i, keep_at_most=3)
    assert store.hooks.hook_signatures_kept() == 3
    stale_before = NOW - 1000
    assert not store.hooks.hook_signature_seen("sha256=0", stale_before=stale_before)
    assert not store.hooks.hook_signature_seen("sha256=1", stale_before=stale_before)
    assert all(store.hooks.hook_signature_seen(f"sha256={i}", stale_before=stale_before) for i in (2, 3, 4))
    store.close()
