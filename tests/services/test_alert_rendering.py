"""What a keyword alert DM says and offers, against the sandbox: messages are counted (not terms),
the header's term is the one the excerpt marks, a coalesced alert's text and buttons aim at the
same (newest) message, and a dismissed alert keeps no buttons."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.sandbox import Sandbox
from tests.conftest import RunningBot, bot_settings, start_bot, until
from tests.helpers import ask, dms_from_bot


def settings(sb: Sandbox, tmp_path: Path) -> Any:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "watch.txt").write_text("badword\nscam link\nfree crypto\n")
    (lists / "watch.toml").write_text('kind = "notify"\nseverity = "high"\n')
    return bot_settings(sb, tmp_path / "data", moderation={"wordlists": [str(lists)], "moderators": ["mod1"]})


def the_alert(sb: Sandbox) -> dict[str, Any]:
    [dm] = [m for m in dms_from_bot(sb, "mod1") if "rcmod alert" in str(m["msg"]).split("\n")[0]]
    return dm


def header_term(text: str) -> str:
    found = re.search(r"term `\s?([^`]*?)\s?`", text.split("\n")[0])
    assert found, text
    return found.group(1)


def marked(text: str) -> str:
    found = re.search(r"⟦(.*?)⟧", text)
    assert found, text
    return found.group(1)


def button_commands(dm: dict[str, Any]) -> list[str]:
    return [str(a["msg"]) for att in dm.get("attachments") or () for a in att.get("actions") or ()]


async def settled(bot: RunningBot) -> None:
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.alerts.pending_deliveries() == 0)


async def test_one_message_with_three_terms_is_one_message(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        sandbox.post_as("alice", "general", "free crypto here, a scam link, what a badword")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
        await settled(bot)
        text = str(the_alert(sandbox)["msg"])
        assert "matching messages" not in text
        assert header_term(text) == marked(text)
    finally:
        await bot.stop()


async def test_a_coalesced_alert_aims_text_and_buttons_at_the_newest_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        first = sandbox.post_as("alice", "general", "this is a badword")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
        await settled(bot)
        newest = sandbox.post_as("alice", "general", "and here is a scam link")
        assert await until(lambda: "2 matching messages" in str(the_alert(sandbox)["msg"]))
        await settled(bot)
        dm = the_alert(sandbox)
        text = str(dm["msg"])
        assert newest["_id"] in text and first["_id"] not in text
        assert header_term(text) == marked(text) == "scam link"
        assert f"mod delete {newest['_id']}" in button_commands(dm)
        assert f"mod delete {first['_id']}" not in button_commands(dm)
        assert "mod allow scam link" in button_commands(dm)
    finally:
        await bot.stop()


async def test_a_dismissed_alert_keeps_no_buttons(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        sandbox.post_as("alice", "general", "this is a badword")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
        await settled(bot)
        assert button_commands(the_alert(sandbox))
        found = re.search(r"rcmod alert (\d+)", str(the_alert(sandbox)["msg"]))
        assert found
        assert "dismissed" in await ask(sandbox, "mod1", f"mod dismiss {found.group(1)}")
        assert await until(lambda: "dismissed by mod1" in str(the_alert(sandbox)["msg"]))
        await settled(bot)
        assert button_commands(the_alert(sandbox)) == []
    finally:
        await bot.stop()
