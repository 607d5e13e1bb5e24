"""Workspace roles as the bot can see them. Rocket.Chat's users.info returns another user's
``roles`` (and ``createdAt``, ``emails``, ``lastLogin``) only to holders of
``view-full-other-user-info``, which the bot role lacks; users.list carries ``roles`` with
``view-d-room``. Every guard that depends on a role (administrators are never sanctioned, exempt
roles, the purge guard, who may @all, who may command the bot) must hold against the sandbox,
which answers as the server does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from bot.models import Actor, UserRef
from bot.moderation.purge import PurgeRequest
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services import lookups
from bot.store import Store
from tests.conftest import Recorder, bot_settings, start_bot, until
from tests.helpers import (
    ask,
    dms_from_bot,
    exists,
    muted,
    post,
    purger_for,
    seed_user,
    triggered,
    write_lists,
)

MODS = ["mod2"]


async def users_info(sb: Sandbox, caller: str, username: str) -> dict[str, Any]:
    who = seed_user(sb, caller)
    headers = {"X-User-Id": who["id"], "X-Auth-Token": who["token"]}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sb.url}/api/v1/users.info", params={"username": username}, headers=headers) as resp,
    ):
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return dict(body["user"])


# -- the sandbox answers as getFullUserData does -----------------------------------------------


async def test_users_info_hides_another_users_roles_without_the_permission(sandbox: Sandbox) -> None:
    # As on a workspace where setup ran without the sanctions feature (only that grants it).
    sandbox.workspace.set_permission_roles("view-full-other-user-info", ["admin"])
    seen_by_bot = await users_info(sandbox, "rcmod.bot", "admin")
    assert seen_by_bot["username"] == "admin" and seen_by_bot["_id"] == seed_user(sandbox, "admin")["id"]
    for hidden in ("roles", "createdAt", "emails", "lastLogin"):
        assert hidden not in seen_by_bot
    assert seen_by_bot["canViewAllInfo"] is False

    seen_by_admin = await users_info(sandbox, "admin", "bob")  # admins hold the permission
    assert seen_by_admin["roles"] == ["user"] and "createdAt" in seen_by_admin
    assert seen_by_admin["canViewAllInfo"] is True
    myself = await users_info(sandbox, "rcmod.bot", "rcmod.bot")  # one's own info is always full
    assert "bot" in myself["roles"] and myself["canViewAllInfo"] is True


async def test_the_role_directory_reads_roles_from_users_list(sandbox: Sandbox, rest: RestClient) -> None:
    directory = lookups.RoleDirectory(rest)
    admin = seed_user(sandbox, "admin")
    assert "admin" in await directory.roles(user_id=admin["id"])
    assert "admin" in await directory.roles(username="admin")
    assert await directory.roles(username="bob") == frozenset({"user"})
    assert await directory.roles(username="nobody") == frozenset()


async def test_a_user_made_admin_later_is_seen_on_a_fresh_lookup(sandbox: Sandbox, rest: RestClient) -> None:
    now = [1000.0]
    directory = lookups.RoleDirectory(rest, clock=lambda: now[0])
    assert "admin" not in await directory.roles(username="carol")
    carol = sandbox.workspace.user_by_username("carol")
    assert carol is not None
    carol.roles = [*carol.roles, "admin"]
    now[0] += 30  # well within the TTL, but older than a fresh lookup accepts
    assert "admin" not in await directory.roles(username="carol")  # cached within the TTL
    assert "admin" in await directory.roles(username="carol", fresh=True)


# -- the guards -------------------------------------------------------------------------------


async def test_a_bot_moderator_cannot_mute_or_warn_the_admin(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path / "data", moderation={"moderators": MODS}))
    try:
        assert "administrator" in await ask(sandbox, "mod2", "mod mute @admin #general 10m")
        assert "administrator" in await ask(sandbox, "mod2", "mod warn @admin be nice")
        assert "admin" not in muted(sandbox, "general")
    finally:
        await bot.stop()


async def test_the_admin_commands_the_bot_as_an_administrator(sandbox: Sandbox, tmp_path: Path) -> None:
    # admin is no bot moderator and no room moderator of general: only the admin role counts.
    bot = await start_bot(bot_settings(sandbox, tmp_path / "data", moderation={"moderators": MODS}))
    try:
        assert "muted for 5m" in await ask(sandbox, "admin", "mod mute @bob #general 5m")
        assert muted(sandbox, "general") == ["bob"]
    finally:
        await bot.stop()


async def test_a_flooding_admin_is_never_muted(sandbox: Sandbox, tmp_path: Path) -> None:
    flood = {"mode": "act", "messages": 2, "seconds": 60, "mute": "5m"}
    settings = bot_settings(
        sandbox,
        tmp_path / "data",
        moderation={"moderators": MODS},
        protections={"probation_days": 0, "flood": flood},
    )
    bot = await start_bot(settings, Recorder())
    try:
        for i in range(4):
            await post(bot, sandbox, "admin", "general", f"announcement part {i}")
        assert await until(lambda: bool(triggered(bot, "flood")))
        assert "admin" not in muted(sandbox, "general")
        for i in range(3):  # the same protection still acts on a member
            await post(bot, sandbox, "bob", "general", f"bob says {i}")
        assert await until(lambda: muted(sandbox, "general") == ["bob"])
    finally:
        await bot.stop()


async def test_an_admin_may_mention_all(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(
        sandbox,
        tmp_path / "data",
        moderation={"moderators": MODS},
        protections={"probation_days": 0, "mentions": {"mode": "act", "max_mentions": 5}},
    )
    bot = await start_bot(settings, Recorder())
    try:
        admin = await post(bot, sandbox, "admin", "general", "@all the server restarts at noon")
        member = await post(bot, sandbox, "alice", "general", "@all lunch?")
        assert await until(lambda: not exists(sandbox, member))
        assert exists(sandbox, admin)
        assert [r.reason["count"] for r in triggered(bot, "mentions")] == [1]
    finally:
        await bot.stop()


async def test_an_exempt_role_author_raises_no_alert(sandbox: Sandbox, tmp_path: Path) -> None:
    lists = write_lists(tmp_path)
    settings = bot_settings(
        sandbox, tmp_path / "data", moderation={"wordlists": [str(lists)], "exempt_roles": ["bot", "admin"]}
    )
    bot = await start_bot(settings, Recorder())
    try:
        await post(bot, sandbox, "admin", "general", "quoting the badword so you know it")
        await post(bot, sandbox, "alice", "general", "what a badword")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) >= 1)
        [alert] = dms_from_bot(sandbox, "mod1")
        assert "alice" in alert["msg"] and "admin" not in alert["msg"].split("alice")[0]
    finally:
        await bot.stop()


async def test_a_workspace_admin_may_purge_where_they_moderate_nothing(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    ws = sandbox.workspace
    alice = ws.user_by_username("alice")
    assert alice is not None
    members = [seed_user(sandbox, n)["id"] for n in ("admin", "alice", "bob", "rcmod.bot")]
    ws.create_room("c", "side", alice, members)  # owned by alice: admin holds no room role here
    sandbox.post_as("bob", "side", "bob in side")
    store = Store.open(tmp_path / "rcmod.sqlite3")
    try:
        purger = purger_for(store, rest, seed_user(sandbox, "rcmod.bot")["id"])
        plan = await purger.prepare(
            PurgeRequest("user", "bob", rooms=("side",)), actor=Actor("admin", "admin")
        )
        assert plan.preview.total == 1
    finally:
        store.close()


async def test_has_role_sees_the_admin(sandbox: Sandbox, rest: RestClient) -> None:
    found = lookups.Lookups(rest)
    admin = seed_user(sandbox, "admin")
    assert await found.has_role(UserRef(admin["id"], "admin"), ["admin"])
    assert not await found.has_role(UserRef(seed_user(sandbox, "bob")["id"], "bob"), ["admin"])
