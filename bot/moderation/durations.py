"""Durations as moderators type them (``90s``, ``10m``, ``24h``, ``7d``, ``2w``, ``1h30m``) and as
the bot shows them. Pure code, shared by the config (``sanctions.ladder``, protection mutes) and
the commands (``/mod mute @x #room 10m``), so both accept and refuse the same things.
"""

from __future__ import annotations

import re

__all__ = ["MAX_DURATION", "DurationError", "format_duration", "looks_like_duration", "parse_duration"]

MAX_DURATION = 365 * 86400.0  # a year: longer than that is a ban, which is a different tool

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_SHAPE = re.compile(r"^-?(\d+[smhdw])+$")
_LOOKS = re.compile(r"^[-+]?\d+([smhdw]|$)")  # `0`, `15`, `-5m`: meant as a duration


class DurationError(ValueError):
    """A duration that cannot be used; the message says why, for the moderator."""


def looks_like_duration(token: str) -> bool:
    """Whether a command word is meant as a duration (so `-5m` is refused, not read as a reason)."""
    return bool(_LOOKS.match(token.strip().lower()))


def parse_duration(text: str, *, maximum: float = MAX_DURATION) -> float:
    """Seconds in ``text``; :class:`DurationError` for zero, negative, malformed or too long."""
    raw = text.strip().lower()
    if raw.startswith("-"):
        raise DurationError(f"{text!r}: a duration cannot be negative")
    if raw.isdigit() and int(raw) == 0:
        raise DurationError(f"{text!r}: a duration must be longer than zero")
    if not _SHAPE.match(raw):
        raise DurationError(f"{text!r}: write a duration with its unit, like 90s, 10m, 24h, 7d or 1h30m")
    seconds = float(sum(int(n) * _UNITS[u] for n, u in _PART.findall(raw)))
    if seconds <= 0:
        raise DurationError(f"{text!r}: a duration must be longer than zero")
    if seconds > maximum:
        raise DurationError(f"{text!r}: longer than the limit of {format_duration(maximum)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest two units: ``1d 2h``, ``10m``, ``45s`` (days, not weeks: ``30d`` reads better)."""
    left = round(seconds)
    if left <= 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
