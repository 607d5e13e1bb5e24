"""A flagged picture's bytes follow the evidence rules of the message text: kept within the
retention window, held under a legal hold, erased on request, carried and checked by the signed
export. The audit log cites their hashes, never the bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.audit import actions
from bot.audit.export import verify_export, write_export
from bot.audit.selection import Selection
from bot.moderation.actions import EvidenceFile
from bot.store import Store
from tests.helpers import Clock, chat_message

PICTURE = b"\x89PNG\r\n\x1a\n not really a picture"
SHA = hashlib.sha256(PICTURE).hexdigest()


def flag(store: Store, mid: str = "m1", author: str = "alice-id", *, data: bytes | None = PICTURE) -> int:
    """As the image service keeps an alerted picture: one record, its evidence and the picture."""
    record = store.audit.append_audit(
        actor="rule:images",
        action=actions.IMAGE_FLAGGED,
        targets={"message": mid, "room": "GENERAL", "user": author, "file": "F1"},
        reason={"sha256": SHA, "score": 0.9},
        evidence=(chat_message(mid, author, ""),),
        files=(EvidenceFile(mid, "F1", SHA, "ab" * 32, data),),
        retention_days=90,
        outcome="alert",
    )
    (cited,) = record.targets["evidence"]
    assert cited["files"] == [{"id": cited["files"][0]["id"], "file": "F1", "sha256": SHA, "pdq": "ab" * 32}]
    return int(cited["id"])


def test_the_audit_record_cites_hashes_never_bytes(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    flag(store)
    raw = store.db.execute("SELECT targets, reason FROM audit_log").fetchall()
    assert base64.b64encode(PICTURE).decode() not in json.dumps(raw)
    assert all(PICTURE.decode("latin-1") not in str(r) for r in raw)


def test_bytes_are_erased_with_the_evidence_past_the_window_unless_held(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    kept = flag(store, "m1", "alice-id")
    held = flag(store, "m2", "bob-id")
    store.evidence.place_hold("user", "bob-id", actor="operator")
    clock.now += 91 * 86400
    assert store.evidence.erase_expired_evidence() == 1
    (gone,) = store.evidence.evidence_files(kept)
    assert gone.data is None and gone.sha256 == SHA  # the hash stays, as the message's does
    (still,) = store.evidence.evidence_files(held)
    assert still.data == PICTURE


def test_erasure_of_a_user_drops_their_pictures(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    mine, theirs = flag(store, "m1", "alice-id"), flag(store, "m2", "bob-id")
    store.evidence.erase_user_evidence("alice-id", actor="operator")
    assert store.evidence.evidence_files(mine)[0].data is None
    assert store.evidence.evidence_files(theirs)[0].data == PICTURE


def test_the_signed_export_carries_the_pictures_and_checks_them(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    flag(store, "m1", "alice-id")
    flag(store, "m2", "alice-id", data=None)  # keep_bytes off: hashes only
    key = Ed25519PrivateKey.generate()
    out = tmp_path / "export"
    write_export(store, Selection(user="alice-id"), out, key, now=datetime.now(UTC), actor="test")
    check = verify_export(out)
    assert check.ok, check.problems
    items = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    assert base64.b64decode(items[0]["files"][0]["data"]) == PICTURE
    assert items[1]["files"][0]["data"] is None and items[1]["files"][0]["sha256"] == SHA

    # A picture swapped after the export is caught (the manifest re-signed by a forger or not).
    forged = tmp_path / "forged"
    forged.mkdir()
    items[0]["files"][0]["data"] = base64.b64encode(b"another picture").decode()
    text = "".join(
        json.dumps(i, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for i in items
    )
    for f in out.iterdir():
        (forged / f.name).write_bytes(f.read_bytes())
    (forged / "evidence.jsonl").write_text(text, encoding="utf-8")
    problems = verify_export(forged).problems
    assert any("does not match its SHA-256" in p for p in problems)


def test_an_erased_item_exports_without_its_bytes_and_verifies(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    flag(store, "m1", "alice-id")
    store.evidence.erase_user_evidence("alice-id", actor="operator")
    out = tmp_path / "export"
    write_export(
        store, Selection(user="alice-id"), out, Ed25519PrivateKey.generate(), now=datetime.now(UTC), actor="t"
    )
    assert verify_export(out).ok
    (item,) = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    assert item["content"] is None and item["files"][0]["data"] is None
