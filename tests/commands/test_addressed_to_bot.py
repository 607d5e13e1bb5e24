"""What is said to the bot is not moderation material: commands (by DM or typed in a room) and
DMs to the bot raise no keyword alert, are not deleted by a block list and count for no
protection. A flood in a room mutes the author in that room only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.moderation.neutralize import inline_literal
from bot.moderation.sanctions import Notice, render_notice
from bot.sandbox import Sandbox
from tests.conftest import Recorder, RunningBot, bot_settings, start_bot, until
from tests.helpers import ask, dms_from_bot, list_folder, muted, post, told, triggered


def write_lists(root: Path) -> Path:
    return list_folder(
        root,
        watch=("free crypto\nbuy followers\nbadword\n", 'kind = "notify"\nseverity = "high"\n'),
        banned=("forbiddenword\n", 'kind = "block"\nseverity = "high"\n'),
    )


def settings(sb: Sandbox, tmp_path: Path, **protections: Any) -> Any:
    return bot_settings(
        sb,
        tmp_path / "data",
        moderation={"moderators": ["mod1", "mod2"], "wordlists": [str(write_lists(tmp_path))]},
        protections=protections,
    )


def alerts_to(sb: Sandbox, username: str) -> list[str]:
    dms = [str(m["msg"]) for m in dms_from_bot(sb, username)]
    return [text for text in dms if "rcmod alert" in text.split("\n")[0]]


def protection_alerts_to(sb: Sandbox, username: str) -> list[str]:
    return [str(m["msg"]) for m in dms_from_bot(sb, username) if "rcmod protection" in str(m["msg"])]


async def settled(bot: RunningBot) -> None:
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.alerts.pending_deliveries() == 0)


async def test_a_new_member_asking_the_bot_for_help_is_not_a_flood(sandbox: Sandbox, tmp_path: Path) -> None:
    # A new member's limit: 5 messages a minute (what probation gives; set directly here).
    flood = {"mode": "act", "messages": 5, "seconds": 60}
    bot = await start_bot(settings(sandbox, tmp_path, probation_days=0, flood=flood), Recorder())
    try:
        for _ in range(7):
            await ask(sandbox, "bob", "help")
        await post(bot, sandbox, "bob", "general", "after asking for help")  # the handlers are done
        assert triggered(bot, "flood") == []
        assert muted(sandbox, "general") == [] and muted(sandbox, "random") == []
        assert not told(sandbox, "bob", "muted")
        await settled(bot)
        assert protection_alerts_to(sandbox, "mod1") == []
    finally:
        await bot.stop()


async def test_a_flood_in_one_room_mutes_in_that_room_only(sandbox: Sandbox, tmp_path: Path) -> None:
    flood = {"mode": "act", "messages": 3, "seconds": 60, "mute": "5m"}
    bot = await start_bot(settings(sandbox, tmp_path, probation_days=0, flood=flood), Recorder())
    try:
        for i in range(4):
            await post(bot, sandbox, "bob", "general", f"line {i}")
        assert await until(lambda: muted(sandbox, "general") == ["bob"])
        assert muted(sandbox, "random") == []
        here = f"You have been muted in {inline_literal('#general')} "
        assert await until(lambda: told(sandbox, "bob", here))
        assert not told(sandbox, "bob", "everywhere")
    finally:
        await bot.stop()


def test_a_mute_everywhere_reads_as_english() -> None:
    text = render_notice(Notice("mute", "spam", everywhere=True))
    assert "in everywhere" not in text and "muted in every room" in text
    assert "from everywhere" not in render_notice(Notice("kick", "spam", everywhere=True))


async def test_moderators_commands_raise_no_alert_and_no_flood(sandbox: Sandbox, tmp_path: Path) -> None:
    flood = {"mode": "alert", "messages": 3, "seconds": 60}
    bot = await start_bot(settings(sandbox, tmp_path, probation_days=0, flood=flood), Recorder())
    try:
        await ask(sandbox, "mod1", "mod test FR33 CRYPT0")
        await ask(sandbox, "mod1", "mod allow buy followers")
        for _ in range(4):
            await ask(sandbox, "mod1", "mod test badword")
        # Typed in a room as a slash command (the bot removes it and answers by DM).
        sandbox.workspace.set_setting("Message_AllowUnrecognizedSlashCommand", True)
        command = sandbox.post_as("mod2", "general", "/mod test free crypto")
        assert await until(lambda: command["_id"] not in sandbox.workspace.messages)
        assert await until(lambda: len(dms_from_bot(sandbox, "mod2")) >= 1)  # the answer
        await post(bot, sandbox, "alice", "general", "a badword in the room")  # a real one, for contrast
        assert await until(lambda: len(alerts_to(sandbox, "mod2")) == 1)
        await settled(bot)
        [alert] = alerts_to(sandbox, "mod2")
        assert "alice" in alert
        assert [a for a in alerts_to(sandbox, "mod1") if "mod1" in a or "mod2" in a] == []
        assert triggered(bot, "flood") == []
        assert protection_alerts_to(sandbox, "mod1") == protection_alerts_to(sandbox, "mod2") == []
    finally:
        await bot.stop()


async def test_a_members_dm_to_the_bot_is_private_to_the_bot(sandbox: Sandbox, tmp_path: Path) -> None:
    """Not a command either: nobody but the bot reads it, so there is nobody to protect."""
    bot = await start_bot(settings(sandbox, tmp_path, probation_days=0), Recorder())
    try:
        hint = await ask(sandbox, "carol", "is badword allowed here? forbiddenword?")
        assert "mod help" in hint
        dm = sandbox.dm_as("carol", "rcmod.bot", "report forbiddenword badword")
        await post(bot, sandbox, "alice", "general", "badword")
        assert await until(lambda: len(alerts_to(sandbox, "mod1")) == 1)
        await settled(bot)
        assert all("carol" not in a for a in alerts_to(sandbox, "mod1") + alerts_to(sandbox, "mod2"))
        assert dm["_id"] in sandbox.workspace.messages  # not deleted by the block list
    finally:
        await bot.stop()
