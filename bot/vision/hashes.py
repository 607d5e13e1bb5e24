"""The two fingerprints of an upload: SHA-256 of its bytes (exact copies) and Meta's PDQ
perceptual hash of its picture (re-encoded, resized or lightly edited copies)."""

from __future__ import annotations

import hashlib

import numpy as np
import pdqhash
from PIL import Image

__all__ = ["PDQ_MIN_QUALITY", "pdq", "sha256"]

# Meta's PDQ guidance (ThreatExchange pdq/README.md, "Matching"): discard hashes of quality
# <= 49; python-threatexchange's PdqSignal uses the same QUALITY_THRESHOLD = 50. A flat or
# featureless picture hashes to little more than noise, and would match unrelated flat pictures.
PDQ_MIN_QUALITY = 50


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pdq(image: Image.Image, *, min_quality: int = PDQ_MIN_QUALITY) -> tuple[str | None, int]:
    """(64 hex digits, quality 0..100) of an RGB picture; the hash is None below ``min_quality``.

    The hex is the reference implementation's: bit 255 first, as ThreatExchange exchanges it,
    so hashes computed here compare with hashes in shared lists."""
    bits, quality = pdqhash.compute(np.asarray(image, dtype=np.uint8))
    quality = int(quality)
    if quality < min_quality:
        return None, quality
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), quality
