"""The export's manifest and the checks ``verify-export`` runs on what it reads (pure).

An export folder holds::

    audit.jsonl      the selected audit records, one JSON object per line, by seq
    evidence.jsonl   the linked evidence, one per line (``content`` null for an erased tombstone);
                     an item with uploads kept lists them in ``files``: hashes, and the bytes in
                     base64 while kept (null once erased)
    public_key.pem   the Ed25519 public key that signed the manifest
    manifest.json    format, selection, the chain head at export time, and per file its
                     SHA-256, size in bytes and line count
    checkpoints.jsonl  the data folder's signed checkpoints of the chain head (bot.audit.checkpoints)
    manifest.sig     the Ed25519 signature of manifest.json's exact bytes, hex

The manifest is what is signed; every other file is bound to it by its hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.audit import actions
from bot.audit.chain import canonical, check_records, sha256_text

__all__ = [
    "AUDIT_FILE",
    "CHECKPOINTS_FILE",
    "DATA_FILES",
    "EVIDENCE_FILE",
    "FORMAT",
    "FORMATS",
    "MANIFEST_FILE",
    "PUBLIC_KEY_FILE",
    "SIGNATURE_FILE",
    "FileDigest",
    "build_manifest",
    "check_audit",
    "check_evidence",
    "check_files",
    "check_links",
    "jsonl_lines",
    "parse_jsonl",
]

FORMAT = "rcmod-audit-export/2"
FORMATS = ("rcmod-audit-export/1", FORMAT)  # /1: before exports carried checkpoints
AUDIT_FILE = "audit.jsonl"
EVIDENCE_FILE = "evidence.jsonl"
PUBLIC_KEY_FILE = "public_key.pem"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
CHECKPOINTS_FILE = "checkpoints.jsonl"
DATA_FILES = (AUDIT_FILE, EVIDENCE_FILE, PUBLIC_KEY_FILE, CHECKPOINTS_FILE)


@dataclass(frozen=True, slots=True)
class FileDigest:
    sha256: str
    size: int
    lines: int

    @classmethod
    def of(cls, data: bytes) -> FileDigest:
        return cls(hashlib.sha256(data).hexdigest(), len(data), data.count(b"\n"))

    def as_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.size, "lines": self.lines}


def build_manifest(
    *,
    created_at: str,
    selection: Mapping[str, Any],
    chain: Mapping[str, Any],
    fingerprint: str,
    files: Mapping[str, FileDigest],
    counts: Mapping[str, int],
) -> bytes:
    manifest = {
        "format": FORMAT,
        "created_at": created_at,
        "selection": dict(selection),
        "chain": dict(chain),
        "public_key_fingerprint": fingerprint,
        "files": {name: digest.as_json() for name, digest in sorted(files.items())},
        "counts": dict(counts),
    }
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def check_files(
    manifest: Mapping[str, Any], actual: Mapping[str, FileDigest], present: Iterable[str]
) -> list[str]:
    """Compare the files on disk with the manifest: missing, extra, truncated, changed."""
    problems: list[str] = []
    listed = manifest.get("files")
    if not isinstance(listed, Mapping):
        return ["manifest.json: has no file list"]
    required = DATA_FILES if manifest.get("format") == FORMAT else DATA_FILES[:-1]
    for name in required:
        if name not in listed:
            problems.append(f"manifest.json: does not list {name}")
    for name, want in sorted(listed.items()):
        if not isinstance(want, Mapping):
            problems.append(f"manifest.json: the entry for {name} is not an object")
            continue
        got = actual.get(name)
        if got is None:
            problems.append(f"{name}: missing (the manifest lists it)")
            continue
        if got.size != want.get("bytes"):
            problems.append(f"{name}: {got.size} bytes, the manifest says {want.get('bytes')} (truncated?)")
        if got.sha256 != want.get("sha256"):
            problems.append(f"{name}: SHA-256 {got.sha256} does not match the manifest's")
    for name in sorted(set(present) - set(listed) - {MANIFEST_FILE, SIGNATURE_FILE}):
        problems.append(f"{name}: not listed in the manifest")
    return problems


def jsonl_lines(data: bytes, where: str, problems: list[str]) -> Iterator[tuple[int, Any]]:
    """Each line's JSON value with its line number; a truncated last line and lines that are not
    JSON go to ``problems`` as they are met, so problems stay in line order. The one JSONL reader
    of an export and of the checkpoint file."""
    if data and not data.endswith(b"\n"):
        problems.append(f"{where}: the last line is incomplete (truncated?)")
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            value = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{where} line {number}: not valid JSON")
            continue
        yield number, value


def parse_jsonl(data: bytes, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Objects, one per line, and the problems with lines that are not JSON objects."""
    objects: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, obj in jsonl_lines(data, where, problems):
        if isinstance(obj, dict):
            objects.append(obj)
        else:
            problems.append(f"{where} line {number}: not a JSON object")
    return objects, problems


def check_audit(records: Sequence[Mapping[str, Any]], chain: Mapping[str, Any]) -> list[str]:
    """Every record's hash, the links between consecutive ones, and the head the manifest signs."""
    problems = check_records(records, where=AUDIT_FILE)
    head_seq, head_hash = chain.get("head_seq"), chain.get("head_hash")
    for record in records:
        if record.get("seq") == head_seq and record.get("hash") != head_hash:
            problems.append(f"{AUDIT_FILE} (record {head_seq}): is not the chain head the manifest signs")
        if isinstance(head_seq, int) and isinstance(record.get("seq"), int) and record["seq"] > head_seq:
            problems.append(f"{AUDIT_FILE} (record {record['seq']}): is newer than the signed chain head")
    return problems


def check_evidence(
    evidence: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    *,
    source: str | None = EVIDENCE_FILE,
) -> list[str]:
    """Each item's content against its hash, and its hash against the audit record that cites it.

    ``source`` names the file in problems (with line numbers); None for the store itself.
    """
    by_seq = {r.get("seq"): r for r in records}
    problems: list[str] = []
    for line, item in enumerate(evidence, start=1):
        where = f"evidence {item.get('id')}"
        if source is not None:
            where = f"{source} line {line} ({where})"
        digest = item.get("sha256")
        content = item.get("content")
        if content is None:
            if not item.get("erased_at"):
                problems.append(f"{where}: content missing but not marked erased")
        elif not isinstance(digest, str) or sha256_text(canonical(content)) != digest:
            problems.append(f"{where}: content does not match its SHA-256")
        files = item.get("files")
        files = files if isinstance(files, list) else []
        problems.extend(_check_files_kept(where, files, item))
        seq = item.get("audit_seq")
        if seq is None:
            continue
        record = by_seq.get(seq)
        if record is None:
            missing = "which is not in the export" if source is not None else "which is missing"
            problems.append(f"{where}: cites audit record {seq}, {missing}")
            continue
        targets = record.get("targets")
        cited = targets.get("evidence") if isinstance(targets, Mapping) else None
        for entry in cited if isinstance(cited, list) else []:
            if isinstance(entry, Mapping) and entry.get("id") == item.get("id"):
                if entry.get("sha256") != digest:
                    problems.append(f"{where}: SHA-256 differs from the one audit record {seq} attests")
                if "mid" in entry and entry.get("mid") != item.get("mid"):
                    problems.append(
                        f"{where}: message id {item.get('mid')} differs from {entry.get('mid')}, "
                        f"which audit record {seq} attests"
                    )
                attested = entry.get("files")
                attested_hashes = (
                    {(f.get("id"), f.get("sha256")) for f in attested if isinstance(f, Mapping)}
                    if isinstance(attested, list)
                    else set()
                )
                kept_hashes = {(f.get("id"), f.get("sha256")) for f in files if isinstance(f, Mapping)}
                if kept_hashes != attested_hashes:
                    problems.append(f"{where}: its files differ from those audit record {seq} attests")
                break
    return problems


def _check_files_kept(where: str, files: Sequence[Any], item: Mapping[str, Any]) -> list[str]:
    """Each kept upload's bytes against its SHA-256; an erased item keeps no bytes."""
    problems: list[str] = []
    for f in files:
        if not isinstance(f, Mapping):
            problems.append(f"{where}: a file entry is not an object")
            continue
        data = f.get("data")
        if data is None:
            continue
        if item.get("content") is None:
            problems.append(f"{where}: erased, but file {f.get('id')} still holds its bytes")
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except (ValueError, binascii.Error):
            raw = None
        if raw is None or hashlib.sha256(raw).hexdigest() != f.get("sha256"):
            problems.append(f"{where}: file {f.get('id')} does not match its SHA-256")
    return problems


_ERASING = (actions.EVIDENCE_ERASED, actions.EVIDENCE_EXPIRED)


def check_links(evidence: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Evidence against the records that cite it, both ways, over a whole store (not a selection).

    A record of an action cites each item it kept as ``{"id", "mid", "sha256"}``; an erasure or
    expiry record lists the ids it turned into tombstones. So every cited item must exist and
    point back at its record, and every tombstone must have been made by such a record.
    """
    cited: dict[Any, tuple[Any, Mapping[str, Any]]] = {}
    erased_by: dict[Any, Any] = {}
    citing: set[Any] = set()
    for record in records:
        targets = record.get("targets")
        listed = targets.get("evidence") if isinstance(targets, Mapping) else None
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, Mapping):
                cited[entry.get("id")] = (record.get("seq"), entry)
                citing.add(record.get("seq"))
            elif record.get("action") in _ERASING:
                erased_by[entry] = record.get("seq")
    by_id = {item.get("id"): item for item in evidence}
    problems: list[str] = []
    for eid, (seq, entry) in sorted(cited.items(), key=lambda kv: str(kv[0])):
        item = by_id.get(eid)
        if item is None:
            problems.append(
                f"audit record {seq} cites evidence {eid} (message {entry.get('mid')}), "
                "which is missing (deleted)"
            )
        elif item.get("audit_seq") != seq:
            problems.append(
                f"evidence {eid}: linked to audit record {item.get('audit_seq')}, "
                f"but audit record {seq} cites it"
            )
    for eid, seq in sorted(erased_by.items(), key=lambda kv: str(kv[0])):
        item = by_id.get(eid)
        if item is None:
            problems.append(f"audit record {seq} erased evidence {eid}, which is missing (deleted)")
        elif item.get("content") is not None:
            problems.append(f"evidence {eid}: audit record {seq} erased it, but its content is there")
    for item in evidence:
        eid, seq = item.get("id"), item.get("audit_seq")
        if item.get("content") is None and eid not in erased_by:
            problems.append(
                f"evidence {eid}: marked erased, but no audit record erased it (a fake tombstone)"
            )
        if seq is not None and seq in citing and eid not in cited:
            problems.append(f"evidence {eid}: claims audit record {seq}, which does not cite it")
    return problems
