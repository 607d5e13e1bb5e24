"""Block lists and blocked users against the sandbox: delete and censor on arrival, evidence stored
before the message is touched, the author told privately, the moderators alerted, audit records."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from bot.config import Credentials
from bot.models import Message, UserRef
from bot.moderation import load_matcher
from bot.moderation.blocking import BlockedUser, author_notice, censor_text, decide_block
from bot.sandbox import Sandbox
from bot.sandbox.workspace import MessageChanged, RoomNotify
from bot.store import Database, Store
from bot.store.db import StoreError
from tests.conftest import bot_settings, handled, start_bot, until
from tests.helpers import block_lists, bot_rest, dms_from_bot, seed_user

if TYPE_CHECKING:
    from bot.rest import RestClient
    from bot.services.enforcement import Enforcer
    from bot.services.outbox import Outbox


def outbox(store: Store, rest: RestClient, clock: Any = None) -> Outbox:
    """The outbox that carries the author's notice (delivered by ``deliver_due``)."""
    import time

    from bot.config import Settings
    from bot.metrics import Metrics
    from bot.services.executor import Executor
    from bot.services.outbox import Outbox

    return Outbox(
        alerts=store.alerts,
        audit=store.audit,
        rest=rest,
        executor=Executor(rest=rest, audit=store.audit, retention_days=90),
        moderation=Settings().moderation,
        site_url=lambda: "",
        metrics=Metrics(),
        clock=clock or time.time,
    )


def enforcer_for(store: Store, rest: RestClient, notifier: Outbox, lists: Path, **kw: Any) -> Enforcer:
    """The enforcer of the block lists in ``lists``, acting through the bot's real executor."""
    from bot.config import Settings
    from bot.services.enforcement import Enforcer
    from bot.services.executor import Executor

    matcher = load_matcher([lists])
    return Enforcer(
        audit=store.audit,
        evidence=store.evidence,
        blocks=store.blocks,
        rest=rest,
        executor=Executor(rest=rest, audit=store.audit, retention_days=90),
        outbox=notifier,
        matcher=lambda: matcher,
        moderation=Settings().moderation,
        **kw,
    )


def _message(text: str, attachments: tuple[Any, ...] = ()) -> Message:
    from datetime import UTC, datetime

    return Message(
        id="m1", rid="r1", text=text, ts=datetime(2026, 1, 1, tzinfo=UTC), author=UserRef("u1", "alice"),
        attachments=attachments,
    )  # fmt: skip


# -- the pure rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("a badword here", [(2, 9)], "a ******* here"),
        ("scam link!", [(0, 9)], "**** ****!"),
        ("xx", [(0, 1), (0, 2)], "**"),
        ("", [], ""),
    ],
)
def test_censor_text(text: str, spans: list[tuple[int, int]], expected: str) -> None:
    assert censor_text(text, spans) == expected


def test_decide_block_rules(tmp_path: Path) -> None:
    from bot.models import AttachmentText

    censor = load_matcher([block_lists(tmp_path / "c", action="censor")])
    delete = load_matcher([block_lists(tmp_path / "d")])

    def found(matcher: Any, message: Message) -> list[tuple[str, list[Any]]]:
        return [(t, matcher.scan(t)) for t in message.scannable_texts() if matcher.scan(t)]

    plain = _message("hello there")
    assert decide_block(plain, found(delete, plain)) is None
    bad = _message("a badword here")
    d = decide_block(bad, found(delete, bad))
    assert d is not None and d.action == "delete" and d.reason.term == "badword"
    c = decide_block(bad, found(censor, bad))
    assert c is not None and c.action == "censor" and c.censored_text == "a ******* here"
    # A censor list whose term is in an attachment cannot be censored by chat.update: delete.
    att = _message("look", (AttachmentText(title="badword"),))
    a = decide_block(att, found(censor, att))
    assert a is not None and a.action == "delete"
    # A blocked author loses the message whatever it says; only in the rooms the block covers.
    assert decide_block(plain, [], blocked=BlockedUser("u1", "alice")) is not None
    assert decide_block(plain, [], blocked=BlockedUser("u1", "alice", rid="elsewhere")) is None


def test_author_notice_names_the_term_only_when_the_list_allows(tmp_path: Path) -> None:
    bad = _message("a badword here")
    for reveal in (False, True):
        m = load_matcher([block_lists(tmp_path / str(reveal), reveal=reveal)])
        d = decide_block(bad, [(bad.text, m.scan(bad.text))])
        assert d is not None
        text = author_notice(d, "general")
        assert "banned" in text and "general" in text and "removed" in text
        assert ("badword" in text) is reveal


# -- against the sandbox -------------------------------------------------------------------------


def evidence_in(db: Path, mid: str) -> list[str]:
    """Read the bot's store from outside, on a connection of its own as another process would
    (committed rows only), through the store's Database so either backend can be read."""
    try:
        other = Database.open(db)
        try:
            return [r[0] for r in other.execute("SELECT content FROM evidence WHERE mid = ?", (mid,))]
        finally:
            other.close()
    except (
        StoreError,
        sqlite3.Error,
        psycopg.Error,
    ) as exc:  # reported by the assertion, not raised inside the server
        return [f"cannot read the store: {exc}"]


async def test_block_list_deletes_with_evidence_stored_first(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(
        sandbox, tmp_path / "data", moderation={"wordlists": [str(block_lists(tmp_path))]}
    )
    db = tmp_path / "data" / "rcmod.sqlite3"
    seen_at_delete: dict[str, list[str]] = {}

    def on_event(event: object) -> None:
        # The moment the server deletes the message, its evidence must already be committed.
        if isinstance(event, RoomNotify) and event.event == "deleteMessage":
            mid = event.args[0]["_id"]
            seen_at_delete[mid] = evidence_in(db, mid)

    sandbox.workspace.listeners.append(on_event)
    bot = await start_bot(settings)
    try:
        ok = sandbox.post_as("alice", "general", "hello everyone")
        bad = sandbox.post_as("alice", "general", "you are a badword, @bob")
        assert await until(lambda: bad["_id"] in seen_at_delete, within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "alice")) == 1, within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1, within=30)
    finally:
        await bot.stop()
    assert bad["_id"] not in sandbox.workspace.messages
    assert ok["_id"] in sandbox.workspace.messages  # clean messages are left alone
    [content] = seen_at_delete[bad["_id"]]
    assert "you are a badword" in content  # the original, as it was
    [notice] = dms_from_bot(sandbox, "alice")
    assert "banned" in notice["msg"] and "badword" not in notice["msg"]  # reveal_term is off
    assert "badword" in dms_from_bot(sandbox, "mod1")[0]["msg"]  # the moderators' alert
    store = Store.open(db)
    records = [r for r in store.audit.audit_records() if r.action == "message.deleted"]
    assert len(records) == 1
    assert records[0].targets["message"] == bad["_id"] and records[0].reason["list"] == "banned"
    assert records[0].targets["evidence"][0]["mid"] == bad["_id"]
    assert "badword, @bob" not in repr(records[0])  # the log carries no message text


async def test_censor_list_edits_the_message_in_place(sandbox: Sandbox, tmp_path: Path) -> None:
    lists = block_lists(tmp_path, action="censor", reveal=True)
    settings = bot_settings(sandbox, tmp_path / "data", moderation={"wordlists": [str(lists)]})
    db = tmp_path / "data" / "rcmod.sqlite3"
    seen_at_edit: dict[str, list[str]] = {}

    def on_event(event: object) -> None:
        if isinstance(event, MessageChanged) and "*" in event.message.get("msg", ""):
            seen_at_edit[event.message["_id"]] = evidence_in(db, event.message["_id"])

    sandbox.workspace.listeners.append(on_event)
    bot = await start_bot(settings)
    try:
        bad = sandbox.post_as("bob", "random", "click this scam link please")
        assert await until(lambda: bad["_id"] in seen_at_edit, within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "bob")) == 1, within=30)
        # The bot sees its own edit come back: it must not act again. A later clean message
        # handled means that edit has been seen.
        later = sandbox.post_as("bob", "random", "nothing to see")
        assert await until(lambda: handled(bot.app.store, later["_id"]), within=30)
    finally:
        await bot.stop()
    msg = sandbox.workspace.messages[bad["_id"]]
    assert msg["msg"] == "click this **** **** please"
    assert "click this scam link please" in seen_at_edit[bad["_id"]][0]
    assert len(evidence_in(db, bad["_id"])) == 1
    [notice] = dms_from_bot(sandbox, "bob")
    assert "scam link" in notice["msg"] and "edited" in notice["msg"]  # reveal_term is on
    store = Store.open(db)
    assert [r.action for r in store.audit.audit_records() if r.action.startswith("message.")] == [
        "message.censored"
    ]


async def test_blocked_user_messages_are_removed_on_arrival(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(bot_settings(sandbox, tmp_path / "data"))  # no wordlists at all
    store = bot.app.store
    assert store is not None
    carol = sandbox.workspace.user_by_username("carol")
    staff = sandbox.workspace.room_by_id_or_name(name="random")
    assert carol is not None and staff is not None
    assert store.blocks.block_user(carol.id, "carol", staff["_id"], reason="spamming", actor="mod1")
    assert not store.blocks.block_user(carol.id, "carol", staff["_id"], reason="again", actor="mod1")
    try:
        gone = sandbox.post_as("carol", "random", "hello, I am back")
        kept = sandbox.post_as("carol", "general", "this room is not covered")
        other = sandbox.post_as("alice", "random", "alice is not blocked")
        assert await until(lambda: gone["_id"] not in sandbox.workspace.messages, within=30)
        assert await until(lambda: len(dms_from_bot(sandbox, "carol")) == 1, within=30)
        assert store.blocks.unblock_user(carol.id, staff["_id"], actor="mod1")
        again = sandbox.post_as("carol", "random", "unblocked now")
        # The recorder runs after the enforcer: once it has the message, the enforcer decided.
        assert await until(lambda: bot.recorder.message_ids()[again["_id"]] == 1, within=30)
    finally:
        await bot.stop()
    ws = sandbox.workspace.messages
    assert kept["_id"] in ws and other["_id"] in ws and again["_id"] in ws
    assert "blocked" in dms_from_bot(sandbox, "carol")[0]["msg"]
    store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
    assert len(store.evidence.evidence_for_message(gone["_id"])) == 1
    acts = [r.action for r in store.audit.audit_records()]
    assert acts.count("user.blocked") == 2 and "user.unblocked" in acts and "message.deleted" in acts


async def test_block_with_deactivation_needs_confirmation_and_the_permission(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from bot.moderation.purge import PurgeUsageError

    bot = await start_bot(bot_settings(sandbox, tmp_path / "data"))
    enforcer = bot.app.enforcer
    assert enforcer is not None
    bob = sandbox.workspace.user_by_username("bob")
    assert bob is not None
    try:
        with pytest.raises(PurgeUsageError, match="confirmation"):
            await enforcer.block_user("bob", rid=None, reason="spam", actor="admin", deactivate=True)
        with pytest.raises(PurgeUsageError, match="no user"):
            await enforcer.block_user("nobody", rid=None, reason="spam", actor="admin")
        line = await enforcer.block_user(
            "bob", rid=None, reason="spam", actor="admin", deactivate=True, confirmed=True
        )
        assert "could not be deactivated" in line and bob.active  # the bot role lacks the permission
        sandbox.workspace.grant_permission_to_role("edit-other-user-active-status", "bot")
        line = await enforcer.block_user(
            "bob", rid=None, reason="spam", actor="admin", deactivate=True, confirmed=True
        )
        assert "already blocked everywhere" in line and "deactivated" in line and not bob.active
        assert await enforcer.unblock_user("bob", rid=None, actor="admin")
        assert not await enforcer.unblock_user("bob", rid=None, actor="admin")
    finally:
        await bot.stop()


async def test_a_crash_between_evidence_and_delete_stores_nothing_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Ingest marks a message handled only after its handlers ran, so a crash after the evidence
    commit brings the message back through catch-up: the enforcer must not store it again."""
    from bot.realtime.events import NewMessage, RoomHint

    rest = bot_rest(sandbox)
    store = Store.open(tmp_path / "rcmod.sqlite3")
    notifier = outbox(store, rest)
    blocker = enforcer_for(store, rest, notifier, block_lists(tmp_path))
    try:
        doc = sandbox.post_as("alice", "general", "a badword")
        message = Message.from_wire(doc)
        event = NewMessage(message, RoomHint(True, "c", "general"))
        store.audit.append_audit(  # what the first, crashed attempt committed
            actor="rule:blocklist",
            action="message.deleted",
            targets={"message": message.id},
            evidence=[message],
        )
        decision = await blocker.enforce(event)
        assert decision is not None and decision.action == "delete"
        assert doc["_id"] not in sandbox.workspace.messages
        assert len(store.evidence.evidence_for_message(message.id)) == 1
        # A message already gone (a moderator was faster): refused, audited as failed, no notice.
        doc2 = sandbox.post_as("bob", "general", "another badword")
        sandbox.delete_as("admin", doc2["_id"])
        await blocker.enforce(NewMessage(Message.from_wire(doc2), RoomHint(True, "c", "general")))
        outcomes = [r.outcome for r in store.audit.audit_records() if r.targets.get("message") == doc2["_id"]]
        assert outcomes[0] == "ok" and outcomes[-1].startswith("failed")
        await notifier.deliver_due()
        assert dms_from_bot(sandbox, "bob") == []
        assert len(dms_from_bot(sandbox, "alice")) == 1
    finally:
        await rest.close()
        store.close()


async def test_a_server_outage_queues_the_block_and_a_retry_finishes_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from bot.realtime.events import NewMessage, RoomHint
    from bot.rest import RestClient
    from bot.rest.client import RetryPolicy

    now = [1_000.0]
    bot = seed_user(sandbox, "rcmod.bot")
    rest = RestClient(
        sandbox.url, Credentials(user_id=bot["id"], token=bot["token"]), retry=RetryPolicy(attempts=1)
    )
    store = Store.open(tmp_path / "rcmod.sqlite3", clock=lambda: now[0])
    notifier = outbox(store, rest, clock=lambda: now[0])
    blocker = enforcer_for(store, rest, notifier, block_lists(tmp_path), clock=lambda: now[0], retry_delay=30)
    try:
        doc = sandbox.post_as("carol", "general", "badword during an outage")
        sandbox.fail_next("chat.delete", 503)
        await blocker.enforce(NewMessage(Message.from_wire(doc), RoomHint(True, "c", "general")))
        assert doc["_id"] in sandbox.workspace.messages  # not deleted yet...
        assert len(store.evidence.evidence_for_message(doc["_id"])) == 1  # ...but kept
        assert await blocker.retry_due() == 0  # not due before the delay
        now[0] += 31
        assert await blocker.retry_due() == 1
        assert doc["_id"] not in sandbox.workspace.messages
        assert len(store.evidence.evidence_for_message(doc["_id"])) == 1  # not stored twice
        await notifier.deliver_due()
        assert len(dms_from_bot(sandbox, "carol")) == 1  # told once, when it was done
        now[0] += 31
        assert await blocker.retry_due() == 0  # nothing left queued
    finally:
        await rest.close()
        store.close()


async def test_a_notice_queued_before_a_restart_is_sent_as_the_authors_notice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The process that queued the notice died before sending it: the next one sends it, as the
    author's notice (not as a moderators' alert, not capped), once."""
    from bot.realtime.events import NewMessage, RoomHint

    rest = bot_rest(sandbox)
    store = Store.open(tmp_path / "rcmod.sqlite3")
    lists = block_lists(tmp_path)
    try:
        doc = sandbox.post_as("alice", "general", "a badword")
        first = enforcer_for(store, rest, outbox(store, rest), lists)
        await first.enforce(NewMessage(Message.from_wire(doc), RoomHint(True, "c", "general")))
        assert doc["_id"] not in sandbox.workspace.messages
        assert dms_from_bot(sandbox, "alice") == []  # queued, not sent: then the process died
        restarted = outbox(store, rest)
        enforcer_for(store, rest, restarted, lists)  # the composition root builds both at start
        await restarted.deliver_due()
        await restarted.deliver_due()
        [notice] = dms_from_bot(sandbox, "alice")
        assert notice["msg"].startswith(":no_entry: Your message in `#general` was removed")
    finally:
        await rest.close()
        store.close()


async def test_a_retry_leaves_the_queue_once_given_up_or_its_evidence_is_erased(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from bot.rest import RestClient
    from bot.services.enforcement import MAX_RETRIES
    from tests.helpers import chat_message

    now = [1_000.0]
    bot = seed_user(sandbox, "rcmod.bot")
    rest = RestClient(sandbox.url, Credentials(user_id=bot["id"], token=bot["token"]))
    store = Store.open(tmp_path / "rcmod.sqlite3", clock=lambda: now[0])
    blocker = enforcer_for(store, rest, outbox(store, rest), block_lists(tmp_path), clock=lambda: now[0])
    try:
        store.evidence.store_evidence(chat_message("M-kept", "u1", "badword"), retention_days=90)
        for _ in range(MAX_RETRIES + 1):
            store.blocks.queue_block_retry("M-kept", "r1", 0)
        store.blocks.queue_block_retry("M-erased", "r1", 0)  # its evidence is gone: nothing to act from
        assert await blocker.retry_due() == 2
        assert store.db.execute("SELECT count(*) FROM block_retry").fetchone()[0] == 0
        [gave_up] = [r for r in store.audit.audit_records() if r.targets.get("message") == "M-kept"]
        assert gave_up.outcome == f"failed: gave up after {MAX_RETRIES + 1} attempts"
    finally:
        await rest.close()
        store.close()
