"""Members' own reports (Rocket.Chat's Report action) reach the moderators once each.

moderation.reportsByUsers lists one group per reported user and, grouping with ``$first`` and no
sort, names that user's first-filed report only; a user reported again for other messages stays
listed with the same first message. So the bot reads each listed user's reported messages
(moderation.user.reportedMessages, every page) and takes each message it has not taken yet.
"""

from __future__ import annotations

import time
from pathlib import Path

from bot.sandbox import Sandbox
from tests.conftest import start_bot, until
from tests.helpers import dms_from_bot, settled
from tests.services.test_report import settings


def report_dms(sb: Sandbox, moderator: str) -> list[str]:
    return [str(m["msg"]) for m in dms_from_bot(sb, moderator) if "rcmod report" in str(m["msg"])]


async def test_each_reported_message_of_one_user_reaches_the_moderators_once(tmp_path: Path) -> None:
    offset = [0.0]
    async with Sandbox(clock=lambda: time.time() + offset[0]) as sb:  # real time, moved on between reports
        ws = sb.workspace
        reporters = [ws.user_by_username(n) for n in ("alice", "carol", "admin")]
        texts = ["first bad thing", "second bad thing", "third bad thing"]
        messages = [
            sb.post_as("bob", room, text)
            for room, text in zip(("general", "random", "general"), texts, strict=True)
        ]
        bot = await start_bot(settings(sb, tmp_path, poll_interval=0.05))
        for n, (reporter, message) in enumerate(zip(reporters, messages, strict=True), start=1):
            assert reporter is not None
            offset[0] += 60
            ws.report_message(reporter.id, message["_id"], f"report {n}")
            assert await until(lambda n=n: len(report_dms(sb, "mod1")) >= n), f"report {n} never surfaced"
        await settled(bot)
        for moderator in ("mod1", "mod2"):
            dms = report_dms(sb, moderator)
            assert len(dms) == 3, dms
            assert all(sum(text in dm for dm in dms) == 1 for text in texts)  # each message once
        # One of the three dismissed in the console: only the bot's copy of that one closes.
        store = bot.app.store
        assert store is not None
        admin = ws.user_by_username("admin")
        assert admin is not None
        ws.dismiss_reports(admin.id, user_id=None, msg_id=messages[1]["_id"], reason="fine", action="None")
        assert await until(
            lambda: {r.mid for r in store.reports.open_reports()} == {messages[0]["_id"], messages[2]["_id"]}
        )
        await bot.stop()

        # A restart polls again from scratch: nothing is repeated, and a new report still comes.
        bot = await start_bot(settings(sb, tmp_path, poll_interval=0.05))
        fourth = sb.post_as("bob", "random", "fourth bad thing")
        offset[0] += 60
        alice = ws.user_by_username("alice")
        assert alice is not None
        ws.report_message(alice.id, fourth["_id"], "report 4")
        assert await until(lambda: any("fourth bad thing" in dm for dm in report_dms(sb, "mod1")))
        await settled(bot)
        for moderator in ("mod1", "mod2"):
            dms = report_dms(sb, moderator)
            assert len(dms) == 4 and all(
                sum(t in dm for dm in dms) == 1 for t in [*texts, "fourth bad thing"]
            )
        store = bot.app.store
        assert store is not None and len(store.reports.open_reports()) == 3
        assert all(store.evidence.evidence_for_message(m["_id"]) for m in [*messages, fourth])
        await bot.stop()


async def test_a_reported_message_deleted_before_the_poll_still_surfaces_with_the_consoles_copy(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ws = sandbox.workspace
    alice, admin = ws.user_by_username("alice"), ws.user_by_username("admin")
    assert alice is not None and admin is not None
    bot = await start_bot(settings(sandbox, tmp_path, poll_interval=0.05))
    message = sandbox.post_as("bob", "general", "gone before anyone looked")
    ws.report_message(alice.id, message["_id"], "nasty")
    ws.delete_message(admin.id, message["_id"])  # before the bot's next poll: no await in between
    assert await until(lambda: any("gone before anyone looked" in dm for dm in report_dms(sandbox, "mod1")))
    store = bot.app.store
    assert store is not None
    assert store.evidence.evidence_for_message(message["_id"])  # what the console kept when it was reported
    await bot.stop()
