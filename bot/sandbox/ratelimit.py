"""Rate limits as Rocket.Chat applies them, driven by an injected clock (A.8, C.0).

Meteor's rate limiter counts calls in a fixed window that starts with the first call of a key;
when the window has passed, the count starts again. ``timeToReset`` is the rest of the window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["Decision", "FixedWindowLimiter", "RateLimits"]


@dataclass(frozen=True)
class RateLimits:
    """Limits of the simulated server. Windows are in seconds (of the injected clock)."""

    # REST: per route + method, per caller (Rocket.Chat counts per IP; every sandbox client is
    # 127.0.0.1, so the caller's user id stands in). Users with api-bypass-rate-limit skip it.
    rest_enabled: bool = True
    rest_calls: int = 10
    rest_window: float = 60.0
    # DDP_Rate_Limit_Connection_By_Method: per connection + method/subscription name;
    # names starting with `stream-` get both numbers multiplied.
    ddp_enabled: bool = True
    ddp_calls: int = 10
    ddp_window: float = 10.0
    ddp_stream_multiplier: int = 4
    # sendMessage: per user, unless the user has send-many-messages (RC-SENDMSG).
    send_message_calls: int = 5
    send_message_window: float = 1.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # clock seconds when the window ends

    def time_to_reset_ms(self, now: float) -> int:
        return max(0, math.ceil((self.reset_at - now) * 1000))


class FixedWindowLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[Hashable, tuple[float, int]] = {}

    def hit(self, key: Hashable, calls: int, window: float) -> Decision:
        now = self._clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= window:
            start, used = now, 0
        reset_at = start + window
        if used >= calls:
            self._windows[key] = (start, used)
            return Decision(False, calls, 0, reset_at)
        used += 1
        self._windows[key] = (start, used)
        return Decision(True, calls, calls - used, reset_at)
