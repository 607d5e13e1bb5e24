"""Values members choose — message ids, names, text — reach moderators' DMs, buttons, links and
log lines inert, and an alert the server refuses is reported, not lost. Against the sandbox."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

from bot.cli.logformat import OneLineFormatter
from bot.sandbox import Sandbox
from tests.conftest import Recorder, bot_settings, start_bot, until
from tests.helpers import ask, dms_from_bot, write_lists

LIVE_EVERYONE = re.compile(r"(^|[\s>])@(all|here)\b", re.IGNORECASE)


def settings(sb: Sandbox, tmp_path: Path, **more: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": ["mod2"]}, **more)


def alerts_to(sb: Sandbox, username: str, words: str) -> list[dict[str, Any]]:
    return [m for m in dms_from_bot(sb, username) if words in str(m["msg"])]


async def test_the_mention_spam_alert_reaches_the_moderator_without_a_live_mention(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path), Recorder())
    try:
        sandbox.post_as("alice", "general", "@all lunch?")
        assert await until(lambda: bool(alerts_to(sandbox, "mod2", "protection — mentions")))
        [alert] = alerts_to(sandbox, "mod2", "protection — mentions")
        assert not LIVE_EVERYONE.search(str(alert["msg"])), alert["msg"]
        store = bot.app.store
        assert store is not None
        # Every moderator's copy sent (mod2's came first; another's may still be on its way).
        assert await until(lambda: store.alerts.pending_deliveries() == 0)
        status = await ask(sandbox, "mod2", "mod status")
        assert "Queued alert DMs: 0" in status and "undeliverable" not in status, status
    finally:
        await bot.stop()


async def test_an_alert_the_server_refuses_shows_as_undeliverable(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path), Recorder())
    try:
        await ask(sandbox, "mod2", "mod help")  # the DM with mod2 exists; the next post is the alert
        refusal = {
            "success": False,
            "error": "Notify all in this room not allowed [error-action-not-allowed]",
            "errorType": "error-action-not-allowed",
        }
        sandbox.fail_next("chat.sendMessage", 400, refusal)
        sandbox.post_as("alice", "general", "@all lunch?")
        store = bot.app.store
        assert store is not None
        assert await until(lambda: store.alerts.undeliverable_count() == 1)
        status = await ask(sandbox, "mod2", "mod status")
        assert "undeliverable (refused by the server): 1" in status, status
        assert "error-action-not-allowed" in status
        assert 'rcmod_alerts_total{outcome="undeliverable"} 1.0' in bot.app.metrics.render().decode()
    finally:
        await bot.stop()


HOSTILE_ID = "x`y @here [pwn](http://evil.example)\nINFO rcmod.forged: all clear\u202e"


async def test_a_member_chosen_message_id_reaches_the_alert_and_the_log_inert(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    lists = write_lists(tmp_path, notify_users=["mod2"])
    config = bot_settings(
        sandbox, tmp_path / "data", moderation={"moderators": ["mod2"], "wordlists": [str(lists)]}
    )
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("rcmod")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    bot = await start_bot(config, Recorder())
    try:
        bob = sandbox.workspace.user_by_username("bob")
        general = sandbox.workspace.room_by_id_or_name(name="general")
        assert bob is not None and general is not None
        # chat.sendMessage takes the client's _id as any string, as Rocket.Chat does.
        sandbox.workspace.send_message(bob.id, general["_id"], "what a badword", mid=HOSTILE_ID)
        assert await until(lambda: bool(alerts_to(sandbox, "mod2", "rcmod alert")))
        [alert] = alerts_to(sandbox, "mod2", "rcmod alert")
        text = str(alert["msg"])
        assert HOSTILE_ID not in text and "(http://evil" not in text  # inside a code span, defanged
        assert not LIVE_EVERYONE.search(text), text
        assert "/mod delete x" not in text  # no command that cannot be typed back
        assert text.count("`") % 2 == 0  # every code span closed where the bot closed it
        assert not any(line.startswith("INFO rcmod.forged") for line in text.split("\n"))
        commands = [a["msg"] for block in alert.get("attachments") or [] for a in block.get("actions", [])]
        assert commands and not any("@here" in c or "\n" in c or "`" in c for c in commands), commands
        # The link to the message carries the id percent-encoded.
        assert "msg=x%60y%20%40here" in text
        # A command typed in a room with such an id, which the bot then fails to remove: the
        # failure is logged with the id.
        sandbox.fail_next(
            "chat.delete", 400, {"success": False, "error": "no", "errorType": "error-action-not-allowed"}
        )
        sandbox.workspace.send_message(bob.id, general["_id"], "/mod help", mid=HOSTILE_ID + "2")
        assert await until(lambda: "could not remove command message" in out.getvalue())
    finally:
        await bot.stop()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = out.getvalue().splitlines()
    assert lines and all(
        re.match(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) rcmod[.\w]*: ", ln) for ln in lines
    ), lines
    assert not any("rcmod.forged" in ln.split(": ", 1)[0] for ln in lines)
    [logged] = [ln for ln in lines if "could not remove command message" in ln]
    assert "\\nINFO rcmod.forged" in logged and "\\u202e" in logged, logged
