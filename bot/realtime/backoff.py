"""Reconnection delays: jittered exponential backoff, as an injectable policy.

A policy is a zero-argument callable returning an iterator of delays in seconds (the shape of
websockets' ``reconnect_delays``). The client takes a fresh iterator after a stable connection,
which is how the backoff resets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["BackoffPolicy", "exponential_backoff"]

BackoffPolicy = Callable[[], Iterator[float]]


def exponential_backoff(
    initial: float = 1.0,
    maximum: float = 60.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Delays ``initial, initial*factor, ...`` capped at ``maximum``, each shortened by up to
    ``jitter`` of itself so that many bots restarted together do not reconnect in lockstep.

    Every delay lies in ``[base * (1 - jitter), base]``.
    """
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must be between 0 and 1")
    base = initial
    while True:
        yield base * (1.0 - jitter * rng())
        base = min(base * factor, maximum)
