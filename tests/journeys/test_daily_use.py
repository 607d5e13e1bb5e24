"""Journey: a day in a workspace with the protections acting. Ordinary chat, members asking the
bot for help by DM, moderators working with their commands: nobody is alerted about and nobody
is sanctioned. Then one member floods a room: exactly one flood action."""

from __future__ import annotations

from tests.journeys.conftest import BOT, BotProcess, Person, World, metric, poll, quiet_for

CONFIG = """
[protections.flood]
mode = "act"
[protections.repeat]
mode = "act"
[protections.mentions]
mode = "act"
"""


async def test_daily_use_with_protections_acting(world: World) -> None:
    config = world.write_config(CONFIG)
    bot = BotProcess(world.procs, world.bot_env(), ["run", "--config", str(config)])
    await bot.start()
    alice, bob, carol, mod1, mod2 = await world.persons("alice", "bob", "carol", "mod1", "mod2")
    general, random = world.seed.room_id("general"), world.seed.room_id("random")

    await ordinary_chat(alice, bob, carol, general, random)

    # A member finds their way around the bot by DM: a dozen lines in a minute is a conversation
    # with the bot, not a flood of a room.
    alice_dm = await alice.dm_with(BOT)
    questions = (
        "help",
        "help report",
        "help mod",
        "mod help",
        "help appeal",
        "hi",
        "how do I report a message?",
        "help report",
        "help",
        "ok",
        "thanks",
    )
    for line in questions:
        await alice.send(alice_dm, line)
    assert await poll(lambda: len(alice.from_bot(alice_dm)) >= 4, 20)

    # Moderators at work: status, reports, a test of a listed term, help.
    mod_dm = await mod1.dm_with(BOT)
    for line in ("mod status", "mod reports", "mod test is badword on the list?", "help"):
        await mod1.send(mod_dm, line)
    mod2_dm = await mod2.dm_with(BOT)
    await mod2.send(mod2_dm, "mod status")
    assert await poll(lambda: len(mod1.from_bot(mod_dm)) >= 4 and len(mod2.from_bot(mod2_dm)) >= 1, 20)
    await alice.send(general, "ok, back to work")  # the last ordinary line

    async def all_handled() -> bool:
        values = await bot.metrics()
        return metric(values, "rcmod_messages_seen_total", outcome="handled") >= 8 + len(questions) + 5 + 1

    assert await poll(all_handled, 20)
    values = await bot.metrics()
    assert metric(values, "rcmod_alerts_total", outcome="raised") == 0
    assert metric(values, "rcmod_actions_total", action="protection.triggered") == 0
    assert metric(values, "rcmod_actions_total", action="user.muted") == 0
    assert await quiet_for(
        lambda: not any(p.alerts() or p.protection_alerts() for p in (mod1, mod2)),
        1.0,
    ), [m.get("msg") for p in (mod1, mod2) for m in p.alerts() + p.protection_alerts()]
    # Nobody was told of a sanction: the only DMs members got are answers to what they asked.
    assert not bob.from_bot() and not carol.from_bot()
    assert all(m["rid"] == alice_dm for m in alice.from_bot())

    await flood_mutes_once(bot, bob, mod1, mod2, general)
    assert await bot.stop() == 0


async def ordinary_chat(alice: Person, bob: Person, carol: Person, general: str, random: str) -> None:
    # Ordinary chat: a few lines each, mentions, a link. (The seed accounts are new, but the bot
    # cannot see when an account was created without view-full-other-user-info, so nobody is on
    # probation here and the flood threshold is more than 10 messages in a room within a minute.)
    await alice.send(general, "good morning everyone")
    await bob.send(general, "morning @alice, coffee first")
    await carol.send(general, "good morning everyone")
    await alice.send(random, "did anyone see the release notes? https://rocket.chat/docs")
    await bob.send(random, "yes, the new threads view is nice")
    await alice.send(general, "standup in 10 minutes")
    await carol.send(random, "@bob @alice lunch at noon?")
    await bob.send(random, "sure")


async def flood_mutes_once(bot: BotProcess, bob: Person, mod1: Person, mod2: Person, general: str) -> None:
    """One flood: one alert each, one mute, bob told."""
    # A flood: bob posts line after line in #general.
    for i in range(12):
        await bob.send(general, f"buy now {i}")
    assert await poll(lambda: len(mod1.protection_alerts()) == 1 and len(mod2.protection_alerts()) == 1, 20)

    async def muted_once() -> bool:
        values = await bot.metrics()
        return metric(values, "rcmod_actions_total", action="user.muted") == 1

    assert await poll(muted_once, 10)
    assert await quiet_for(
        lambda: len(mod1.protection_alerts()) == 1 and len(mod2.protection_alerts()) == 1, 2.0
    )
    values = await bot.metrics()
    assert metric(values, "rcmod_actions_total", action="user.muted") == 1
    assert metric(values, "rcmod_actions_total", action="protection.triggered") == 1
    assert "flood" in str(mod1.protection_alerts()[0].get("msg"))
    assert await poll(lambda: any("mute" in str(m.get("msg")).lower() for m in bob.from_bot()), 10)
