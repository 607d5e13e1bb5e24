"""The image checker: decode an upload safely, hash it, match it against the operator's
known-bad hash lists, and score it with a local NSFW model. CPU-bound and offline: no picture
and no hash leaves the machine, and nothing is downloaded at run time.

    ImageChecker.check(bytes) -> ImageFinding     checker.py, in its own thread pool
      decode_image     sniff, allow-list, pixel cap, first frame, EXIF turn, RGB   decode.py
      sha256, pdq      the exact and the perceptual fingerprint                   hashes.py
      HashList.match   the operator's known-bad lists                             hashlists.py
      Scorer.score     open_nsfw on onnxruntime (NsfwScorer)                      scorer.py
"""

from bot.vision.checker import ImageChecker
from bot.vision.decode import DEFAULT_MAX_PIXELS, FORMATS, DecodedImage, decode_image
from bot.vision.hashes import PDQ_MIN_QUALITY, pdq, sha256
from bot.vision.hashlists import PDQ_MAX_DISTANCE, HashKind, HashList, load_hash_list, match_lists
from bot.vision.scorer import FixedScorer, NsfwScorer, Scorer, bundled_model_path, verify_model

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "PDQ_MAX_DISTANCE",
    "PDQ_MIN_QUALITY",
    "DecodedImage",
    "FixedScorer",
    "HashKind",
    "HashList",
    "ImageChecker",
    "NsfwScorer",
    "Scorer",
    "bundled_model_path",
    "decode_image",
    "load_hash_list",
    "match_lists",
    "pdq",
    "sha256",
    "verify_model",
]
