"""The supervisor on its own (no server, no sleeping): restarts with growing delays, a loop that
ends by itself is done (not down), and a full disk is fatal instead of restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from bot.errors import DiskFull
from bot.metrics import Metrics
from bot.services.supervisor import Supervisor


def delays() -> Iterator[float]:
    yield from (1.0, 2.0, 4.0, 8.0)


async def test_restarts_with_backoff_then_runs() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    failures = iter([ValueError, KeyError, RecursionError])
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        exc = next(failures, None)
        if exc is not None:
            raise exc("text that must not be logged")

    metrics = Metrics()
    loops = Supervisor(metrics, backoff=delays, sleep=sleep)
    loops.start("demo", body)
    for _ in range(50):
        await asyncio.sleep(0)
    assert runs == 4 and slept == [1.0, 2.0, 4.0]
    assert loops.restarts("demo") == 3 and loops.down() == []
    assert metrics.loop_restarts.labels("demo")._value.get() == 3
    assert metrics.loop_up.labels("demo")._value.get() == 1
    await loops.stop()


async def test_a_full_disk_is_fatal_not_restarted() -> None:
    fatal: list[BaseException] = []
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        raise DiskFull("/data")

    loops = Supervisor(Metrics(), backoff=delays, on_fatal=fatal.append)
    loops.start("outbox", body)
    for _ in range(20):
        await asyncio.sleep(0)
    assert runs == 1 and len(fatal) == 1 and isinstance(fatal[0], DiskFull)
    assert loops.down() == ["outbox"] and loops.readiness() == {"loop:outbox": False}
    await loops.stop()
