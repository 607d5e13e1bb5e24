"""Signed exports: they verify offline, and any changed byte, missing file, wrong key or
interrupted write is caught and named."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot import cli
from bot.audit.export import verify_export, write_export
from bot.audit.selection import Selection
from bot.audit.signing import PRIVATE_KEY_FILE, fingerprint, load_or_create_signing_key, public_key_pem
from bot.errors import ConfigError
from bot.store import Store
from tests.backends import CLI_FINDS_THE_FILE, TAMPERS_WITH_THE_FILE
from tests.helpers import Clock
from tests.helpers import chat_message as _message

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _populate(store: Store) -> None:
    store.audit.append_audit(actor="rule:slurs", action="alert.sent", targets={"user": "u1", "message": "m1"})
    store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": "u1", "message": "m1"},
        reason={"list": "block"},
        evidence=[_message("m1", "u1", "héllo wörld")],
    )
    store.audit.append_audit(
        actor="u3",
        action="report.filed",
        targets={"user": "u2", "message": "m2", "reporter": "u3"},
        evidence=[_message("m2", "u2", "reported text")],
        case=4,
    )
    store.audit.append_audit(actor="mod1", action="user.blocked", targets={"user": "u2", "case": 4})
    store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": "u1", "message": "m3"},
        evidence=[_message("m3", "u1", "to be erased")],
    )
    store.evidence.erase_user_evidence("u1", actor="cli:op")  # leaves m1 and m3 as tombstones


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = Store.open(data / "rcmod.sqlite3", clock=Clock())
    _populate(store)
    store.close()
    return data


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _export(data_dir: Path, out: Path, key: Ed25519PrivateKey, selection: Selection) -> None:
    store = Store.open(data_dir / "rcmod.sqlite3", clock=Clock())
    try:
        write_export(store, selection, out, key, now=NOW, actor="test")
    finally:
        store.close()


def test_export_by_case_verifies_and_holds_what_the_case_links(
    data_dir: Path, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    out = tmp_path / "case4"
    _export(data_dir, out, key, Selection(case=4))
    check = verify_export(out)
    assert check.ok, check.problems
    assert (check.records, check.evidence) == (2, 1)
    assert check.fingerprint == fingerprint(key.public_key())
    assert "reported text" in (out / "evidence.jsonl").read_text()
    # No temp folder left (data/ is the store's folder, which only SQLite creates).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == ["case4"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_export_by_user_includes_tombstones_and_the_erasure(
    data_dir: Path, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    out = tmp_path / "u1"
    _export(data_dir, out, key, Selection(user="u1"))
    check = verify_export(out)
    assert check.ok, check.problems
    text = (out / "audit.jsonl").read_text()
    assert "evidence.erased" in text and "alert.sent" in text and "report.filed" not in text
    assert "to be erased" not in (out / "evidence.jsonl").read_text()
    assert check.evidence == 2


def test_export_since_a_date(data_dir: Path, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    out = tmp_path / "all"
    _export(data_dir, out, key, Selection(since=datetime(2020, 1, 1)))
    check = verify_export(out)
    assert check.ok and check.records == 6 and check.evidence == 3
    later = tmp_path / "none"
    _export(data_dir, later, key, Selection(since=datetime(2030, 1, 1, tzinfo=UTC)))
    assert verify_export(later).ok and verify_export(later).records == 0


def test_every_changed_byte_is_detected(data_dir: Path, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    out = tmp_path / "x"
    _export(data_dir, out, key, Selection(case=4))
    for path in sorted(out.iterdir()):
        original = path.read_bytes()
        for i in range(len(original)):
            # 0x20 turns a hex digit's case: the signature file must not accept "A" for "a".
            for flip in (0x01, 0x20) if path.name == "manifest.sig" else (0x01,):
                changed = bytearray(original)
                changed[i] ^= flip
                path.write_bytes(bytes(changed))
                assert not verify_export(out).ok, f"{path.name} byte {i} ^ {flip:#x} went unnoticed"
        path.write_bytes(original)
    assert verify_export(out).ok


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate-audit", "audit.jsonl: "),
        ("truncate-evidence", "evidence.jsonl: "),
        ("drop-line", "audit.jsonl: "),
        ("remove-evidence", "evidence.jsonl: missing"),
        ("remove-manifest", "manifest.json: missing; the export is incomplete"),
        ("remove-signature", "manifest.sig: missing"),
        ("extra-file", "notes.txt: not listed in the manifest"),
        ("swap-key", "does not verify with public key"),
    ],
)
def test_damage_is_named(
    data_dir: Path, tmp_path: Path, key: Ed25519PrivateKey, damage: str, expected: str
) -> None:
    out = tmp_path / "x"
    _export(data_dir, out, key, Selection(since=datetime(2020, 1, 1)))
    audit, evidence = out / "audit.jsonl", out / "evidence.jsonl"
    if damage == "truncate-audit":
        audit.write_bytes(audit.read_bytes()[:-40])
    elif damage == "truncate-evidence":
        evidence.write_bytes(evidence.read_bytes()[: len(evidence.read_bytes()) // 2])
    elif damage == "drop-line":
        audit.write_bytes(b"".join(audit.read_bytes().splitlines(keepends=True)[1:]))
    elif damage == "remove-evidence":
        evidence.unlink()
    elif damage == "remove-manifest":
        (out / "manifest.json").unlink()
    elif damage == "remove-signature":
        (out / "manifest.sig").unlink()
    elif damage == "extra-file":
        (out / "notes.txt").write_text("hi")
    elif damage == "swap-key":  # an attacker re-signs with their own key and ships its public half
        (out / "public_key.pem").write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    check = verify_export(out)
    assert not check.ok
    assert any(expected in p for p in check.problems), check.problems


def test_wrong_public_key_fails_and_the_right_one_passes(
    data_dir: Path,
    tmp_path: Path,
    key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "x"
    _export(data_dir, out, key, Selection(case=4))
    right, wrong = tmp_path / "right.pem", tmp_path / "wrong.pem"
    right.write_bytes(public_key_pem(key.public_key()))
    wrong.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    monkeypatch.delenv("RCMOD_HTTP_PORT", raising=False)
    assert cli.main(["audit", "verify-export", str(out), "--public-key", str(right)]) == 0
    assert f"public key: {fingerprint(key.public_key())} (from the key given)" in capsys.readouterr().out
    assert cli.main(["audit", "verify-export", str(out), "--public-key", str(wrong)]) == 1
    assert "does not verify with public key" in capsys.readouterr().out
    ssh = tmp_path / "key.pub"  # the OpenSSH form operators often publish works too
    ssh.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    assert cli.main(["audit", "verify-export", str(out), "--public-key", str(ssh)]) == 0
    not_a_key = tmp_path / "junk.pem"
    not_a_key.write_text("hello")
    assert cli.main(["audit", "verify-export", str(out), "--public-key", str(not_a_key)]) == 2
    assert cli.main(["audit", "verify-export", str(out), "--public-key", str(tmp_path / "none")]) == 2
    assert cli.main(["audit", "verify-export", str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize("killed_after", ["evidence.jsonl", "manifest.json"])
def test_an_export_killed_midway_leaves_nothing_that_looks_complete(
    data_dir: Path, tmp_path: Path, killed_after: str
) -> None:
    out = tmp_path / "export"
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import UTC, datetime
        from pathlib import Path
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from bot.audit.export import write_export
        from bot.audit.selection import Selection
        from bot.store import Store

        def crash(name):
            if name == {killed_after!r}:
                os.kill(os.getpid(), signal.SIGKILL)

        store = Store.open(Path({str(data_dir / "rcmod.sqlite3")!r}))
        write_export(store, Selection(case=4), Path({str(out)!r}), Ed25519PrivateKey.generate(),
                     now=datetime.now(UTC), actor="test", after_file=crash)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not out.exists()
    [partial] = [p for p in tmp_path.iterdir() if p.name.startswith(".export.partial-")]
    check = verify_export(partial)
    assert not check.ok
    assert any("missing" in p for p in check.problems), check.problems


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_cli_export_generates_the_key_once_and_keeps_it_private(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    assert cli.main(["audit", "export", "--case", "4", "--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out
    key_file = data_dir / PRIVATE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "generated a new signing key" in first and "BEGIN PUBLIC KEY" in first
    assert "PRIVATE" not in first
    key, created = load_or_create_signing_key(data_dir)
    assert not created
    assert f"signed with Ed25519 public key {fingerprint(key.public_key())}" in first
    assert cli.main(["audit", "export", "--since", "2020-01-01", "--out", str(tmp_path / "b")]) == 0
    assert "generated" not in capsys.readouterr().out
    assert cli.main(["audit", "verify-export", str(tmp_path / "a")]) == 0
    assert cli.main(["audit", "verify-export", str(tmp_path / "b")]) == 0
    assert cli.main(["audit", "key"]) == 0
    assert fingerprint(key.public_key()) in capsys.readouterr().out
    # Exports are themselves audited, and the log stays intact.
    store = Store.open(data_dir / "rcmod.sqlite3")
    assert [r.action for r in store.audit.audit_records()][-2:] == ["audit.exported", "audit.exported"]
    assert store.audit.verify_audit().ok


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_cli_export_refuses_a_non_empty_out_and_bad_arguments(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    assert cli.main(["audit", "export", "--user", "u1", "--out", str(busy)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["audit", "export", "--user", "u1", "--out", str(empty)]) == 0
    for argv in (
        ["audit", "export", "--out", str(tmp_path / "c")],
        ["audit", "export", "--user", "u1"],
        ["audit", "export", "--user", "u1", "--case", "3", "--out", str(tmp_path / "c")],
        ["audit", "export", "--since", "last tuesday", "--out", str(tmp_path / "c")],
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2


def test_a_readable_private_key_is_refused(data_dir: Path, tmp_path: Path) -> None:
    load_or_create_signing_key(data_dir)
    os.chmod(data_dir / PRIVATE_KEY_FILE, 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        load_or_create_signing_key(data_dir)
    os.chmod(data_dir / PRIVATE_KEY_FILE, 0o600)
    (data_dir / PRIVATE_KEY_FILE).write_text("garbage")
    with pytest.raises(ConfigError, match="not a usable private key"):
        load_or_create_signing_key(data_dir)


@pytest.mark.sqlite_only(TAMPERS_WITH_THE_FILE)
def test_cli_export_of_a_broken_chain_exports_and_fails(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    conn = sqlite3.connect(data_dir / "rcmod.sqlite3")
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET outcome = 'nothing happened' WHERE seq = 2")
    conn.commit()
    conn.close()
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data_dir))
    out = tmp_path / "x"
    assert cli.main(["audit", "export", "--user", "u1", "--out", str(out)]) == 1
    assert "the audit log is BROKEN (record 2 was altered)" in capsys.readouterr().out
    check = verify_export(out)  # the manifest is honest about it, and the altered record is named
    assert any("(record 2): was altered" in p for p in check.problems)
    assert any("already broken when exported: record 2 was altered" in p for p in check.problems)
