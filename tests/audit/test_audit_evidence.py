"""Evidence: hashes attested by the log, retention, legal holds, erasure, the bot's own copies."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cli
from bot.audit.chain import canonical, sha256_text
from bot.models import Message, UserRef
from bot.store import Store
from bot.store import migrations as store_module
from bot.store.migrations import MIGRATIONS
from tests.backends import CLI_FINDS_THE_FILE, OLD_SQLITE_SCHEMA
from tests.helpers import Clock, chat_message

DAY = 86400.0


def _message(mid: str, author: str = "u1", text: str = "offending text", rid: str = "r1") -> Message:
    """A chat message whose raw document also carries its time and an attachment."""
    message = chat_message(mid, author, text, rid=rid)
    attachments = [{"title": "a.png", "image_type": "image/png", "image_size": 10}]
    return replace(message, raw={**message.raw, "ts": message.ts, "attachments": attachments})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store.open(tmp_path / "rcmod.sqlite3", clock=clock)


def _delete(store: Store, mid: str, author: str, *, case: int | None = None, days: int = 90) -> int:
    record = store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": author, "room": "r1", "message": mid},
        reason={"list": "block"},
        evidence=[_message(mid, author)],
        retention_days=days,
        case=case,
    )
    [eid] = [c["id"] for c in record.targets["evidence"]]
    return int(eid)


def test_append_audit_attests_each_revision(store: Store) -> None:
    record = store.audit.append_audit(
        actor="u9",
        action="report.filed",
        targets={"message": "m1", "user": "u1"},
        evidence=[_message("m1", text="before edit"), _message("m1", text="after edit")],
        case=12,
    )
    assert len(record.targets["evidence"]) == 2 and record.targets["case"] == 12
    kept = store.evidence.evidence_for_message("m1")
    assert [k["content"]["msg"] for k in kept] == ["before edit", "after edit"]
    assert kept[0]["content"]["attachments"][0]["image_type"] == "image/png"
    assert kept[0]["content"]["ts"] == "2026-01-01T00:00:00.000Z"
    rows = store.evidence.evidence_rows(case=12)
    for row, cited in zip(rows, record.targets["evidence"], strict=True):
        assert row.audit_seq == record.seq and row.case == 12
        assert cited == {"id": row.id, "mid": "m1", "sha256": row.sha256}
        assert row.content is not None and sha256_text(canonical(row.content)) == row.sha256
    assert "edit" not in repr(rows[0])  # content never reaches a log through repr()


def test_append_audit_is_atomic(store: Store) -> None:
    bad = Message(id="m1", rid="r1", text="x", ts=datetime(2026, 1, 1, tzinfo=UTC), author=UserRef("u1", "a"))
    with pytest.raises(TypeError):
        store.audit.append_audit(actor="a", action="b", targets={"x": object()}, evidence=[bad])
    assert store.evidence.evidence_rows(author_id="u1") == []
    assert list(store.audit.audit_records()) == []


def test_content_expires_after_the_window(store: Store, clock: Clock) -> None:
    eid = _delete(store, "m1", "u1", days=30)
    clock.now += 29 * DAY
    assert store.evidence.erase_expired_evidence() == 0
    clock.now += 2 * DAY
    assert store.evidence.erase_expired_evidence() == 1
    assert store.evidence.evidence_for_message("m1") == []
    [tomb] = store.evidence.evidence_rows(author_id="u1")
    assert tomb.id == eid and tomb.content is None and tomb.erased_reason == "expired"
    assert tomb.sha256 is not None  # the hash stays, so the log's attestation still means something
    last = list(store.audit.audit_records())[-1]
    assert (last.actor, last.action, last.targets) == ("retention", "evidence.expired", {"evidence": [eid]})
    assert store.evidence.erase_expired_evidence() == 0  # nothing twice, no empty records
    assert store.audit.verify_audit().ok


@pytest.mark.parametrize("kind", ["user", "case"])
def test_a_hold_keeps_content_until_released(store: Store, clock: Clock, kind: str) -> None:
    _delete(store, "m1", "u1", case=5)
    _delete(store, "m2", "u2", case=6)
    assert store.evidence.place_hold(kind, "u1" if kind == "user" else 5, actor="op")  # type: ignore[arg-type]
    assert not store.evidence.place_hold(kind, "u1" if kind == "user" else 5, actor="op")  # type: ignore[arg-type]
    assert [h.kind for h in store.evidence.active_holds()] == [kind]
    clock.now += 91 * DAY
    assert store.evidence.erase_expired_evidence() == 1  # only m2
    assert (
        len(store.evidence.evidence_for_message("m1")) == 1
        and store.evidence.evidence_for_message("m2") == []
    )
    clock.now += 365 * DAY
    assert store.evidence.erase_expired_evidence() == 0
    assert store.evidence.release_hold(kind, "u1" if kind == "user" else 5, actor="op")  # type: ignore[arg-type]
    assert not store.evidence.release_hold(kind, "u1" if kind == "user" else 5, actor="op")  # type: ignore[arg-type]
    assert store.evidence.active_holds() == []
    assert store.evidence.erase_expired_evidence() == 1
    assert store.evidence.evidence_for_message("m1") == []
    outcomes = [
        (r.action, r.outcome) for r in store.audit.audit_records() if r.action.startswith("legal_hold")
    ]
    assert outcomes == [
        ("legal_hold.placed", "ok"),
        ("legal_hold.placed", "noop: already held"),
        ("legal_hold.released", "ok"),
        ("legal_hold.released", "noop: no active hold"),
    ]
    assert store.audit.verify_audit().ok


def test_erasure_spares_held_content_and_keeps_the_chain_valid(store: Store) -> None:
    free = _delete(store, "m1", "u1")
    held = _delete(store, "m2", "u1", case=9)
    other = _delete(store, "m3", "u2")
    store.evidence.place_hold("case", 9, actor="op")
    result = store.evidence.erase_user_evidence("u1", actor="cli:op")
    assert result.erased == (free,) and result.kept_held == (held,)
    assert store.evidence.evidence_for_message("m1") == []
    assert len(store.evidence.evidence_for_message("m2")) == 1
    assert len(store.evidence.evidence_for_message("m3")) == 1 and other
    record = list(store.audit.audit_records())[-1]
    assert record.seq == result.audit_seq and record.action == "evidence.erased"
    assert record.targets == {"user": "u1", "evidence": [free], "alerts_redacted": 0}
    assert record.outcome == "partial: 1 kept under legal hold"
    assert store.audit.verify_audit().ok
    # Released, erased again: now everything of u1 goes, and the chain still verifies.
    store.evidence.release_hold("case", 9, actor="op")
    again = store.evidence.erase_user_evidence("u1", actor="cli:op")
    assert again.erased == (held,) and again.kept_held == ()
    assert store.audit.verify_audit().ok
    assert all(r.content is None for r in store.evidence.evidence_rows(author_id="u1"))


@pytest.mark.sqlite_only(OLD_SQLITE_SCHEMA)
def test_upgrade_keeps_evidence_from_before_the_migration(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rcmod.sqlite3"
    with monkeypatch.context() as m:  # a database written by the version before this one
        m.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
        m.setattr(store_module, "LATEST_VERSION", 1)
        Store.open(path, clock=clock).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO evidence (mid, rid, author_id, captured_at, expires_at, content) "
        "VALUES ('m0', 'r1', 'u1', '2023-01-01T00:00:00.000Z', '2023-04-01T00:00:00.000Z', ?)",
        ('{"msg":"old"}',),
    )
    conn.commit()
    conn.close()
    store = Store.open(path, clock=clock)
    [row] = store.evidence.evidence_rows(author_id="u1")
    assert row.content == {"msg": "old"} and row.sha256 == sha256_text('{"msg":"old"}')
    assert store.evidence.erase_expired_evidence() == 1
    assert store.evidence.evidence_rows(author_id="u1")[0].content is None


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_cli_hold_release_erase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    # Without a server to ask, a user the store knows nothing about is refused, not "held"
    # (with a server, a hold can come first: tests/audit/test_audit_targets.py).
    assert cli.main(["audit", "hold", "--user", "u1"]) == 1
    assert "no user u1" in capsys.readouterr().out
    store = Store.open(tmp_path / "rcmod.sqlite3")
    _delete(store, "m1", "u1")
    store.close()
    assert cli.main(["audit", "hold", "--user", "u1"]) == 0
    assert "legal hold placed on user u1" in capsys.readouterr().out
    assert cli.main(["audit", "hold", "--user", "u1"]) == 0
    assert "already under legal hold" in capsys.readouterr().out
    assert cli.main(["audit", "erase", "--user", "u1"]) == 0
    assert "erased 0 evidence items" in (out := capsys.readouterr().out) and "kept 1 under legal hold" in out
    assert cli.main(["audit", "release", "--user", "u1"]) == 0
    assert cli.main(["audit", "release", "--user", "u1"]) == 1
    assert "no active legal hold on user u1" in capsys.readouterr().out.splitlines()[-1]
    assert cli.main(["audit", "erase", "--user", "u1"]) == 0
    assert "erased 1 evidence items of user u1" in capsys.readouterr().out
    assert cli.main(["audit", "hold", "--case", "4"]) == 1  # no such case
    assert cli.main(["audit", "verify"]) == 0
    assert "offending" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "hold"],
        ["audit", "hold", "--user", "u1", "--case", "2"],
        ["audit", "release", "--case", "zero"],
        ["audit", "release", "--case", "0"],
        ["audit", "erase"],
        ["audit", "frobnicate"],
    ],
)
def test_cli_usage_errors_exit_2(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
