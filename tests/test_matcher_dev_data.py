"""The labelled development set in ../shared/data/matcher-dev, at the 1,000-term list size.

The benchmark (benchmarks/bench_matcher.py) measures every size and the speed; this keeps the
accuracy targets from regressing in the ordinary test run.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bot.moderation import Matcher, compile, parse_wordlist
from bot.moderation.normalize import base_fold

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "matcher-dev"
SIZE = 1_000
TIER = 1  # terms of tiers 0 and 1 are in the first 1,000 lines

pytestmark = pytest.mark.skipif(not (DATA / "eval.jsonl").is_file(), reason=f"no development data at {DATA}")


@pytest.fixture(scope="module")
def keywords() -> list[str]:
    return [k for k in (DATA / "keywords.txt").read_text(encoding="utf-8").split("\n") if k.strip()]


@pytest.fixture(scope="module")
def matcher(keywords: list[str]) -> Matcher:
    return compile([parse_wordlist("keywords", "\n".join(keywords[:SIZE]))])


@pytest.fixture(scope="module")
def evalset() -> list[dict[str, object]]:
    lines = (DATA / "eval.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _fold(term: str) -> str:
    return " ".join(base_fold(term).split())


def test_recall_per_evasion_class(
    matcher: Matcher, keywords: list[str], evalset: list[dict[str, object]]
) -> None:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for item in evalset:
        if item["cat"] != "planted" or int(str(item["tier"])) > TIER:
            continue
        text, want = str(item["text"]), _fold(keywords[int(str(item["kw"]))])
        span = item.get("span")
        ok = any(
            _fold(m.term) == want and (not isinstance(span, list) or (m.start < span[1] and span[0] < m.end))
            for m in matcher.scan(text)
        )
        hits[str(item["ev"])] += ok
        totals[str(item["ev"])] += 1
    recall = {ev: hits[ev] / totals[ev] for ev in totals}
    assert set(recall) >= {
        "plain",
        "mixedcase",
        "leet",
        "homoglyph",
        "zerowidth",
        "diacritic",
        "spaced",
        "nonlatin",
    }
    assert min(recall.values()) >= 0.99, recall


def test_no_match_on_controls_and_clean_messages(matcher: Matcher, evalset: list[dict[str, object]]) -> None:
    false_positives = [
        (str(item["text"]), [m.term for m in matcher.scan(str(item["text"]))])
        for item in evalset
        if item["cat"] in ("control", "clean") and matcher.scan(str(item["text"]))
    ]
    assert false_positives == []


def test_fast_path_never_misses_what_the_exact_path_finds(
    matcher: Matcher, evalset: list[dict[str, object]]
) -> None:
    # The fast path only decides whether the exact path must run; it must never say no when
    # the exact path would find something. Perturbed texts exercise the rarer readings.
    rnd = random.Random(7)
    noise = ["!", "@", "1", "|", ".", " ", "  ", "\u200b", "é", "а", "👍", "-", "_", "'", "$", "4", "0"]
    texts = [str(item["text"]) for item in evalset[:1500]]
    texts += ["".join(c if rnd.random() > 0.05 else rnd.choice(noise) for c in t) for t in texts]
    mismatches = [t for t in texts if matcher.scan(t) != list(matcher.explain(t).matches)]
    assert mismatches == []
