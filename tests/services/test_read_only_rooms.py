"""Raid locks make a room read-only; the bot must still moderate it.

The server checks ``post-readonly`` (or an explicit unmute of the acting user) before deleting
(canDeleteMessage), before editing (updateMessage runs canSendMessage for the editor) and before
posting (canSendMessage). Without it the bot could lock a raided room and then do nothing in it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import dms_from_bot, list_folder


def lists(root: Path) -> Path:
    return list_folder(
        root,
        banned=("badword\n", 'kind = "block"\naction = "delete"\n'),
        censored=("scam link\n", 'kind = "block"\naction = "censor"\n'),
    )


async def test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ws = sandbox.workspace
    bot_uid = sandbox._user("rcmod.bot").id
    room = ws.room_by_id_or_name(name="random")
    assert room is not None
    rid = room["_id"]
    # The raid lock, as the bot applies it; two members a moderator let speak anyway.
    ws.save_room_settings(bot_uid, rid, {"readOnly": True})
    ws.unmute_user(bot_uid, rid, "alice")
    ws.unmute_user(bot_uid, rid, "bob")
    settings = bot_settings(sandbox, tmp_path / "data", moderation={"wordlists": [str(lists(tmp_path))]})
    bot = await start_bot(settings)
    try:
        deleted = sandbox.post_as("alice", "random", "you are a badword")
        censored = sandbox.post_as("bob", "random", "click this scam link please")
        assert await until(lambda: deleted["_id"] not in ws.messages, within=30)
        assert await until(lambda: "****" in ws.messages[censored["_id"]]["msg"], within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "alice")) == 1, within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "bob")) == 1, within=30)
        assert bot.app.rest is not None
        await bot.app.rest.send_message(rid, "This room is read-only during a raid.")
    finally:
        await bot.stop()
    assert ws.messages[censored["_id"]]["msg"] == "click this **** **** please"
    notices = [m for m in ws.messages.values() if m["rid"] == rid and m["u"]["username"] == "rcmod.bot"]
    assert [m["msg"] for m in notices if not m.get("t")] == ["This room is read-only during a raid."]


async def test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts(
    sandbox: Sandbox,
) -> None:
    from bot.config import Credentials
    from bot.errors import PermissionDenied
    from bot.rest import RestClient
    from bot.sandbox.errors import PlainError

    ws = sandbox.workspace
    ws.set_permission_roles("post-readonly", ["admin", "owner", "moderator"])
    info = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    bot = RestClient(sandbox.url, Credentials(user_id=info["id"], token=info["token"]))
    room = ws.room_by_id_or_name(name="random")
    assert room is not None
    rid = room["_id"]
    first = sandbox.post_as("alice", "random", "before the lock")
    second = sandbox.post_as("alice", "random", "also before the lock")
    ws.save_room_settings(info["id"], rid, {"readOnly": True})
    try:
        for attempt in (
            lambda: bot.delete_message(rid, first["_id"]),
            lambda: bot.update_message(rid, second["_id"], "edited"),
            lambda: bot.send_message(rid, "a notice"),
        ):
            try:
                await attempt()
            except PermissionDenied as exc:
                assert exc.code == "room-read-only"
            else:
                raise AssertionError("a read-only room let the bot act without post-readonly")
        with pytest.raises(PlainError, match=r"You can.t delete messages because the room is readonly\."):
            ws.delete_message(info["id"], first["_id"])
        # An explicit unmute of the acting user is the server's other way in.
        ws.unmute_user(info["id"], rid, "rcmod.bot")
        await bot.delete_message(rid, first["_id"])
        await bot.update_message(rid, second["_id"], "edited")
        await bot.send_message(rid, "a notice")
    finally:
        await bot.close()
    assert first["_id"] not in ws.messages and ws.messages[second["_id"]]["msg"] == "edited"
