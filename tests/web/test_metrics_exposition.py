"""The handler-latency histogram, kept as plain counts for the event path, is exposed exactly as
prometheus_client's own Histogram would expose the same observations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bot.metrics import Metrics

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def test_handler_latency_reads_as_a_prometheus_histogram() -> None:
    metrics = Metrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "rcmod_handler_latency_seconds",
        "Time to run all handlers for one event",
        buckets=BUCKETS,
        registry=registry,
    )
    for seconds in (0.0001, 0.0005, 0.003, 0.003, 0.7, 9.0):  # bounds included, and past the last
        metrics.observe_handler_latency(seconds)
        reference.observe(seconds)
    ours = [line for line in metrics.render().decode().splitlines() if "handler_latency" in line]
    theirs = [
        line
        for line in generate_latest(registry).decode().splitlines()
        if "handler_latency" in line and "_created" not in line
    ]
    assert ours == theirs
    assert 'rcmod_handler_latency_seconds_bucket{le="0.005"} 4.0' in ours


def test_message_counts_by_kind_and_outcome() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.count_message("NewMessage", "handled")
    metrics.count_message("NewMessage", "duplicate")
    text = metrics.render().decode()
    assert 'rcmod_messages_seen_total{kind="NewMessage",outcome="handled"} 3.0' in text
    assert 'rcmod_messages_seen_total{kind="NewMessage",outcome="duplicate"} 1.0' in text
