"""The audit chain: verifies after normal use, and fails at the right record after tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot import cli
from bot.audit import check_records, record_hash
from bot.audit.actions import ACTIONS
from bot.audit.chain import GENESIS_HASH, sha256_text
from bot.audit.export import record_json
from bot.store import Store
from tests.backends import CLI_FINDS_THE_FILE, TAMPERS_WITH_THE_FILE
from tests.helpers import Clock
from tests.helpers import chat_message as _message
from tests.test_architecture import IO_LIBRARIES, ROOT, _imports


def _normal_use(store: Store, clock: Clock) -> None:
    """A day in the life: every kind of action the issue lists, evidence, holds, erasure, expiry."""
    store.audit.append_audit(actor="rule:slurs", action="alert.sent", targets={"user": "u1", "room": "r1"})
    store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": "u1", "room": "r1", "message": "m1"},
        reason={"list": "block", "term": "x"},
        evidence=[_message("m1")],
    )
    store.audit.append_audit(
        actor="u9",
        action="report.filed",
        targets={"user": "u2", "message": "m2", "reporter": "u3"},
        reason={"report": 1},
        evidence=[_message("m2", "u2", "first"), _message("m2", "u2", "edited")],
        case=7,
    )
    for action in ("purge.started", "purge.progressed", "purge.finished"):
        store.audit.append_audit(actor="mod1", action=action, targets={"case": 8, "room": "r1"})
    store.audit.append_audit(actor="mod1", action="user.blocked", targets={"user": "u2"})
    store.audit.append_audit(actor="mod1", action="policy.pinned", targets={"room": "r1", "message": "p1"})
    store.audit.append_audit(actor="admin", action="config.reloaded")
    store.audit.append_audit(
        actor="u3", action="command.refused", reason={"why": "not a moderator"}, outcome="refused"
    )
    store.evidence.place_hold("case", 7, actor="cli:op")
    store.evidence.erase_user_evidence("u2", actor="cli:op")  # held by case 7: kept
    store.evidence.erase_user_evidence("u1", actor="cli:op")
    clock.now += 100 * 86400
    store.evidence.erase_expired_evidence()
    store.evidence.release_hold("case", 7, actor="cli:op")
    store.evidence.erase_expired_evidence()


@pytest.fixture
def used(tmp_path: Path) -> Path:
    path = tmp_path / "rcmod.sqlite3"
    clock = Clock()
    store = Store.open(path, clock=clock)
    _normal_use(store, clock)
    store.close()
    return path


def _drop_triggers(conn: sqlite3.Connection) -> None:
    # The append-only triggers stop honest mistakes; an attacker with the file removes them.
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")


def test_chain_verifies_after_normal_use(used: Path) -> None:
    store = Store.open(used)
    result = store.audit.verify_audit()
    assert result.ok, result.problem
    actions = [r.action for r in store.audit.audit_records()]
    assert set(actions) <= ACTIONS
    assert actions.count("evidence.erased") == 2
    assert actions.count("evidence.expired") == 1  # m1 erased on request, m2 only after the release
    assert store.db.check_integrity() == []


def test_pure_hash_agrees_with_the_store(used: Path) -> None:
    store = Store.open(used)
    records = [record_json(r) for r in store.audit.audit_records()]  # as exported
    assert records[0]["prev_hash"] == GENESIS_HASH
    assert all(record_hash(r) == r["hash"] for r in records)
    assert check_records(records) == []
    assert check_records(records[::2]) == []  # a selection with gaps is fine
    swapped = [records[0], records[2], records[1], *records[3:]]
    assert any("out of order" in p for p in check_records(swapped))


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
@pytest.mark.parametrize(
    ("tamper", "bad_seq", "words"),
    [
        ("UPDATE audit_log SET outcome = 'failed' WHERE seq = 4", 4, "altered"),
        ('UPDATE audit_log SET targets = \'{"user":"u7"}\' WHERE seq = 6', 6, "altered"),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "missing"),
        # Swap records 3 and 4 (renumbering both): record 3 no longer follows record 2.
        (
            "UPDATE audit_log SET seq = -3 WHERE seq = 3;"
            "UPDATE audit_log SET seq = 3 WHERE seq = 4;"
            "UPDATE audit_log SET seq = 4 WHERE seq = -3",
            3,
            "does not follow record 2",
        ),
    ],
    ids=["tampered-outcome", "tampered-targets", "deleted", "swapped-pair"],
)
def test_chain_fails_at_the_right_record(used: Path, tamper: str, bad_seq: int, words: str) -> None:
    conn = sqlite3.connect(used)
    _drop_triggers(conn)
    conn.executescript(tamper)
    conn.commit()
    conn.close()
    result = Store.open(used).audit.verify_audit()
    assert not result.ok
    assert result.bad_seq == bad_seq
    assert words in result.problem
    assert result.checked == bad_seq - 1


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_cli_verify_reports_where(
    used: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(used.parent))
    assert cli.main(["audit", "verify"]) == 0
    assert "audit log intact" in capsys.readouterr().out
    conn = sqlite3.connect(used)
    _drop_triggers(conn)
    conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    conn.commit()
    conn.close()
    assert cli.main(["audit", "verify"]) == 1
    assert "BROKEN at record 2: record 2 was altered (1 verified before it)" in capsys.readouterr().out


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "verify"],
        ["audit", "export", "--since", "2020-01-01", "--out", "OUT"],
        ["audit", "erase", "--user", "u1"],
        ["audit", "hold", "--user", "u1"],
    ],
)
def test_a_corrupted_page_is_reported_not_crashed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = tmp_path / "rcmod.sqlite3"
    store = Store.open(path)
    for i in range(300):
        store.audit.append_audit(
            actor="rule", action="message.deleted", targets={"message": f"m{i}", "pad": "x" * 80}
        )
    store.close()
    conn = sqlite3.connect(path)
    [(root,)] = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audit_log'").fetchall()
    [(page_size,)] = conn.execute("PRAGMA page_size").fetchall()
    conn.close()
    with path.open("r+b") as fh:  # overwrite part of the log's root page with noise
        fh.seek((root - 1) * page_size + 8)
        fh.write(bytes(range(256)) * 4)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    out = tmp_path / "out"
    assert cli.main([str(out) if a == "OUT" else a for a in argv]) == 1
    captured = capsys.readouterr()
    assert "DAMAGED" in captured.out or "malformed" in captured.err
    assert not out.exists()


def test_cli_verify_without_a_store_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path / "nowhere"))
    assert cli.main(["audit", "verify"]) == 2
    assert "no store" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["actions.py", "chain.py", "selection.py", "manifest.py"])
def test_audit_core_imports_no_io(module: str) -> None:
    names = _imports(ROOT / "bot" / "audit" / module)
    assert not {n for n in names if any(n == lib or n.startswith(lib + ".") for lib in IO_LIBRARIES)}


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_cli_verify_checks_evidence_against_the_attested_hashes(
    used: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(used)
    record = store.audit.append_audit(
        actor="rule:block", action="message.deleted", targets={"user": "u4"}, evidence=[_message("m9", "u4")]
    )
    [eid] = [c["id"] for c in record.targets["evidence"]]
    store.close()
    monkeypatch.setenv("RCMOD_DATA_DIR", str(used.parent))
    assert cli.main(["audit", "verify"]) == 0
    assert "evidence intact: 4 items (3 erased)" in capsys.readouterr().out
    conn = sqlite3.connect(used)
    conn.execute('UPDATE evidence SET content = \'{"msg":"harmless"}\' WHERE id = ?', (eid,))
    conn.commit()
    assert cli.main(["audit", "verify"]) == 1
    assert f"evidence {eid}: content does not match its SHA-256" in capsys.readouterr().out
    # Re-hashing the row is not enough: the audit record attests the original hash.
    conn.execute("UPDATE evidence SET sha256 = ? WHERE id = ?", (sha256_text('{"msg":"harmless"}'), eid))
    conn.commit()
    conn.close()
    assert cli.main(["audit", "verify"]) == 1
    assert f"evidence {eid}: SHA-256 differs from the one audit record" in capsys.readouterr().out
