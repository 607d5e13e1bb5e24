"""/mod block, unblock, purge, confirm and policy over DM against the sandbox: privileges as
declared (a room moderator blocks in their room, only bot moderators everywhere), purges previewed
then confirmed by the same moderator, dry run deletes nothing, policies listed and synced."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.test_policies import CONDUCT, pinned_in, write_policy
from tests.test_report import ask


def settings(sb: Sandbox, tmp_path: Path, **extra: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": ["mod1"]}, **extra)


async def test_block_in_a_room_and_everywhere(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "Say where" in await ask(sandbox, "mod1", "mod block @bob")
    # mod2 moderates #general (a room role), but is no bot moderator: not everywhere.
    assert "needs room moderator" in await ask(sandbox, "mod2", "mod block @bob everywhere spam")
    assert "needs room moderator" in await ask(sandbox, "carol", "mod block @bob #general")
    assert "bob" in await ask(sandbox, "mod2", "mod block @bob #general spamming")
    in_general = sandbox.post_as("bob", "general", "still here?")["_id"]
    in_random = sandbox.post_as("bob", "random", "and here")["_id"]
    assert await until(lambda: in_general not in sandbox.workspace.messages)
    assert await until(lambda: in_random in bot.recorder.message_ids())
    assert in_random in sandbox.workspace.messages  # blocked in #general only
    store = bot.app.store
    assert store is not None and store.evidence_for_message(in_general)  # evidence before removal

    assert "carol" in await ask(sandbox, "mod1", "mod block @carol everywhere flooding")
    anywhere = sandbox.post_as("carol", "random", "hello")["_id"]
    assert await until(lambda: anywhere not in sandbox.workspace.messages)
    assert "Unblocked" in await ask(sandbox, "mod1", "mod unblock @carol everywhere")
    back = sandbox.post_as("carol", "random", "hello again")["_id"]
    assert await until(lambda: back in bot.recorder.message_ids())
    assert back in sandbox.workspace.messages
    await bot.stop()


async def test_purge_is_previewed_then_confirmed_by_the_same_moderator(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    doomed = [sandbox.post_as("bob", "general", f"spam {i}")["_id"] for i in range(3)]
    kept = sandbox.post_as("bob", "random", "spam elsewhere")["_id"]
    dry = await ask(sandbox, "mod2", "mod purge user @bob #general --dry-run")
    assert "3 message(s)" in dry and "nothing was deleted" in dry
    assert all(mid in sandbox.workspace.messages for mid in doomed)
    assert "everywhere" in await ask(sandbox, "mod2", "mod purge user @bob")  # no silent whole workspace
    preview = await ask(sandbox, "mod2", "mod purge user @bob in #general")
    m = re.search(r"/mod confirm (\d+)", preview)
    assert m is not None and "3 message(s)" in preview
    assert "No purge" in await ask(sandbox, "mod1", f"mod confirm {m.group(1)}")  # not theirs
    done = await ask(sandbox, "mod2", f"mod confirm {m.group(1)}")
    assert "3/3" in done or "3 of 3" in done  # the progress DM or the reply, whichever lands first
    assert not any(mid in sandbox.workspace.messages for mid in doomed)
    assert kept in sandbox.workspace.messages
    store = bot.app.store
    assert store is not None and all(store.evidence_for_message(mid) for mid in doomed)
    assert "does not moderate" in await ask(sandbox, "carol", "mod purge term spam #random")
    assert kept in sandbox.workspace.messages
    await bot.stop()


async def test_policy_list_and_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    write_policy(folder, "conduct", CONDUCT)
    bot = await start_bot(settings(sandbox, tmp_path, policy={"dir": str(folder), "sync_interval": 600}))
    assert await until(lambda: len(pinned_in(sandbox, "general")) == 1)
    assert "conduct" in await ask(sandbox, "mod1", "mod policy list")
    assert "needs bot moderator" in await ask(sandbox, "mod2", "mod policy list")
    assert "nothing to do" in await ask(sandbox, "mod1", "mod policy sync")
    await bot.stop()


async def test_dry_run_records_block_actions_without_deleting(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "on" in (await ask(sandbox, "admin", "mod dryrun on")).lower()
    assert "bob" in await ask(sandbox, "mod1", "mod block @bob everywhere testing")
    kept = sandbox.post_as("bob", "general", "would be removed")["_id"]
    store = bot.app.store
    assert store is not None
    assert await until(
        lambda: any(
            r.outcome == "dry-run" and r.targets.get("message") == kept for r in store.audit_records()
        )
    )
    assert kept in sandbox.workspace.messages
    await bot.stop()


async def test_resolve_block_and_purge(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    first = sandbox.post_as("bob", "general", "buy followers now")
    assert "report is #1" in await ask(sandbox, "alice", f"report spam {first['_id']}")
    answer = await ask(sandbox, "mod1", "mod resolve 1 block")
    assert "bob" in answer
    blocked = sandbox.post_as("bob", "random", "and again")["_id"]
    assert await until(lambda: blocked not in sandbox.workspace.messages)  # blocked everywhere
    assert "already closed" in await ask(sandbox, "mod1", "mod resolve 1 dismiss")

    second = sandbox.post_as("carol", "general", "more spam")
    assert "report is #2" in await ask(sandbox, "alice", f"report spam {second['_id']}")
    preview = await ask(sandbox, "mod1", "mod resolve 2 purge")
    m = re.search(r"/mod confirm (\d+)", preview)
    assert m is not None and "carol" in preview
    assert second["_id"] in sandbox.workspace.messages  # a preview deletes nothing
    assert "1/1" in (done := await ask(sandbox, "mod1", f"mod confirm {m.group(1)}")) or "1 of 1" in done
    assert second["_id"] not in sandbox.workspace.messages
    await bot.stop()
