"""Signed checkpoints of the audit chain's head, kept outside the database.

Threat model: an attacker who can rewrite the SQLite database (edit, delete or insert rows, drop
the append-only triggers, recompute every hash, replace or empty the file) but who cannot read
the audit signing key. The hash chain alone cannot stop such an attacker: its head lives in the
same file, so a chain rewritten end to end, or cut short with the head row updated, verifies.
What the attacker cannot do is sign. So the head ``(seq, hash)`` is signed with the audit key
(Ed25519, :mod:`bot.audit.signing`) at intervals — by the bot's housekeeping and by every CLI
command that appends records — and appended to ``audit-checkpoints.jsonl`` beside the key in the
data folder, which the database cannot reach. ``rcmod audit verify`` then requires that the log
still holds every checkpointed record with the checkpointed hash, and that it is at least as
long as the newest checkpoint; every export carries the checkpoints, and ``verify-export``
checks them against the exported records and the signed head.

Not covered: an attacker who can also write the data folder can delete or truncate the
checkpoint file (never forge a line); an operator who wants that covered too keeps the file
append-only (``chattr +a``) or ships it off the host. Records appended after the newest
checkpoint are protected by the chain only until the next checkpoint.

A line is canonical JSON ``{"at", "hash", "seq", "sig"}``; ``sig`` is the hex Ed25519 signature of
the canonical JSON of ``{"at", "format", "hash", "seq"}`` with ``format`` = :data:`FORMAT`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.audit.chain import canonical, check_records
from bot.audit.manifest import jsonl_lines
from bot.audit.signing import sign, verify_signature
from bot.errors import ConfigError
from bot.models import to_iso

if TYPE_CHECKING:
    from bot.store import Store

__all__ = [
    "CHECKPOINT_FILE",
    "FORMAT",
    "Checkpoint",
    "append_checkpoint",
    "check_against_chain",
    "checkpoint_head",
    "checkpoint_line",
    "parse_checkpoints",
    "read_checkpoints",
]

CHECKPOINT_FILE = "audit-checkpoints.jsonl"
FORMAT = "rcmod-audit-checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: str


def _signed_bytes(seq: int, digest: str, at: str) -> bytes:
    return canonical({"at": at, "format": FORMAT, "hash": digest, "seq": seq}).encode("utf-8")


def checkpoint_line(key: Ed25519PrivateKey, seq: int, digest: str, at: str) -> bytes:
    sig = sign(key, _signed_bytes(seq, digest, at))
    return (canonical({"at": at, "hash": digest, "seq": seq, "sig": sig}) + "\n").encode("utf-8")


def parse_checkpoints(
    data: bytes, key: Ed25519PublicKey | None, *, where: str = CHECKPOINT_FILE
) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints whose signature verifies, and the problems with every other line."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for number, obj in jsonl_lines(data, where, problems):
        seq, digest, at, sig = (
            (obj.get(k) for k in ("seq", "hash", "at", "sig"))
            if isinstance(obj, dict)
            else (None, None, None, None)
        )
        if not (
            isinstance(seq, int)
            and not isinstance(seq, bool)
            and seq >= 1
            and isinstance(digest, str)
            and isinstance(at, str)
            and isinstance(sig, str)
        ):
            problems.append(f"{where} line {number}: not a checkpoint (seq, hash, at, sig)")
            continue
        if key is None:
            problems.append(f"{where} line {number}: cannot be checked without the audit signing key")
            continue
        if not verify_signature(key, sig, _signed_bytes(seq, digest, at)):
            problems.append(f"{where} line {number}: the signature does not verify (forged or edited)")
            continue
        checkpoints.append(Checkpoint(seq, digest, at))
    return checkpoints, problems


def check_against_chain(
    checkpoints: Sequence[Checkpoint], *, head_seq: int, hashes: Mapping[int, str], where: str
) -> list[str]:
    """What the log (its head and the records at hand, by seq) contradicts in the checkpoints."""
    problems: list[str] = []
    newest = max(checkpoints, key=lambda c: c.seq, default=None)
    if newest is not None and newest.seq > head_seq:
        problems.append(
            f"{where}: has {head_seq} records, but a signed checkpoint says the log had {newest.seq} "
            f"records at {newest.at} (records cut off, or the log replaced)"
        )
    for c in checkpoints:
        have = hashes.get(c.seq)
        if have is not None and have != c.hash:
            problems.append(
                f"{where} (record {c.seq}): does not match the signed checkpoint of {c.at} "
                "(the chain was rewritten)"
            )
    return problems


def read_checkpoints(data_dir: Path) -> bytes | None:
    """The checkpoint file's bytes, or None when there is none."""
    try:
        return (data_dir / CHECKPOINT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"storage.data_dir: cannot read {data_dir / CHECKPOINT_FILE}: {exc.strerror}"
        ) from exc


def append_checkpoint(data_dir: Path, line: bytes) -> None:
    """Append one line (O_APPEND: never rewrite what is there) and fsync it."""
    path = data_dir / CHECKPOINT_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"storage.data_dir: cannot append to {path}: {exc.strerror}") from exc


def checkpoint_head(
    store: Store, data_dir: Path, key: Ed25519PrivateKey, *, now: datetime | None = None
) -> Checkpoint | None:
    """Sign and append the current head when it has moved since the newest checkpoint.

    Nothing is signed over a chain that does not extend the newest checkpoint (or, before the
    first one, over a chain that does not verify): signing a rewritten head would launder it.
    Only the records since the newest checkpoint are read, so the bot can do this hourly on a
    large log. Returns the new checkpoint, or None when none was written.
    """
    head = store.audit.audit_head()
    if head is None:
        return None
    existing, _ = parse_checkpoints(read_checkpoints(data_dir) or b"", key.public_key())
    newest = max(existing, key=lambda c: c.seq, default=None)
    if newest is not None and (newest.seq, newest.hash) == head:
        return None
    if not _extends(store, newest, head):
        return None
    at = to_iso(now or datetime.now(UTC))
    append_checkpoint(data_dir, checkpoint_line(key, head[0], head[1], at))
    return Checkpoint(head[0], head[1], at)


def _extends(store: Store, newest: Checkpoint | None, head: tuple[int, str]) -> bool:
    """Whether the log runs unbroken from the newest checkpoint (or from the start) to ``head``."""
    if newest is None:
        return store.audit.verify_audit_checked().ok
    if newest.seq > head[0]:
        return False
    from bot.audit.export import record_json  # export imports this module

    records = [record_json(r) for r in store.audit.audit_records_checked(since_seq=newest.seq - 1)]
    if not records or records[0]["seq"] != newest.seq or records[0]["hash"] != newest.hash:
        return False
    contiguous = [r["seq"] for r in records] == list(range(newest.seq, head[0] + 1))
    return contiguous and records[-1]["hash"] == head[1] and not check_records(records)
