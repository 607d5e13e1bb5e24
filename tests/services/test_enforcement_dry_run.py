"""`/mod dryrun on` through the real executor: a block-list hit and a protection trigger act on
nothing in the sandbox (the messages stay, no evidence is stored) and the audit log says dry-run;
the bot's own upkeep (a command typed in a room removed, the answer sent) still happens."""

from __future__ import annotations

from pathlib import Path

from bot.models import Message
from bot.moderation.actions import Action, DeleteMessage
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.services.executor import Executor, Status
from bot.store import Store
from tests.conftest import Recorder, bot_settings, start_bot, until
from tests.helpers import ask, block_lists, dms_from_bot, post, triggered


async def test_dry_run_blocks_and_protections_act_on_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(
        sandbox,
        tmp_path / "data",
        moderation={"wordlists": [str(block_lists(tmp_path))], "moderators": ["mod2"]},
        protections={
            "probation_days": 0,
            "flood": {"mode": "off"},
            "repeat": {"mode": "act", "rooms": 2, "copies": 3, "seconds": 300},
            "links": {"mode": "act", "block_domains": ["spam.example"], "hold_probation": False},
        },
    )
    bot = await start_bot(settings, Recorder())
    try:
        assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
        blocked = await post(bot, sandbox, "alice", "general", "a badword here")
        first = await post(bot, sandbox, "bob", "general", "Buy cheap followers at my shop today")
        second = await post(bot, sandbox, "bob", "random", "Buy cheap followers at my shop today")
        link = await post(bot, sandbox, "carol", "general", "deals at https://spam.example/x")
        store = bot.app.store
        assert store is not None
        assert await until(lambda: len(triggered(bot, "repeat")) == 1 and len(triggered(bot, "links")) == 1)
        for mid in (blocked, first, second, link):
            assert mid in sandbox.workspace.messages
            assert store.evidence.evidence_for_message(mid) == []
        block = [
            r.outcome
            for r in store.audit.audit_records()
            if r.targets.get("message") == blocked and r.action == "message.deleted"
        ]
        assert block == ["dry-run"]  # the moderators' alert is recorded beside it, as always
        assert {r.outcome for r in triggered(bot, "repeat") + triggered(bot, "links")} == {"dry-run"}
        assert store.sanctions.held_by_mid(link) is None
        assert await until(
            lambda: any("Dry run is on: I would" in m["msg"] for m in dms_from_bot(sandbox, "mod2"))
        )
        assert dms_from_bot(sandbox, "alice") == []  # nobody is told a message was removed
    finally:
        await bot.stop()


async def test_a_command_typed_in_a_room_is_removed_in_a_dry_run_too(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.workspace.set_setting("Message_AllowUnrecognizedSlashCommand", True)
    bot = await start_bot(bot_settings(sandbox, tmp_path / "data"), Recorder())
    try:
        assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
        command = sandbox.post_as("admin", "general", "/mod status")
        assert await until(lambda: command["_id"] not in sandbox.workspace.messages)
        assert await until(lambda: any("Dry run: on" in m["msg"] for m in dms_from_bot(sandbox, "admin")))
    finally:
        await bot.stop()


async def test_upkeep_exempt_from_the_dry_run_is_carried_out_unaudited(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    executor = Executor(rest=rest, audit=store.audit, retention_days=30, dry_run=lambda: True)
    doc = sandbox.post_as("alice", "general", "/mod help")
    message = Message.from_wire(doc)
    kept = await executor.execute(Action(DeleteMessage(message.rid, message.id), actor="alice"))
    assert kept.status is Status.DRY_RUN and doc["_id"] in sandbox.workspace.messages
    upkeep = Action(DeleteMessage(message.rid, message.id), actor="alice", dry_run_applies=False)
    assert (await executor.execute(upkeep)).done
    assert doc["_id"] not in sandbox.workspace.messages and list(store.audit.audit_records()) == []


async def test_moderators_changes_in_a_dry_run_are_recorded_not_made(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`/mod appoint`, a block with deactivation and `/mod restore` answer what they would do."""
    links = {"mode": "act", "block_domains": ["spam.example"], "hold_probation": False}
    settings = bot_settings(
        sandbox,
        tmp_path / "data",
        moderation={"moderators": ["mod1"]},
        protections={"probation_days": 0, "flood": {"mode": "off"}, "links": links},
    )
    sandbox.workspace.grant_permission_to_role("edit-other-user-active-status", "bot")
    bot = await start_bot(settings, Recorder())
    enforcer, store = bot.app.enforcer, bot.app.store
    carol, bob = sandbox.workspace.user_by_username("carol"), sandbox.workspace.user_by_username("bob")
    random = sandbox.workspace.room_by_id_or_name(name="random")
    assert enforcer is not None and store is not None and carol is not None and bob is not None
    assert random is not None
    try:
        held = await post(bot, sandbox, "alice", "general", "deals at https://spam.example/x")
        assert await until(lambda: held not in sandbox.workspace.messages)  # held before the dry run
        assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
        assert "would be made a moderator" in await ask(sandbox, "mod1", "mod appoint @carol #random")
        assert "moderator" not in sandbox.workspace.subscriptions[(random["_id"], carol.id)].get("roles", [])
        line = await enforcer.block_user(
            "bob", rid=None, reason="spam", actor="admin", deactivate=True, confirmed=True
        )
        assert "would be deactivated" in line and bob.active
        assert "would be restored" in await ask(sandbox, "mod1", "mod restore 1")
        outcomes = {
            r.action: r.outcome
            for r in store.audit.audit_records()
            if r.action in ("moderator.appointed", "user.blocked", "message.restored") and r.outcome != "ok"
        }
        assert outcomes == dict.fromkeys(
            ("moderator.appointed", "user.blocked", "message.restored"), "dry-run"
        )
        assert "Dry run is off" in await ask(sandbox, "admin", "mod dryrun off")
        assert "restored in its room" in await ask(sandbox, "mod1", "mod restore 1")  # still held
    finally:
        await bot.stop()
