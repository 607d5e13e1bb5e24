"""`/mod ban` and `/mod unban` against the sandbox, as a moderator would send them (DMs to the bot).

On a server with bans (Rocket.Chat 8.3+) the bot uses them: the user is out and the server
refuses their rejoin. On an older one (the routes answer 404) the bot kicks and watches: every
rejoin — seen live, or found at the next start after the bot was down — is undone until a
moderator lifts the ban. Refusals change nothing; every ban and unban is audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import LadderStep
from bot.moderation.sanctions import Notice, render_notice, step_label
from bot.ops.checks import (
    ALL_FEATURES,
    Status,
    permission_checks,
    plan_grants,
    required_permissions,
    version_checks,
)
from bot.sandbox import Sandbox
from bot.sandbox.errors import MeteorError
from tests.conftest import RunningBot, start_bot, until
from tests.helpers import ask, audit, rid, told
from tests.services.test_sanctions import settings

WITH_BANS = "8.3.0"
WITHOUT_BANS = "8.2.0"


@pytest.fixture
async def current() -> AsyncIterator[Sandbox]:
    async with Sandbox(version=WITH_BANS) as sb:
        yield sb


@pytest.fixture
async def older() -> AsyncIterator[Sandbox]:
    async with Sandbox(version=WITHOUT_BANS) as sb:
        yield sb


def member(sb: Sandbox, username: str, room: str) -> bool:
    user = sb.workspace.user_by_username(username)
    assert user is not None
    return user.id in sb.workspace.members_of(rid(sb, room))


def rejoin(sb: Sandbox, username: str, room: str) -> None:
    """The user joins the public channel again (channels.join), posting a `uj` message."""
    user = sb.workspace.user_by_username(username)
    assert user is not None
    sb.workspace.join_room(user.id, rid(sb, room))


def banned_actions(bot: RunningBot) -> list[Any]:
    return [*audit(bot, "user.banned"), *audit(bot, "user.unbanned")]


async def test_a_ban_keeps_the_user_out_until_unbanned(current: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(current, tmp_path))
    try:
        listed = await ask(current, "mod2", "mod help")
        assert "`/mod ban @USER #ROOM [REASON]`" in listed and "`/mod unban @USER #ROOM`" in listed
        answer = await ask(current, "mod2", "mod ban @bob #random spamming invites")
        assert "banned from" in answer and "rejoin" not in answer
        assert not member(current, "bob", "random")
        assert await until(lambda: told(current, "bob", "You have been banned from"))
        assert told(current, "bob", "spamming invites")
        with pytest.raises(MeteorError, match="error-not-allowed"):
            rejoin(current, "bob", "random")  # the server itself refuses
        [record] = audit(bot, "user.banned")
        assert record.actor == current.workspace.user_by_username("mod2").id  # type: ignore[union-attr]
        assert record.targets == {
            "user": current.workspace.user_by_username("bob").id,
            "room": rid(current, "random"),
        }  # type: ignore[union-attr]
        assert record.reason["reason"] == "spamming invites" and record.reason["via"] == "server"
        assert "banned from" in await ask(current, "mod2", "mod strikes @bob")
        assert "already banned" in await ask(current, "mod2", "mod ban @bob #random again")
        lifted = await ask(current, "mod2", "mod unban @bob #random")
        assert "unbanned" in lifted
        assert current.workspace.banned == {}
        assert await until(lambda: told(current, "bob", "lifted your ban"))
        rejoin(current, "bob", "random")
        assert member(current, "bob", "random")
        assert len(audit(bot, "user.unbanned")) == 1
        assert "not banned" in await ask(current, "mod2", "mod unban @bob #random")
        # A ban set in Rocket.Chat itself: the bot says so, and can lift it.
        admin = current.workspace.user_by_username("admin")
        assert admin is not None
        current.workspace.ban_user(admin.id, rid(current, "random"), "carol")
        assert "(in Rocket.Chat)" in await ask(current, "mod2", "mod ban @carol #random")
        assert "unbanned" in await ask(current, "mod2", "mod unban @carol #random")
        assert current.workspace.banned == {}
    finally:
        await bot.stop()


async def test_without_server_bans_the_bot_kicks_and_watches_across_a_restart(
    older: Sandbox, tmp_path: Path
) -> None:
    config = settings(older, tmp_path)
    bot = await start_bot(config)
    answer = await ask(older, "mod2", "mod ban @bob #random raiding")
    assert "banned from" in answer and "rejoin" in answer
    assert not member(older, "bob", "random")
    assert older.workspace.banned == {}  # the server has no bans: the bot keeps this one
    rejoin(older, "bob", "random")
    assert await until(lambda: not member(older, "bob", "random"))
    # The record is written once the server has answered the kick: wait for it, too.
    assert await until(lambda: any(r.reason.get("rejoined") for r in audit(bot, "user.kicked")))
    [again] = [r for r in audit(bot, "user.kicked") if r.reason.get("rejoined")]
    assert again.actor == "rcmod" and again.reason["ban"] == audit(bot, "user.banned")[0].reason["ban"]
    await bot.stop()
    # Back while the bot was down: removed as soon as it starts again ...
    rejoin(older, "bob", "random")
    bot = await start_bot(config)
    try:
        assert await until(lambda: not member(older, "bob", "random"))
        # ... and the watch goes on after the restart, for invitations too (an `au` message).
        admin = older.workspace.user_by_username("admin")
        bob = older.workspace.user_by_username("bob")
        assert admin is not None and bob is not None
        older.workspace.add_users_to_room(admin.id, rid(older, "random"), [bob.id])
        assert await until(lambda: not member(older, "bob", "random"))
        assert "unbanned" in await ask(older, "mod2", "mod unban @bob #random")
        rejoin(older, "bob", "random")
        await ask(older, "mod2", "mod help")  # a round trip: the join has been seen by now
        assert member(older, "bob", "random")
        assert [r.reason["via"] for r in audit(bot, "user.banned")] == ["watch"]
        assert len(audit(bot, "user.unbanned")) == 1
    finally:
        await bot.stop()


async def test_a_room_moderator_bans_only_in_their_rooms(current: Sandbox, tmp_path: Path) -> None:
    ws = current.workspace
    admin, bob, mod1, me = (ws.user_by_username(n) for n in ("admin", "bob", "mod1", "rcmod.bot"))
    assert admin is not None and bob is not None and mod1 is not None and me is not None
    ws.create_room("c", "lounge", admin, [admin.id, bob.id, mod1.id, me.id])  # mod1: a member only
    bot = await start_bot(settings(current, tmp_path))
    try:
        refused = await ask(current, "mod1", "mod ban @bob #lounge")
        assert "needs room moderator" in refused
        assert member(current, "bob", "lounge")
        # `everywhere` is no room: it does not get past the room check either.
        assert "Expected #room" in await ask(current, "mod1", "mod ban @bob everywhere")
        assert "needs" in await ask(current, "alice", "mod ban @bob #random")
        assert ws.banned == {} and banned_actions(bot) == []
        assert "banned from" in await ask(current, "mod1", "mod ban @bob #random")  # their room
        assert member(current, "bob", "lounge")
    finally:
        await bot.stop()


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("mod ban @admin #random", "administrator"),
        ("mod ban @rcmod.bot #random", "do not sanction myself"),
        ("mod ban @mod2 #random", "bot moderator"),
        ("mod ban @nobody #random", "found no user"),
        ("mod ban @bob #nowhere", "cannot see a room"),
        ("mod ban @carol #staff", "is not in"),
        ("mod ban @bob", "Missing #ROOM"),
        ("mod unban @bob #random", "not banned"),
    ],
)
async def test_bad_bans_get_a_clear_answer_and_change_nothing(
    current: Sandbox, tmp_path: Path, command: str, answer: str
) -> None:
    bot = await start_bot(settings(current, tmp_path))
    try:
        assert answer in await ask(current, "mod2", command)
        assert current.workspace.banned == {}
        assert banned_actions(bot) == []
    finally:
        await bot.stop()


async def test_the_ladder_can_ban(current: Sandbox, tmp_path: Path) -> None:
    ladder = [{"strikes": 1, "action": "warn"}, {"strikes": 2, "action": "ban"}]
    bot = await start_bot(settings(current, tmp_path, sanctions={"ladder": ladder}))
    try:
        assert "strike 1, warn" in await ask(current, "mod2", "mod warn @carol #random spam")
        second = await ask(current, "mod2", "mod warn @carol #random more spam")
        assert "strike 2, ban" in second and "banned from" in second
        assert not member(current, "carol", "random")
        [record] = audit(bot, "user.banned")
        assert record.reason["reason"] == "strike 2: more spam"
    finally:
        await bot.stop()


def test_ban_user_is_granted_and_checked_only_where_the_server_uses_it() -> None:
    table = {"ban-user": ["admin", "owner", "moderator"], "remove-user": ["admin", "owner", "moderator"]}
    assert plan_grants(table, {"sanctions"}, WITH_BANS)["ban-user"] == ["admin", "owner", "moderator", "bot"]
    assert "ban-user" not in plan_grants(table, {"sanctions"}, WITHOUT_BANS)
    assert "ban-user" in required_permissions(ALL_FEATURES)  # version unknown: assume it is needed
    checks = {c.name: c for c in permission_checks(table, ["bot"], {"sanctions"}, WITH_BANS)}
    assert checks["permission ban-user"].status is Status.FAIL
    older = {c.name for c in permission_checks(table, ["bot"], {"sanctions"}, WITHOUT_BANS)}
    assert "permission ban-user" not in older and "permission remove-user" in older


def test_the_ban_notices_say_what_happened_and_how_to_appeal() -> None:
    ban = render_notice(Notice("ban", "spam @all", rooms=("random",), appeal="To appeal, answer here."))
    assert "You have been banned from ` #random `" in ban and "until a moderator lifts the ban" in ban
    assert "Reason: ` spam " in ban and "@all" not in ban  # the moderator's words are made inert
    assert ban.endswith("To appeal, answer here.")
    assert render_notice(Notice("unban", "", rooms=("random",))).startswith("A moderator lifted your ban")
    assert step_label(LadderStep(strikes=3, action="ban")) == "ban"


def test_doctor_says_how_bans_are_kept() -> None:
    [server] = [c for c in version_checks(WITH_BANS, {"sanctions"}) if c.name == "room bans"]
    assert server.status is Status.OK and "rooms.banUser" in server.detail
    [watch] = [c for c in version_checks(WITHOUT_BANS, {"sanctions"}) if c.name == "room bans"]
    assert watch.status is Status.OK and "removed again whenever they rejoin" in watch.detail
    assert [c for c in version_checks(WITH_BANS, {"purge"}) if c.name == "room bans"] == []
