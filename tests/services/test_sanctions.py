"""Sanctions against the sandbox: warnings and the strike ladder (stepping and decaying), mutes
that expire (across a restart, with an injected clock), kicks, unmutes, appeals, and bad input
that changes nothing. Commands are sent as DMs to the bot, as a moderator would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Settings
from bot.metrics import Metrics
from bot.models import Actor
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.executor import Executor
from bot.services.outbox import Outbox
from bot.services.sanctions import Sanctioner, Target
from bot.store import Store
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import ask, audit, bot_rest, dms_from_bot, muted, rid, told

MODS = ["mod2"]  # mod1 is only a room moderator (of general, random and staff)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settings(sb: Sandbox, tmp_path: Path, **sections: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": MODS}, **sections)


async def test_warnings_climb_the_ladder_and_strikes_decay(sandbox: Sandbox, tmp_path: Path) -> None:
    clock = Clock()
    bot = await start_bot(settings(sandbox, tmp_path), clock=clock)
    try:
        first = await ask(sandbox, "admin", "mod warn @bob #general keep it civil")
        assert "strike 1, warn" in first
        assert muted(sandbox, "general") == []
        assert await until(lambda: told(sandbox, "bob", "You have received a warning"))
        assert told(sandbox, "bob", "To appeal")
        second = await ask(sandbox, "admin", "mod warn @bob #general still not civil")
        assert "strike 2, mute 10m" in second
        assert muted(sandbox, "general") == ["bob"]
        with pytest.raises(Exception, match="You_have_been_muted"):
            sandbox.post_as("bob", "general", "can I still talk?")
        assert [r.reason["count"] for r in audit(bot, "user.warned")] == [1, 2]
        assert [r.targets["room"] for r in audit(bot, "user.muted")] == [rid(sandbox, "general")]
        # Thirty-one days on, both strikes have lapsed: the next warning is strike 1 again.
        clock.advance(31 * 86400)
        third = await ask(sandbox, "admin", "mod warn @bob #random third time")
        assert "strike 1, warn" in third
        history = await ask(sandbox, "admin", "mod strikes @bob")
        assert "1 live" in history and history.count("(lapsed)") == 2
    finally:
        await bot.stop()


async def test_the_fourth_strike_asks_the_admins(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        for _ in range(3):
            await ask(sandbox, "mod2", "mod warn @carol #general spam")
        fourth = await ask(sandbox, "mod2", "mod warn @carol #general spam again")
        assert "strike 4" in fourth and "administrators were asked" in fourth
        assert await until(lambda: told(sandbox, "admin", "has 4 live strikes"))
        assert len(audit(bot, "sanction.escalated")) == 1
    finally:
        await bot.stop()


async def test_a_timed_mute_expires_on_time_across_a_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    clock = Clock()
    config = settings(sandbox, tmp_path)
    bot = await start_bot(config, clock=clock)
    answer = await ask(sandbox, "mod2", "mod mute @bob #general 10m flooding")
    assert "muted for 10m" in answer and muted(sandbox, "general") == ["bob"]
    await bot.stop()
    # Restarted before the time: the mute stands.
    bot = await start_bot(config, clock=clock)
    await ask(sandbox, "mod2", "mod help")  # a round trip: the expiry pass has run by now
    assert muted(sandbox, "general") == ["bob"]
    await bot.stop()
    # Down while it falls due: lifted as soon as the bot is back.
    clock.advance(11 * 60)
    bot = await start_bot(config, clock=clock)
    try:
        assert await until(lambda: muted(sandbox, "general") == [])
        assert await until(lambda: told(sandbox, "bob", "mute in ` #general ` has ended"))
        [expired] = audit(bot, "mute.expired")
        assert expired.actor == "rcmod" and expired.targets["room"] == rid(sandbox, "general")
        sandbox.post_as("bob", "general", "back again")  # allowed again
        # While running: not before its time, then on time.
        await ask(sandbox, "mod2", "mod mute @carol #general 10m")
        sanctioner = bot.app.sanctioner
        assert sanctioner is not None
        clock.advance(9 * 60)
        sanctioner.wake()
        await ask(sandbox, "mod2", "mod help")
        assert muted(sandbox, "general") == ["carol"]
        clock.advance(61)
        sanctioner.wake()
        assert await until(lambda: muted(sandbox, "general") == [])
    finally:
        await bot.stop()


async def test_mute_everywhere_unmute_and_kick(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        answer = await ask(sandbox, "mod2", "mod mute @bob everywhere 1h raiding")
        assert "every room I can act in" in answer
        assert muted(sandbox, "general") == ["bob"] and muted(sandbox, "random") == ["bob"]
        assert "bob" not in muted(sandbox, "staff")  # not a member there: skipped quietly
        store = bot.app.store
        assert store is not None  # and nothing is kept for the rooms where it did not apply
        assert sorted(m.room_name or "" for m in store.sanctions.live_mutes()) == ["general", "random"]
        lifted = await ask(sandbox, "mod2", "mod unmute @bob everywhere")
        assert "unmuted in" in lifted
        assert muted(sandbox, "general") == [] and muted(sandbox, "random") == []
        assert len(audit(bot, "user.unmuted")) == 2
        kicked = await ask(sandbox, "mod2", "mod kick @carol #random off topic")
        assert "removed from" in kicked
        random = rid(sandbox, "random")
        carol = sandbox.workspace.user_by_username("carol")
        assert carol is not None and (random, carol.id) not in sandbox.workspace.subscriptions
        assert await until(lambda: told(sandbox, "carol", "You have been removed from"))
        assert [r.targets["room"] for r in audit(bot, "user.kicked")] == [random]
    finally:
        await bot.stop()


async def test_room_moderators_sanction_in_their_rooms_only(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        assert "muted for 5m" in await ask(sandbox, "mod1", "mod mute @bob #general 5m")
        refused = await ask(sandbox, "mod1", "mod mute @carol everywhere 5m")
        assert "needs room moderator" in refused or "needs bot moderator" in refused
        assert "carol" not in muted(sandbox, "general")
        assert "needs" in await ask(sandbox, "alice", "mod mute @bob #general 5m")
    finally:
        await bot.stop()


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("mod mute @admin #general 10m", "administrator"),
        ("mod mute @rcmod.bot #general 10m", "do not sanction myself"),
        ("mod mute @mod2 #general 10m", "bot moderator"),
        ("mod mute @nobody #general 10m", "found no user"),
        ("mod mute @bob #nowhere 10m", "cannot see a room"),
        ("mod mute @bob #general 0", "longer than zero"),
        ("mod mute @bob #general -5m", "cannot be negative"),
        ("mod mute @bob #general 99999d", "longer than the limit"),
        ("mod mute @bob #general 60d", "longest mute allowed"),
        ("mod mute @bob 10m", "Say where"),
        ("mod kick @admin #general", "administrator"),
        ("mod warn @rcmod.bot", "do not sanction myself"),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    sandbox: Sandbox, tmp_path: Path, command: str, answer: str
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        reply = await ask(sandbox, "mod2", command)
        assert answer in reply
        assert muted(sandbox, "general") == []
        store = bot.app.store
        assert store is not None
        changed = {"user.muted", "user.kicked", "user.warned"}
        assert [r for r in store.audit.audit_records() if r.action in changed] == []
    finally:
        await bot.stop()


async def test_an_appeal_reaches_the_moderators_and_a_pardon_resets(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        await ask(sandbox, "mod2", "mod warn @bob #general rude")
        # The warning comes through the outbox: let it land before bob writes, so the answer
        # read next is the bot's reply to the appeal.
        assert await until(lambda: told(sandbox, "bob", "You have received a warning"))
        answer = await ask(sandbox, "bob", "mod appeal I was quoting someone @all")
        assert "passed to the moderators" in answer
        assert await until(lambda: told(sandbox, "mod2", "appeals (1 live strike(s)"))
        [dm] = [m for m in dms_from_bot(sandbox, "mod2") if "appeals" in str(m["msg"])]
        assert "@all" not in dm["msg"]  # the user's words are inert
        assert "1 strike(s) pardoned" in await ask(sandbox, "mod2", "mod strikes @bob pardon")
        assert "0 live" in await ask(sandbox, "mod2", "mod strikes @bob")
        # After a pardon the ladder starts again: the next warning is strike 1.
        assert "strike 1" in await ask(sandbox, "mod2", "mod warn @bob #general again")
        assert len(audit(bot, "appeal.filed")) == 1 and len(audit(bot, "strikes.pardoned")) == 1
    finally:
        await bot.stop()


async def test_a_mute_recorded_but_not_applied_is_finished_at_the_next_start(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A crash between writing the mute and rooms.muteUser: the next start applies it."""
    config = settings(sandbox, tmp_path)
    store = Store.open(config.storage.data_dir / "rcmod.sqlite3")
    bob = sandbox.workspace.user_by_username("bob")
    assert bob is not None
    store.sanctions.begin_mute(
        user_id=bob.id,
        username="bob",
        rid=rid(sandbox, "general"),
        room_name="general",
        until=time.time() + 600,
        reason="flood",
        actor="rule:flood",
    )
    store.close()
    bot = await start_bot(config)
    try:
        assert await until(lambda: muted(sandbox, "general") == ["bob"])
        store2 = bot.app.store
        assert store2 is not None
        assert [m.state for m in store2.sanctions.live_mutes(bob.id)] == ["active"]
    finally:
        await bot.stop()


async def test_servers_before_6_8_mute_through_the_realtime_method(tmp_path: Path) -> None:
    """No rooms.muteUser before 6.8 (the sandbox answers 404 like such a server): the bot uses
    the DDP methods muteUserInRoom / unmuteUserInRoom instead."""
    async with Sandbox(version="6.7.0") as old:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{old.url}/api/v1/rooms.muteUser", json={}) as answer,
        ):
            assert answer.status == 404
        bot = await start_bot(settings(old, tmp_path))
        try:
            assert "muted for 10m" in await ask(old, "mod2", "mod mute @bob #general 10m")
            assert muted(old, "general") == ["bob"]
            assert "unmuted in" in await ask(old, "mod2", "mod unmute @bob #general")
            assert muted(old, "general") == []
        finally:
            await bot.stop()


async def test_a_mute_the_server_fails_is_reported_and_never_applied_later(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """rooms.muteUser answering 500 past the REST layer's retries: the moderator hears it did
    not work, the row is marked failed, and no later pass applies it behind their back."""
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        sandbox.fail_next("rooms.muteUser", 500, times=5)  # every attempt of one call
        answer = await ask(sandbox, "mod2", "mod mute @bob #general 10m")
        assert "did not work" in answer
        store = bot.app.store
        assert store is not None
        assert store.sanctions.live_mutes() == []
        [record] = [r for r in store.audit.audit_records() if r.action == "user.muted"]
        assert record.outcome == "failed: RetryableError"  # the executor's outcome: failed, with why
        await ask(sandbox, "mod2", "mod help")
        assert muted(sandbox, "general") == []
        assert "muted for 10m" in await ask(sandbox, "mod2", "mod mute @bob #general 10m")  # a retry works
        assert muted(sandbox, "general") == ["bob"]
    finally:
        await bot.stop()


# -- the shell alone, on the real executor and outbox ----------------------------------------------


def shell(sb: Sandbox, store: Store, rest: RestClient, *, dry_run: bool = False) -> tuple[Sanctioner, Outbox]:
    """The sanctions shell as the bot builds it, without the rest of the bot: a process of its own."""
    s = Settings()
    notifier = Outbox(
        alerts=store.alerts,
        audit=store.audit,
        rest=rest,
        executor=Executor(rest=rest, audit=store.audit, retention_days=30),
        moderation=s.moderation,
        site_url=lambda: sb.url,
        metrics=Metrics(),
    )
    executor = Executor(rest=rest, audit=store.audit, retention_days=30, dry_run=lambda: dry_run)
    sanctioner = Sanctioner(
        audit=store.audit,
        sanctions=store.sanctions,
        bans=store.bans,
        rest=rest,
        executor=executor,
        outbox=notifier,
        settings=s.sanctions,
        moderation=s.moderation,
        bot_username=lambda: "rcmod.bot",
    )
    return sanctioner, notifier


def moderator(sb: Sandbox) -> Actor:
    mod = sb.workspace.user_by_username("mod2")
    assert mod is not None
    return Actor(mod.id, "mod2")


async def users(sanctioner: Sanctioner, *names: str) -> list[Target]:
    found = [await sanctioner.target(n) for n in names]
    assert all(isinstance(t, Target) for t in found), found
    return [t for t in found if isinstance(t, Target)]


async def test_a_notice_goes_out_once_across_a_crash_and_replay(sandbox: Sandbox, tmp_path: Path) -> None:
    """The kick, ban and mute notices are queued in the outbox. The process sends each, then
    crashes before marking it sent; the next process queues each again under the same key (a
    replay) and delivers: every user has the one notice, not two."""
    path = tmp_path / "s.sqlite3"
    rest = bot_rest(sandbox)
    try:
        store = Store.open(path)
        sanctioner, _ = shell(sandbox, store, rest)
        carol, bob, alice = await users(sanctioner, "carol", "bob", "alice")
        general, random = (await sanctioner.room("general"), await sanctioner.room("random"))
        assert not isinstance(general, str) and not isinstance(random, str)
        mod = moderator(sandbox)
        assert "removed from" in await sanctioner.kick(carol, random, reason="off topic", actor=mod)
        assert "banned from" in await sanctioner.ban(bob, random, reason="spam", actor=mod)
        assert "muted for 10m" in await sanctioner.mute(
            alice, [general], duration=600, reason="flood", actor=mod
        )
        queued = store.alerts.due_deliveries()
        assert sorted(d.recipient for d in queued) == ["alice", "bob", "carol"]
        for d in queued:  # sent with the id chosen before the send; the crash comes before the mark
            await rest.send_message(await rest.dm_room(d.recipient), str(d.alert.excerpt), mid=d.dm_mid)
        replay = [(d.recipient, str(d.alert.mid), str(d.alert.excerpt)) for d in queued]
        store.close()

        store = Store.open(path)
        sanctioner, notifier = shell(sandbox, store, rest)
        who = {t.username: t for t in (carol, bob, alice)}
        for recipient, key, text in replay:
            await sanctioner.tell_text(who[recipient], text, key=key)
        await notifier.deliver_due()
        await notifier.deliver_due()
        assert store.alerts.pending_deliveries() == 0
        for name, words in (("carol", "removed from"), ("bob", "banned from"), ("alice", "muted")):
            assert len([m for m in dms_from_bot(sandbox, name) if words in str(m["msg"])]) == 1, name
        store.close()
    finally:
        await rest.close()


async def test_a_dry_run_kicks_bans_and_mutes_nobody(sandbox: Sandbox, tmp_path: Path) -> None:
    """Through the real executor with dry-run on: every sanction answers what it would do, the
    workspace is exactly as before, nothing is kept as a mute, ban or strike, nobody is told,
    and the audit log says dry-run for each."""
    rest = bot_rest(sandbox)
    store = Store.open(tmp_path / "s.sqlite3")
    try:
        sanctioner, _ = shell(sandbox, store, rest, dry_run=True)
        carol, bob = await users(sanctioner, "carol", "bob")
        general, random = (await sanctioner.room("general"), await sanctioner.room("random"))
        assert not isinstance(general, str) and not isinstance(random, str)
        mod = moderator(sandbox)
        ws = sandbox.workspace
        before = repr(ws.rooms), repr(ws.subscriptions), repr(ws.banned), len(ws.messages)
        replies = [
            await sanctioner.kick(carol, random, reason="off topic", actor=mod),
            await sanctioner.ban(bob, random, reason="spam", actor=mod),
            await sanctioner.mute(bob, [general, random], duration=600, reason="flood", actor=mod),
            await sanctioner.unmute(bob, [general], actor=mod),
            await sanctioner.unban(bob, random, actor=mod),
            await sanctioner.strike(carol, room=general, reason="rude", actor=mod),
        ]
        assert all(r.startswith("Dry run: ") for r in replies), replies
        assert (repr(ws.rooms), repr(ws.subscriptions), repr(ws.banned), len(ws.messages)) == before
        assert (
            store.sanctions.live_mutes() == []
            and store.bans.active_bans() == []
            and sanctioner.live_strikes(carol.id) == 0
        )
        assert store.alerts.due_deliveries() == []
        records = [(r.action, r.outcome) for r in store.audit.audit_records()]
        assert records == [
            ("user.kicked", "dry-run"),
            ("user.banned", "dry-run"),
            ("user.muted", "dry-run"),
            ("user.muted", "dry-run"),
            ("user.unmuted", "dry-run"),
            ("user.unbanned", "dry-run"),
            ("user.warned", "dry-run"),
        ]
    finally:
        store.close()
        await rest.close()
