"""/mod against the sandbox: every command honours its declared privilege (room roles count only in
their room), and the actions land: delete, resolve, dismiss, appoint, dry run, test, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.audit import actions
from bot.sandbox import Sandbox
from tests.backends import CLI_FINDS_THE_FILE
from tests.conftest import bot_settings, handled, start_bot, until
from tests.helpers import ask, dms_from_bot


def settings(sb: Sandbox, tmp_path: Path, **moderation: Any) -> Any:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "watch.txt").write_text("badword\n")
    return bot_settings(
        sb, tmp_path / "data", moderation={"moderators": ["mod1"], "wordlists": [str(lists)], **moderation}
    )


async def test_privileges_are_checked_and_denials_say_what_is_needed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    denied = await ask(sandbox, "alice", "mod status")
    assert denied == "`/mod status` needs bot moderator or above; you are member."
    status = await ask(sandbox, "mod1", "mod status")
    assert "Open reports: 0" in status and "Dry run: off" in status and "1 lists, 1 terms" in status
    assert "Protections: flood alert, repeat alert, mentions alert, links off, raid off" in status
    assert "Live mutes: 0; rooms locked against a raid: none" in status
    member_help = await ask(sandbox, "alice", "mod help")
    assert "/report" in member_help and "/mod status" not in member_help
    assert "/mod dryrun" in await ask(sandbox, "admin", "help")
    assert "needs admin" in await ask(sandbox, "mod1", "mod dryrun on")
    assert "Unknown command" in await ask(sandbox, "mod1", "mod frobnicate")
    assert "I understand" in await ask(sandbox, "alice", "hello bot")
    answered = len(dms_from_bot(sandbox, "alice"))
    again = sandbox.dm_as("alice", "rcmod.bot", "hello again")["_id"]  # one hint per conversation, not a loop
    assert await until(lambda: handled(bot.app.store, again))
    assert len(dms_from_bot(sandbox, "alice")) == answered
    assert "/report" in await ask(sandbox, "alice", "help")  # commands are still answered
    store = bot.app.store
    assert store is not None
    refused = [r for r in store.audit.audit_records() if r.action == actions.COMMAND_REFUSED]
    assert len(refused) == 2
    await bot.stop()


async def test_room_moderators_may_delete_in_their_room_only(sandbox: Sandbox, tmp_path: Path) -> None:
    admin = sandbox.workspace.user_by_username("admin")
    carol = sandbox.workspace.user_by_username("carol")
    assert admin is not None and carol is not None
    bot = await start_bot(settings(sandbox, tmp_path))
    msg = sandbox.post_as("bob", "general", "rude words")
    assert "needs room moderator" in await ask(sandbox, "carol", f"mod delete {msg['_id']}")
    assert msg["_id"] in sandbox.workspace.messages
    answer = await ask(sandbox, "mod2", f"mod delete {msg['_id']} too rude")  # moderator of general
    assert "Deleted" in answer and msg["_id"] not in sandbox.workspace.messages
    store = bot.app.store
    assert store is not None
    assert store.evidence.evidence_for_message(msg["_id"])  # evidence first
    # Appointing: a bot moderator may; a member may not; the new moderator then may delete there.
    assert "needs room owner" in await ask(sandbox, "carol", "mod appoint @carol #random")
    assert "now a moderator" in await ask(sandbox, "mod1", "mod appoint @carol #random")
    random = sandbox.workspace.room_by_id_or_name(name="random")
    assert random is not None
    assert "moderator" in sandbox.workspace.subscriptions[(random["_id"], carol.id)]["roles"]
    other = sandbox.post_as("bob", "random", "more rude words")
    assert "Deleted" in await ask(sandbox, "carol", f"mod delete {other['_id']}")
    third = sandbox.post_as("bob", "general", "rude in general")
    assert "needs room moderator" in await ask(sandbox, "carol", f"mod delete {third['_id']}")
    await bot.stop()


async def test_resolve_dismisses_natively_and_tells_the_reporter(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    msg = sandbox.post_as("bob", "general", "borderline joke")
    assert "#1" in await ask(sandbox, "alice", f"report harassment {msg['_id']}")
    assert "#1 · harassment" in await ask(sandbox, "mod1", "mod reports")
    answer = await ask(sandbox, "mod1", "mod resolve 1 dismiss just a joke")
    assert "closed" in answer
    [native] = sandbox.workspace.reports
    assert native["_hidden"] is True  # dismissed in Rocket.Chat's moderation console
    assert "was handled" in dms_from_bot(sandbox, "alice")[-1]["msg"]

    # The report's DM is edited to say so (it may have landed after mod1's first command's answer).
    def reports() -> list[dict[str, Any]]:
        return [m for m in dms_from_bot(sandbox, "mod1") if "rcmod report 1" in str(m["msg"])]

    assert await until(lambda: len(reports()) == 1 and "dismissed by mod1" in reports()[0]["msg"])
    assert "already closed" in await ask(sandbox, "mod1", "mod resolve 1 dismiss")
    assert "No open reports" in await ask(sandbox, "mod1", "mod reports")
    assert "no report #9" in await ask(sandbox, "mod1", "mod resolve 9 dismiss")
    assert msg["_id"] in sandbox.workspace.messages
    await bot.stop()


async def test_resolve_delete_removes_the_message(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    msg = sandbox.post_as("bob", "random", "doxxing someone")
    assert "#1" in await ask(sandbox, "carol", f"report privacy {msg['_id']}")
    assert "closed" in await ask(sandbox, "mod1", "mod resolve 1 delete")
    assert msg["_id"] not in sandbox.workspace.messages
    assert sandbox.workspace.reports[0]["_hidden"] is True
    assert "message was removed" in dms_from_bot(sandbox, "carol")[-1]["msg"]
    await bot.stop()


async def test_dismiss_edits_every_copy_of_an_alert(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path, moderators=["mod1", "mod2"]))
    sandbox.post_as("bob", "general", "a badword here")
    assert await until(lambda: len(dms_from_bot(sandbox, "mod2")) == 1)
    assert "dismissed" in await ask(sandbox, "mod1", "mod dismiss 1")
    for mod in ("mod1", "mod2"):
        assert await until(lambda mod=mod: "dismissed by mod1" in dms_from_bot(sandbox, mod)[0]["msg"])  # type: ignore[misc]
    assert "already closed" in await ask(sandbox, "mod1", "mod dismiss 1")
    assert "no alert 5" in await ask(sandbox, "mod1", "mod dismiss 5")
    await bot.stop()


async def test_dry_run_test_and_reload(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
    msg = sandbox.post_as("bob", "general", "keep me")
    assert "Dry run" in await ask(sandbox, "mod1", f"mod delete {msg['_id']}")
    assert msg["_id"] in sandbox.workspace.messages
    assert "Dry run: on" in await ask(sandbox, "mod1", "mod status")
    assert "Dry run is off" in await ask(sandbox, "admin", "mod dryrun off")
    explained = await ask(sandbox, "mod1", "mod test a b.a.d.w.o.r.d @all")
    assert "MATCH 'badword'" in explained and "@all" not in explained
    (tmp_path / "lists" / "watch.txt").write_text("badword\nworseword\n")
    assert "1 lists, 2 terms" in await ask(sandbox, "mod1", "mod reload")
    await bot.stop()


def chat_terms(bot: Any) -> dict[str, list[str]]:
    store = bot.app.store
    assert store is not None
    return {c.name: [t.term for t in c.terms] for c in store.lists.lists()}


async def test_allow_and_deny_edit_chat_lists_that_are_always_loaded(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings(sandbox, tmp_path))
    assert "needs bot moderator" in await ask(sandbox, "alice", "mod deny casino")
    assert "is now matched" in await ask(sandbox, "mod1", 'mod deny "casino night"')
    assert "already in list" in await ask(sandbox, "mod1", 'mod deny "casino night"')
    assert chat_terms(bot) == {"runtime": ["casino night"]}
    sandbox.post_as("bob", "general", "join our casino night!")
    assert await until(lambda: any("casino night" in m["msg"] for m in dms_from_bot(sandbox, "mod1")))
    assert "not made" in await ask(sandbox, "mod1", "mod deny ca*sino")  # a term the list format refuses
    assert chat_terms(bot) == {"runtime": ["casino night"]}
    assert "never matches" in await ask(sandbox, "mod1", "mod allow casino night")
    before = len(dms_from_bot(sandbox, "mod1"))
    sandbox.post_as("carol", "random", "casino night again")
    sandbox.post_as("carol", "random", "and a badword")  # still matched: the lists are loaded
    assert await until(lambda: any("badword" in m["msg"] for m in dms_from_bot(sandbox, "mod1")))
    assert not any("again" in m["msg"] for m in dms_from_bot(sandbox, "mod1")[before:])
    store = bot.app.store
    assert store is not None
    mod1 = sandbox.workspace.user_by_username("mod1")
    assert mod1 is not None
    edits = [r for r in store.audit.audit_records() if r.action == actions.LIST_EDITED]
    assert [(r.actor, r.reason["op"], r.reason["term"]) for r in edits] == [
        (mod1.id, "deny", "casino night"),
        (mod1.id, "allow", "casino night"),
    ]
    assert {c.name: (c.options, c.terms[0].actor) for c in store.lists.lists()} == {
        "runtime": (None, mod1.id),
        "runtime-allow": ('kind = "allow"\n', mod1.id),
    }
    await bot.stop()
    # Nothing of it is in the data folder: the store holds it, and a restart loads it from there.
    assert not (tmp_path / "data" / "lists").exists()
    bot2 = await start_bot(settings_again(sandbox, tmp_path))
    assert bot2.app.matcher is not None
    assert {o.name for o in bot2.app.matcher.lists} >= {"watch", "runtime", "runtime-allow"}
    before = len(dms_from_bot(sandbox, "mod1"))
    allowed = sandbox.post_as("carol", "random", "casino night after the restart")
    assert await until(lambda: handled(bot2.app.store, allowed["_id"]))
    assert dms_from_bot(sandbox, "mod1")[before:] == []
    await bot2.stop()


def settings_again(sb: Sandbox, tmp_path: Path) -> Any:
    return bot_settings(
        sb,
        tmp_path / "data",
        moderation={"moderators": ["mod1"], "wordlists": [str(tmp_path / "lists")]},
    )


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_rcmod_match_loads_the_runtime_lists_like_the_bot(tmp_path: Path) -> None:
    import argparse
    import io
    import json

    from bot.cli import match as match_command

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "watch.txt").write_text("badword\n")
    runtime = tmp_path / "data" / "lists"
    runtime.mkdir(parents=True)
    (runtime / "runtime.txt").write_text("casino night\n")
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(wordlists=[str(lists)], jsonl=False, explain=None, room=None)
    env = {"RCMOD_DATA_DIR": str(tmp_path / "data")}
    code = match_command.run(args, io.StringIO("casino night and a badword\n"), out, err, env)
    assert code == 0
    found = {m["list"] for m in json.loads(out.getvalue())["matches"]}
    assert found == {"watch", "runtime"}
    # Once the bot's store has them, they are read from there (the files are history).
    from bot.store import Store
    from bot.store.lists import ChatListEdit, read_file_lists

    store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
    store.lists.import_once(read_file_lists(runtime))
    store.lists.add_term(ChatListEdit("runtime", "roulette", "u1", "deny"))
    store.close()
    (runtime / "runtime.txt").unlink()
    out = io.StringIO()
    code = match_command.run(args, io.StringIO("casino night roulette\n"), out, err, env)
    assert code == 0
    assert [m["term"] for m in json.loads(out.getvalue())["matches"]] == ["casino night", "roulette"]


async def test_lists_an_earlier_version_kept_as_files_are_imported_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    old = tmp_path / "data" / "lists"
    old.mkdir(parents=True)
    (old / "runtime.txt").write_text("casino night\n")
    (old / "runtime-allow.txt").write_text("harmless badword\n")
    (old / "runtime-allow.toml").write_text('# written by /mod allow\nkind = "allow"\n')
    bot = await start_bot(settings(sandbox, tmp_path))
    assert chat_terms(bot) == {"runtime": ["casino night"], "runtime-allow": ["harmless badword"]}
    assert "is now matched" in await ask(sandbox, "mod1", "mod deny roulette")
    await bot.stop()
    # The store is where they live now: the files are neither read nor imported again.
    (old / "runtime.txt").write_text("something else\n")
    bot2 = await start_bot(settings_again(sandbox, tmp_path))
    assert chat_terms(bot2) == {
        "runtime": ["casino night", "roulette"],
        "runtime-allow": ["harmless badword"],
    }
    assert bot2.app.matcher is not None
    assert [m.term for m in bot2.app.matcher.scan("something else at the casino night")] == ["casino night"]
    assert bot2.app.matcher.scan("only a harmless badword") == []
    await bot2.stop()
