"""The bot's HTTP endpoints: liveness, readiness that tracks the connection, Prometheus metrics."""

from __future__ import annotations

import aiohttp

from bot.metrics import Metrics
from bot.web.server import WebServer, build_app


async def test_health_ready_and_metrics() -> None:
    metrics = Metrics()
    state = {"connected": False, "logged_in": False, "subscribed": False}
    server = WebServer(build_app(metrics, lambda: state), "127.0.0.1", 0)
    port = await server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["checks"]["connected"] is False
            state.update(connected=True, logged_in=True)
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503  # connected and logged in, but not yet subscribed
            state["subscribed"] = True
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200
            metrics.messages_seen.labels("NewMessage", "handled").inc(3)
            metrics.rest_errors.labels("RateLimited").inc()
            metrics.reconnects.inc()
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
            assert 'rcmod_messages_seen_total{kind="NewMessage",outcome="handled"} 3.0' in text
            assert 'rcmod_rest_errors_total{kind="RateLimited"} 1.0' in text
            assert "rcmod_reconnects_total 1.0" in text
            assert "rcmod_handler_latency_seconds_bucket" in text
    finally:
        await server.stop()
