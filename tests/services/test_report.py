"""/report end to end against the sandbox: each transport files into the moderation console,
reaches the moderators once, is acknowledged; dedupe, escalation and rate limits hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.audit import actions
from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import ask, dms_from_bot, native_reports, settled

MODS = ["mod1", "mod2"]


def settings(sb: Sandbox, tmp_path: Path, **reports: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": MODS}, reports=reports)


async def test_a_report_by_dm_is_filed_routed_and_acknowledged(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    msg = sandbox.post_as("bob", "general", "@all cheap followers at https://spam.example")
    answer = await ask(sandbox, "alice", f"report spam {msg['_id']} he is selling followers")
    assert "report is #1" in answer and "spam" in answer
    # Filed natively, as the bot, into the moderation console.
    [native] = native_reports(sandbox, msg["_id"])
    assert native["reportedBy"]["username"] == "rcmod.bot" and "[spam]" in native["description"]

    # Every routed moderator gets one DM with category, reporter, target, excerpt, permalink.
    # (The @all also raises the mention-spam protection's alert: not counted here.)
    def reports_to(mod: str) -> list[dict[str, Any]]:
        return [m for m in dms_from_bot(sandbox, mod) if "rcmod report" in str(m["msg"])]

    for mod in MODS:
        assert await until(lambda mod=mod: len(reports_to(mod)) == 1)  # type: ignore[misc]
    await settled(bot)
    text = reports_to("mod1")[0]["msg"]
    assert "rcmod report 1" in text and "category *spam*" in text and "alice" in text and "bob" in text
    assert f"/channel/general?msg={msg['_id']}" in text
    assert "cheap followers" in text and "@all" not in text and "https://spam" not in text
    assert "moderation console" in text
    store = bot.app.store
    assert store is not None
    assert store.evidence.evidence_for_message(msg["_id"])  # the evidence snapshot
    assert any(r.action == actions.REPORT_FILED for r in store.audit.audit_records())
    await bot.stop()
    assert len(reports_to("mod1")) == 1


async def test_dedupe_and_escalation(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, escalate_at=3, escalate_action="delete"))
    msg = sandbox.post_as("bob", "general", "a hateful thing")
    assert "#1" in await ask(sandbox, "alice", f"report hate {msg['_id']}")
    assert "already reported" in await ask(sandbox, "alice", f"report hate {msg['_id']}")
    assert "#1" in await ask(sandbox, "carol", f"report {msg['_id']}")
    await settled(bot)
    [dm] = dms_from_bot(sandbox, "mod1")  # a second reporter raised the count, no new DM
    assert "2 reporters" in dm["msg"] and "escalated" not in dm["msg"]
    assert "#1" in await ask(sandbox, "admin", f"report hate {msg['_id']}")
    assert await until(lambda: msg["_id"] not in sandbox.workspace.messages)  # escalated: deleted
    await settled(bot)
    [dm] = dms_from_bot(sandbox, "mod1")
    assert "3 reporters" in dm["msg"] and "escalated" in dm["msg"] and "severity *critical*" in dm["msg"]
    assert len(native_reports(sandbox, msg["_id"])) == 1  # nothing filed twice
    store = bot.app.store
    assert store is not None
    assert store.evidence.evidence_for_message(msg["_id"])
    await bot.stop()


async def test_rate_limit_refuses_politely(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, per_window=2))
    ids = [sandbox.post_as("bob", "random", f"spam number {i}")["_id"] for i in range(3)]
    assert "#1" in await ask(sandbox, "alice", f"report spam {ids[0]}")
    assert "#2" in await ask(sandbox, "alice", f"report spam {ids[1]}")
    refusal = await ask(sandbox, "alice", f"report spam {ids[2]}")
    assert "try again" in refusal and "#" not in refusal
    assert native_reports(sandbox, ids[2]) == []
    assert "#3" in await ask(sandbox, "carol", f"report spam {ids[2]}")  # per reporter
    await bot.stop()


async def test_slash_command_in_a_room_is_removed_and_answered_by_dm(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.workspace.set_setting("Message_AllowUnrecognizedSlashCommand", True)
    bot = await start_bot(settings(sandbox, tmp_path))
    parent = sandbox.post_as("bob", "random", "you are all idiots")
    command = sandbox.post_as("alice", "random", "/report harassment", tmid=parent["_id"])
    assert await until(lambda: len(dms_from_bot(sandbox, "alice")) == 1)
    assert "report is #1" in dms_from_bot(sandbox, "alice")[0]["msg"]
    assert command["_id"] not in sandbox.workspace.messages  # the command did not stay in the room
    assert len(native_reports(sandbox, parent["_id"])) == 1  # a thread reply reports the thread's message
    for mod in MODS:  # the moderators hear of it once each, as by the other transports
        assert await until(lambda mod=mod: len(dms_from_bot(sandbox, mod)) == 1)  # type: ignore[misc]
    await settled(bot)
    await bot.stop()
    assert all(len(dms_from_bot(sandbox, mod)) == 1 for mod in MODS)


async def test_reporting_a_user_and_bad_targets(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "#1" in await ask(sandbox, "alice", "report impersonation @bob pretends to be the admin")
    assert [r["reportedUser"]["username"] for r in sandbox.workspace.user_reports] == ["bob"]
    assert "no user" in await ask(sandbox, "alice", "report @nobody.here")
    assert "no message" in await ask(sandbox, "alice", "report spam Zz9zzzzzzzzzzzzzz")
    other = await ask(
        sandbox, "alice", "report spam https://other.example/channel/general?msg=Zz9zzzzzzzzzzzzzz"
    )
    assert "not on this workspace" in other
    assert "What should I report" in await ask(sandbox, "alice", "report spam")
    assert "too long" in await ask(sandbox, "alice", "report " + "x" * 4500)
    assert len(sandbox.workspace.reports) == 0 and len(sandbox.workspace.user_reports) == 1
    await bot.stop()


async def test_a_message_the_bot_cannot_read_still_alerts_with_the_link(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ws = sandbox.workspace
    admin = ws.user_by_username("admin")
    alice = ws.user_by_username("alice")
    assert admin is not None and alice is not None
    ws.create_room("p", "secret", admin, [admin.id, alice.id])
    bot = await start_bot(settings(sandbox, tmp_path))
    hidden = sandbox.post_as("admin", "secret", "private words")
    link = f"{sandbox.url}/group/secret?msg={hidden['_id']}"
    answer = await ask(sandbox, "alice", f"report privacy {link}")
    assert "#1" in answer and "cannot read that message" in answer
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    await settled(bot)
    text = dms_from_bot(sandbox, "mod1")[0]["msg"]
    assert hidden["_id"] in text and "private words" not in text
    assert native_reports(sandbox, hidden["_id"]) == []
    await asyncio.sleep(0)
    await bot.stop()


async def test_native_reports_reach_the_moderators_and_console_dismissals_close_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ws = sandbox.workspace
    alice, bob, admin = (ws.user_by_username(n) for n in ("alice", "bob", "admin"))
    assert alice is not None and bob is not None and admin is not None
    bot = await start_bot(settings(sandbox, tmp_path, poll_interval=0.1))
    msg = sandbox.post_as("bob", "general", "nasty words")
    ws.report_message(alice.id, msg["_id"], "this is nasty")  # Rocket.Chat's own Report action
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    await settled(bot)
    text = dms_from_bot(sandbox, "mod1")[0]["msg"]
    assert "rcmod report 1" in text and "Report action" in text and "nasty words" in text
    store = bot.app.store
    assert store is not None
    assert store.evidence.evidence_for_message(msg["_id"])
    # A report filed through the bot is not taken in a second time by the poll.
    other = sandbox.post_as("bob", "random", "more spam")
    assert "#2" in await ask(sandbox, "carol", f"report spam {other['_id']}")
    # A native report filed after it is taken in: the poll has run since, and did not take #2 again.
    marker = sandbox.post_as("bob", "general", "still nasty")
    ws.report_message(alice.id, marker["_id"], "this too")
    assert await until(lambda: any(r.mid == marker["_id"] for r in store.reports.open_reports()))
    assert sorted(str(r.mid) for r in store.reports.open_reports()) == sorted(
        [msg["_id"], other["_id"], marker["_id"]]
    )
    # Dismissed in the console: the bot's copies close and the moderators' DMs say so.
    ws.dismiss_reports(admin.id, user_id=bob.id, msg_id=None, reason="ok", action="None")
    assert await until(lambda: store.reports.open_reports() == [])
    assert await until(
        lambda: "moderation console" in dms_from_bot(sandbox, "mod1")[0]["msg"].split("\n")[-1]
    )
    await bot.stop()
