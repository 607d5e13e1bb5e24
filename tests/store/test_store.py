"""The SQLite store: migrations, dedup, cursors, the audit chain, evidence and the lease."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Message, Room, UserRef
from bot.moderation.alerts import Alert
from bot.store import LeaseHeld, Store, StoreError
from bot.store.migrations import LATEST_VERSION
from tests.helpers import Clock, chat_message


def _message(mid: str = "m1", text: str = "hello") -> Message:
    return chat_message(mid, "u1", text, username="alice")


def test_migrates_fresh_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = Store.open(path)
    assert store.db.schema_version() == LATEST_VERSION
    assert store.messages.mark_handled("m1", "", "r1")
    store.close()
    store = Store.open(path)
    assert store.db.schema_version() == LATEST_VERSION
    assert store.messages.is_handled("m1", "")  # survived the restart
    assert not store.messages.mark_handled("m1", "", "r1")
    assert store.messages.mark_handled("m1", "2026-01-01T00:00:00+00:00", "r1")  # an edit is a new revision
    store.close()


def test_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this rcmod"):
        Store.open(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store.open(path)


def test_room_cursor_only_moves_forward(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    t1 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    t0 = datetime(2026, 1, 1, 11, tzinfo=UTC)
    store.messages.advance_room_cursor("r1", t1)
    store.messages.advance_room_cursor("r1", t0)
    assert store.messages.room_cursor("r1") == t1
    assert store.messages.room_cursors() == {"r1": t1}


def _caught(conn: sqlite3.Connection, path: Path, seq: int, problem: str) -> None:
    """After ``conn``'s changes are committed, verifying the store names record ``seq`` and ``problem``."""
    conn.commit()
    result = Store.open(path).audit.verify_audit()
    assert not result.ok and result.bad_seq == seq and problem in result.problem


def test_audit_chain_verifies_and_detects_tampering(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = Store.open(path, clock=Clock())
    for i in range(5):
        store.audit.append_audit(
            actor="rule:spam", action="message.deleted", targets={"mid": f"m{i}"}, reason={"list": "spam"}
        )
    ok = store.audit.verify_audit()
    assert ok.ok and ok.checked == 5
    store.close()

    # Editing through SQL is refused by the append-only triggers...
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 3")
    # ...so an attacker drops the triggers first; the chain still tells.
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    _caught(conn, path, 3, "altered")

    conn.execute("UPDATE audit_log SET actor = 'rule:spam' WHERE seq = 3")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE seq = 2")
    _caught(conn, path, 2, "missing")


def test_audit_detects_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = Store.open(path)
    for i in range(3):
        store.audit.append_audit(actor="a", action=f"x{i}")
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE seq = 3")
    conn.commit()
    result = Store.open(path).audit.verify_audit()
    assert not result.ok and "removed" in result.problem


def test_evidence_kept_until_expiry_unless_held(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    record = store.audit.append_audit(actor="rule", action="message.deleted", targets={"mid": "m1"})
    eid = store.evidence.store_evidence(_message(), retention_days=90, audit_seq=record.seq)
    assert eid > 0
    [kept] = store.evidence.evidence_for_message("m1")
    assert kept["content"]["msg"] == "hello" and kept["audit_seq"] == record.seq
    clock.now += 89 * 86400
    assert store.evidence.erase_expired_evidence() == 0
    clock.now += 2 * 86400
    assert store.evidence.erase_expired_evidence() == 1
    assert store.evidence.evidence_for_message("m1") == []


def test_lease_stops_a_second_instance(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.sqlite3"
    first_store = Store.open(path, clock=clock)
    second_store = Store.open(path, clock=clock)
    first_store.lease.acquire_lease("host:1", ttl=30)
    with pytest.raises(LeaseHeld, match="another rcmod instance"):
        second_store.lease.acquire_lease("host:2", ttl=30)
    first_store.lease.renew_lease("host:1", ttl=30)
    clock.now += 31  # the first_store instance died without releasing: its lease runs out
    second_store.lease.acquire_lease("host:2", ttl=30)
    with pytest.raises(LeaseHeld):
        first_store.lease.acquire_lease("host:1", ttl=30)
    second_store.lease.release_lease("host:2")
    first_store.lease.acquire_lease("host:1", ttl=30)


def test_alert_excerpts_expire_with_the_window(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    incident = Alert(
        kind="notify",
        key="u|r|l",
        list="l",
        term="t",
        mid="m1",
        room=Room("r", "general", "c"),
        author=UserRef("u", "alice"),
        excerpt="` ⟦t⟧ `",
        severity="low",
        ts=clock.now,
    )
    raised = store.alerts.raise_alert(
        incident, recipients=["mod1"], window=600, new_dm_id=lambda: "DM0000000000000001"
    )
    assert raised is not None and raised.created
    assert store.alerts.raise_alert(incident, recipients=["mod1"], window=600, new_dm_id=lambda: "x") is None
    clock.now += 89 * 86400
    assert store.alerts.expire_alert_excerpts(90) == 0
    clock.now += 2 * 86400
    assert store.alerts.expire_alert_excerpts(90) == 1
    [delivery] = store.alerts.due_deliveries()
    assert delivery.alert.excerpt is None and delivery.dm_mid == "DM0000000000000001"


def test_migrations_are_numbered_one_to_n_without_gaps() -> None:
    from bot.store.migrations import MIGRATIONS

    assert [v for v, _ in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
