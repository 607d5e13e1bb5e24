"""`rcmod audit verify` against an attacker who can rewrite the database but not the signing key:
signed checkpoints of the chain head kept outside the database, and evidence cross-checked with
the records that cite it, both ways. Every tampering case exits 1 and names what is wrong."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot import cli
from bot.audit.chain import GENESIS_HASH, canonical, sha256_text
from bot.audit.checkpoints import CHECKPOINT_FILE, checkpoint_head
from bot.audit.export import verify_export
from bot.audit.signing import load_or_create_signing_key
from bot.sandbox import Sandbox
from bot.store import Store
from tests.audit.test_audit_chain import Clock, _drop_triggers, _message, _normal_use
from tests.backends import CLI_FINDS_THE_FILE, TAMPERS_WITH_THE_FILE
from tests.conftest import bot_settings, start_bot, until


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A store after normal use, one live evidence item (m5), and a signed checkpoint of its head."""
    folder = tmp_path / "data"
    clock = Clock()
    store = Store.open(folder / "rcmod.sqlite3", clock=clock)
    _normal_use(store, clock)
    store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": "u5", "room": "r1", "message": "m5"},
        evidence=[_message("m5", "u5")],
    )
    key, _ = load_or_create_signing_key(folder)
    assert checkpoint_head(store, folder, key) is not None
    store.close()
    return folder


def _verify(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    code = cli.main(["audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _sql(data_dir: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    # The append-only triggers stop honest mistakes; an attacker with the file removes them.
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for statement in statements:
        conn.execute(statement, params if "?" in statement else ())
    conn.commit()
    conn.close()


def _live_evidence_id(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    [(eid,)] = conn.execute("SELECT id FROM evidence WHERE mid = 'm5'").fetchall()
    conn.close()
    return int(eid)


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_the_untouched_store_verifies(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 0, out
    assert "1 signed checkpoint" in out


def _rewritten_from_record_3(data_dir: Path) -> Store:
    """The store after someone dropped the triggers and rewrote the chain from record 3 on, each
    hash recomputed; opened afresh."""
    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    _drop_triggers(conn)
    _rewrite_chain_from(conn, 3)
    conn.commit()
    conn.close()
    return Store.open(data_dir / "rcmod.sqlite3")


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
def test_a_chain_rewritten_with_recomputed_hashes_is_caught(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _rewritten_from_record_3(data_dir)
    assert store.audit.verify_audit().ok  # the chain alone cannot tell
    store.close()
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 1
    assert "audit log (record 16): does not match the signed checkpoint" in out


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
def test_a_tail_cut_with_the_head_row_updated_is_caught(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    [(last,)] = conn.execute("SELECT max(seq) FROM audit_log").fetchall()
    [(keep_hash,)] = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (last - 2,)).fetchall()
    conn.close()
    _sql(
        data_dir,
        f"DELETE FROM evidence WHERE audit_seq > {last - 2}",
        f"DELETE FROM audit_log WHERE seq > {last - 2}",
    )
    _sql(data_dir, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", params=(last - 2, keep_hash))
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 1
    assert f"a signed checkpoint says the log had {last} records" in out


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            "DELETE FROM evidence WHERE id = {eid}",
            ["cites evidence {eid}", "missing"],
            id="a-deleted-evidence-row",
        ),
        pytest.param(
            "UPDATE evidence SET content = NULL, erased_at = '2026-01-02T00:00:00.000Z', "
            "erased_reason = 'erasure' WHERE id = {eid}",
            ["evidence {eid}: marked erased, but no audit record erased it"],
            id="a-fake-tombstone",
        ),
        pytest.param(
            "UPDATE evidence SET mid = 'mOTHER' WHERE id = {eid}",
            ["evidence {eid}: message id mOTHER differs from m5"],
            id="a-changed-evidence-mid",
        ),
    ],
)
def test_a_tampered_evidence_row_is_caught(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: str,
    expected: list[str],
) -> None:
    eid = _live_evidence_id(data_dir)
    _sql(data_dir, change.format(eid=eid))
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 1
    for words in expected:
        assert words.format(eid=eid) in out


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
@pytest.mark.parametrize("how", ["zero-bytes", "missing", "emptied"])
def test_an_empty_or_missing_log_where_a_checkpoint_says_there_was_one_fails(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    path = data_dir / "rcmod.sqlite3"
    for sidecar in (data_dir / "rcmod.sqlite3-wal", data_dir / "rcmod.sqlite3-shm"):
        sidecar.unlink(missing_ok=True)
    if how == "zero-bytes":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()
    else:
        path.unlink()
        Store.open(path).close()  # a fresh, valid, empty store in its place
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 1, out
    assert "a signed checkpoint says the log had 16 records" in out
    assert "intact" not in out


def test_a_zero_byte_database_without_checkpoints_is_not_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rcmod.sqlite3").write_bytes(b"")
    code, out = _verify(tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "empty (0 bytes)" in out
    assert (tmp_path / "rcmod.sqlite3").stat().st_size == 0  # verify did not turn it into a store


def test_a_forged_or_edited_checkpoint_is_caught(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = data_dir / CHECKPOINT_FILE
    line = json.loads(path.read_text().splitlines()[0])
    line["seq"] = 1
    path.write_text(canonical(line) + "\n")
    code, out = _verify(data_dir, monkeypatch, capsys)
    assert code == 1
    assert f"{CHECKPOINT_FILE} line 1: the signature does not verify" in out


def _rewrite_chain_from(conn: sqlite3.Connection, seq: int) -> None:
    """Change record ``seq`` and recompute every hash after it, as an attacker with the file would."""
    rows = conn.execute(
        "SELECT seq, at, actor, action, targets, reason, outcome FROM audit_log ORDER BY seq"
    ).fetchall()
    prev = GENESIS_HASH
    for s, at, actor, action, targets, reason, outcome in rows:
        if s == seq:
            outcome = "nothing happened"
        if s >= seq:
            digest = sha256_text(canonical([prev, s, at, actor, action, targets, reason, outcome]))
            conn.execute(
                "UPDATE audit_log SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (outcome, prev, digest, s),
            )
            prev = digest
        else:
            [(prev,)] = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (s,)).fetchall()
    conn.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
def test_no_checkpoint_is_signed_over_a_rewritten_chain(data_dir: Path) -> None:
    store = _rewritten_from_record_3(data_dir)
    store.audit.append_audit(actor="a", action="config.reloaded")
    key, _ = load_or_create_signing_key(data_dir)
    assert checkpoint_head(store, data_dir, key) is None
    store.close()
    assert len((data_dir / CHECKPOINT_FILE).read_text().splitlines()) == 1


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
def test_a_first_checkpoint_is_not_signed_over_a_broken_chain(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "rcmod.sqlite3")
    for _ in range(3):
        store.audit.append_audit(actor="a", action="config.reloaded")
    store.close()
    _sql(tmp_path, "UPDATE audit_log SET outcome = 'x' WHERE seq = 2")
    store = Store.open(tmp_path / "rcmod.sqlite3")
    key, _ = load_or_create_signing_key(tmp_path)
    assert checkpoint_head(store, tmp_path, key) is None
    store.close()
    assert not (tmp_path / CHECKPOINT_FILE).exists()


def test_cli_commands_that_append_records_checkpoint_the_head(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    assert cli.main(["audit", "hold", "--user", "u5"]) == 0
    store = Store.open(data_dir / "rcmod.sqlite3")
    head = store.audit.audit_head()
    store.close()
    assert head is not None
    last = json.loads((data_dir / CHECKPOINT_FILE).read_text().splitlines()[-1])
    assert (last["seq"], last["hash"]) == head


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_exports_carry_the_checkpoints_and_verify_export_checks_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    out = tmp_path / "export"
    assert cli.main(["audit", "export", "--since", "2020-01-01", "--out", str(out)]) == 0
    assert (out / "checkpoints.jsonl").read_bytes() != b""
    assert verify_export(out).ok
    # A chain rewritten before the export: the export itself is signed, but it contradicts the
    # checkpoints signed earlier, and says so.
    _sql(data_dir, "DELETE FROM audit_log WHERE seq > 3")
    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    [(h,)] = conn.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchall()
    conn.execute("DELETE FROM evidence WHERE audit_seq > 3")
    conn.execute("UPDATE audit_head SET seq = 3, hash = ? WHERE id = 1", (h,))
    conn.commit()
    conn.close()
    out2 = tmp_path / "export2"
    assert cli.main(["audit", "export", "--since", "2020-01-01", "--out", str(out2)]) == 1
    check = verify_export(out2)
    assert not check.ok
    assert any("a signed checkpoint says the log had" in p for p in check.problems)


async def test_the_running_bot_signs_the_head(sandbox: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store.open(data / "rcmod.sqlite3")
    record = store.audit.append_audit(actor="admin", action="config.reloaded")
    store.close()
    bot = await start_bot(bot_settings(sandbox, data))
    try:
        path = data / CHECKPOINT_FILE
        assert await until(path.exists)
        last = json.loads(path.read_text().splitlines()[-1])
        assert (last["seq"], last["hash"]) == (record.seq, record.hash)
    finally:
        await bot.stop()
