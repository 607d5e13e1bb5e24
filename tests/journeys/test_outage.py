"""Journey: two members keep chatting while the bot is killed (SIGKILL) and restarted, and while
the server itself restarts: every message that matches a notify list alerts exactly once.

Alerts coalesce: one author's matches in one room on one list within 10 minutes are one alert DM,
edited with a counter. So "exactly once" reads, for each moderator: one alert per (author, room),
whose counter is the number of matching messages sent there, linking the latest one."""

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


async def test_outage_bot_killed_and_server_restarted(world: World) -> None:
    # Flood protection is about pace, not this journey: off, so only the wordlists speak.
    config = world.write_config('[protections.flood]\nmode = "off"\n[realtime]\nbackoff_max = 2.0\n')
    env = world.bot_env()
    bot = BotProcess(world.procs, env, ["run", "--config", str(config)])
    await bot.start()
    alice, bob, mod1, mod2 = await world.persons("alice", "bob", "mod1", "mod2")
    rooms = {"general": world.seed.room_id("general"), "random": world.seed.room_id("random")}
    sent: dict[tuple[str, str], list[str]] = defaultdict(list)
    n = 0

    async def chat(phase: str) -> None:
        nonlocal n
        for person in (alice, bob):
            for name, rid in rooms.items():
                n += 1
                mid = await person.send(rid, f"{phase}: that is a badword ({n})")
                sent[(person.username, name)].append(mid)
                await person.send(rid, f"{phase}: an ordinary line ({n})")

    def alerts_by_key(mod: Person) -> dict[tuple[str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for a in mod.alerts():
            for (author, room), mids in sent.items():
                if alert_mid(a) in mids and f"#{room}" in str(a.get("msg")):
                    out[(author, room)].append(a)
        return out

    def all_alerted() -> bool:
        for mod in (mod1, mod2):
            by_key = alerts_by_key(mod)
            for key, mids in sent.items():
                latest = [a for a in by_key.get(key, []) if alert_mid(a) == mids[-1]]
                if not latest or alert_count(latest[-1]) != len(mids):
                    return False
        return True

    await chat("before")
    assert await poll(all_alerted, 20)

    # The bot dies hard; the members go on; it comes back and catches up.
    bot.kill9()
    await bot.proc.proc.wait()  # type: ignore[union-attr]
    await chat("bot down")
    await bot.start()
    await chat("bot back")
    assert await poll(all_alerted, 30), {m.username: alerts_by_key(m) for m in (mod1, mod2)}

    # The server restarts on the same port. It keeps its workspace in memory (users, ids and
    # tokens come back; history does not), so the members' clients reconnect by themselves.
    await world.sandbox.restart()
    for person in (alice, bob, mod1, mod2):
        person.forget_rooms()
        await person.connect()
    assert await bot.wait_ready(30)
    await chat("server back")
    assert await poll(all_alerted, 30), {m.username: alerts_by_key(m) for m in (mod1, mod2)}

    # Exactly once: no second alert number for one (author, room), nothing more arriving.
    def one_alert_per_key() -> bool:
        for mod in (mod1, mod2):
            for key in sent:
                numbers = {alert_number(a) for a in alerts_by_key(mod).get(key, [])}
                if len(numbers) != 1:
                    return False
        return True

    assert one_alert_per_key(), {m.username: alerts_by_key(m) for m in (mod1, mod2)}
    assert await quiet_for(lambda: all_alerted() and one_alert_per_key(), 2.0)
    assert await bot.stop() == 0
