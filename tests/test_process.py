"""The real `rcmod run` process: SIGTERM stops it cleanly (exit 0); after kill -9 a restart takes
over at once and catches up, handling nothing twice."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from bot.sandbox import Sandbox
from bot.sandbox.workspace import Event, MessageChanged, RoomNotify
from bot.store import Store
from tests.conftest import handled, until
from tests.helpers import (
    block_lists,
    bot_login_env,
    dms_from_bot,
    free_port,
    rcmod_process,
    rcmod_sandbox,
    ready,
    write_lists,
)


async def spawn(
    sandbox: Sandbox, tmp_path: Path, port: int, lists: Path | None = None
) -> asyncio.subprocess.Process:
    env = {
        **bot_login_env(sandbox, tmp_path / "data"),
        "RCMOD_HTTP_PORT": str(port),
        "RCMOD_WORDLISTS": str(lists or write_lists(tmp_path)),
    }
    return await rcmod_process(
        "run", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def alerted_once(
    sandbox: Sandbox, tmp_path: Path, port: int, user: str, text: str
) -> asyncio.subprocess.Process:
    """`rcmod run` ready on ``port``, and its alert about ``user``'s ``text`` in #general with mod1."""
    proc = await spawn(sandbox, tmp_path, port)
    assert await ready(port)
    sandbox.post_as(user, "general", text)
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    return proc


async def test_sigterm_stops_cleanly(sandbox: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    proc = await alerted_once(sandbox, tmp_path, port, "alice", "a badword before shutdown")
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert sandbox.seed_info()["users"][0]["token"] not in err  # no secret in the logs
    assert "badword" not in err  # no message content in the logs


async def test_kill_9_then_restart_catches_up_once(sandbox: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    first = await alerted_once(sandbox, tmp_path, port, "bob", "badword one")
    first.kill()
    await first.wait()
    sandbox.post_as("carol", "random", "badword two, while the bot is dead")
    second = await spawn(sandbox, tmp_path, port)
    try:
        assert await ready(port, within=10)  # no waiting for the dead instance's lease to expire
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 2, within=15)
        # A last, ordinary message: once it is done with (handled after catch-up, nothing left to
        # send), a second alert for bob's would have been sent.
        last = sandbox.post_as("alice", "general", "back to work")["_id"]
        store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
        try:
            assert await until(lambda: handled(store, last), within=15)
        finally:
            store.close()
        assert len(dms_from_bot(sandbox, "mod1")) == 2  # carol's alert once; bob's not again
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 15) == 0


async def test_rcmod_sandbox_prints_one_json_line_with_the_seed() -> None:
    async with rcmod_sandbox("--port", "0") as seed:
        assert seed["url"].startswith("http://127.0.0.1:")
        users = {u["username"]: u for u in seed["users"]}
        assert {"admin", "mod1", "mod2", "alice", "bob", "carol", "rcmod.bot"} <= set(users)
        assert "admin" in users["admin"]["roles"] and "bot" in users["rcmod.bot"]["roles"]
        assert all({"username", "password", "id", "token", "roles"} <= set(u) for u in seed["users"])
        rooms = {r["name"]: r["type"] for r in seed["rooms"]}
        assert rooms["general"] == "c" and rooms["random"] == "c" and rooms["staff"] == "p"
        async with aiohttp.ClientSession() as http:
            headers = {"X-User-Id": users["alice"]["id"], "X-Auth-Token": users["alice"]["token"]}
            async with http.get(f"{seed['url']}/api/v1/me", headers=headers) as r:
                assert (await r.json())["username"] == "alice"


async def test_kill_9_around_removals_sends_each_authors_notice_exactly_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The bot is killed the moment the server deletes a blocked message (before the bot hears
    back), or the moment its notice to the author lands; each removed message still gets
    exactly one "your message was removed" notice once a bot runs again."""
    lists = block_lists(tmp_path)
    port = free_port()
    ws = sandbox.workspace
    bot_user, alice = ws.user_by_username("rcmod.bot"), ws.user_by_username("alice")
    assert bot_user is not None and alice is not None
    alice_dm = "".join(sorted({bot_user.id, alice.id}))
    target: dict[str, object] = {}

    def kill_at(event: Event) -> None:
        proc = target.get("proc")
        if not isinstance(proc, asyncio.subprocess.Process) or proc.returncode is not None:
            return
        if target.get("at") == "delete":
            hit = isinstance(event, RoomNotify) and event.event == "deleteMessage"
            hit = hit and isinstance(event, RoomNotify) and event.args[0].get("_id") == target.get("mid")
        else:
            hit = isinstance(event, MessageChanged) and event.message["rid"] == alice_dm
        if hit:
            proc.kill()

    ws.listeners.append(kill_at)
    removed: list[str] = []
    for n, at in enumerate(["delete", "notice", "delete", "notice", "delete", "delete"]):
        proc = await spawn(sandbox, tmp_path, port, lists)
        assert await ready(port)
        target.update(proc=proc, at=at, mid=None)
        mid = sandbox.post_as("alice", "general", f"badword number {n}")["_id"]
        target["mid"] = mid  # set before the loop runs again: the bot cannot have acted yet
        removed.append(mid)
        assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
    target.clear()
    last = await spawn(sandbox, tmp_path, port, lists)
    try:
        assert await ready(port)
        assert await until(lambda: len(dms_from_bot(sandbox, "alice")) >= len(removed), within=30)
        assert await until(lambda: all(mid not in ws.messages for mid in removed))
        # A second copy could only come from something still due: wait until the bot's store (read
        # from outside, committed rows only) has no unsent delivery and no action left to finish.
        store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
        try:
            assert await until(
                lambda: store.alerts.pending_deliveries() == 0 and store.blocks.due_block_retries() == [],
                within=30,
            )
        finally:
            store.close()
    finally:
        last.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(last.wait(), 15) == 0
    notices = dms_from_bot(sandbox, "alice")
    assert len(notices) == len(removed)
    # Each as the author's notice, even when a later process sent what an earlier one queued.
    assert all(n["msg"].startswith(":no_entry: Your message in `#general` was removed") for n in notices)
