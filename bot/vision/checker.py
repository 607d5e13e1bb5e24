"""The image checker: one upload's bytes in, an :class:`ImageFinding` out (or FileRefused).

All the work (decode, hashes, list match, score) runs in a small thread pool of its own, so the
event loop never waits on a picture: Pillow and onnxruntime release the GIL while they work.
The pool's size is the number of pictures checked at once; more wait their turn in its queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from bot.errors import ConfigError, FileRefused
from bot.models import HashMatch, ImageFinding
from bot.vision.decode import DEFAULT_MAX_PIXELS, decode_image
from bot.vision.hashes import PDQ_MIN_QUALITY, pdq, sha256
from bot.vision.hashlists import HashList, match_lists
from bot.vision.scorer import Scorer

__all__ = ["ImageChecker"]


class ImageChecker:
    """Checks uploads against the operator's hash lists and, when asked, the NSFW scorer.

    ``max_bytes`` is checked again here although the downloader caps what it reads: this is
    the module that hands the bytes to a decoder. ``scorer`` may be None for a bot that only
    matches hash lists; asking it for a score is then a programming error."""

    def __init__(
        self,
        *,
        max_bytes: int,
        hash_lists: Sequence[HashList] = (),
        scorer: Scorer | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int = 1,
        pdq_min_quality: int = PDQ_MIN_QUALITY,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"images.max_bytes must be positive, not {max_bytes}")
        # Pillow warns (DecompressionBombWarning) past Image.MAX_IMAGE_PIXELS and only refuses
        # past twice that; a cap at or below its warning means every picture it warns about is
        # one this checker refuses as a bomb, without touching the process-wide warning filters
        # from worker threads.
        pillow_cap = Image.MAX_IMAGE_PIXELS or max_pixels  # None: an embedder turned Pillow's off
        if not 0 < max_pixels <= pillow_cap:
            raise ConfigError(f"images.max_pixels must be in 1..{pillow_cap}, not {max_pixels}")
        if workers < 1:
            raise ConfigError(f"images.workers must be at least 1, not {workers}")
        if not 0 <= pdq_min_quality <= 100:
            raise ConfigError(f"images.pdq_min_quality must be in 0..100, not {pdq_min_quality}")
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._sha_lists = tuple(h for h in hash_lists if h.kind == "sha256")
        self._pdq_lists = tuple(h for h in hash_lists if h.kind == "pdq")
        self._scorer = scorer
        self._pdq_min_quality = pdq_min_quality
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rcmod-image")

    async def check(self, data: bytes, *, score: bool) -> ImageFinding:
        """What the checker learns of ``data``; raises FileRefused for a file it will not
        inspect. A hash-list match is never scored: the match decides on its own."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.check_now, data, score)

    def check_now(self, data: bytes, score: bool) -> ImageFinding:
        """The same, in the calling thread: for a caller that is already off the event loop
        (the benchmark times it)."""
        if score and self._scorer is None:
            raise ValueError("this ImageChecker has no scorer")
        if len(data) > self._max_bytes:
            raise FileRefused("too_large", f"{len(data)} bytes, cap {self._max_bytes}")
        digest = sha256(data)
        exact = match_lists(self._sha_lists, digest, None)
        try:
            decoded = decode_image(data, max_bytes=self._max_bytes, max_pixels=self._max_pixels)
        except FileRefused:
            if exact is None:
                raise
            # Known-bad bytes stay known-bad whatever a decoder makes of them (a browser still
            # shows a truncated JPEG): report the match, with no picture to measure.
            return ImageFinding(digest, None, 0, 0, 0, exact, None)
        pdq_hex, quality = pdq(decoded.image, min_quality=self._pdq_min_quality)
        found: HashMatch | None = exact or match_lists(self._pdq_lists, digest, pdq_hex)
        nsfw: float | None = None
        if score and found is None and self._scorer is not None:
            nsfw = self._scorer.score(decoded.image)
        return ImageFinding(
            sha256=digest,
            pdq=pdq_hex,
            pdq_quality=quality if pdq_hex is not None else 0,
            width=decoded.width,
            height=decoded.height,
            match=found,
            score=nsfw,
        )

    def close(self) -> None:
        """Stop taking work; pictures already being checked finish in their threads, queued
        ones are dropped (their callers see CancelledError), and a later check() raises
        RuntimeError. Never blocks the event loop."""
        self._pool.shutdown(wait=False, cancel_futures=True)
