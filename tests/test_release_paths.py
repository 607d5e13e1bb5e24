"""The bot's critical paths against one release of each supported major line: connect and catch up
after an outage, alert, delete with evidence, mute, report, pin. The sandbox answers as the release
asked for would (routes added later answer 404, refusals carry that release's status), so a path
that only works on the newest server fails here for the older ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import ask, block_lists, dms_from_bot, native_reports
from tests.services.test_policies import CONDUCT, pinned_in, write_policy

# One release per major line the README says rcmod supports: the oldest 6.x it supports (before
# rooms.muteUser and users.listByStatus came in 6.8), a 7.x, and the 8.x line of 2026.
RELEASES = ("6.6.0", "7.10.0", "8.3.0")


def _alerts(sb: Sandbox, moderator: str, word: str) -> int:
    return sum(word in str(m["msg"]) for m in dms_from_bot(sb, moderator))


@pytest.mark.parametrize("version", RELEASES)
async def test_critical_paths(version: str, tmp_path: Path) -> None:
    sb = Sandbox(version=version)
    await sb.start()
    lists = block_lists(tmp_path)  # banned.txt: a block list that deletes, alerts mod1
    (lists / "watch.txt").write_text("scamlink\n")  # a plain notify list: alerts the moderators
    policies = tmp_path / "policies"
    write_policy(policies, "conduct", CONDUCT)
    settings = bot_settings(
        sb,
        tmp_path / "data",
        moderation={"wordlists": [str(lists)], "moderators": ["mod2"]},
        policy={"dir": str(policies), "sync_interval": 600},
    )
    try:
        bot = await start_bot(settings)
        try:
            # Pin: the policy is pinned where it applies.
            assert await until(lambda: len(pinned_in(sb, "general")) == 1, within=20)
            # Alert: a notify term reaches the moderator once.
            sb.post_as("alice", "general", "try my scamlink today")
            assert await until(lambda: _alerts(sb, "mod2", "scamlink") == 1, within=20)
            # Delete: a block term is removed, evidence first.
            bad = sb.post_as("bob", "random", "you badword")
            assert await until(lambda: bad["_id"] not in sb.workspace.messages, within=20)
            store = bot.app.store
            assert store is not None and store.evidence.evidence_for_message(bad["_id"])
            # Mute: REST from 6.8, the realtime method before.
            answer = await ask(sb, "admin", "mod mute @carol #random 10m spamming")
            assert "mute" in answer.lower(), answer
            room = sb.workspace.room_by_id_or_name(name="random")
            assert room is not None and "carol" in (room.get("muted") or [])
            # Report: filed natively and routed.
            target = sb.post_as("carol", "general", "buy followers here")
            reply = await ask(sb, "alice", f"report spam {target['_id']} selling followers")
            assert "report is #" in reply, reply
            assert await until(lambda: bool(native_reports(sb, target["_id"])))
        finally:
            await bot.stop()
        # Catch-up: what is posted while the bot is away is handled once it is back, once.
        sb.post_as("bob", "general", "a scamlink while you were away")
        bot = await start_bot(settings)
        try:
            assert await until(lambda: _alerts(sb, "mod2", "while you were away") == 1, within=20)
        finally:
            await bot.stop()
        assert _alerts(sb, "mod2", "while you were away") == 1
    finally:
        await sb.stop()
