"""Ids, clocks and the two wire forms of a stored document.

State keeps dates as aware ``datetime`` objects; they become ISO-8601 strings on REST and EJSON
``{"$date": ms}`` on DDP only when a document leaves the workspace, so one stored message has
both wire forms (reference, conventions).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["IdSource", "from_iso", "ms", "to_ejson", "to_iso", "to_rest", "utc_from_clock"]

# Meteor's Random.id() alphabet (no look-alike characters) and Random.secret()'s alphabet.
_UNMISTAKABLE = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class IdSource:
    """Deterministic Meteor-like ids for a given seed, so seeds are reproducible."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def id(self) -> str:
        return "".join(self._rng.choice(_UNMISTAKABLE) for _ in range(17))

    def secret(self) -> str:
        return "".join(self._rng.choice(_BASE64) for _ in range(43))

    def digits(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789") for _ in range(n))


def utc_from_clock(clock: Callable[[], float]) -> datetime:
    """Now as Rocket.Chat stores it: millisecond precision (JS ``Date``)."""
    millis = int(clock() * 1000)
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def to_iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms(value) % 1000:03d}Z"


def from_iso(text: str) -> datetime | None:
    """Parse what JS ``new Date(text)`` would accept for our purposes; None if invalid."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _convert(value: Any, date: Callable[[datetime], Any]) -> Any:
    if isinstance(value, datetime):
        return date(value)
    if isinstance(value, dict):
        return {k: _convert(v, date) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list | tuple):
        return [_convert(v, date) for v in value]
    return value


def to_rest(value: Any) -> Any:
    """REST form: dates as ISO strings. Keys starting ``__`` are internal and dropped."""
    return _convert(value, to_iso)


def to_ejson(value: Any) -> Any:
    """DDP form: dates as ``{"$date": ms}``."""
    return _convert(value, lambda d: {"$date": ms(d)})
