"""Prometheus metrics, on a registry owned by the app (no module-level globals)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["Metrics"]

_le = cast(Callable[[float], str], floatToGoString)  # how prometheus_client writes a bucket's bound


class EventHistogram(Collector):
    """A histogram without labels for a per-event observation: plain counts, summed into the
    exposition only when scraped. prometheus_client's Histogram takes a lock and increments a
    value object per bucket on every observation, which the event path pays once per message;
    the bot observes from its one event loop thread."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(sorted(buckets))
        self._counts = [0] * (len(self._bounds) + 1)  # the last: above every bound
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1  # a bucket counts values <= its bound
        self._sum += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, total, buckets = list(self._counts), 0, []
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            total += count
            buckets.append((_le(bound), total))
        yield HistogramMetricFamily(self._name, self._documentation, buckets=buckets, sum_value=self._sum)

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages_seen = Counter(
            "rcmod_messages_seen",
            "Message events received, by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.reconnects = Counter("rcmod_reconnects", "Realtime reconnections", registry=self.registry)
        self.rest_errors = Counter(
            "rcmod_rest_errors", "REST failures by what the caller can do", ["kind"], registry=self.registry
        )
        self.handler_errors = Counter(
            "rcmod_handler_errors",
            "Handler exceptions (isolated; the stream goes on)",
            ["handler"],
            registry=self.registry,
        )
        self.frames_rejected = Counter(
            "rcmod_frames_rejected", "Realtime frames that could not be understood", registry=self.registry
        )
        self.handler_latency = EventHistogram(
            "rcmod_handler_latency_seconds",
            "Time to run all handlers for one event",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.registry.register(self.handler_latency)
        self.caught_up = Counter(
            "rcmod_catch_up_messages",
            "Messages recovered by catch-up after an outage",
            registry=self.registry,
        )
        self.alerts = Counter(
            "rcmod_alerts",
            "Keyword alerts: raised, coalesced into an open alert, delivered, updated, undeliverable",
            ["outcome"],
            registry=self.registry,
        )
        self.unscannable = Counter(
            "rcmod_unscannable_messages",
            "End-to-end encrypted messages counted, not scanned",
            registry=self.registry,
        )
        self.image_files = Counter(
            "rcmod_image_files",
            "Uploads checked on this host, by verdict (clean, allowed, alert, block, critical)",
            ["verdict"],
            registry=self.registry,
        )
        self.image_files_refused = Counter(
            "rcmod_image_files_refused",
            "Uploads not inspected, by reason (too_large, too_slow, not_image, corrupt, bomb, encrypted, "
            "gone, unavailable)",
            ["reason"],
            registry=self.registry,
        )
        self.actions = Counter(
            "rcmod_actions",
            "Actions recorded in the audit log, by action and outcome (ok, dry-run, refused, failed, other)",
            ["action", "outcome"],
            registry=self.registry,
        )
        # Messages seen, counted as plain ints on the event path and added to the counter when
        # the metrics are read: prometheus_client's inc() takes a lock and two checks, which
        # every message would pay. The bot counts and renders from its one event loop thread.
        self._seen_pending: dict[tuple[str, str], int] = {}
        self.connected = Gauge(
            "rcmod_connected", "1 when connected, logged in and subscribed", registry=self.registry
        )
        self.realtime_queue_full = Counter(
            "rcmod_realtime_queue_full",
            "Times the realtime event queue was full and reading from the server paused (backpressure)",
            registry=self.registry,
        )
        self.realtime_queue_depth = Gauge(
            "rcmod_realtime_queue_depth",
            "Realtime events received and waiting for the bot to handle them",
            registry=self.registry,
        )

        self.loop_up = Gauge(
            "rcmod_loop_up",
            "1 while a background loop runs, 0 while it waits to be restarted after a failure",
            ["loop"],
            registry=self.registry,
        )
        self.loop_restarts = Counter(
            "rcmod_loop_restarts",
            "Background loops restarted after an unexpected failure",
            ["loop"],
            registry=self.registry,
        )
        self.data_free_bytes = Gauge(
            "rcmod_data_free_bytes",
            "Free space on the filesystem of the data folder (store and evidence)",
            registry=self.registry,
        )

    def render(self) -> bytes:
        self._fold_seen()
        return generate_latest(self.registry)

    def _fold_seen(self) -> None:
        pending, self._seen_pending = self._seen_pending, {}
        for (kind, outcome), count in pending.items():
            self.messages_seen.labels(kind, outcome).inc(count)

    # The counters the event core reports through (bot.services.ingest.IngestCounters,
    # bot.services.router.RouteCounters): the core calls these, never prometheus_client.

    def set_connected(self, up: bool) -> None:
        self.connected.set(1 if up else 0)

    def count_queue_full(self) -> None:
        self.realtime_queue_full.inc()

    def watch_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the depth when scraped: nothing is paid per event."""
        self.realtime_queue_depth.set_function(depth)

    def count_reconnect(self) -> None:
        self.reconnects.inc()

    def count_frame_rejected(self) -> None:
        self.frames_rejected.inc()

    def count_message(self, kind: str, outcome: str) -> None:
        pending = self._seen_pending
        key = (kind, outcome)
        pending[key] = pending.get(key, 0) + 1

    def count_caught_up(self, messages: int) -> None:
        self.caught_up.inc(messages)

    def count_handler_error(self, handler: str) -> None:
        self.handler_errors.labels(handler).inc()

    def observe_handler_latency(self, seconds: float) -> None:
        self.handler_latency.observe(seconds)

    def count_image_checked(self, verdict: str) -> None:
        self.image_files.labels(verdict).inc()

    def count_image_refused(self, reason: str) -> None:
        self.image_files_refused.labels(reason).inc()

    def count_action(self, action: str, outcome: str) -> None:
        """One audit record; free-text outcomes are folded into a few kinds (bounded labels)."""
        text = outcome.lower()
        if text == "ok":
            kind = "ok"
        elif text.startswith("dry"):
            kind = "dry-run"
        elif "refus" in text or "denied" in text:
            kind = "refused"
        elif "fail" in text or "error" in text:
            kind = "failed"
        else:
            kind = "other"
        self.actions.labels(action, kind).inc()
