"""What the benchmarks share: the machine line each prints first, the matcher's development data,
the best-of-N rate, synthetic keyword lists, percentiles and the bot's settings against a seeded
sandbox."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]} "
        f"({platform.python_implementation()}) on {platform.system()} {platform.release()}"
    )


# The matcher's development data: keywords.txt (one term a line), corpus.jsonl, eval.jsonl.
MATCHER_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "matcher-dev"


def read_keywords(data: Path) -> list[str]:
    """The non-blank lines of ``data``/keywords.txt, in order."""
    return [k for k in (data / "keywords.txt").read_text(encoding="utf-8").split("\n") if k.strip()]


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def best_rate(prepare: Callable[[], Callable[[], None]], n: int, repeat: int) -> float:
    """Items per second of the best of ``repeat`` runs; ``prepare`` (not timed) builds each run."""
    best = float("inf")
    for _ in range(repeat):
        run = prepare()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


def synthetic_terms(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct made-up words (letters only, 7-10 long): none occurs in the members' texts."""
    rng = random.Random(seed)
    letters = "bcdfghjklmnpqrstvwxz"
    out: dict[str, None] = {}
    while len(out) < n:
        out["".join(rng.choice(letters) for _ in range(rng.randint(7, 10)))] = None
    return list(out)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted ``values``, nan when empty."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def bot_settings(
    url: str, bot_user: dict[str, Any], data_dir: Path, lists: Path | None, *, protections: str
) -> dict[str, Any]:
    """The bot's settings against a seeded sandbox (``bot_user``: its rcmod.bot entry).

    Every alert goes out (no hourly cap): the DMs are what is timed. ``protections="off"``
    measures what the automatic protections cost on the path."""
    off = {"mode": "off"}
    return {
        "server": {"url": url, "user_id": bot_user["id"], "auth_token": bot_user["token"]},
        "storage": {"data_dir": str(data_dir / "data")},
        "http": {"port": 0},
        "moderation": {
            "wordlists": [str(lists)] if lists else [],
            "exempt_roles": [],
            "alert_cap_per_hour": 0,
        },
        "protections": {"flood": off, "repeat": off, "mentions": off} if protections == "off" else {},
        "logging": {"level": "WARNING"},
    }
