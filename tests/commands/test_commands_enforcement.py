"""/mod block, unblock, purge, confirm and policy over DM against the sandbox: privileges as
declared (a room moderator blocks in their room, only bot moderators everywhere), purges previewed
then confirmed by the same moderator, dry run deletes nothing, policies listed, synced, set,
re-targeted and removed from chat (audited; a policy file wins)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.sandbox import Sandbox
from tests.conftest import RunningBot, bot_settings, start_bot, until
from tests.helpers import ask
from tests.services.test_policies import CONDUCT, pinned_in, write_policy

CONDUCT_TEXT = CONDUCT.split("---\n")[2].strip("\n")


def settings(sb: Sandbox, tmp_path: Path, **extra: Any) -> Any:
    return bot_settings(sb, tmp_path / "data", moderation={"moderators": ["mod1"]}, **extra)


async def test_block_in_a_room_and_everywhere(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "Say where" in await ask(sandbox, "mod1", "mod block @bob")
    # mod2 moderates #general (a room role), but is no bot moderator: not everywhere.
    assert "everywhere needs bot moderator" in await ask(sandbox, "mod2", "mod block @bob everywhere spam")
    assert "needs room moderator" in await ask(sandbox, "carol", "mod block @bob #general")
    assert "bob" in await ask(sandbox, "mod2", "mod block @bob #general spamming")
    in_general = sandbox.post_as("bob", "general", "still here?")["_id"]
    in_random = sandbox.post_as("bob", "random", "and here")["_id"]
    assert await until(lambda: in_general not in sandbox.workspace.messages)
    assert await until(lambda: in_random in bot.recorder.message_ids())
    assert in_random in sandbox.workspace.messages  # blocked in #general only
    store = bot.app.store
    assert store is not None and store.evidence.evidence_for_message(in_general)  # evidence before removal

    assert "carol" in await ask(sandbox, "mod1", "mod block @carol everywhere flooding")
    anywhere = sandbox.post_as("carol", "random", "hello")["_id"]
    assert await until(lambda: anywhere not in sandbox.workspace.messages)
    assert "Unblocked" in await ask(sandbox, "mod1", "mod unblock @carol everywhere")
    back = sandbox.post_as("carol", "random", "hello again")["_id"]
    assert await until(lambda: back in bot.recorder.message_ids())
    assert back in sandbox.workspace.messages
    await bot.stop()


async def test_purge_is_previewed_then_confirmed_by_the_same_moderator(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    doomed = [sandbox.post_as("bob", "general", f"spam {i}")["_id"] for i in range(3)]
    kept = sandbox.post_as("bob", "random", "spam elsewhere")["_id"]
    dry = await ask(sandbox, "mod2", "mod purge user @bob #general --dry-run")
    assert "3 message(s)" in dry and "nothing was deleted" in dry
    assert all(mid in sandbox.workspace.messages for mid in doomed)
    assert "everywhere" in await ask(sandbox, "mod2", "mod purge user @bob")  # no silent whole workspace
    preview = await ask(sandbox, "mod2", "mod purge user @bob in #general")
    m = re.search(r"/mod confirm (\d+)", preview)
    assert m is not None and "3 message(s)" in preview
    assert "No purge" in await ask(sandbox, "mod1", f"mod confirm {m.group(1)}")  # not theirs
    done = await ask(sandbox, "mod2", f"mod confirm {m.group(1)}")
    assert "3/3" in done or "3 of 3" in done  # the progress DM or the reply, whichever lands first
    assert not any(mid in sandbox.workspace.messages for mid in doomed)
    assert kept in sandbox.workspace.messages
    store = bot.app.store
    assert store is not None and all(store.evidence.evidence_for_message(mid) for mid in doomed)
    assert "does not moderate" in await ask(sandbox, "carol", "mod purge term spam #random")
    assert kept in sandbox.workspace.messages
    await bot.stop()


async def conduct_pinned(sandbox: Sandbox, tmp_path: Path) -> RunningBot:
    """A bot whose policy folder holds the conduct policy, once it is pinned in #general."""
    folder = tmp_path / "policies"
    write_policy(folder, "conduct", CONDUCT)
    bot = await start_bot(settings(sandbox, tmp_path, policy={"dir": str(folder), "sync_interval": 600}))
    assert await until(lambda: len(pinned_in(sandbox, "general")) == 1)
    return bot


async def test_policy_list_and_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await conduct_pinned(sandbox, tmp_path)
    assert "conduct" in await ask(sandbox, "mod1", "mod policy list")
    assert "needs bot moderator" in await ask(sandbox, "mod2", "mod policy list")
    assert "nothing to do" in await ask(sandbox, "mod1", "mod policy sync")
    await bot.stop()


async def test_policy_set_rooms_and_remove_in_chat(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "policies"  # where conduct_pinned wrote the conduct policy
    bot = await conduct_pinned(sandbox, tmp_path)
    store = bot.app.store
    assert store is not None

    def pinned(room: str) -> list[str]:
        return [str(m["msg"]) for m in pinned_in(sandbox, room)]

    def versions() -> int:
        return len(store.policies.policy_history("rules"))

    assert "needs bot moderator" in await ask(sandbox, "mod2", "mod policy set rules Be kind")
    assert "text is required" in await ask(sandbox, "mod1", "mod policy set rules")
    # Multi-line Markdown in one DM: the text is kept exactly as typed.
    text = "**House rules**\n\n- be kind\n- no spam"
    saved = await ask(sandbox, "mod1", f"mod policy set rules\n{text}")
    assert "v1 saved" in saved and "no rooms yet" in saved
    assert text in await ask(sandbox, "mod1", "mod policy show rules")
    unknown = await ask(sandbox, "mod1", "mod policy rooms rules #random #nope")
    assert "I cannot see" in unknown and "#nope" in unknown and "#random" not in unknown.split("\n")[0]
    assert "Expected #room" in await ask(sandbox, "mod1", "mod policy rooms rules random")
    assert versions() == 1  # nothing changed
    assert "v2 now goes to ` #random `" in await ask(sandbox, "mod1", "mod policy rooms rules #random")
    assert await until(
        lambda: pinned("random") == [CONDUCT_TEXT, text] or pinned("random") == [text, CONDUCT_TEXT]
    )
    assert "v3 saved" in await ask(sandbox, "mod1", "mod policy set rules Be kinder.")
    assert await until(lambda: sorted(pinned("random")) == sorted([CONDUCT_TEXT, "Be kinder."]))
    assert "every public channel" in await ask(sandbox, "mod1", "mod policy rooms rules *")
    assert await until(lambda: "Be kinder." in pinned("general") and "Be kinder." in pinned("random"))
    assert "Be kinder." not in pinned("staff")  # a private group is no public channel

    assert "removed" in await ask(sandbox, "mod1", "mod policy remove rules")
    assert await until(lambda: not any("kinder" in m for r in ("general", "random") for m in pinned(r)))
    assert "no policy named" in await ask(sandbox, "mod1", "mod policy show rules")
    assert "Usage: `/mod policy list`" in await ask(sandbox, "mod1", "mod policy list everything")

    # A file wins: over a chat change of a file's policy, and over a chat policy a file appears for.
    refused = await ask(sandbox, "mod1", "mod policy set conduct Anything goes")
    assert "defined by the file conduct.md" in refused and "Nothing was changed" in refused
    await ask(sandbox, "mod1", "mod policy set faq Ask in #support.")
    await ask(sandbox, "mod1", "mod policy rooms faq #random")
    assert await until(lambda: "Ask in #support." in pinned("random"))
    write_policy(folder, "faq", "---\nrooms: [random]\n---\nFrom the file\n")
    # Before the next sync the file is pending, after it the file's version replaced chat's: the
    # reply says so either way (a background sync may already have taken the file in).
    early = await ask(sandbox, "mod1", "mod policy show faq")
    assert "faq.md also defines it and wins" in early or "faq.md replaced v2" in early
    await ask(sandbox, "mod1", "mod policy sync")
    assert sorted(pinned("random")) == sorted([CONDUCT_TEXT, "From the file"])
    late = await ask(sandbox, "mod1", "mod policy show faq")
    assert "(file)" in late and "faq.md replaced v2, set in chat by ` mod1 `" in late
    assert "faq" in await ask(sandbox, "mod1", "mod policy list")

    mod1 = next(u["id"] for u in sandbox.seed_info()["users"] if u["username"] == "mod1")
    changes = [r for r in store.audit.audit_records() if r.action == "policy.changed"]
    assert [(r.targets["policy"], r.reason["change"], r.outcome) for r in changes] == [
        ("rules", "set", "ok"),
        ("rules", "rooms", "ok"),
        ("rules", "set", "ok"),
        ("rules", "rooms", "ok"),
        ("rules", "remove", "ok"),
        ("conduct", "set", "refused: a policy file wins"),
        ("faq", "set", "ok"),
        ("faq", "rooms", "ok"),
    ]
    assert {r.actor for r in changes} == {mod1}
    await bot.stop()


async def test_dry_run_records_block_actions_without_deleting(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "on" in (await ask(sandbox, "admin", "mod dryrun on")).lower()
    assert "bob" in await ask(sandbox, "mod1", "mod block @bob everywhere testing")
    kept = sandbox.post_as("bob", "general", "would be removed")["_id"]
    store = bot.app.store
    assert store is not None
    assert await until(
        lambda: any(
            r.outcome == "dry-run" and r.targets.get("message") == kept for r in store.audit.audit_records()
        )
    )
    assert kept in sandbox.workspace.messages
    await bot.stop()


async def test_resolve_block_and_purge(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    first = sandbox.post_as("bob", "general", "buy followers now")
    assert "report is #1" in await ask(sandbox, "alice", f"report spam {first['_id']}")
    answer = await ask(sandbox, "mod1", "mod resolve 1 block")
    assert "bob" in answer
    blocked = sandbox.post_as("bob", "random", "and again")["_id"]
    assert await until(lambda: blocked not in sandbox.workspace.messages)  # blocked everywhere
    assert "already closed" in await ask(sandbox, "mod1", "mod resolve 1 dismiss")

    second = sandbox.post_as("carol", "general", "more spam")
    assert "report is #2" in await ask(sandbox, "alice", f"report spam {second['_id']}")
    preview = await ask(sandbox, "mod1", "mod resolve 2 purge")
    m = re.search(r"/mod confirm (\d+)", preview)
    assert m is not None and "carol" in preview
    assert second["_id"] in sandbox.workspace.messages  # a preview deletes nothing
    assert "1/1" in (done := await ask(sandbox, "mod1", f"mod confirm {m.group(1)}")) or "1 of 1" in done
    assert second["_id"] not in sandbox.workspace.messages
    await bot.stop()


async def test_purge_and_policy_sync_in_dry_run_mode_act_on_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    """Dry-run mode is the executor's: a purge is only previewed, a policy sync through the real
    executor records what it would do and changes nothing on the server."""
    folder = tmp_path / "policies"
    folder.mkdir()
    bot = await start_bot(settings(sandbox, tmp_path, policy={"dir": str(folder), "sync_interval": 600}))
    store = bot.app.store
    assert store is not None
    assert "on" in (await ask(sandbox, "admin", "mod dryrun on")).lower()
    doomed = [sandbox.post_as("bob", "general", f"spam {i}")["_id"] for i in range(3)]
    preview = await ask(sandbox, "mod2", "mod purge user @bob #general")
    assert "3 message(s)" in preview and "nothing was deleted" in preview and "/mod confirm" not in preview
    assert all(mid in sandbox.workspace.messages for mid in doomed)
    assert not any(store.evidence.evidence_for_message(mid) for mid in doomed)

    write_policy(folder, "conduct", CONDUCT)
    synced = await ask(sandbox, "mod1", "mod policy sync")
    assert "dry-run: would #general: post conduct v1 and pin it" in synced
    assert pinned_in(sandbox, "general") == [] and store.policies.live_policy_messages() == []
    assert not any(CONDUCT_TEXT in str(m["msg"]) for m in sandbox.workspace.messages.values())
    pins = [r for r in store.audit.audit_records() if r.action == "policy.pinned"]
    assert pins and {r.outcome for r in pins} == {"dry-run"}
    assert not store.evidence.all_evidence_rows()

    assert "off" in (await ask(sandbox, "admin", "mod dryrun off")).lower()
    await ask(sandbox, "mod1", "mod policy sync")
    assert len(pinned_in(sandbox, "general")) == 1  # the dry run left nothing half done
    await bot.stop()
