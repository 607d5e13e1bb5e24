"""The store on each backend (SQLite, PostgreSQL): migrations, dedup, cursors, the audit chain,
evidence and the lease."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Message, Room, UserRef
from bot.moderation.alerts import Alert
from bot.store import LeaseHeld, Store, StoreError
from bot.store.migrations import LATEST_VERSION
from tests.backends import Backend
from tests.helpers import Clock, chat_message


def _message(mid: str = "m1", text: str = "hello") -> Message:
    return chat_message(mid, "u1", text, username="alice")


def test_migrates_fresh_and_reopens(backend: Backend) -> None:
    store = backend.open()
    assert store.db.schema_version() == LATEST_VERSION
    assert store.messages.mark_handled("m1", "", "r1")
    store.close()
    store = backend.open()
    assert store.db.schema_version() == LATEST_VERSION
    assert store.messages.is_handled("m1", "")  # survived the restart
    assert not store.messages.mark_handled("m1", "", "r1")
    assert store.messages.mark_handled("m1", "2026-01-01T00:00:00+00:00", "r1")  # an edit is a new revision
    store.close()


def test_refuses_newer_schema(backend: Backend) -> None:
    backend.open().close()
    backend.raw("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this rcmod"):
        backend.open()


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store.open(path)


def test_room_cursor_only_moves_forward(backend: Backend) -> None:
    store = backend.open()
    t1 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    t0 = datetime(2026, 1, 1, 11, tzinfo=UTC)
    store.messages.advance_room_cursor("r1", t1)
    store.messages.advance_room_cursor("r1", t0)
    assert store.messages.room_cursor("r1") == t1
    assert store.messages.room_cursors() == {"r1": t1}


def _caught(backend: Backend, seq: int, problem: str) -> None:
    """Verifying the store names record ``seq`` and ``problem``."""
    result = backend.open().audit.verify_audit()
    assert not result.ok and result.bad_seq == seq and problem in result.problem


def test_audit_chain_verifies_and_detects_tampering(backend: Backend) -> None:
    store = backend.open(clock=Clock())
    for i in range(5):
        store.audit.append_audit(
            actor="rule:spam", action="message.deleted", targets={"mid": f"m{i}"}, reason={"list": "spam"}
        )
    ok = store.audit.verify_audit()
    assert ok.ok and ok.checked == 5
    store.close()

    # Editing through SQL is refused by the append-only triggers...
    with pytest.raises(backend.raw_error(), match="append-only"):
        backend.raw("UPDATE audit_log SET actor = 'x' WHERE seq = 3")
    with pytest.raises(backend.raw_error(), match="append-only"):
        backend.raw("DELETE FROM audit_log WHERE seq = 3")
    # ...so an attacker drops the triggers first; the chain still tells.
    backend.drop_trigger("audit_log_no_update", "audit_log")
    backend.raw("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    _caught(backend, 3, "altered")

    backend.raw("UPDATE audit_log SET actor = 'rule:spam' WHERE seq = 3")
    backend.drop_trigger("audit_log_no_delete", "audit_log")
    backend.raw("DELETE FROM audit_log WHERE seq = 2")
    _caught(backend, 2, "missing")


def test_audit_detects_truncated_tail(backend: Backend) -> None:
    store = backend.open()
    for i in range(3):
        store.audit.append_audit(actor="a", action=f"x{i}")
    store.close()
    backend.drop_trigger("audit_log_no_delete", "audit_log")
    backend.raw("DELETE FROM audit_log WHERE seq = 3")
    result = backend.open().audit.verify_audit()
    assert not result.ok and "removed" in result.problem


def test_evidence_kept_until_expiry_unless_held(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
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


def test_lease_stops_a_second_instance(backend: Backend) -> None:
    clock = Clock()
    first_store = backend.open(clock=clock)
    second_store = backend.open(clock=clock)
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


def test_alert_excerpts_expire_with_the_window(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
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


def test_the_audit_chain_stays_serial_under_concurrent_writers(backend: Backend) -> None:
    """Two connections (two instances, or a CLI beside the bot) append at once: each append
    reads the head and writes after it, one writer at a time, so the chain has no fork or gap."""
    import threading

    stores = [backend.open(), backend.open()]
    errors: list[BaseException] = []

    def append(store: Store, who: str) -> None:
        try:
            for i in range(25):
                store.audit.append_audit(actor=who, action="message.deleted", targets={"mid": f"{who}{i}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s, f"w{n}")) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    result = backend.open().audit.verify_audit()
    assert result.ok and result.checked == 50


def test_a_full_disk_on_the_server_is_disk_full() -> None:
    """PostgreSQL says SQLSTATE 53100 where SQLite says SQLITE_FULL: the bot stops the same way."""
    import psycopg.errors

    from bot.errors import DiskFull
    from bot.store.postgres import _disk_full

    with pytest.raises(DiskFull, match="PostgreSQL"), _disk_full("postgresql rcmod@db"):
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")
