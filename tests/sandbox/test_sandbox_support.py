"""Helpers shared by the sandbox tests: a fake clock, a running sandbox, a small DDP client.

Named ``test_sandbox_*`` so it sits with the tests it serves; it defines no tests itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

from bot.sandbox import RateLimits, Sandbox

# The shared reference folder sits beside the checkout (../shared); from a worktree nested one
# level deeper it is further up, so take the nearest ancestor that has one.
SHARED = next(
    (p / "shared" for p in Path(__file__).resolve().parents[2:] if (p / "shared").is_dir()),
    Path(__file__).resolve().parents[3] / "shared",
)
FIXTURES = SHARED / "reference" / "fixtures"


class FakeClock:
    """Injected time in seconds; starts at a fixed instant so tests are reproducible."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Seed:
    """Typed access to ``seed_info()``."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.url: str = info["url"]
        self.users = {u["username"]: u for u in info["users"]}
        self.rooms = {r["name"]: r for r in info["rooms"]}

    def headers(self, username: str) -> dict[str, str]:
        user = self.users[username]
        return {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}

    def rid(self, name: str) -> str:
        return str(self.rooms[name]["id"])

    def uid(self, username: str) -> str:
        return str(self.users[username]["id"])


@asynccontextmanager
async def running(
    clock: Callable[[], float] | None = None, rate_limits: RateLimits | None = None, **kwargs: Any
) -> AsyncIterator[tuple[Sandbox, Seed]]:
    async with Sandbox(clock=clock or FakeClock(), rate_limits=rate_limits, **kwargs) as sandbox:
        yield sandbox, Seed(sandbox.seed_info())


class DDPClient:
    """Just enough DDP for tests: frames are kept in a backlog and matched by predicate."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.backlog: list[dict[str, Any]] = []
        self._next_id = 0

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, handshake: bool = True) -> AsyncIterator[DDPClient]:
        async with websockets.connect(url.replace("http://", "ws://") + "/websocket") as ws:
            client = cls(ws)
            if handshake:
                await client.handshake()
            yield client

    async def handshake(self) -> dict[str, Any]:
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 2))
        assert first == {"server_id": "0"}
        await self.send({"msg": "connect", "version": "1", "support": ["1"]})
        return await self.expect(lambda f: f.get("msg") == "connected")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 2.0
    ) -> dict[str, Any]:
        for i, frame in enumerate(self.backlog):
            if predicate(frame):
                return self.backlog.pop(i)

        async def read() -> dict[str, Any]:
            while True:
                frame: dict[str, Any] = json.loads(await self.ws.recv())
                if predicate(frame):
                    return frame
                self.backlog.append(frame)

        return await asyncio.wait_for(read(), within)

    async def call(self, method: str, *params: Any) -> dict[str, Any]:
        mid = self.new_id()
        await self.send({"msg": "method", "method": method, "id": mid, "params": list(params)})
        return await self.expect(lambda f: f.get("msg") == "result" and f.get("id") == mid)

    async def sub(self, name: str, *params: Any) -> dict[str, Any]:
        sid = self.new_id()
        await self.send({"msg": "sub", "id": sid, "name": name, "params": list(params)})
        return await self.expect(
            lambda f: (
                (f.get("msg") == "ready" and sid in f.get("subs", []))
                or (f.get("msg") == "nosub" and f.get("id") == sid)
            )
        )

    async def login(self, token: str) -> dict[str, Any]:
        reply = await self.call("login", {"resume": token})
        assert "result" in reply, reply
        return reply

    async def changed(self, collection: str, event: str, within: float = 2.0) -> dict[str, Any]:
        return await self.expect(
            lambda f: (
                f.get("msg") == "changed"
                and f.get("collection") == collection
                and f["fields"]["eventName"] == event
            ),
            within,
        )

    async def no_changed(self, collection: str, event: str, wait: float = 0.2) -> None:
        try:
            frame = await self.changed(collection, event, wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")
