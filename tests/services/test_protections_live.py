"""The automatic protections against the sandbox: each fires at its threshold and not below it,
acts only in `act` mode (evidence first for anything deleted), alerts otherwise, and records
what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import Sandbox
from tests.conftest import Recorder, bot_settings, handled, start_bot, until
from tests.helpers import ask, dms_from_bot, exists, muted, post, rid, told, triggered

MODS = ["mod2"]


def settings(sb: Sandbox, tmp_path: Path, **protections: Any) -> Any:
    return bot_settings(
        sb,
        tmp_path / "data",
        moderation={"moderators": MODS},
        protections={"probation_days": 0, **protections},
    )


async def test_flood_mutes_at_its_threshold_and_not_below(sandbox: Sandbox, tmp_path: Path) -> None:
    flood = {"mode": "act", "messages": 3, "seconds": 60, "mute": "5m"}
    bot = await start_bot(settings(sandbox, tmp_path, flood=flood), Recorder())
    try:
        for i in range(3):
            await post(bot, sandbox, "bob", "general", f"message number {i}")
        assert muted(sandbox, "general") == [] and triggered(bot, "flood") == []
        await post(bot, sandbox, "bob", "general", "one too many")
        assert muted(sandbox, "general") == ["bob"]
        [record] = triggered(bot, "flood")
        assert record.outcome == "ok" and record.reason["count"] == 4 and record.reason["limit"] == 3
        assert await until(lambda: told(sandbox, "mod2", "protection — flood"))
        assert told(sandbox, "bob", "You have been muted")
        store = bot.app.store
        assert store is not None
        [strike] = store.sanctions.strikes(sandbox.workspace.user_by_username("bob").id)  # type: ignore[union-attr]
        assert strike.source == "flood" and strike.actor == "rule:flood"
    finally:
        await bot.stop()


async def test_out_of_the_box_a_flood_alerts_but_nothing_is_done(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path), Recorder())  # defaults: alert mode, 10 in 60 s
    try:
        for i in range(10):
            await post(bot, sandbox, "bob", "general", f"line {i}")
        assert triggered(bot, "flood") == []
        await post(bot, sandbox, "bob", "general", "line 10")
        [record] = triggered(bot, "flood")
        assert record.outcome == "alert"
        assert await until(lambda: told(sandbox, "mod2", "Alert-only mode: I would mute the author here"))
        assert muted(sandbox, "general") == []
        assert not told(sandbox, "bob", "muted")
    finally:
        await bot.stop()


async def test_dry_run_turns_act_into_an_alert(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, flood={"mode": "act", "messages": 2}), Recorder())
    try:
        assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
        for i in range(3):
            await post(bot, sandbox, "bob", "general", f"msg {i}")
        [record] = triggered(bot, "flood")
        assert record.outcome == "dry-run" and muted(sandbox, "general") == []
        assert await until(lambda: told(sandbox, "mod2", "Dry run is on: I would mute"))
    finally:
        await bot.stop()


async def test_repeated_content_across_rooms_is_deleted_evidence_first(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    repeat = {"mode": "act", "rooms": 2, "copies": 3, "seconds": 300}
    bot = await start_bot(settings(sandbox, tmp_path, repeat=repeat), Recorder())
    try:
        short = await post(bot, sandbox, "bob", "general", "ok")
        await post(bot, sandbox, "bob", "random", "ok")  # too short to count as repeated content
        first = await post(bot, sandbox, "bob", "general", "Buy cheap followers at my shop today")
        assert exists(sandbox, first) and exists(sandbox, short) and triggered(bot, "repeat") == []
        # The same text, evaded (case, a zero-width space, a Cyrillic о), in a second room.
        second = await post(bot, sandbox, "bob", "random", "BUY cheap follo\u200bwers at my sh\u043ep today")
        assert await until(lambda: not exists(sandbox, first) and not exists(sandbox, second))
        store = bot.app.store
        assert store is not None
        for mid in (first, second):
            [kept] = store.evidence.evidence_for_message(mid)
            assert kept["content"]["_id"] == mid
        [record] = triggered(bot, "repeat")
        assert record.outcome == "ok"
    finally:
        await bot.stop()


async def test_mention_spam_and_unauthorised_at_all(sandbox: Sandbox, tmp_path: Path) -> None:
    mentions = {"mode": "act", "max_mentions": 2}
    bot = await start_bot(settings(sandbox, tmp_path, mentions=mentions), Recorder())
    try:
        two = await post(bot, sandbox, "alice", "general", "@bob @carol lunch?")
        three = await post(bot, sandbox, "alice", "general", "@bob @carol @mod1 lunch?")
        everyone = await post(bot, sandbox, "alice", "general", "@all lunch?")
        moderator = await post(bot, sandbox, "mod1", "general", "@here meeting in 5")  # a room moderator
        assert await until(lambda: not exists(sandbox, three) and not exists(sandbox, everyone))
        assert exists(sandbox, two) and exists(sandbox, moderator)
        assert [r.reason["count"] for r in triggered(bot, "mentions")] == [3, 1]
    finally:
        await bot.stop()


async def test_links_to_blocked_domains_are_held_and_restored(sandbox: Sandbox, tmp_path: Path) -> None:
    links = {"mode": "act", "block_domains": ["spam.example"], "hold_probation": False}
    bot = await start_bot(settings(sandbox, tmp_path, links=links), Recorder())
    try:
        fine = await post(bot, sandbox, "alice", "general", "docs at https://ok.example/guide")
        held = await post(bot, sandbox, "alice", "general", "deals at https://WWW.Spam.Example/x?y=1")
        assert await until(lambda: not exists(sandbox, held))
        assert exists(sandbox, fine)
        assert await until(lambda: told(sandbox, "mod2", "/mod restore 1"))
        assert told(sandbox, "alice", "is held for a moderator to review")
        # The alert carries one-click buttons; a click sends the command as mod2's own DM.
        [alert] = [m for m in dms_from_bot(sandbox, "mod2") if "protection — links" in m["msg"]]
        clicks = {a["text"]: a["msg"] for a in alert["attachments"][0]["actions"]}
        alert_id = clicks["Dismiss"].split()[-1]
        assert clicks == {"Restore": "mod restore 1", "Dismiss": f"mod dismiss {alert_id}"}
        assert all(a["msg_in_chat_window"] for a in alert["attachments"][0]["actions"])
        assert "restored" in await ask(sandbox, "mod2", clicks["Restore"])
        general = rid(sandbox, "general")
        reposts = [
            m for m in sandbox.workspace.messages.values() if m["rid"] == general and "@alice" in m["msg"]
        ]
        assert len(reposts) == 1 and "https://WWW.Spam.Example/x?y=1" in reposts[0]["msg"]
        assert "already restored" in await ask(sandbox, "mod2", "mod restore 1")
        assert "No held message 7" in await ask(sandbox, "mod2", "mod restore 7")
    finally:
        await bot.stop()


def hold_probation_links(sb: Sandbox, tmp_path: Path) -> Any:
    """Links from accounts younger than three days are held; the flood protection is off."""
    links = {"mode": "act", "block_domains": [], "hold_probation": True}
    return bot_settings(
        sb,
        tmp_path / "data",
        moderation={"moderators": MODS},
        protections={"probation_days": 3, "links": links, "flood": {"mode": "off"}},
    )


async def test_links_from_accounts_on_probation_are_held(sandbox: Sandbox, tmp_path: Path) -> None:
    config = hold_probation_links(sandbox, tmp_path)
    sandbox.create_user("newbie", created_days_ago=0.5)
    sandbox.create_user("oldtimer", created_days_ago=30)
    # An account's age (users.info createdAt) is shown to holders of view-full-other-user-info
    # only, which setup grants the bot role with the sanctions feature (and the seed holds).
    assert "bot" in sandbox.workspace.permissions["view-full-other-user-info"]["roles"]
    bot = await start_bot(config, Recorder())
    try:
        old = await post(bot, sandbox, "oldtimer", "general", "see https://ok.example")
        new = await post(bot, sandbox, "newbie", "general", "see https://ok.example")
        assert await until(lambda: not exists(sandbox, new))
        assert exists(sandbox, old)
    finally:
        await bot.stop()


async def test_without_the_permission_no_account_is_on_probation(sandbox: Sandbox, tmp_path: Path) -> None:
    config = hold_probation_links(sandbox, tmp_path)
    sandbox.create_user("newbie", created_days_ago=0.5)
    sandbox.workspace.set_permission_roles("view-full-other-user-info", ["admin"])
    bot = await start_bot(config, Recorder())
    try:
        new = await post(bot, sandbox, "newbie", "general", "see https://ok.example")
        # Its check waits for the account-age lookup, off the path: done once it is handled.
        assert await until(lambda: handled(bot.app.store, new))
        assert exists(sandbox, new) and triggered(bot, "links") == []
    finally:
        await bot.stop()


async def test_a_raid_locks_the_room_until_a_moderator_unlocks_it(sandbox: Sandbox, tmp_path: Path) -> None:
    raid = {"mode": "act", "joins": 2, "seconds": 300, "lock": True}
    bot = await start_bot(settings(sandbox, tmp_path, raid=raid, flood={"mode": "off"}), Recorder())
    try:
        general = sandbox.workspace.room_by_id_or_name(name="general")
        assert general is not None
        for i in range(2):
            sandbox.create_user(f"raider{i}", join_default_channels=False)
            sandbox.join_as(f"raider{i}", "general")
        await post(bot, sandbox, "alice", "general", "who are all these people?")
        assert not general.get("ro") and triggered(bot, "raid") == []
        sandbox.create_user("raider2", join_default_channels=False)
        sandbox.join_as("raider2", "general")
        assert await until(lambda: bool(general.get("ro")))
        with pytest.raises(Exception, match="room is readonly"):
            sandbox.post_as("raider2", "general", "lol")
        assert await until(lambda: told(sandbox, "mod2", "protection — raid"))
        assert "writable for members again" in await ask(sandbox, "mod2", "mod unlock #general")
        assert not general.get("ro")
        assert "was not locked by me" in await ask(sandbox, "mod2", "mod unlock #general")
    finally:
        await bot.stop()


async def test_a_hold_interrupted_before_its_deletion_is_finished_when_handled_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The hold is recorded before the deletion. A crash between the two leaves the hold row and
    the message standing; handling the message again deletes it under the same hold number, with
    one copy of its evidence, and a third time finds it already held."""
    from bot.models import Message, Room
    from bot.services.sanctions import Target

    links = {"mode": "act", "block_domains": ["spam.example"], "hold_probation": False}
    bot = await start_bot(settings(sandbox, tmp_path, links=links), Recorder())
    try:
        services, store = bot.app.services, bot.app.store
        assert services is not None and store is not None
        doc = sandbox.post_as("alice", "general", "deals at https://spam.example/x")

        def held_with_evidence(mid: str) -> bool:
            row = store.sanctions.held_by_mid(mid)
            return row is not None and row.evidence_id is not None

        assert await until(lambda: held_with_evidence(str(doc["_id"])))  # the live path held it
        assert not exists(sandbox, str(doc["_id"]))
        # What a crash right after recording the hold leaves: the row, and the message standing.
        standing = sandbox.post_as("alice", "random", "text that a crashed run was holding")
        message = Message.from_wire(standing)
        crashed = store.sanctions.hold_message(
            mid=message.id, rid=message.rid, user_id=message.author.id, username="alice", evidence_id=None
        )
        assert crashed is not None and exists(sandbox, message.id)
        alice = Target(message.author.id, "alice", ())
        room = Room(message.rid, "random", "c")
        held_id, line = await services.protector._hold(message, alice, room)
        assert held_id == crashed and f"held for review as {crashed}" in line
        assert not exists(sandbox, message.id)
        assert len(store.evidence.evidence_for_message(message.id)) == 1
        row = store.sanctions.held_by_mid(message.id)
        assert row is not None and row.evidence_id is not None
        assert await services.protector._hold(message, alice, room) == (None, "already held")
        assert len(store.evidence.evidence_for_message(message.id)) == 1
    finally:
        await bot.stop()
