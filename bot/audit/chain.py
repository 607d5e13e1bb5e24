"""The audit chain's hash, recomputed from exported records (pure: no store, no files).

A record's hash covers ``[prev_hash, seq, at, actor, action, targets, reason, outcome]`` as
canonical JSON (sorted keys, no spaces, UTF-8), ``targets`` and ``reason`` themselves being
canonical JSON strings. The store appends and verifies with these same functions, so an export
can be checked offline without rcmod's database and the two can never disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "RECORD_FIELDS",
    "canonical",
    "chain_hash",
    "check_records",
    "record_hash",
    "sha256_text",
]

GENESIS_HASH = "0" * 64
RECORD_FIELDS = ("seq", "at", "actor", "action", "targets", "reason", "outcome", "prev_hash", "hash")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, targets: str, reason: str, outcome: str
) -> str:
    """The hash of one record as stored: ``targets`` and ``reason`` already canonical JSON strings."""
    return sha256_text(canonical([prev_hash, seq, at, actor, action, targets, reason, outcome]))


def record_hash(record: Mapping[str, Any]) -> str:
    """The hash a record should carry, from its exported fields (targets/reason as objects)."""
    return chain_hash(
        record["prev_hash"],
        record["seq"],
        record["at"],
        record["actor"],
        record["action"],
        canonical(record["targets"]),
        canonical(record["reason"]),
        record["outcome"],
    )


def check_records(records: Sequence[Mapping[str, Any]], *, where: str = "audit.jsonl") -> list[str]:
    """Problems with a run of exported records, in order; empty when every hash checks out.

    An export holds a selection, so gaps between seqs are expected; where two records are
    consecutive the later one must carry the earlier one's hash, and record 1 the genesis hash.
    """
    problems: list[str] = []
    previous: Mapping[str, Any] | None = None
    for line, record in enumerate(records, start=1):
        missing = [f for f in RECORD_FIELDS if f not in record]
        if missing:
            problems.append(f"{where} line {line}: missing {', '.join(missing)}")
            previous = None
            continue
        seq = record["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            problems.append(f"{where} line {line}: seq is not a positive integer")
            previous = None
            continue
        if not isinstance(record["targets"], Mapping) or not isinstance(record["reason"], Mapping):
            problems.append(f"{where} line {line} (record {seq}): targets and reason must be objects")
            previous = None
            continue
        if previous is not None and seq <= previous["seq"]:
            problems.append(
                f"{where} line {line} (record {seq}): out of order after record {previous['seq']}"
            )
        if record_hash(record) != record["hash"]:
            problems.append(f"{where} line {line} (record {seq}): was altered (its hash does not match)")
        if seq == 1 and record["prev_hash"] != GENESIS_HASH:
            problems.append(f"{where} line {line} (record 1): does not start the chain")
        if previous is not None and seq == previous["seq"] + 1 and record["prev_hash"] != previous["hash"]:
            problems.append(f"{where} line {line} (record {seq}): does not follow record {previous['seq']}")
        previous = record
    return problems
