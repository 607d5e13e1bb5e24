"""Policy announcements wired into the running bot: pinned at startup, an unpin by a member seen
on the stream and reverted at once (moderators told who), a banner edit restored, and a room the
bot joins later reconciled without waiting for the periodic sync."""

from __future__ import annotations

from pathlib import Path

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import dms_from_bot
from tests.services.test_policies import CONDUCT, pinned_in, room, write_policy

BANNER = "Be kind. Report abuse with /report."


async def test_the_running_bot_keeps_policies_pinned(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    write_policy(folder, "conduct", CONDUCT)
    write_policy(folder, "teams", "---\npattern: 'team-*'\n---\nTeam rooms: keep it on topic.\n")
    settings = bot_settings(
        sandbox,
        tmp_path / "data",
        policy={"dir": str(folder), "sync_interval": 600},  # only the triggers can act in time
        moderation={"moderators": ["mod2"]},
    )
    bot = await start_bot(settings)
    try:
        assert await until(
            lambda: len(pinned_in(sandbox, "general")) == 1 and len(pinned_in(sandbox, "random")) == 1
        )
        assert await until(lambda: room(sandbox, "general").get("announcement") == BANNER)
        [policy_msg] = pinned_in(sandbox, "general")

        # A member with the right to unpin does so: the stream's re-emit brings it back.
        sandbox.unpin_as("mod1", policy_msg["_id"])
        assert await until(lambda: [m["_id"] for m in pinned_in(sandbox, "general")] == [policy_msg["_id"]])
        assert await until(lambda: any("unpinned" in m["msg"] for m in dms_from_bot(sandbox, "mod2")))
        [dm] = [m for m in dms_from_bot(sandbox, "mod2") if "unpinned" in m["msg"]]
        assert "mod1" in dm["msg"] and "general" in dm["msg"] and "@" not in dm["msg"]

        # Someone edits the banner: restored, and the moderators hear who.
        sandbox.set_announcement_as("admin", "random", "party tonight")
        assert await until(lambda: room(sandbox, "random").get("announcement") == BANNER)
        assert await until(lambda: any("banner" in m["msg"] for m in dms_from_bot(sandbox, "mod2")))

        # A new room matching the pattern: reconciled when the bot is added to it.
        admin = sandbox.workspace.user_by_username("admin")
        assert admin is not None
        sandbox.workspace.create_room("p", "team-x", admin, [admin.id])
        sandbox.add_member("team-x", "rcmod.bot")
        assert await until(lambda: len(pinned_in(sandbox, "team-x")) == 1)
        keeper = bot.app.policies
        assert keeper is not None and keeper.syncs >= 2
    finally:
        await bot.stop()


async def test_members_who_join_get_the_policy_once_when_asked(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    write_policy(
        folder, "staff-rules", "---\nrooms: [staff]\n---\nStaff rules: what is said here stays here.\n"
    )
    settings = bot_settings(sandbox, tmp_path / "data", policy={"dir": str(folder), "dm_on_join": True})
    bot = await start_bot(settings)
    try:
        assert await until(lambda: len(pinned_in(sandbox, "staff")) == 1)
        sandbox.add_member("staff", "alice")
        assert await until(lambda: any("Staff rules" in m["msg"] for m in dms_from_bot(sandbox, "alice")))
        sandbox.remove_member("staff", "alice")
        sandbox.add_member("staff", "alice")
        sandbox.add_member("staff", "bob")
        assert await until(lambda: any("Staff rules" in m["msg"] for m in dms_from_bot(sandbox, "bob")))
        assert len(dms_from_bot(sandbox, "alice")) == 1  # the same version is never sent twice
        assert dms_from_bot(sandbox, "carol") == []
    finally:
        await bot.stop()
