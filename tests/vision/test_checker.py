"""The image checker: decode, hashes, list match and score in its own bounded thread pool."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

from bot.errors import ConfigError, FileRefused
from bot.models import HashMatch
from bot.vision import FixedScorer, ImageChecker, NsfwScorer, decode_image, pdq
from bot.vision.hashlists import parse_hash_list
from tests.conftest import until
from tests.vision.images import encode, gradient, shapes

CAP = 10_000_000
PICTURE = encode(shapes(800, 600, seed=21), "JPEG", quality=85)


async def test_a_picture_is_hashed_and_scored() -> None:
    scorer = FixedScorer(0.25)
    checker = ImageChecker(max_bytes=CAP, scorer=scorer)
    try:
        finding = await checker.check(PICTURE, score=True)
    finally:
        checker.close()
    expected_pdq, quality = pdq(decode_image(PICTURE, max_bytes=CAP).image)
    assert finding.sha256 == hashlib.sha256(PICTURE).hexdigest()
    assert (finding.pdq, finding.pdq_quality) == (expected_pdq, quality)
    assert finding.pdq is not None and finding.pdq_quality >= 50
    assert (finding.width, finding.height, finding.match, finding.score) == (800, 600, None, 0.25)


async def test_no_score_unless_asked_and_none_for_a_match() -> None:
    scorer = FixedScorer(0.9)
    own_pdq = pdq(decode_image(PICTURE, max_bytes=CAP).image)[0]
    listed = parse_hash_list(f"{own_pdq},100\n", name="partner", kind="pdq")
    checker = ImageChecker(max_bytes=CAP, scorer=scorer, hash_lists=[listed])
    try:
        unscored = await checker.check(encode(shapes(300, 300, seed=3), "PNG"), score=False)
        matched = await checker.check(PICTURE, score=True)
    finally:
        checker.close()
    assert unscored.score is None and unscored.match is None
    assert matched.match == HashMatch("partner", "pdq", 0) and matched.score is None
    assert scorer.calls == 0


async def test_a_flat_picture_has_no_pdq() -> None:
    checker = ImageChecker(max_bytes=CAP)
    try:
        finding = await checker.check(encode(gradient(640, 480), "PNG"), score=False)
    finally:
        checker.close()
    assert (finding.pdq, finding.pdq_quality) == (None, 0)


async def test_known_bad_bytes_match_even_when_they_do_not_decode() -> None:
    truncated = PICTURE[: len(PICTURE) // 2]
    listed = parse_hash_list(hashlib.sha256(truncated).hexdigest(), name="exact", kind="sha256")
    checker = ImageChecker(max_bytes=CAP, hash_lists=[listed])
    try:
        finding = await checker.check(truncated, score=False)
        with pytest.raises(FileRefused) as caught:
            await checker.check(PICTURE[: len(PICTURE) // 3], score=False)
        with pytest.raises(FileRefused) as too_large:
            await checker.check(b"\0" * (CAP + 1), score=False)
    finally:
        checker.close()
    assert finding.match == HashMatch("exact", "sha256", 0)
    assert (finding.width, finding.height, finding.pdq, finding.score) == (0, 0, None, None)
    assert caught.value.reason == "corrupt" and too_large.value.reason == "too_large"


async def test_scoring_needs_a_scorer() -> None:
    checker = ImageChecker(max_bytes=CAP)
    try:
        with pytest.raises(ValueError, match="no scorer"):
            await checker.check(PICTURE, score=True)
    finally:
        checker.close()


@pytest.mark.parametrize(
    "settings",
    [{"max_bytes": 0}, {"workers": 0}, {"max_pixels": 10**9}, {"max_pixels": 0}, {"pdq_min_quality": 101}],
)
def test_bad_settings_are_config_errors(settings: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        ImageChecker(**{"max_bytes": CAP, **settings})


class GatedScorer:
    """Holds every caller until the gate opens, and counts how many were inside at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.calls = 0

    def score(self, image: object) -> float:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            assert self.gate.wait(timeout=30)
            return 0.0
        finally:
            with self.lock:
                self.active -= 1


async def test_at_most_workers_pictures_are_checked_at_once_and_the_loop_stays_free() -> None:
    scorer = GatedScorer()
    checker = ImageChecker(max_bytes=CAP, scorer=scorer, workers=2)
    pictures = [encode(shapes(200, 200, seed=s), "PNG") for s in range(6)]
    try:
        tasks = [asyncio.create_task(checker.check(p, score=True)) for p in pictures]
        assert await until(lambda: scorer.active == 2, 10)
        # With the two workers held, nothing else starts: the other four wait in the queue.
        assert not await until(lambda: scorer.active > 2, 0.3)
        scorer.gate.set()
        findings = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        scorer.gate.set()
        checker.close()
    assert [f.score for f in findings] == [0.0] * 6
    assert scorer.most == 2 and scorer.calls == 6


async def test_the_real_model_through_the_checker(nsfw_scorer: NsfwScorer) -> None:
    checker = ImageChecker(max_bytes=CAP, scorer=nsfw_scorer)
    try:
        first = await checker.check(PICTURE, score=True)
        again = await checker.check(PICTURE, score=True)
    finally:
        checker.close()
    assert first.score is not None and 0.0 <= first.score < 0.05
    assert again == first
