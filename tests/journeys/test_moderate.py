"""Journey: a member says something a list watches for; the moderators are alerted and act on it
by button and by typed command; the audit log and an export show what was done."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.journeys.conftest import World, alert_mid, alert_number, metric, poll, quiet_for, rcmod


async def test_moderate_delete_by_button_dismiss_and_allow_by_command(world: World, tmp_path: Path) -> None:
    env = world.bot_env()
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bot = await world.bot(env)
    alice, bob, carol, mod1, mod2 = await world.persons("alice", "bob", "carol", "mod1", "mod2")
    general, random = world.seed.room_id("general"), world.seed.room_id("random")

    # A notify-list term: each moderator gets one alert DM about that message.
    mid = await alice.send(general, "honestly this is a badword, sorry")
    assert await poll(lambda: len(mod1.alerts()) == 1 and len(mod2.alerts()) == 1, 15), "no alert DMs"
    alert = mod1.alerts()[0]
    assert alert_mid(alert) == mid
    assert await quiet_for(lambda: len(mod1.alerts()) == 1 and len(mod2.alerts()) == 1, 1.0)

    # Delete by button: the click is mod1's own message in the DM, and the bot answers there.
    await mod1.click(alert, "Delete message")
    assert await poll(lambda: bool(mod1.replies_containing(f"Deleted message `{mid}`")), 15), [
        m.get("msg") for m in mod1.from_bot()
    ]
    assert mid not in {m["_id"] for m in await alice.history(general, "c")}  # gone for everyone
    # A notify list has no author notice: alice is told nothing by the bot.
    assert not alice.from_bot()

    # A block-list term whose list reveals the term: removed on arrival and the author told why.
    blocked = await bob.send(general, "you zorgslur")
    assert await poll(lambda: any("zorgslur" in str(m.get("msg")) for m in bob.from_bot()), 15)
    assert blocked not in {m["_id"] for m in await bob.history(general, "c")}

    # Dismiss by a typed command: every moderator's copy is edited with the outcome.
    await carol.send(random, "get free cryptocoins here")
    assert await poll(lambda: any(alert_mid(a) not in (mid, blocked) for a in mod2.alerts()), 15)
    crypto = next(a for a in mod2.alerts() if "crypto" in str(a.get("msg")))
    number = alert_number(crypto)
    await mod2.send(str(crypto["rid"]), f"mod dismiss {number}")
    assert await poll(lambda: bool(mod2.replies_containing(f"Alert {number} dismissed")), 15)

    def dismissed_everywhere() -> bool:
        copies = [a for p in (mod1, mod2) for a in p.alerts() if alert_number(a) == number]
        return len(copies) == 2 and all("dismissed by mod2" in str(a.get("msg")) for a in copies)

    assert await poll(dismissed_everywhere, 15)

    # Allow by a typed command: the same words no longer alert anyone.
    before = await bot.metrics()
    count = (len(mod1.alerts()), len(mod2.alerts()))
    # A moderator's command quoting the term is not itself an incident.
    await mod1.send(str(alert["rid"]), "mod allow free cryptocoins")
    assert await poll(lambda: bool(mod1.replies_containing("allow")), 15)
    await alice.send(random, "free cryptocoins again")
    await bob.send(general, "hello everyone")  # a message after it, so we know the bot got that far

    async def handled_two_more() -> bool:
        now = await bot.metrics()
        return metric(now, "rcmod_messages_seen_total", outcome="handled") >= (
            metric(before, "rcmod_messages_seen_total", outcome="handled") + 2
        )

    assert await poll(handled_two_more, 15)
    assert await quiet_for(lambda: (len(mod1.alerts()), len(mod2.alerts())) == count, 1.5)
    after = await bot.metrics()
    assert metric(after, "rcmod_alerts_total", outcome="raised") == metric(
        before, "rcmod_alerts_total", outcome="raised"
    )

    await audit_shows_each_step(env, tmp_path / "export", since, (mid, blocked), number)
    assert await bot.stop() == 0


async def test_a_hostile_message_id_does_not_reach_the_alert_raw(world: World) -> None:
    """Rocket.Chat takes any string a client picks as a message's `_id`; a member with their own
    client picks one holding `@here`. Quoted raw, it made the server refuse the alert DM
    (error-action-not-allowed: the bot may not notify a whole room), so no moderator heard of
    the message at all; it could also have left the alert's code span."""
    await world.bot()
    alice, mod1 = await world.persons("alice", "mod1")
    hostile = "x` @here `y"
    general = world.seed.room_id("general")
    await alice.send(general, "a badword", mid=hostile)
    assert await poll(lambda: len(mod1.alerts()) == 1, 15)
    alert = mod1.alerts()[0]
    assert "@" not in str(alert["msg"]), alert["msg"]
    assert not alert.get("mentions"), alert.get("mentions")
    for attachment in alert.get("attachments") or []:
        for action in attachment.get("actions") or []:
            assert "@" not in str(action.get("msg")), action


async def test_hostile_message_ids_do_not_keep_a_flood_alert_from_the_moderators(world: World) -> None:
    await world.bot()  # flood protection alerts by default
    bob, mod1 = await world.persons("bob", "mod1")
    general = world.seed.room_id("general")
    for i in range(12):
        await bob.send(general, f"line {i}", mid=f"f{i} @here x")
    assert await poll(lambda: len(mod1.protection_alerts()) == 1, 15)
    assert "@" not in str(mod1.protection_alerts()[0]["msg"])


async def audit_shows_each_step(
    env: dict[str, str], out: Path, since: str, removed: tuple[str, str], number: int
) -> None:
    """The audit log verifies, and its export records the deletions (``removed``), the dismissal
    of alert ``number`` and the list edit."""
    # The audit log verifies and records each step (ids, never the text).
    verify = await rcmod(["audit", "verify"], env)
    assert verify.code == 0, verify
    export = await rcmod(["audit", "export", "--since", since, "--out", str(out)], env)
    assert export.code == 0, export
    records = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    by_action: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_action.setdefault(str(record["action"]), []).append(record)
    deleted = {str((r.get("targets") or {}).get("message")) for r in by_action.get("message.deleted", [])}  # type: ignore[union-attr]
    assert set(removed) <= deleted
    assert any(
        (r.get("targets") or {}).get("alert") == number  # type: ignore[union-attr]
        for r in by_action.get("alert.dismissed", [])
    )
    assert by_action.get("list.edited"), sorted(by_action)
    raw = (out / "audit.jsonl").read_text()
    # The log names lists and terms, never what the member wrote around them.
    assert "honestly" not in raw and "sorry" not in raw and "get free" not in raw
