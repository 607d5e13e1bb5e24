"""The REST client's session reads the environment once (proxies, NO_PROXY, the CA bundle) and
still honours it on every call."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import requests.sessions
from pydantic import SecretStr

import bot.rest.client
import bot.rest.session
from bot.config import Credentials
from bot.rest import RestClient
from bot.rest.session import ServerSession

_ANSWER = json.dumps({"success": True, "result": {"updated": [], "deleted": []}}).encode()


class FakeProxy:
    """An HTTP proxy that answers every request itself and notes the request lines it saw."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.server: asyncio.Server | None = None
        self.date: str | None = None  # the Date header of its answers

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.lines.append(head.split(b"\r\n", 1)[0].decode())
                date = f"Date: {self.date}\r\n" if self.date else ""
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"{date}Content-Length: {len(_ANSWER)}\r\n\r\n".encode()
                    + _ANSWER
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def proxy() -> AsyncIterator[FakeProxy]:
    p = FakeProxy()
    yield p
    if p.server is not None:
        p.server.close()


@pytest.fixture
def environ_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every lookup of proxies in the environment (requests' per-call one and the session's)."""
    reads: list[str] = []
    original = requests.sessions.get_environ_proxies

    def counting(url: str, no_proxy: Any = None) -> dict[str, str]:
        reads.append(url)
        return original(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    monkeypatch.setattr(bot.rest.session, "get_environ_proxies", counting)
    yield reads


def _client(url: str) -> RestClient:
    return RestClient(url, Credentials(user_id="u", token=SecretStr("t")), threads=1, timeout=5)


async def test_a_proxy_from_the_environment_carries_every_call(
    proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", await proxy.start())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    rest = _client("http://chat.example.invalid")
    try:
        for _ in range(3):
            assert await rest.sync_messages("ROOM1", datetime(2026, 1, 1, tzinfo=UTC)) == ([], [])
    finally:
        await rest.close()
    assert len(proxy.lines) == 3
    absolute = "GET http://chat.example.invalid/api/v1/chat.syncMessages?"
    assert all(line.startswith(absolute) for line in proxy.lines)


async def test_no_proxy_still_bypasses_the_proxy(proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    direct = FakeProxy()  # stands for the server itself
    server_url = await direct.start()
    monkeypatch.setenv("HTTP_PROXY", await proxy.start())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    rest = _client(server_url)
    try:
        await rest.sync_messages("ROOM1", datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        await rest.close()
        assert direct.server is not None
        direct.server.close()
    assert proxy.lines == []
    assert len(direct.lines) == 1 and direct.lines[0].startswith("GET /api/v1/chat.syncMessages?")


async def test_the_environment_is_read_once_per_worker_not_per_call(
    proxy: FakeProxy, environ_reads: list[str]
) -> None:
    rest = _client(await proxy.start())
    try:
        for _ in range(20):
            await rest.sync_messages("ROOM1", datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        await rest.close()
    assert len(proxy.lines) == 20
    assert len(environ_reads) == 1  # one worker thread, one session


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/rcmod/ca.pem")
    session = ServerSession("https://chat.example.invalid")
    settings = session.merge_environment_settings(
        "https://chat.example.invalid/api/v1/me", {}, None, True, None
    )
    assert settings["verify"] == "/etc/rcmod/ca.pem"
    # An explicit choice still wins, as with requests' own lookup.
    off = session.merge_environment_settings("https://chat.example.invalid/api/v1/me", {}, None, False, None)
    assert off["verify"] is False


async def test_the_server_clock_follows_the_latest_answer_even_with_the_same_date_header(
    proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Date has whole seconds, so answers repeat it; the server's time as last seen is still counted
    from the latest answer (erring early), and a header that cannot be read keeps the last good one."""
    mono = SimpleNamespace(now=100.0)
    monkeypatch.setattr(bot.rest.client, "time", SimpleNamespace(monotonic=lambda: mono.now, time=time.time))
    rest = _client(await proxy.start())
    since = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        proxy.date = "Mon, 07 Dec 2026 18:00:00 GMT"
        await rest.sync_messages("ROOM1", since)
        mono.now = 130.0
        await rest.sync_messages("ROOM1", since)
        mono.now = 131.0
        assert rest.server_now() == datetime(2026, 12, 7, 18, 0, 1, tzinfo=UTC)
        proxy.date = "not a date"
        await rest.sync_messages("ROOM1", since)
        assert rest.server_now() == datetime(2026, 12, 7, 18, 0, 1, tzinfo=UTC)
        proxy.date = "Mon, 07 Dec 2026 18:00:02 GMT"
        await rest.sync_messages("ROOM1", since)
        mono.now = 132.5
        assert rest.server_now() == datetime(2026, 12, 7, 18, 0, 2, tzinfo=UTC) + timedelta(seconds=1.5)
    finally:
        await rest.close()
