"""Bot-moderator rights belong to user ids, not to usernames a member can take: a listed name
registered later, or renamed into, gives nothing; the real moderator keeps their rights after a
rename; the companion app's hook is believed for the user id only. Against the sandbox."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import ask, dms_from_bot
from tests.web.test_hook import SECRET, body, headers


def settings(sb: Sandbox, tmp_path: Path, moderators: list[str], **more: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": moderators}, **more)


async def test_a_listed_name_registered_later_grants_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2", "nightwatch"]))
    try:
        status = await ask(sandbox, "mod2", "mod status")
        assert "nightwatch" in status and "no users" in status, status
        sandbox.register("nightwatch", name="Night Watch")
        denied = await ask(sandbox, "nightwatch", "mod status")
        assert "needs bot moderator" in denied, denied
        answer = await ask(sandbox, "nightwatch", "mod mute @bob everywhere")
        assert "needs bot moderator" in answer, answer
    finally:
        await bot.stop()


async def test_rights_stay_with_the_moderator_across_renames(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2"]))
    try:
        assert "needs bot moderator" not in await ask(sandbox, "mod2", "mod status")
        sandbox.rename_user_as("mod2", new_username="mod2-away")
        sandbox.rename_user_as("alice", new_username="mod2")  # a member takes the freed name
        denied = await ask(sandbox, "mod2", "mod status")
        assert "needs bot moderator" in denied, denied
        kept = await ask(sandbox, "mod2-away", "mod status")
        assert "needs bot moderator" not in kept, kept
        # Nor is the member who took the name protected like a bot moderator.
        assert "muted" in await ask(sandbox, "mod2-away", "mod mute @mod2 #random 10m")
    finally:
        await bot.stop()


async def test_alerts_follow_the_moderator_not_the_name(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2"], sanctions={}))
    try:
        await ask(sandbox, "mod2", "mod help")  # the bot is up and mod2 bound
        sandbox.rename_user_as("mod2", new_username="mod2-away")
        sandbox.rename_user_as("alice", new_username="mod2")
        # bob appeals: the appeal goes to the bot moderators.
        await ask(sandbox, "bob", "mod appeal I did nothing")
        mod2 = sandbox.workspace.user_by_username("mod2-away")
        assert mod2 is not None
        assert await until(
            lambda: any("appeal" in str(m["msg"]).lower() for m in dms_from_bot(sandbox, "mod2-away"))
        )
        assert not any("appeal" in str(m["msg"]).lower() for m in dms_from_bot(sandbox, "mod2"))
    finally:
        await bot.stop()


async def test_the_hook_identifies_the_caller_by_id_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2"], http={"webhook_secret": SECRET}))
    try:
        assert bot.app.web is not None
        url = f"http://127.0.0.1:{bot.app.web.port}/hooks/command"
        alice = sandbox.workspace.user_by_username("alice")
        assert alice is not None
        # alice's id with mod2's name: she is alice, a member.
        raw = body(command="mod", args="status", user={"id": alice.id, "username": "mod2"})
        async with aiohttp.ClientSession() as http:
            resp = await http.post(url, data=raw, headers=headers(raw, ts=time.time()))
            assert resp.status == 200
            text = (await resp.json())["text"]
            assert "needs bot moderator" in text, text
            raw = body(command="mod", args="status", user={"id": "NoSuchUserId12345", "username": "mod2"})
            resp = await http.post(url, data=raw, headers=headers(raw, ts=time.time()))
            assert resp.status == 200
            assert (
                "needs bot moderator" in (await resp.json())["text"]
                or "do not know" in (await resp.json())["text"]
            )
    finally:
        await bot.stop()


async def test_a_name_the_server_did_not_answer_for_at_start_is_bound_later(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The first users.info (mod2's lookup at start) fails for a transient reason.
    sandbox.fail_next("users.info", 200, {"success": True})  # an answer without the user
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2"]))
    try:
        status = await ask(sandbox, "mod2", "mod status")
        assert "*rcmod status*" in status and "no users" not in status, status
    finally:
        await bot.stop()


async def test_a_purge_is_confirmed_by_its_moderator_not_by_who_took_their_name(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, ["mod2"]))
    try:
        doomed = [sandbox.post_as("bob", "general", f"spam {i}")["_id"] for i in range(2)]
        preview = await ask(sandbox, "mod2", "mod purge user @bob #general")
        m = re.search(r"/mod confirm (\d+)", preview)
        assert m is not None, preview
        sandbox.rename_user_as("mod2", new_username="mod2-away")
        sandbox.rename_user_as("alice", new_username="mod2")
        assert "No purge" in await ask(sandbox, "mod2", f"mod confirm {m.group(1)}")
        assert all(mid in sandbox.workspace.messages for mid in doomed)
        await ask(sandbox, "mod2-away", f"mod confirm {m.group(1)}")
        assert await until(lambda: not any(mid in sandbox.workspace.messages for mid in doomed))
    finally:
        await bot.stop()
