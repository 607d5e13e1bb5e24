"""Known-bad hash lists: files an administrator loads, for example exported from an industry
hash-sharing programme, matched against every upload.

A list file holds one hash a line; blank lines and lines starting with ``#`` are comments. A
SHA-256 hash and a PDQ hash are both 64 hex digits, so the file cannot say which it holds: the
configuration names each list's kind. PDQ rows may carry the quality and a file name after the
hash, comma-separated, as Meta's reference hasher writes them (``hash,quality,filename``).

A list is matched whole: SHA-256 by set lookup, PDQ by the Hamming distance to every hash at once
(the hashes packed as four 64-bit words, XOR and popcount in numpy: well under a millisecond
for a hundred thousand hashes, see benchmarks/bench_images.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from bot.errors import ConfigError
from bot.models import HashMatch

__all__ = [
    "PDQ_MAX_DISTANCE",
    "PDQ_MAX_DISTANCE_LIMIT",
    "HashKind",
    "HashList",
    "load_hash_list",
    "match_lists",
    "parse_hash_list",
]

HashKind = Literal["sha256", "pdq"]

# Meta's recommended starting point for a PDQ match (ThreatExchange pdq/README.md: "Distance
# Threshold to consider two hashes to be similar/matching: <=31").
PDQ_MAX_DISTANCE = 31
# Two unrelated pictures differ in about 128 of 256 bits; past 64 a list matches pictures that
# merely share a layout, and every match is treated as critical.
PDQ_MAX_DISTANCE_LIMIT = 64

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ERRORS_SHOWN = 5


@dataclass(frozen=True, slots=True, eq=False)
class HashList:
    """One loaded list. ``name`` is the file's stem: what alerts and the audit log show."""

    name: str
    kind: HashKind
    max_distance: int
    size: int
    _sha256: frozenset[str] = field(default=frozenset(), repr=False)
    # Shape (4, size): word w of every hash in one contiguous row.
    _pdq: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros((4, 0), np.uint64), repr=False)

    def match(self, sha256: str, pdq: str | None) -> HashMatch | None:
        """This list's match for an upload's hashes (the nearest PDQ hash), or None."""
        if self.kind == "sha256":
            return HashMatch(self.name, "sha256", 0) if sha256 in self._sha256 else None
        if pdq is None or self.size == 0:
            return None
        query = _pack([pdq])[0]
        # One contiguous row per 64-bit word (see parse_hash_list): XOR and popcount stream
        # through memory, and 256 fits the uint16 sum. Ten times faster than a (n, 4) layout.
        distances = np.bitwise_count(self._pdq[0] ^ query[0]).astype(np.uint16)
        for word in range(1, 4):
            distances += np.bitwise_count(self._pdq[word] ^ query[word])
        nearest = int(distances.min())
        return HashMatch(self.name, "pdq", nearest) if nearest <= self.max_distance else None


def match_lists(lists: Iterable[HashList], sha256: str, pdq: str | None) -> HashMatch | None:
    """The best match over all lists: an exact SHA-256 match first, then the nearest PDQ one
    (the earlier list on a tie)."""
    best: HashMatch | None = None
    for hash_list in lists:
        found = hash_list.match(sha256, pdq)
        if found is not None and (best is None or found.distance < best.distance):
            best = found
            if found.distance == 0:
                break
    return best


def load_hash_list(path: Path | str, kind: str, max_distance: int | None = None) -> HashList:
    """Read and validate one list file; a ConfigError names the file and the bad lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"hash list {path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"hash list {path}: cannot read it ({exc.strerror})") from exc
    return parse_hash_list(text, name=path.stem, kind=kind, max_distance=max_distance, source=str(path))


def parse_hash_list(
    text: str, *, name: str, kind: str, max_distance: int | None = None, source: str | None = None
) -> HashList:
    source = source or name
    if kind not in get_args(HashKind):
        raise ConfigError(f"hash list {source}: kind must be sha256 or pdq, not {kind!r}")
    distance = _distance(source, kind, max_distance)
    hashes: list[str] = []
    bad: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        problem = _check_row(line, kind)
        if problem is None:
            hashes.append(line.split(",", 1)[0].strip().lower())
        else:
            bad.append(f"line {number}: {problem}")
    if bad:
        shown = "; ".join(bad[:_ERRORS_SHOWN])
        more = f" (and {len(bad) - _ERRORS_SHOWN} more)" if len(bad) > _ERRORS_SHOWN else ""
        raise ConfigError(f"hash list {source} ({kind}): {len(bad)} bad line(s): {shown}{more}")
    if kind == "sha256":
        unique = frozenset(hashes)
        return HashList(name, "sha256", 0, len(unique), _sha256=unique)
    packed = np.unique(_pack(hashes), axis=0) if hashes else np.zeros((0, 4), np.uint64)
    return HashList(name, "pdq", distance, len(packed), _pdq=np.ascontiguousarray(packed.T))


def _distance(source: str, kind: str, max_distance: int | None) -> int:
    if kind == "sha256":
        if max_distance not in (None, 0):
            raise ConfigError(f"hash list {source}: a sha256 list matches exactly; max_distance must be 0")
        return 0
    if max_distance is None:
        return PDQ_MAX_DISTANCE
    if not 0 <= max_distance <= PDQ_MAX_DISTANCE_LIMIT:
        raise ConfigError(
            f"hash list {source}: max_distance {max_distance} is outside 0..{PDQ_MAX_DISTANCE_LIMIT} "
            f"(Meta recommends {PDQ_MAX_DISTANCE})"
        )
    return max_distance


def _check_row(line: str, kind: str) -> str | None:
    """What is wrong with one row (never echoing it: a list may hold anything), or None."""
    fields = [f.strip() for f in line.split(",")]
    if not _HEX64.fullmatch(fields[0]):
        return f"not a {kind} hash (64 hex digits)"
    if kind == "sha256":
        return None if len(fields) == 1 else "a sha256 row holds the hash alone"
    if len(fields) > 1 and not (fields[1].isascii() and fields[1].isdigit() and int(fields[1]) <= 100):
        return "the quality after the hash must be a whole number 0..100"
    return None


def _pack(hashes: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Hex PDQ hashes as rows of four big-endian 64-bit words (any fixed split works for a
    Hamming distance, as long as both sides use the same)."""
    raw = bytes.fromhex("".join(hashes))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hashes), 4)
