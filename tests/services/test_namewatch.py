"""The name watch against the sandbox: display names, usernames at sign-up, topics and room
renames alert the moderators their list routes to, once, with inert text, and not again after a
restart; accounts awaiting approval are announced to the admins exactly once; what the bot
cannot check is said in /mod status."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import Sandbox
from tests.conftest import RunningBot, bot_settings, handled, start_bot, until
from tests.helpers import ask, dms_from_bot, write_lists

MENTION = re.compile(r"(^|\s|>)@([\w.-]+)")


def settings_for(sb: Sandbox, tmp_path: Path, **moderation: Any) -> Any:
    lists = write_lists(tmp_path)  # list "watch": badword, scam link → mod1, severity high
    (lists / "rooms.txt").write_text("lounge-of-shame\n")
    (lists / "rooms.toml").write_text('severity = "medium"\n\n[notify]\nroom_moderators = true\n')
    values: dict[str, Any] = {
        "wordlists": [str(lists)],
        "name_sweep_interval": 0.2,
        "registration_poll_interval": 0.2,
        **moderation,
    }
    return bot_settings(sb, tmp_path / "data", moderation=values)


def name_alerts(sb: Sandbox, username: str, what: str) -> list[str]:
    """The bot's alert DMs to ``username`` whose body says ``what`` was scanned."""
    return [
        str(m["msg"]) for m in dms_from_bot(sb, username) if "*rcmod alert*" in m["msg"] and what in m["msg"]
    ]


def untouched(sb: Sandbox, username: str, what: str) -> bool:
    """Exactly one alert DM about ``what``, never edited: no second incident joined it (a
    repeat would be coalesced into the same DM with a counter rather than sent again)."""
    dms = [m for m in dms_from_bot(sb, username) if "*rcmod alert*" in m["msg"] and what in m["msg"]]
    return len(dms) == 1 and not dms[0].get("editedAt") and "_Seen" not in dms[0]["msg"]


def pending_notices(sb: Sandbox, username: str) -> list[str]:
    return [str(m["msg"]) for m in dms_from_bot(sb, username) if "awaits approval" in m["msg"]]


async def started(settings: Any) -> RunningBot:
    """The bot, once its first sweep (the baseline on a fresh store) is done."""
    bot = await start_bot(settings)
    assert await until(lambda: bot.app.names is not None and bot.app.names.sweeps >= 1)
    return bot


async def sweeps(bot: RunningBot, more: int) -> None:
    names = bot.app.names
    assert names is not None
    target = names.sweeps + more
    assert await until(lambda: names.sweeps >= target)
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.alerts.pending_deliveries() == 0)


@pytest.fixture
async def old_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(version="6.6.0") as sb:  # before users.listByStatus (6.8)
        yield sb


async def test_a_display_name_alerts_the_routed_moderator_once_not_again_after_a_restart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    bot = await started(settings)
    # Nothing announces a display-name change to a bot: the users.list sweep finds it. (A display
    # name may not contain "/", so no full URL; a bare host would still be linked.)
    sandbox.rename_user_as("alice", name="Alice @all @mod2 badword www.evil.example")
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Display name of")) == 1)
    [text] = name_alerts(sandbox, "mod1", "Display name of")
    assert "Display name of ` ＠alice `" in text and "⟦badword⟧" in text
    assert "list ` watch `" in text and "severity *high*" in text
    assert not MENTION.search(text) and "www.evil" not in text
    [dm] = [m for m in dms_from_bot(sandbox, "mod1") if m["msg"] == text]
    assert dm.get("mentions", []) == []  # the offending @all and @mod2 ping no one
    # She posts: the message carries the same display name, which is not news.
    sandbox.post_as("alice", "general", "hello")
    await sweeps(bot, 2)
    await bot.stop()

    bot = await start_bot(settings)
    await sweeps(bot, 2)
    again = sandbox.post_as("alice", "general", "hello again")["_id"]
    assert await until(lambda: handled(bot.app.store, again))
    await bot.stop()
    assert untouched(sandbox, "mod1", "Display name of")
    # Routed per list: "watch" names mod1 only; the subject is never told about herself.
    assert name_alerts(sandbox, "mod2", "Display name") == []
    assert name_alerts(sandbox, "admin", "Display name") == []


async def test_a_changed_value_alerts_again_and_names_from_before_the_bot_are_its_baseline(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.rename_user_as("bob", name="Bob badword")  # before the bot ever ran
    bot = await started(settings_for(sandbox, tmp_path))
    await sweeps(bot, 1)
    assert name_alerts(sandbox, "mod1", "Display name of ` ＠bob `") == []
    status = await ask(sandbox, "admin", "mod status")
    assert "baseline taken" in status and "(1 names or texts that already matched" in status
    sandbox.rename_user_as("bob", name="Bob the badword")  # a new value is news
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Display name of ` ＠bob `")) == 1)
    assert "Bob the ⟦badword⟧" in name_alerts(sandbox, "mod1", "Display name of ` ＠bob `")[0]
    await bot.stop()


async def test_a_username_at_sign_up_alerts_through_the_join_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # No sweep at all: the sign-up's `uj` in #general is the route.
    bot = await start_bot(settings_for(sandbox, tmp_path, name_sweep_interval=0))
    sandbox.register("fan.badword", name="Fan")
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Username of")) == 1)
    [text] = name_alerts(sandbox, "mod1", "Username of")
    assert "Username of ` ＠fan.badword `" in text and not MENTION.search(text)
    status = await ask(sandbox, "admin", "mod status")
    assert "Names and room texts: live routes only" in status
    assert "Accounts awaiting approval: not required by this workspace" in status
    await bot.stop()


async def test_a_topic_alerts_once_inert_and_not_again_after_a_restart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    bot = await started(settings)
    sandbox.set_topic_as("mod2", "random", "@here read [this](https://evil.example) **now**: badword")
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Topic of")) == 1)
    [text] = name_alerts(sandbox, "mod1", "Topic of")
    assert f"Topic of [#random]({sandbox.url}/channel/random)" in text
    assert "Set by ` ＠mod2 `" in text and "⟦badword⟧" in text
    assert not MENTION.search(text) and "https://evil" not in text
    # Quoted in a code span: the markdown and the link stay literal, the link defanged.
    assert ": ` ＠here read [this](https[:]//evil.example) **now**: ⟦badword⟧ `\n" in text
    await sweeps(bot, 2)  # rooms.get sees the same topic: no second alert
    await bot.stop()
    bot = await start_bot(settings)
    await sweeps(bot, 2)
    await bot.stop()
    assert untouched(sandbox, "mod1", "Topic of")
    assert name_alerts(sandbox, "mod2", "Topic of") == []  # who changed it is not told


async def test_the_bots_own_policy_banner_is_not_news_but_a_members_announcement_is(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await started(settings_for(sandbox, tmp_path))
    store = bot.app.store
    assert store is not None
    banner = "Be kind. No badword here."  # a policy may well quote what it forbids
    rid = sandbox.workspace.room_by_id_or_name(name="random")["_id"]  # type: ignore[index]
    store.policies.set_policy_banner(rid, banner)  # as the policy keeper records it
    sandbox.set_announcement_as("rcmod.bot", "random", banner)
    await sweeps(bot, 2)
    assert name_alerts(sandbox, "mod1", "Announcement of") == []
    sandbox.set_announcement_as("mod2", "random", "badword forever")
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Announcement of")) == 1)
    assert "Set by ` ＠mod2 `" in name_alerts(sandbox, "mod1", "Announcement of")[0]
    await bot.stop()


async def test_a_renamed_room_alerts_its_room_moderators(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await started(settings_for(sandbox, tmp_path))
    sandbox.rename_room_as("admin", "random", "lounge-of-shame")
    # List "rooms" routes to the room's moderators: mod1 and mod2 moderate #random.
    for moderator in ("mod1", "mod2"):
        assert await until(lambda m=moderator: len(name_alerts(sandbox, m, "Name of")) == 1)  # type: ignore[misc]
    [text] = name_alerts(sandbox, "mod1", "Name of")
    assert f"Name of [#lounge-of-shame]({sandbox.url}/channel/lounge-of-shame)" in text
    assert "list ` rooms `" in text and "Set by ` ＠admin `" in text
    await sweeps(bot, 2)
    await bot.stop()
    assert untouched(sandbox, "mod1", "Name of") and untouched(sandbox, "mod2", "Name of")
    assert name_alerts(sandbox, "admin", "Name of") == []


async def test_an_account_awaiting_approval_is_announced_to_the_admins_exactly_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.workspace.set_setting("Accounts_ManuallyApproveNewUsers", True)
    # A long poll interval: the sign-up's `uj` in #general makes the bot look at once.
    settings = settings_for(sandbox, tmp_path, registration_poll_interval=600)
    bot = await started(settings)
    names = bot.app.names
    assert names is not None
    assert await until(lambda: names.approval_required is True)
    user = sandbox.register("eve", name="Eve", reason="@all I sell badword at https://spam.example")
    assert user["active"] is False
    assert await until(lambda: len(pending_notices(sandbox, "admin")) == 1)
    [text] = pending_notices(sandbox, "admin")
    assert "` ＠eve `" in text and "display name ` Eve `" in text
    assert "reason for joining matches list ` watch `" in text and "⟦badword⟧" in text
    assert "Administration → Users → Pending" in text and f'"userId": "{user["_id"]}"' in text
    assert not MENTION.search(text) and "https://spam" not in text
    # The reason is scanned like any name: list "watch" routes it to mod1, who is no admin.
    assert await until(lambda: len(name_alerts(sandbox, "mod1", "Reason for joining of ` ＠eve `")) == 1)
    assert pending_notices(sandbox, "mod1") == []
    status = await ask(sandbox, "admin", "mod status")
    assert "Accounts awaiting approval: watched via users.listByStatus" in status and "1 waiting" in status
    await bot.stop()

    bot = await start_bot(settings)  # still pending after a restart: not announced again
    names = bot.app.names
    assert names is not None
    assert await until(lambda: "1 waiting" in names.status()[1])
    await sweeps(bot, 2)
    await bot.stop()
    assert len(pending_notices(sandbox, "admin")) == 1
    assert untouched(sandbox, "mod1", "Reason for joining")


async def test_pending_accounts_on_a_server_without_users_list_by_status(
    old_sandbox: Sandbox, tmp_path: Path
) -> None:
    sb = old_sandbox
    sb.workspace.set_setting("Accounts_ManuallyApproveNewUsers", True)
    sb.register("frank", name="Frank", reason="hello")
    bot = await started(settings_for(sb, tmp_path))
    assert await until(lambda: len(pending_notices(sb, "admin")) == 1)
    assert "` ＠frank `" in pending_notices(sb, "admin")[0]
    status = await ask(sb, "admin", "mod status")
    assert "watched via users.list" in status and "this server gives no reason" in status
    await bot.stop()


async def test_status_says_when_pending_accounts_cannot_be_checked(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.workspace.set_setting("Accounts_ManuallyApproveNewUsers", True)
    sandbox.fail_next("users.listByStatus", 403, times=1000)
    bot = await started(settings_for(sandbox, tmp_path))
    names = bot.app.names
    assert names is not None
    assert await until(lambda: "CANNOT be checked" in names.status()[1])
    status = await ask(sandbox, "admin", "mod status")
    assert "Accounts awaiting approval: CANNOT be checked: the server refused users.listByStatus" in status
    await bot.stop()
