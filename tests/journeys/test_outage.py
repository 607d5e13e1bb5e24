"""Journey: two members keep chatting while the bot is killed (SIGKILL) and restarted, and while
the server hangs and comes back: every message that matches a notify list alerts exactly once.

Alerts coalesce: one author's matches in one room on one list within 10 minutes are one alert DM,
edited with a counter. So "exactly once" reads, for each moderator: one alert per (author, room),
whose counter is the number of matching messages sent there, linking the latest one, and no
second alert number for the same (author, room)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.journeys.conftest import (
    BotProcess,
    Person,
    World,
    alert_count,
    alert_mid,
    alert_number,
    poll,
    quiet_for,
)

# Flood protection is about pace, not this journey: off, so only the wordlists speak.
CONFIG = (
    '[protections.flood]\nmode = "off"\n'
    # A short heartbeat, so the bot notices a server that stopped answering within seconds.
    "[realtime]\nbackoff_max = 2.0\nping_interval = 1.0\npong_timeout = 2.0\n"
)


class Traffic:
    """Alice and Bob each post one matching and one ordinary line in #general and #random per
    round; the moderators' view of the alerts is checked against what was sent."""

    def __init__(self, world: World, members: list[Person], mods: list[Person]) -> None:
        self.members, self.mods = members, mods
        self.rooms = {"general": world.seed.room_id("general"), "random": world.seed.room_id("random")}
        self.sent: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.n = 0

    async def round(self, phase: str) -> None:
        for person in self.members:
            for name, rid in self.rooms.items():
                self.n += 1
                mid = await person.send(rid, f"{phase}: that is a badword ({self.n})")
                self.sent[(person.username, name)].append(mid)
                await person.send(rid, f"{phase}: an ordinary line ({self.n})")

    def by_key(self, mod: Person) -> dict[tuple[str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for a in mod.alerts():
            for (author, room), mids in self.sent.items():
                if alert_mid(a) in mids and f"#{room}" in str(a.get("msg")):
                    out[(author, room)].append(a)
        return out

    def all_alerted(self) -> bool:
        for mod in self.mods:
            by_key = self.by_key(mod)
            for key, mids in self.sent.items():
                latest = [a for a in by_key.get(key, []) if alert_mid(a) == mids[-1]]
                if not latest or alert_count(latest[-1]) != len(mids):
                    return False
        return True

    def one_alert_per_key(self) -> bool:
        return all(
            len({alert_number(a) for a in self.by_key(mod).get(key, [])}) == 1
            for mod in self.mods
            for key in self.sent
        )

    def view(self) -> dict[str, dict[tuple[str, str], list[tuple[int, int, int]]]]:
        """(alert number, counter, which message) per moderator and key: what a failure shows."""

        def row(key: tuple[str, str], a: dict[str, Any]) -> tuple[int, int, int]:
            return alert_number(a), alert_count(a), self.sent[key].index(str(alert_mid(a)))

        return {
            mod.username: {key: [row(key, a) for a in alerts] for key, alerts in self.by_key(mod).items()}
            for mod in self.mods
        }


async def start(world: World) -> tuple[BotProcess, Traffic, list[Person]]:
    bot = BotProcess(world.procs, world.bot_env(), ["run", "--config", str(world.write_config(CONFIG))])
    await bot.start()
    alice, bob, mod1, mod2 = await world.persons("alice", "bob", "mod1", "mod2")
    return bot, Traffic(world, [alice, bob], [mod1, mod2]), [alice, bob, mod1, mod2]


async def test_outage_bot_killed_and_restarted(world: World) -> None:
    bot, traffic, _ = await start(world)
    await traffic.round("before")
    assert await poll(traffic.all_alerted, 20), traffic.view()

    # The bot dies hard; the members go on; it comes back and catches up.
    bot.kill9()
    assert bot.proc is not None
    await bot.proc.proc.wait()
    await traffic.round("bot down")
    await bot.start()
    await traffic.round("bot back")
    assert await poll(traffic.all_alerted, 30), traffic.view()
    assert traffic.one_alert_per_key(), traffic.view()
    assert await quiet_for(lambda: traffic.all_alerted() and traffic.one_alert_per_key(), 2.0)
    assert await bot.stop() == 0


async def test_outage_server_hangs_and_comes_back(world: World) -> None:
    """The server stops answering (as a hung process or a cut network would) long enough for the
    bot's heartbeat to give up on the connection, then answers again with everything it had: the
    bot reconnects, catches up and alerts once per message, before and after. (A restart of the
    `rcmod sandbox` process itself would wipe its in-memory history and DM rooms, which a real
    server keeps; in-process restarts are covered in tests/test_resilience.py.)"""
    bot, traffic, _people = await start(world)
    await traffic.round("before")
    assert await poll(traffic.all_alerted, 20), traffic.view()
    world.sandbox.freeze()
    try:
        assert await bot.not_ready(30), "the bot never noticed the server had stopped answering"
    finally:
        world.sandbox.thaw()
    assert await bot.wait_ready(30)
    await traffic.round("server back")
    assert await poll(traffic.all_alerted, 30), traffic.view()
    assert traffic.one_alert_per_key(), traffic.view()
    assert await quiet_for(lambda: traffic.all_alerted() and traffic.one_alert_per_key(), 2.0)
    assert await bot.stop() == 0
