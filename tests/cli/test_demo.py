"""The README's first command runs the demo: it must succeed, and check its own claims."""

from __future__ import annotations

import io

from bot.cli.demo import run_demo


async def test_demo_runs_and_its_checks_pass() -> None:
    out = io.StringIO()
    assert await run_demo(out) == 0, out.getvalue()[-2000:]
    text = out.getvalue()
    assert "demo ok" in text
    assert "FAILED" not in text
    assert "missing 0, handled twice 0" in text
    assert "check: the flood was stopped: mallory muted in #general, the rest refused: ok" in text
    # People and rooms by name: the bot's account, and a DM by whom it is with.
    assert "connected, logged in as rcmod.bot," in text
    # Whether the DM's subscription reaches the bot while narrated depends on timing; when it
    # does, the DM is named by whom it is with, never as a room "#mod1".
    joined = [line for line in text.splitlines() if "joined a direct message" in line]
    people = {"admin", "mod1", "mod2", "alice", "bob", "carol"}
    assert all(line.rsplit(" with ", 1)[-1] in people for line in joined), joined
    assert "#mod1" not in text and "#mod2" not in text
