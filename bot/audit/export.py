"""Writing a signed export and checking one offline: the thin file layer over the pure checks.

An export is written into a hidden temporary folder beside ``--out`` — data files first, then
the manifest, then its signature, each fsynced — and renamed into place only when complete. An
export interrupted at any point (even by ``kill -9``) leaves at most a ``.NAME.partial-*``
folder without a valid signed manifest, never a folder that looks finished.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.audit import actions
from bot.audit.chain import canonical
from bot.audit.checkpoints import check_against_chain, parse_checkpoints, read_checkpoints
from bot.audit.manifest import (
    AUDIT_FILE,
    CHECKPOINTS_FILE,
    EVIDENCE_FILE,
    FORMATS,
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    SIGNATURE_FILE,
    FileDigest,
    build_manifest,
    check_audit,
    check_evidence,
    check_files,
    parse_jsonl,
)
from bot.audit.selection import Selection, record_selected
from bot.audit.signing import fingerprint, parse_public_key, public_key_pem, sign, verify_signature
from bot.errors import ConfigError
from bot.models import to_iso
from bot.store import AuditRecord, EvidenceRow, Store

__all__ = [
    "ExportCheck",
    "ExportResult",
    "evidence_json",
    "load_public_key_file",
    "record_json",
    "verify_export",
    "write_export",
]

# Exactly what write_export writes, so no byte of the signature file can change unnoticed.
_SIGNATURE_FORM = re.compile(rb"[0-9a-f]{128}\n")


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    records: int
    evidence: int
    chain_ok: bool
    chain_problem: str
    fingerprint: str
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class ExportCheck:
    ok: bool
    problems: list[str]
    fingerprint: str | None
    key_source: str
    records: int = 0
    evidence: int = 0
    selection: Mapping[str, Any] = field(default_factory=dict)


def write_export(
    store: Store,
    selection: Selection,
    out_dir: Path,
    key: Ed25519PrivateKey,
    *,
    now: datetime,
    actor: str,
    data_dir: Path | None = None,
    after_file: Callable[[str], None] | None = None,
) -> ExportResult:
    """Select, write, sign, rename into place; then append an ``audit.exported`` record.

    With ``data_dir`` the store is checked as ``rcmod audit verify`` does (signed checkpoints
    and evidence links included) and the export carries the folder's checkpoints; without it,
    only the chain is checked and the checkpoint file is empty.
    ``after_file`` is called after each file is written (tests use it to simulate a crash).
    Raises ConfigError when ``out_dir`` exists and is not an empty folder.
    """
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"--out: {out_dir} already exists and is not an empty folder")
    chain_ok, chain_problem = _verification(store, data_dir)
    checkpoints = (read_checkpoints(data_dir) or b"") if data_dir is not None else b""
    head = store.audit.audit_head()
    records, evidence = _select(store, selection)
    public = key.public_key()
    fp = fingerprint(public)
    chain = {
        "head_seq": head[0] if head else 0,
        "head_hash": head[1] if head else None,
        "verified": chain_ok,
        "problem": chain_problem,
    }
    parent, tmp = _partial_folder(out_dir)
    try:
        _write_signed(
            tmp,
            key,
            records=records,
            evidence=evidence,
            checkpoints=checkpoints,
            created_at=to_iso(now),
            selection=selection,
            chain=chain,
            after_file=after_file,
        )
        _fsync_dir(tmp)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        os.rename(tmp, out_dir)
        _fsync_dir(parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"--out: cannot write the export to {out_dir}: {exc.strerror}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store.audit.append_audit(
        actor=actor,
        action=actions.AUDIT_EXPORTED,
        targets=selection.describe(),
        reason={"records": len(records), "evidence": len(evidence), "key": fp},
    )
    return ExportResult(
        out_dir,
        len(records),
        len(evidence),
        chain_ok,
        chain_problem,
        fp,
        public_key_pem(public).decode("ascii"),
    )


def _partial_folder(out_dir: Path) -> tuple[Path, Path]:
    """(parent, a private folder beside ``out_dir``): the export is written there, then renamed
    into place, so ``out_dir`` never holds half an export."""
    parent = out_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir(mode=0o700)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create a folder in {parent}: {exc.strerror}") from exc
    return parent, tmp


def _write_signed(
    tmp: Path,
    key: Ed25519PrivateKey,
    *,
    records: list[AuditRecord],
    evidence: list[EvidenceRow],
    checkpoints: bytes,
    created_at: str,
    selection: Selection,
    chain: dict[str, Any],
    after_file: Callable[[str], None] | None,
) -> None:
    """The data files, then the manifest that names their digests, then its signature."""
    public = key.public_key()
    files = {
        AUDIT_FILE: _write(tmp, AUDIT_FILE, _jsonl(record_json(r) for r in records), after_file),
        EVIDENCE_FILE: _write(tmp, EVIDENCE_FILE, _jsonl(evidence_json(e) for e in evidence), after_file),
        PUBLIC_KEY_FILE: _write(tmp, PUBLIC_KEY_FILE, public_key_pem(public), after_file),
        CHECKPOINTS_FILE: _write(tmp, CHECKPOINTS_FILE, checkpoints, after_file),
    }
    manifest = build_manifest(
        created_at=created_at,
        selection=selection.describe(),
        chain=chain,
        fingerprint=fingerprint(public),
        files=files,
        counts={"audit_records": len(records), "evidence": len(evidence)},
    )
    _write(tmp, MANIFEST_FILE, manifest, after_file)
    _write(tmp, SIGNATURE_FILE, (sign(key, manifest) + "\n").encode("ascii"), after_file)


def _verification(store: Store, data_dir: Path | None) -> tuple[bool, str]:
    """Whether the store verifies, and the first thing wrong with it."""
    if data_dir is None:
        chain = store.audit.verify_audit_checked()
        return chain.ok, chain.problem
    from bot.audit.integrity import verify_store  # integrity imports this module

    check = verify_store(store, data_dir)
    if check.chain is not None and not check.chain.ok:
        return False, check.chain.problem
    problems = check.damage + check.checkpoint_problems + check.evidence_problems
    return (not problems), (problems[0] if problems else "")


def _select(store: Store, selection: Selection) -> tuple[list[AuditRecord], list[EvidenceRow]]:
    everything = store.audit.audit_records_checked()
    chosen = {
        r.seq: r
        for r in everything
        if record_selected(selection, at=r.at, actor=r.actor, targets=r.targets, reason=r.reason)
    }
    if selection.user is not None:
        evidence = store.evidence.evidence_rows(author_id=selection.user)
    elif selection.case is not None:
        evidence = store.evidence.evidence_rows(case=selection.case, audit_seqs=chosen)
    else:
        evidence = store.evidence.evidence_rows(captured_since=selection.since_iso)
    # The records that cite the evidence go along, so the export proves each item's hash.
    by_seq = {r.seq: r for r in everything}
    for item in evidence:
        if item.audit_seq is not None and item.audit_seq in by_seq:
            chosen.setdefault(item.audit_seq, by_seq[item.audit_seq])
    return [chosen[s] for s in sorted(chosen)], evidence


def record_json(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": r.at,
        "actor": r.actor,
        "action": r.action,
        "targets": dict(r.targets),
        "reason": dict(r.reason),
        "outcome": r.outcome,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def evidence_json(e: EvidenceRow) -> dict[str, Any]:
    item = _evidence_item(e)
    if e.files:
        # The uploads kept with the message: hashes always, bytes (base64) while they are kept.
        item["files"] = [
            {
                "id": f.id,
                "file": f.file_id,
                "sha256": f.sha256,
                "pdq": f.pdq,
                "size": f.size,
                "data": base64.b64encode(f.data).decode("ascii") if f.data is not None else None,
            }
            for f in e.files
        ]
    return item


def _evidence_item(e: EvidenceRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "mid": e.mid,
        "rid": e.rid,
        "author_id": e.author_id,
        "captured_at": e.captured_at,
        "expires_at": e.expires_at,
        "audit_seq": e.audit_seq,
        "case": e.case,
        "sha256": e.sha256,
        "content": e.content,
        "erased_at": e.erased_at,
        "erased_reason": e.erased_reason,
    }


def _jsonl(objects: Any) -> bytes:
    return "".join(canonical(o) + "\n" for o in objects).encode("utf-8")


def _write(folder: Path, name: str, data: bytes, after: Callable[[str], None] | None) -> FileDigest:
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if after is not None:
        after(name)
    return FileDigest.of(data)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- verify-export ---------------------------------------------------------------------------------


def load_public_key_file(path: Path) -> Ed25519PublicKey:
    """``--public-key FILE``: PEM or OpenSSH. An unreadable or foreign file is a usage error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--public-key: cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"--public-key: {path}: {exc}") from exc


def verify_export(directory: Path, public_key: Ed25519PublicKey | None = None) -> ExportCheck:
    """Check an export with nothing but its files and a public key. Raises ConfigError only when
    ``directory`` is not a folder; everything else is a problem in the result."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a folder")
    present, problems = _read_export(directory)
    public_key, key_source = _export_key(present, public_key, problems)
    fp = fingerprint(public_key) if public_key is not None else None

    manifest_bytes = present.get(MANIFEST_FILE)
    if manifest_bytes is None:
        problems.append(
            f"{MANIFEST_FILE}: missing; the export is incomplete (interrupted before it finished?)"
        )
        return ExportCheck(False, problems, fp, key_source)
    problems.extend(_check_signature(present.get(SIGNATURE_FILE), manifest_bytes, public_key, fp))
    try:
        manifest = json.loads(manifest_bytes)
    except (ValueError, UnicodeDecodeError):
        problems.append(f"{MANIFEST_FILE}: not valid JSON")
        return ExportCheck(False, problems, fp, key_source)
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        problems.append(
            f"{MANIFEST_FILE}: not an rcmod audit export (format {' or '.join(FORMATS)} expected)"
        )
        return ExportCheck(False, problems, fp, key_source)
    signed_fp = manifest.get("public_key_fingerprint")
    if fp is not None and signed_fp != fp:
        problems.append(f"{MANIFEST_FILE}: names signing key {signed_fp}, but the key checked is {fp}")
    records, evidence = _check_contents(manifest, present, public_key, problems)
    selection = manifest.get("selection")
    return ExportCheck(
        not problems,
        problems,
        fp,
        key_source,
        len(records),
        len(evidence),
        selection if isinstance(selection, dict) else {},
    )


def _read_export(directory: Path) -> tuple[dict[str, bytes], list[str]]:
    """The export's files by name, and a problem for anything that is not a plain file."""
    problems: list[str] = []
    present: dict[str, bytes] = {}
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and not entry.is_symlink():
            present[entry.name] = entry.read_bytes()
        else:
            problems.append(f"{entry.name}: unexpected (an export holds plain files only)")
    return present, problems


def _export_key(
    present: Mapping[str, bytes], given: Ed25519PublicKey | None, problems: list[str]
) -> tuple[Ed25519PublicKey | None, str]:
    """The key to check with, and where it came from: the one given, else the export's own."""
    if given is not None:
        return given, "the key given"
    key_source = f"the export's {PUBLIC_KEY_FILE}"
    if PUBLIC_KEY_FILE not in present:
        problems.append(f"{PUBLIC_KEY_FILE}: missing, and no --public-key given")
        return None, key_source
    try:
        return parse_public_key(present[PUBLIC_KEY_FILE]), key_source
    except ValueError as exc:
        problems.append(f"{PUBLIC_KEY_FILE}: {exc}")
        return None, key_source


def _check_signature(
    signature: bytes | None, manifest_bytes: bytes, public_key: Ed25519PublicKey | None, fp: str | None
) -> list[str]:
    if signature is None:
        return [f"{SIGNATURE_FILE}: missing; the export is unsigned or incomplete"]
    if not _SIGNATURE_FORM.fullmatch(signature):
        return [f"{SIGNATURE_FILE}: not one line of 128 lowercase hex digits"]
    if public_key is not None and not verify_signature(public_key, signature.decode("ascii"), manifest_bytes):
        return [
            f"{SIGNATURE_FILE}: the signature of {MANIFEST_FILE} does not verify with public key {fp} "
            f"(a wrong key, or {MANIFEST_FILE} was changed)"
        ]
    return []


def _check_contents(
    manifest: dict[str, Any],
    present: Mapping[str, bytes],
    public_key: Ed25519PublicKey | None,
    problems: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The files against the manifest's digests, the audit chain, the checkpoints and the
    evidence hashes; problems are appended. Returns the records and evidence read."""
    digests = {name: FileDigest.of(data) for name, data in present.items()}
    problems.extend(check_files(manifest, digests, present))

    records, bad = parse_jsonl(present.get(AUDIT_FILE, b""), AUDIT_FILE)
    problems.extend(bad)
    chain = manifest.get("chain")
    if isinstance(chain, dict) and chain.get("verified") is not True:
        problems.append(
            f"{MANIFEST_FILE}: the audit log was already broken when exported: {chain.get('problem')}"
        )
    problems.extend(check_audit(records, chain if isinstance(chain, dict) else {}))
    problems.extend(_check_checkpoints(present.get(CHECKPOINTS_FILE, b""), public_key, records, chain))
    evidence, bad = parse_jsonl(present.get(EVIDENCE_FILE, b""), EVIDENCE_FILE)
    problems.extend(bad)
    problems.extend(check_evidence(evidence, records))
    return records, evidence


def _check_checkpoints(
    data: bytes, key: Ed25519PublicKey | None, records: list[dict[str, Any]], chain: Any
) -> list[str]:
    """The carried checkpoints are signed with the export's key, and agree with the records
    exported and with the head the manifest signs."""
    if not data:
        return []
    checkpoints, problems = parse_checkpoints(data, key, where=CHECKPOINTS_FILE)
    head_seq = chain.get("head_seq") if isinstance(chain, dict) else None
    head_hash = chain.get("head_hash") if isinstance(chain, dict) else None
    hashes = {r["seq"]: r["hash"] for r in records if isinstance(r.get("seq"), int) and "hash" in r}
    if isinstance(head_seq, int) and isinstance(head_hash, str):
        hashes.setdefault(head_seq, head_hash)
    problems += check_against_chain(
        checkpoints,
        head_seq=head_seq if isinstance(head_seq, int) else 0,
        hashes=hashes,
        where=f"{AUDIT_FILE} and the signed head",
    )
    return problems
