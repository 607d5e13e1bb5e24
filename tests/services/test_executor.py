"""The executor against the sandbox: evidence before the change, one audit record per outcome,
a refusal recorded with the server's code, and dry-run acting on nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.models import Message
from bot.moderation import actions as change
from bot.moderation.actions import Action
from bot.rest import RestClient
from bot.rest.client import new_message_id
from bot.sandbox import Sandbox
from bot.services.executor import Executor, RecordingExecutor, Status
from bot.store import Store


def posted(sandbox: Sandbox, text: str) -> tuple[dict[str, Any], Message]:
    """alice's message in #general, as the sandbox stores it and as the bot reads it."""
    doc = sandbox.post_as("alice", "general", text)
    return doc, Message.from_wire(doc)


def _delete(doc: dict[str, object], message: Message) -> Action:
    return Action(
        change.DeleteMessage(str(doc["rid"]), str(doc["_id"])),
        actor="rule:test",
        audit="message.deleted",
        targets={"message": message.id, "room": message.rid},
        evidence=(message,),
    )


async def test_evidence_is_stored_before_the_message_is_deleted(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    doc, message = posted(sandbox, "evidence of this")
    seen_when_deleting: list[int] = []
    original = rest.delete_message

    async def delete_watching(rid: str, mid: str) -> None:
        seen_when_deleting.append(len(store.evidence.evidence_for_message(mid)))
        await original(rid, mid)

    rest.delete_message = delete_watching  # type: ignore[method-assign]
    result = await Executor(rest=rest, audit=store.audit, retention_days=30).execute(_delete(doc, message))
    assert result.status is Status.DONE and len(result.evidence_ids) == 1
    assert seen_when_deleting == [1]
    assert doc["_id"] not in sandbox.workspace.messages
    outcomes = [r.outcome for r in store.audit.audit_records() if r.targets.get("message") == message.id]
    assert outcomes == ["ok"]


async def test_a_refusal_is_recorded_with_the_servers_code(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    doc, message = posted(sandbox, "gone before the bot acts")
    sandbox.delete_as("admin", str(doc["_id"]))
    result = await Executor(rest=rest, audit=store.audit, retention_days=30).execute(_delete(doc, message))
    assert result.status is Status.REFUSED and result.code
    outcomes = [r.outcome for r in store.audit.audit_records() if r.targets.get("message") == message.id]
    assert outcomes == ["ok", f"failed: {result.code}"]  # the evidence record, then the refusal


async def test_evidence_kept_by_a_crashed_attempt_is_not_stored_twice(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    doc, message = posted(sandbox, "the first attempt crashed")
    executor = Executor(rest=rest, audit=store.audit, retention_days=30)
    result = await executor.execute(_delete(doc, message), evidence_kept=True)
    assert result.done and store.evidence.evidence_for_message(message.id) == []


async def test_dry_run_acts_on_nothing(sandbox: Sandbox, rest: RestClient, tmp_path: Path) -> None:
    """Every kind of change, through the real executor with dry-run on: the workspace is exactly
    as before, nothing is stored as evidence, and the audit log says dry-run for each."""
    store = Store.open(tmp_path / "s.sqlite3")
    doc, message = posted(sandbox, "keep me")
    rid, mid = str(doc["rid"]), str(doc["_id"])
    alice = next(u for u in sandbox.seed_info()["users"] if u["username"] == "alice")
    every_change: list[change.Change] = [
        change.DeleteMessage(rid, mid),
        change.EditMessage(rid, mid, "censored"),
        change.PostMessage(rid, "posted"),
        change.MuteUser(rid, alice["id"], "alice"),
        change.UnmuteUser(rid, alice["id"], "alice"),
        change.KickUser(rid, "c", alice["id"]),
        change.BanUser(rid, alice["id"]),
        change.UnbanUser(rid, alice["id"]),
        change.SetReadOnly(rid, True),
        change.SetUserActive(alice["id"], False),
        change.PinMessage(mid),
        change.UnpinMessage(mid),
        change.SetAnnouncement(rid, "policy"),
        change.DismissReports(mid),
        change.AddRoomModerator(rid, "c", alice["id"]),
        change.JoinChannel(rid),
    ]
    before = repr(sandbox.workspace.messages), repr(sandbox.workspace.rooms), repr(sandbox.workspace.users)
    executor = Executor(rest=rest, audit=store.audit, retention_days=30, dry_run=lambda: True)
    for c in every_change:
        action = Action(
            c, actor="rule:test", audit="test.action", targets={"message": mid}, evidence=(message,)
        )
        assert (await executor.execute(action)).status is Status.DRY_RUN
    after = repr(sandbox.workspace.messages), repr(sandbox.workspace.rooms), repr(sandbox.workspace.users)
    assert after == before
    assert store.evidence.evidence_for_message(mid) == []
    outcomes = [r.outcome for r in store.audit.audit_records() if r.action == "test.action"]
    assert outcomes == ["dry-run"] * len(every_change)
    recorder = RecordingExecutor()
    assert (await recorder.execute(action)).status is Status.DRY_RUN and recorder.actions == [action]


async def test_a_post_carries_its_attachments_and_an_edit_without_ddp_keeps_them(
    sandbox: Sandbox, rest: RestClient, tmp_path: Path
) -> None:
    """An alert's buttons go out with it; chat.update cannot replace attachments, so an executor
    without a DDP connection edits the text only (the alert rendering tests cover DDP)."""
    store = Store.open(tmp_path / "s.sqlite3")
    rid = await rest.dm_room("mod1")
    buttons = ({"actions": [{"type": "button", "text": "Dismiss", "msg": "mod dismiss 1"}]},)
    executor = Executor(rest=rest, audit=store.audit, retention_days=30)
    mid = new_message_id()
    posted = change.PostMessage(rid, "alert", mid=mid, attachments=buttons)
    assert (await executor.execute(Action(posted, actor="rule:test"))).done
    assert sandbox.workspace.messages[mid]["attachments"][0]["actions"][0]["text"] == "Dismiss"
    edited = change.EditMessage(rid, mid, "alert, closed", attachments=())
    assert (await executor.execute(Action(edited, actor="rule:test"))).done
    message = sandbox.workspace.messages[mid]
    assert message["msg"] == "alert, closed" and message["attachments"]
    assert list(store.audit.audit_records()) == []  # audit=None: upkeep, not recorded
