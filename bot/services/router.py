"""Event routing: handlers subscribe to event types; one failing handler never stops the stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.errors import Fatal
from bot.realtime.events import Event

__all__ = ["Handler", "RouteCounters", "Router", "Unfinished"]

log = logging.getLogger("rcmod.router")

Handler = Callable[[Event], Awaitable[None]]


class RouteCounters(Protocol):
    """What routing counts (``bot.metrics.Metrics`` is one); the router needs no metrics library."""

    def count_handler_error(self, handler: str) -> None: ...

    def observe_handler_latency(self, seconds: float) -> None: ...


class Unfinished:
    """Messages whose handling goes on after their handlers returned (a check waiting on the
    server, off the ingest path). Ingest records such a message as handled, and moves its room's
    cursor past it, only once it is released: a crash before then re-reads it, never skips it."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], int] = {}
        self._watchers: list[Callable[[], None]] = []

    def hold(self, mid: str, version: str) -> None:
        key = (mid, version)
        self._held[key] = self._held.get(key, 0) + 1

    def release(self, mid: str, version: str) -> None:
        key = (mid, version)
        left = self._held.get(key, 0) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)
            for watcher in self._watchers:
                watcher()

    def held(self, mid: str, version: str) -> bool:
        return (mid, version) in self._held

    def holding(self) -> bool:
        """Whether any message is held now (most of the time none is)."""
        return bool(self._held)

    def on_release(self, watcher: Callable[[], None]) -> None:
        self._watchers.append(watcher)


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    types: tuple[type, ...]
    handler: Handler


class Router:
    def __init__(
        self,
        metrics: RouteCounters,
        clock: Callable[[], float] = time.perf_counter,
        routes: Iterable[tuple[str, tuple[type, ...], Handler]] = (),
    ) -> None:
        self._routes: list[_Route] = [_Route(*route) for route in routes]
        self._metrics = metrics
        self._clock = clock
        # The routes of each event type, in order, worked out at its first event: every message
        # would otherwise test every route.
        self._by_type: dict[type, tuple[_Route, ...]] = {}

    def add(self, name: str, types: tuple[type, ...], handler: Handler) -> None:
        self._routes.append(_Route(name, types, handler))
        self._by_type.clear()

    def _routes_for(self, kind: type) -> tuple[_Route, ...]:
        routes = tuple(route for route in self._routes if issubclass(kind, route.types))
        self._by_type[kind] = routes
        return routes

    async def dispatch(self, event: Event) -> int:
        """Run every handler for the event; returns how many failed (logged, counted, isolated)."""
        started = self._clock()
        failures = 0
        kind = type(event)
        routes = self._by_type.get(kind)
        if routes is None:
            routes = self._routes_for(kind)
        for route in routes:
            try:
                await route.handler(event)
            except Fatal:
                raise  # not one handler's problem: nothing can be recorded, so the bot stops
            except Exception as exc:  # isolation is the point: log ids, count, go on
                failures += 1
                self._metrics.count_handler_error(route.name)
                log.error(
                    "handler %s failed on %s: %s",
                    route.name,
                    _describe(event),
                    type(exc).__name__,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
        self._metrics.observe_handler_latency(self._clock() - started)
        return failures


def _describe(event: Event) -> str:
    message = getattr(event, "message", None)
    if message is not None:
        return f"{type(event).__name__}(mid={message.id}, rid={message.rid})"
    return type(event).__name__
