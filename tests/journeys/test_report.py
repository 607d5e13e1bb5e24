"""Journey: a member reports a message by DM to the bot; each moderator hears once; one resolves
it; the reporter is told the outcome."""

from __future__ import annotations

import re

from tests.journeys.conftest import BOT, BotProcess, World, poll, quiet_for


async def test_report_by_dm_resolved_by_a_moderator(world: World) -> None:
    await world.bot()
    alice, bob, mod1, mod2 = await world.persons("alice", "bob", "mod1", "mod2")
    general = world.seed.room_id("general")

    spam = await alice.send(general, "cheap watches, visit my shop, best prices")
    dm = await bob.dm_with(BOT)
    await bob.send(dm, f"report spam {spam} selling in the general channel")
    assert await poll(lambda: bool(bob.replies_containing("Your report is #")), 15), [
        m.get("msg") for m in bob.from_bot()
    ]
    ack = bob.replies_containing("Your report is #")[0]
    found = re.search(r"#(\d+)", str(ack["msg"]))
    assert found
    number = int(found.group(1))

    # Each moderator hears once: one report DM each, about that message.
    assert await poll(lambda: len(mod1.report_dms()) == 1 and len(mod2.report_dms()) == 1, 15)
    assert all(f"*rcmod report {number}*" in str(p.report_dms()[0]["msg"]) for p in (mod1, mod2))
    assert all(spam in str(p.report_dms()[0]["msg"]) for p in (mod1, mod2))  # the permalink
    assert await quiet_for(lambda: len(mod1.report_dms()) == 1 and len(mod2.report_dms()) == 1, 1.0)
    assert not mod1.alerts() and not mod2.alerts()  # the report is not also a keyword alert

    # The same reporter again: "already reported", and still one DM per moderator.
    await bob.send(dm, f"report spam {spam}")
    assert await poll(lambda: bool(bob.replies_containing("already reported")), 15)

    # mod1 resolves it by typed command in their DM with the bot.
    mod_dm = str(mod1.report_dms()[0]["rid"])
    await mod1.send(mod_dm, f"mod resolve {number} delete spam, removed")
    assert await poll(lambda: bool(mod1.replies_containing(f"Report #{number} closed")), 15), [
        m.get("msg") for m in mod1.from_bot()
    ]
    assert await poll(lambda: bool(bob.replies_containing(f"Your report #{number} (spam) was handled")), 15)
    outcome = bob.replies_containing(f"Your report #{number}")[0]
    assert "the message was removed" in str(outcome["msg"])
    assert spam not in {m["_id"] for m in await alice.history(general, "c")}
    # Both moderators' copies say it is closed; still one DM each; alice heard nothing of it.
    assert await poll(
        lambda: all(":white_check_mark:" in str(p.report_dms()[0]["msg"]) for p in (mod1, mod2)), 15
    )
    assert len(mod1.report_dms()) == 1 and len(mod2.report_dms()) == 1
    assert not alice.from_bot()


async def test_a_hostile_message_id_reported_in_rocket_chat_still_lists(world: World) -> None:
    """A member reports, with Rocket.Chat's own Report action, a message whose client-chosen id
    holds `@here`; `/mod reports` must still answer the moderator."""
    config = world.write_config("[reports]\npoll_interval = 1.0\n")
    bot = BotProcess(world.procs, world.bot_env(), ["run", "--config", str(config)])
    await bot.start()
    alice, bob, mod1 = await world.persons("alice", "bob", "mod1")
    general = world.seed.room_id("general")
    hostile = "r1 @here x"
    await alice.send(general, "rude words", mid=hostile)
    filed = await bob.rest("POST", "chat.reportMessage", messageId=hostile, description="rude")
    assert filed.get("success"), filed
    assert await poll(lambda: len(mod1.report_dms()) == 1, 15)
    dm = await mod1.dm_with(BOT)
    await mod1.send(dm, "mod reports")
    assert await poll(lambda: bool(mod1.replies_containing("open report")), 15), [
        m.get("msg") for m in mod1.from_bot()
    ]
    assert all("@" not in str(m.get("msg")) for m in mod1.from_bot())
