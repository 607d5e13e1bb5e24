"""The journey harness: real processes, played the way people use them.

The sandbox workspace (`rcmod sandbox`) and the bot (`rcmod run`) each run as their own process;
members and moderators are DDP clients over websockets, like Rocket.Chat's web client, and read
what the bot tells them from their own stream (`__my_messages__`) and REST with their own token.
Nothing here reaches into a process's state: what a journey asserts, a person could have seen.

Rocket.Chat's limits are kept by the clients, not switched off: a DDP connection may call one
method 10 times in 10 seconds, a user may send 5 messages a second, and a member's REST route 10
times a minute; a client paces itself below those and waits out a `too-many-requests` answer.
Every process a journey starts is stopped in a `finally` (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]
BOT = "rcmod.bot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float, every: float = 0.1
) -> bool:
    """True as soon as `check` holds, False at the deadline (no bare sleeps in journeys)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


async def quiet_for(check: Callable[[], bool], seconds: float) -> bool:
    """True if `check` keeps holding for `seconds`: the way to assert nothing more arrives."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not check():
            return False
        await asyncio.sleep(0.1)
    return check()


# ---------------------------------------------------------------------------- processes


class Proc:
    """A child process with its stderr in a file (a pipe nobody reads would fill up and stall it)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def stderr(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it has not ended within `grace` seconds; returns the exit status."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        await self.proc.wait()
        rc = self.proc.returncode
        assert rc is not None
        return rc


class Processes:
    """Every process a journey started, so the fixture can stop them all whatever happened."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[Proc] = []
        self._n = 0

    async def spawn(
        self, name: str, args: list[str], env: Mapping[str, str], *, stdout: bool = False
    ) -> Proc:
        self._n += 1
        log = self.tmp / f"{self._n:02d}-{name}.stderr"
        with log.open("wb") as err:
            proc = await python_m_bot(
                args,
                env,
                stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        p = Proc(name, proc, log)
        self.started.append(p)
        return p

    async def stop_all(self) -> None:
        for p in reversed(self.started):
            await p.stop(grace=10)


async def python_m_bot(args: list[str], env: Mapping[str, str], **pipes: Any) -> asyncio.subprocess.Process:
    """``python -m bot ARGS`` from the repository with exactly ``env``; no stdin."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env=dict(env), stdin=asyncio.subprocess.DEVNULL, **pipes
    )


def base_env() -> dict[str, str]:
    """The caller's environment without any RCMOD_ setting that could leak into a journey."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RCMOD_")}


@dataclass(repr=False)
class CliResult:
    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


async def rcmod(args: list[str], env: Mapping[str, str], *, limit: float = 60.0) -> CliResult:
    """One `rcmod ...` command line, as an operator types it; its output captured."""
    proc = await python_m_bot(args, env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"rcmod {' '.join(args)} did not finish within {limit} s") from None
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


# ---------------------------------------------------------------------------- the sandbox


@dataclass
class Seed:
    url: str
    users: dict[str, dict[str, Any]]
    rooms: dict[str, dict[str, Any]]

    def user(self, name: str) -> dict[str, Any]:
        return self.users[name]

    def room_id(self, name: str) -> str:
        return str(self.rooms[name]["id"])


class SandboxProcess:
    """`rcmod sandbox --port N` in its own process. The port is chosen once, so a restart comes
    back where clients and the bot already point. The sandbox keeps its workspace in memory and
    its seed is deterministic: after a restart users, ids and tokens are the same, history is not."""

    def __init__(self, procs: Processes, port: int | None = None) -> None:
        self.procs = procs
        self.port = port or free_port()
        self.proc: Proc | None = None
        self.seed: Seed | None = None

    async def start(self) -> Seed:
        proc = await self.procs.spawn(
            "sandbox", ["sandbox", "--port", str(self.port)], base_env(), stdout=True
        )
        self.proc = proc
        assert proc.proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.proc.stdout.readline(), 30)
        except TimeoutError:
            raise AssertionError(f"the sandbox printed no seed line\n{proc.stderr()}") from None
        assert line, f"the sandbox exited before its seed line\n{proc.stderr()}"
        raw = json.loads(line)
        self.seed = Seed(
            raw["url"],
            {u["username"]: u for u in raw["users"]},
            {r["name"]: r for r in raw["rooms"]},
        )
        assert self.seed.url == f"http://127.0.0.1:{self.port}"
        return self.seed

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()

    async def restart(self) -> Seed:
        await self.stop()
        return await self.start()

    def freeze(self) -> None:
        """The server stops answering (SIGSTOP): connections stay open, nothing comes back. Unlike
        a restart of this in-memory sandbox, the workspace is kept, as a real server's would be."""
        assert self.proc is not None
        self.proc.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.proc.send_signal(signal.SIGCONT)


# ---------------------------------------------------------------------------- the bot


def bot_env(seed: Seed, data_dir: Path, port: int, wordlists: Iterable[Path], **extra: str) -> dict[str, str]:
    bot = seed.user(BOT)
    env = base_env()
    env.update(
        {
            "RCMOD_SERVER_URL": seed.url,
            "RCMOD_USER_ID": bot["id"],
            "RCMOD_AUTH_TOKEN": bot["token"],
            "RCMOD_DATA_DIR": str(data_dir),
            "RCMOD_HTTP_PORT": str(port),
            "RCMOD_WORDLISTS": ":".join(str(p) for p in wordlists),
            "RCMOD_MODERATORS": "mod1,mod2",
        }
    )
    env.update(extra)
    return env


class BotProcess:
    """`rcmod run` in its own process, ready once GET /readyz answers 200."""

    def __init__(self, procs: Processes, env: Mapping[str, str], args: list[str] | None = None) -> None:
        self.procs = procs
        self.env = dict(env)
        self.args = args or ["run"]
        self.port = int(self.env.get("RCMOD_HTTP_PORT") or 0)
        self.proc: Proc | None = None

    async def start(self, within: float = 30.0) -> None:
        self.proc = await self.procs.spawn("bot", self.args, self.env)
        if not await self.wait_ready(within):
            raise AssertionError(f"the bot did not become ready within {within} s\n{self.proc.stderr()}")

    async def wait_ready(self, within: float = 30.0) -> bool:
        assert self.proc is not None
        proc = self.proc

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

            async def ready() -> bool:
                if not proc.alive:
                    return True  # stop polling; reported below
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        return r.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    return False

            ok = await poll(ready, within, every=0.2)
        return ok and proc.alive

    async def not_ready(self, within: float = 30.0) -> bool:
        """True once /readyz says the bot is not ready (it noticed an outage)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

            async def down() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        return r.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    return False

            return await poll(down, within, every=0.2)

    async def metrics(self) -> dict[str, float]:
        """GET /metrics as {'name{labels}': value} (what a Prometheus scrape sees)."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"http://127.0.0.1:{self.port}/metrics") as r,
        ):
            text = await r.text()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[key] = float(value)
        return values

    async def stop(self) -> int:
        assert self.proc is not None
        return await self.proc.stop()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()


def metric(values: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


# ---------------------------------------------------------------------------- people


class DDPError(Exception):
    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(f"{error.get('error')}: {error.get('reason') or error.get('message')}")
        self.error = dict(error)


def new_id() -> str:
    """A message id chosen by the client, as Rocket.Chat's web client does (Random.id(): 17 chars)."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(17))


@dataclass
class Seen:
    """Everything a person's client saw arrive in their rooms, latest revision of each message."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add(self, message: dict[str, Any]) -> None:
        mid = message.get("_id")
        if not isinstance(mid, str):
            return
        if mid not in self.messages:
            self.order.append(mid)
        self.messages[mid] = message

    def in_room(self, rid: str, *, sender: str | None = None) -> list[dict[str, Any]]:
        out = [self.messages[m] for m in self.order if self.messages[m].get("rid") == rid]
        if sender is not None:
            out = [m for m in out if (m.get("u") or {}).get("username") == sender]
        return out

    def from_user(self, username: str) -> list[dict[str, Any]]:
        return [
            self.messages[m]
            for m in self.order
            if (self.messages[m].get("u") or {}).get("username") == username
        ]


class Person:
    """A member or moderator: one DDP connection (login with the resume token, `sendMessage`),
    its own stream of messages, and REST with its own token. Paced under Rocket.Chat's limits."""

    def __init__(self, seed: Seed, username: str, http: aiohttp.ClientSession) -> None:
        info = seed.user(username)
        self.username = username
        self.id: str = info["id"]
        self.token: str = info["token"]
        self.url = seed.url
        self.http = http
        self.seen = Seen()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._n = 0
        self._sends: deque[float] = deque()
        self._dm_with: dict[str, str] = {}

    # ---- the realtime connection

    async def connect(self, within: float = 20.0) -> None:
        """Open the connection, log in and subscribe; retried until `within` (a server restarting)."""
        deadline = time.monotonic() + within
        while True:
            try:
                await self._connect_once()
                return
            except (OSError, ConnectionClosed, TimeoutError, DDPError) as exc:
                await self.close()
                if time.monotonic() >= deadline:
                    raise AssertionError(f"{self.username} could not connect: {exc!r}") from exc
                await asyncio.sleep(0.3)

    async def _connect_once(self) -> None:
        ws_url = self.url.replace("http://", "ws://") + "/websocket"
        ws = await asyncio.wait_for(connect(ws_url, open_timeout=5, max_size=2**22), 6)
        self._ws = ws
        await ws.send(json.dumps({"msg": "connect", "version": "1", "support": ["1"]}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if frame.get("msg") == "connected":
                break
        self._reader = asyncio.create_task(self._read(ws))
        await self.call("login", {"resume": self.token})
        sid = self._next_id()
        fut = self._future(sid)
        await ws.send(
            json.dumps(
                {
                    "msg": "sub",
                    "id": sid,
                    "name": "stream-room-messages",
                    "params": ["__my_messages__", False],
                }
            )
        )
        await asyncio.wait_for(fut, 5)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._reader is not None and not self._reader.done()

    def _next_id(self) -> str:
        self._n += 1
        return str(self._n)

    def _future(self, key: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        return fut

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("msg")
                if kind == "ping":
                    await ws.send(
                        json.dumps({"msg": "pong", **({"id": frame["id"]} if "id" in frame else {})})
                    )
                elif kind == "result":
                    fut = self._pending.pop(str(frame.get("id")), None)
                    if fut is not None and not fut.done():
                        if "error" in frame:
                            fut.set_exception(DDPError(frame["error"]))
                        else:
                            fut.set_result(frame.get("result"))
                elif kind in ("ready", "nosub"):
                    for sid in frame.get("subs") or [frame.get("id")]:
                        fut = self._pending.pop(str(sid), None)
                        if fut is not None and not fut.done():
                            if kind == "nosub":
                                fut.set_exception(DDPError(frame.get("error") or {"error": "nosub"}))
                            else:
                                fut.set_result(None)
                elif kind == "changed" and frame.get("collection") == "stream-room-messages":
                    args = (frame.get("fields") or {}).get("args") or []
                    if args and isinstance(args[0], dict):
                        self.seen.add(args[0])
        except ConnectionClosed:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionClosed(None, None))
            self._pending.clear()

    async def call(self, method: str, *params: Any, wait: float = 10.0) -> Any:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed(None, None)
        mid = self._next_id()
        fut = self._future(mid)
        await ws.send(json.dumps({"msg": "method", "id": mid, "method": method, "params": list(params)}))
        return await asyncio.wait_for(fut, wait)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    async def _pace(self) -> None:
        """Stay under 10 sendMessage calls per 10 s on this connection and 5 per second per user."""
        while True:
            now = time.monotonic()
            while self._sends and now - self._sends[0] > 10.5:
                self._sends.popleft()
            recent = sum(1 for t in self._sends if now - t <= 1.1)
            if len(self._sends) < 9 and recent < 4:
                self._sends.append(now)
                return
            wait = (self._sends[0] + 10.6 - now) if len(self._sends) >= 9 else 0.3
            await asyncio.sleep(max(0.05, wait))

    async def send(
        self, rid: str, text: str, *, within: float = 30.0, mid: str | None = None, **extra: Any
    ) -> str:
        """Post a message as this person (DDP sendMessage, a client-chosen id: a fresh one unless
        `mid` is given); returns its id. Reconnects and resends the same id when the server went
        away in between."""
        mid = mid or new_id()
        deadline = time.monotonic() + within
        while True:
            try:
                if not self.connected:
                    await self.connect(within=max(1.0, deadline - time.monotonic()))
                await self._pace()
                await self.call("sendMessage", {"_id": mid, "rid": rid, "msg": text, **extra})
                return mid
            except DDPError as exc:
                if exc.error.get("error") != "too-many-requests" or time.monotonic() >= deadline:
                    raise
                reset = (exc.error.get("details") or {}).get("timeToReset") or 1000
                await asyncio.sleep(min(float(reset) / 1000 + 0.1, 11))
            except (ConnectionClosed, OSError, TimeoutError):
                await self.close()
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    # ---- REST, with this person's own token

    async def rest(self, method: str, route: str, *, within: float = 75.0, **params: Any) -> dict[str, Any]:
        """One REST call; a 429 is waited out (a member may call a route 10 times a minute)."""
        headers = {"X-User-Id": self.id, "X-Auth-Token": self.token}
        url = f"{self.url}/api/v1/{route}"
        deadline = time.monotonic() + within
        while True:
            kwargs: dict[str, Any] = {"params": params} if method == "GET" else {"json": params}
            try:
                async with self.http.request(method, url, headers=headers, **kwargs) as r:
                    body = await r.json(content_type=None)
                    if r.status == 429 and time.monotonic() < deadline:
                        reset_ms = float(r.headers.get("X-RateLimit-Reset") or 0)
                        wait = reset_ms / 1000 - time.time() if reset_ms else 5.0
                        await asyncio.sleep(min(max(wait, 0.5), 61))
                        continue
                    assert isinstance(body, dict), body
                    body["_status"] = r.status
                    return body
            except aiohttp.ClientConnectionError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.3)

    async def upload(
        self, rid: str, data: bytes, *, filename: str, content_type: str, msg: str = ""
    ) -> dict[str, Any]:
        """Post a file in ``rid`` as this person's client does: rooms.media/:rid (multipart, field
        ``file``), then rooms.mediaConfirm/:rid/:fileId. Returns the posted message. (As
        tests.helpers.upload; kept here so the journeys stay black-box.)"""
        headers = {"X-User-Id": self.id, "X-Auth-Token": self.token}
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("file", data, filename=filename, content_type=content_type)
        async with self.http.post(f"{self.url}/api/v1/rooms.media/{rid}", data=form, headers=headers) as r:
            stored = await r.json(content_type=None)
            assert r.status == 200 and stored.get("success"), (r.status, stored)
        fid = stored["file"]["_id"]
        route = f"{self.url}/api/v1/rooms.mediaConfirm/{rid}/{fid}"
        async with self.http.post(route, json={"msg": msg}, headers=headers) as r:
            posted = await r.json(content_type=None)
            assert r.status == 200 and posted.get("success"), (r.status, posted)
        message = posted["message"]
        assert isinstance(message, dict), posted
        return message

    async def dm_with(self, username: str) -> str:
        """The direct message room with `username` (im.create returns the existing one)."""
        if username not in self._dm_with:
            body = await self.rest("POST", "im.create", username=username)
            assert body.get("success"), body
            self._dm_with[username] = body["room"]["_id"]
        return self._dm_with[username]

    def forget_rooms(self) -> None:
        """After a sandbox restart the workspace forgot its DMs; ask for them again."""
        self._dm_with.clear()

    async def history(self, rid: str, kind: str = "im", count: int = 100) -> list[dict[str, Any]]:
        route = {"im": "im.history", "c": "channels.history", "p": "groups.history"}[kind]
        body = await self.rest("GET", route, roomId=rid, count=count)
        assert body.get("success"), body
        return list(body["messages"])

    # ---- what a person reads in their DM with the bot

    def from_bot(self, rid: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.seen.from_user(BOT) if rid is None or m.get("rid") == rid]

    def alerts(self) -> list[dict[str, Any]]:
        return [m for m in self.from_bot() if "*rcmod alert " in str(m.get("msg", ""))]

    def protection_alerts(self) -> list[dict[str, Any]]:
        return [m for m in self.from_bot() if "*rcmod protection" in str(m.get("msg", ""))]

    def report_dms(self) -> list[dict[str, Any]]:
        return [m for m in self.from_bot() if "*rcmod report " in str(m.get("msg", ""))]

    def replies_containing(self, text: str) -> list[dict[str, Any]]:
        return [m for m in self.from_bot() if text in str(m.get("msg", ""))]

    async def click(self, alert: Mapping[str, Any], label: str) -> str:
        """Click an alert's button the way Rocket.Chat does: a `msg_in_chat_window` button sends its
        `msg` as this person's own message in the room the alert is in."""
        for attachment in alert.get("attachments") or []:
            for action in attachment.get("actions") or []:
                if action.get("text", "").startswith(label):
                    assert action.get("msg_in_chat_window") is True, action
                    return await self.send(str(alert["rid"]), str(action["msg"]))
        raise AssertionError(f"no button {label!r} on the alert: {alert.get('attachments')}")


def alert_mid(alert: Mapping[str, Any]) -> str | None:
    """The message an alert is about, from its permalink (`?msg=ID`)."""
    found = re.search(r"\?msg=([A-Za-z0-9_-]+)\)", str(alert.get("msg", "")))
    return found.group(1) if found else None


def alert_count(alert: Mapping[str, Any]) -> int:
    found = re.search(r"\*(\d+) matching messages\*", str(alert.get("msg", "")))
    return int(found.group(1)) if found else 1


def alert_number(alert: Mapping[str, Any]) -> int:
    found = re.search(r"\*rcmod alert (\d+)\*", str(alert.get("msg", "")))
    assert found, alert.get("msg")
    return int(found.group(1))


# ---------------------------------------------------------------------------- the workspace fixture


def write_lists(folder: Path) -> Path:
    """Lists an administrator might write: a notify list, a block list, an allow list."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "watch.txt").write_text("badword\nfree crypto*\n", encoding="utf-8")
    (folder / "slurs.txt").write_text("zorgslur\n", encoding="utf-8")
    (folder / "slurs.toml").write_text(
        'kind = "block"\nseverity = "high"\nreveal_term = true\n', encoding="utf-8"
    )
    return folder


@dataclass
class World:
    """One journey's workspace: the sandbox process, the people, the bot's settings."""

    tmp: Path
    procs: Processes
    sandbox: SandboxProcess
    seed: Seed
    http: aiohttp.ClientSession
    people: dict[str, Person] = field(default_factory=dict)

    async def person(self, username: str) -> Person:
        if username not in self.people:
            p = Person(self.seed, username, self.http)
            await p.connect()
            self.people[username] = p
        return self.people[username]

    async def persons(self, *usernames: str) -> list[Person]:
        return [await self.person(n) for n in usernames]

    def bot_env(self, data_dir: Path | None = None, port: int | None = None, **extra: str) -> dict[str, str]:
        lists = write_lists(self.tmp / "lists")
        return bot_env(self.seed, data_dir or self.tmp / "data", port or free_port(), [lists], **extra)

    async def bot(self, env: Mapping[str, str] | None = None, args: list[str] | None = None) -> BotProcess:
        bot = BotProcess(self.procs, env or self.bot_env(), args)
        await bot.start()
        return bot

    def write_config(self, text: str) -> Path:
        path = self.tmp / "rcmod.toml"
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    procs = Processes(tmp_path)
    sandbox = SandboxProcess(procs)
    people: list[Person] = []
    try:
        seed = await sandbox.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            w = World(tmp_path, procs, sandbox, seed, http)
            try:
                yield w
            finally:
                people = list(w.people.values())
                for p in people:
                    await p.close()
    finally:
        await procs.stop_all()
