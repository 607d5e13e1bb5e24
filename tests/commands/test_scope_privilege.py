"""A room moderator's reach ends at their rooms: `everywhere` is for bot moderators and admins,
whichever room the command also names. Commands are DMs to the bot, as moderators send them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot
from tests.helpers import ask, muted


def settings(sb: Sandbox, tmp_path: Path) -> Any:
    # mod2 is a bot moderator; mod1 only moderates general, random and staff.
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": ["mod2"]})


async def test_a_room_moderator_cannot_mute_everywhere_by_naming_their_room(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    try:
        answer = await ask(sandbox, "mod1", "mod mute @bob everywhere #general")
        assert "not both" in answer, answer
        answer = await ask(sandbox, "mod1", "mod mute @bob everywhere")
        assert "everywhere needs bot moderator" in answer, answer
        answer = await ask(sandbox, "mod1", "mod warn @bob spamming")  # no room: the ladder acts everywhere
        assert "everywhere needs bot moderator" in answer, answer
        assert muted(sandbox, "general") == [] and muted(sandbox, "random") == []
        # In their own room it still works.
        assert "muted" in await ask(sandbox, "mod1", "mod mute @bob #random")
        assert muted(sandbox, "random") == ["bob"]
        # Lifting everywhere is everywhere too.
        for text in ("mod unmute @bob everywhere #general", "mod unmute @bob everywhere"):
            answer = await ask(sandbox, "mod1", text)
            assert "not both" in answer or "everywhere needs bot moderator" in answer, answer
        assert muted(sandbox, "random") == ["bob"]
        # A bot moderator may.
        await ask(sandbox, "mod2", "mod mute @carol everywhere")
        assert "carol" in muted(sandbox, "general") and "carol" in muted(sandbox, "random")
    finally:
        await bot.stop()


async def test_a_room_moderator_cannot_block_or_unblock_everywhere(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    store = bot.app.store
    assert store is not None
    try:
        for text in ("mod block @bob everywhere #general spam", "mod block @bob everywhere spam"):
            answer = await ask(sandbox, "mod1", text)
            assert "not both" in answer or "everywhere needs bot moderator" in answer, answer
        assert store.blocks.blocked_users() == []
        await ask(sandbox, "mod2", "mod block @bob everywhere spam")
        assert [b.rid for b in store.blocks.blocked_users()] == [None]
        for text in ("mod unblock @bob everywhere #general", "mod unblock @bob everywhere"):
            answer = await ask(sandbox, "mod1", text)
            assert "not both" in answer or "everywhere needs bot moderator" in answer, answer
        assert [b.rid for b in store.blocks.blocked_users()] == [None]
    finally:
        await bot.stop()
