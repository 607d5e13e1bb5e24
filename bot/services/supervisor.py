"""Keeps the bot's background loops alive: the outbox, the enforcer's retries, the policy keeper,
sanction expiry, name sweeps, report polls, the lease and housekeeping.

Each loop catches the errors it expects (``RcmodError``) and goes on by itself. Anything else (a
bug, a file that trips the parser, a library's own exception) used to end the loop's task silently
while ``/readyz`` stayed 200. Here such a death is logged as one line (the loop's name and the
exception's type: an exception's text can quote message content), counted, shown in readiness
while the loop is down, and the loop is started again after a backoff.

A ``Fatal`` error (a full disk, leadership lost) is not restarted: nothing can be written, and
retrying would only fill the log. The supervisor hands it to ``on_fatal`` and the app stops with
one clear line (what was not written stays unhandled in the store, so a restart takes it up again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from bot.errors import Fatal
from bot.metrics import Metrics
from bot.realtime.backoff import BackoffPolicy, exponential_backoff

__all__ = ["Supervisor"]

log = logging.getLogger("rcmod.loops")

# A loop that ran this long before dying was healthy: its next restart starts the backoff afresh.
STABLE_AFTER = 60.0


@dataclass
class _Loop:
    name: str
    task: asyncio.Task[None] | None = None
    up: bool = True
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        metrics: Metrics,
        *,
        backoff: BackoffPolicy = exponential_backoff,
        on_fatal: Callable[[BaseException], None] = lambda exc: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._backoff = backoff
        self._on_fatal = on_fatal
        self._sleep = sleep
        self._monotonic = monotonic
        self._loops: dict[str, _Loop] = {}

    def start(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body()`` as the loop ``name``; a fresh ``body()`` after every unexpected death."""
        if name in self._loops:
            raise ValueError(f"loop {name} is already supervised")
        loop = _Loop(name)
        self._loops[name] = loop
        self._metrics.loop_up.labels(name).set(1)
        self._metrics.loop_restarts.labels(name)  # the series exists at 0 before any restart
        loop.task = asyncio.create_task(self._keep(loop, body), name=f"rcmod-loop-{name}")

    def down(self) -> list[str]:
        """Names of the loops that are down now (waiting for their restart)."""
        return [name for name, loop in self._loops.items() if not loop.up]

    def readiness(self) -> dict[str, bool]:
        return {f"loop:{name}": loop.up for name, loop in self._loops.items()}

    def restarts(self, name: str) -> int:
        return self._loops[name].restarts

    async def stop(self) -> None:
        tasks = [loop.task for loop in self._loops.values() if loop.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, loop: _Loop, body: Callable[[], Awaitable[None]]) -> None:
        delays: Iterator[float] = self._backoff()
        while True:
            started = self._monotonic()
            try:
                await body()
                return  # a loop that ends by itself (nothing to resume, a sweep turned off) is done
            except asyncio.CancelledError:
                raise
            except Fatal as exc:
                self._set(loop, up=False)
                log.error("loop %s stopped: %s", loop.name, type(exc).__name__)
                self._on_fatal(exc)
                return
            except Exception as exc:
                if self._monotonic() - started >= STABLE_AFTER:
                    delays = self._backoff()
                delay = next(delays)
                self._set(loop, up=False)
                loop.restarts += 1
                self._metrics.loop_restarts.labels(loop.name).inc()
                # The type only: an exception's text can carry message content or a path's secret.
                log.error("loop %s died (%s); restarting in %.1f s", loop.name, type(exc).__name__, delay)
            await self._sleep(delay)
            self._set(loop, up=True)

    def _set(self, loop: _Loop, *, up: bool) -> None:
        loop.up = up
        self._metrics.loop_up.labels(loop.name).set(1 if up else 0)
