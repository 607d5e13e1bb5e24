"""The history walker and `rcmod scan-history`: every message in range exactly once (even a page
boundary inside one millisecond), and a read-only report of what the lists would have caught."""

from __future__ import annotations

import json
from pathlib import Path

from bot.models import Room
from bot.rest.history import walk_room
from bot.sandbox import Sandbox
from tests.cli.test_purge_cli import env_for, finish, rcmod
from tests.helpers import block_lists, bot_rest, write_lists


async def test_walker_sees_each_message_once_across_a_millisecond_page_boundary() -> None:
    now = [1_767_225_600.0]
    sb = Sandbox(clock=lambda: now[0])
    await sb.start()
    rest = bot_rest(sb)
    try:
        room = sb.workspace.room_by_id_or_name(name="general")
        assert room is not None
        posted = []
        for i in range(130):  # 130 messages in one millisecond, then 45 more in the next ones
            posted.append(sb.post_as("alice", "general", f"same ms {i}")["_id"])
        for i in range(45):
            now[0] += 0.001
            posted.append(sb.post_as("bob", "general", f"later {i}")["_id"])
        target = Room(room["_id"], "general", "c")
        walked = [m.id async for m in walk_room(rest, target, oldest=None, latest=None, page=50)]
        assert sorted(walked) == sorted(posted)  # nothing lost, nothing twice
        newest = [m.id async for m in walk_room(rest, target, oldest=None, latest=None, page=50)][:45]
        assert set(newest) == set(posted[130:])  # newest first
    finally:
        await rest.close()
        await sb.stop()


async def test_scan_history_reports_what_the_lists_would_catch(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    notify = write_lists(tmp_path / "n")
    block = block_lists(tmp_path / "b", action="censor")
    caught = sandbox.post_as("alice", "general", "this badword again")["_id"]
    sandbox.post_as("bob", "random", "a scam link here")
    sandbox.post_as("carol", "random", "all fine")
    before = {k: dict(v) for k, v in sandbox.workspace.messages.items()}
    env = {**env_for(sandbox, tmp_path / "data"), "RCMOD_WORDLISTS": f"{notify}:{block}"}

    code, out, err = await finish(await rcmod(env, "scan-history", "--since", "1d", "--json"))
    assert code == 0, err
    report = json.loads(out)
    rooms = {r["room"]: r for r in report["rooms"]}
    assert rooms["general"]["caught"] == 1 and rooms["random"]["caught"] == 1
    assert rooms["random"]["scanned"] == 2
    lists = {(e["list"], e["action"]): e for e in report["lists"]}
    assert lists[("banned", "censor")]["messages"] == 2 and lists[("watch", "alert")]["messages"] == 2
    assert caught in lists[("banned", "censor")]["examples"]
    assert "this badword again" not in out  # counts and ids, no message text

    code, out, _ = await finish(await rcmod(env, "scan-history", "--room", "random"))
    assert code == 0 and "#random: 2 scanned, 1 caught" in out and "#general" not in out
    assert {k: dict(v) for k, v in sandbox.workspace.messages.items()} == before  # read-only

    code, _out, err = await finish(await rcmod(env, "scan-history", "--since", "whenever"))
    assert code == 2 and "neither a duration" in err
