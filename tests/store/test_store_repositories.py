"""The store as repositories over one Database: each usable alone, transactions shared."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from bot.store import AuditLog, Store
from bot.store.jobs import BlockList
from bot.store.messages import MessageLog
from bot.store.sanctions import SanctionLedger
from tests.backends import Backend
from tests.helpers import Clock

ROOT = Path(__file__).resolve().parents[2]


def test_a_repository_works_alone_over_a_database(backend: Backend) -> None:
    clock = Clock()
    db = backend.database(clock=clock)
    messages = MessageLog(db)
    assert messages.mark_handled("m1", "", "r1")
    assert not messages.mark_handled("m1", "", "r1")
    assert messages.last_handled_at("r1") == (clock.now, clock.now)
    sanctions = SanctionLedger(db)
    sanctions.add_strike(
        user_id="u1", username="sam", source="flood", actor="rule:flood", rid=None, reason="f"
    )
    assert sanctions.live_strike_count("u1", since=clock.now - 1) == 1
    db.close()


def test_a_transaction_commits_rolls_back_and_joins_an_outer_one(backend: Backend) -> None:
    db = backend.database()
    messages = MessageLog(db)
    with db.transaction():
        messages.mark_handled("kept", "", "r1")
    with pytest.raises(RuntimeError), db.transaction():
        messages.mark_handled("dropped", "", "r1")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), db.transaction():
        messages.mark_handled("outer", "", "r1")
        with db.transaction():  # joins: its rows go with the outer transaction's
            messages.mark_handled("inner", "", "r1")
        raise RuntimeError("boom")
    assert [messages.is_handled(m, "") for m in ("kept", "dropped", "outer", "inner")] == [
        True,
        False,
        False,
        False,
    ]


def test_a_block_and_its_audit_record_are_written_together(backend: Backend) -> None:
    db = backend.database()
    audit = AuditLog(db)
    blocks = BlockList(db, audit)

    def refuse(action: str, outcome: str) -> None:
        raise RuntimeError("the audit record could not be counted")

    db.on_audit = refuse
    with pytest.raises(RuntimeError):
        blocks.block_user("u1", "sam", None, reason="spam", actor="mod1")
    assert blocks.blocked_users() == [] and list(audit.audit_records()) == []
    db.on_audit = None
    assert blocks.block_user("u1", "sam", None, reason="spam", actor="mod1")
    [record] = audit.audit_records()
    assert (record.action, record.targets["user"], record.outcome) == ("user.blocked", "u1", "ok")
    assert audit.verify_audit().ok


def test_the_store_holds_repositories_and_no_verbs(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    try:
        with pytest.raises(dataclasses.FrozenInstanceError):
            store.audit = AuditLog(store.db)  # type: ignore[misc]
        own = {n for n, _ in inspect.getmembers(Store) if not n.startswith("_")}
        fields = {f.name for f in dataclasses.fields(Store)}
        assert own - fields == {"open", "connect", "over", "close"}
    finally:
        store.close()


def test_the_block_list_answers_from_memory_and_sees_every_change(backend: Backend) -> None:
    """Blocks and unblocks made here count at once; one committed by another connection to the
    store counts within BlockList.RECHECK_SECONDS, and no sooner is it looked for."""
    now = [0.0]
    store = backend.open()
    blocks = BlockList(store.db, store.audit, monotonic=lambda: now[0])
    assert blocks.blocked_user("u1", "r1") is None
    blocks.block_user("u1", "sam", "r1", reason="spam", actor="mod")
    assert blocks.blocked_user("u1", "r1") is not None
    assert blocks.blocked_user("u1", "r2") is None
    blocks.block_user("u1", "sam", None, reason="spam", actor="mod")
    everywhere = blocks.blocked_user("u1", "r2")
    assert everywhere is not None and everywhere.rid is None  # an everywhere block first
    blocks.unblock_user("u1", None, actor="mod")
    assert blocks.blocked_user("u1", "r2") is None

    other = backend.open()  # another process, say
    try:
        other.blocks.block_user("u2", "kim", None, reason="spam", actor="mod")
        other.blocks.unblock_user("u1", "r1", actor="mod")
    finally:
        other.close()
    now[0] += BlockList.RECHECK_SECONDS
    assert blocks.blocked_user("u2", "r1") is not None
    assert blocks.blocked_user("u1", "r1") is None
    store.close()


def test_a_block_rolled_back_is_not_remembered(backend: Backend) -> None:
    db = backend.database()
    audit = AuditLog(db)
    blocks = BlockList(db, audit)
    with pytest.raises(RuntimeError), db.transaction():
        blocks.block_user("u1", "sam", None, reason="", actor="mod")
        assert blocks.blocked_user("u1", "r1") is not None  # inside, the block is there
        raise RuntimeError("boom")
    assert blocks.blocked_user("u1", "r1") is None
