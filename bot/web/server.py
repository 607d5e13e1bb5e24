"""The bot's own HTTP endpoints: liveness, readiness, Prometheus metrics and the command hook."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.metrics import Metrics

__all__ = ["Hook", "WebServer", "build_app", "late", "listen_problem"]

Readiness = Callable[[], Mapping[str, bool]]
Hook = Callable[[web.Request], Awaitable[web.Response]]


def late(current: Callable[[], Hook | None]) -> Hook:
    """A route whose handler exists only later (the command hook, once the services are built:
    a standby serves its endpoints before): 503 until then."""

    async def handle(request: web.Request) -> web.Response:
        handler = current()
        if handler is None:
            return web.json_response({"error": "not ready"}, status=503)
        return await handler(request)

    return handle


def build_app(
    metrics: Metrics,
    readiness: Readiness,
    command_hook: Hook | None = None,
    *,
    role: Callable[[], str] | None = None,
) -> web.Application:
    """``/readyz`` is 200 when every check holds. With ``role`` (replicas on PostgreSQL) its body
    says which part this instance plays: "standby" (a warm standby, ready to take over, answers
    200) or "leader" (200 once connected and caught up), so an orchestrator keeps both running
    and a person can tell them apart. ``/healthz`` is liveness alone."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = dict(readiness())
        ready = bool(checks) and all(checks.values())
        body: dict[str, object] = {"ready": ready, "checks": checks}
        if role is not None:
            body["role"] = role()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_endpoint(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    if command_hook is not None:  # the companion app's slash commands (bot.web.hook)
        app.router.add_post("/hooks/command", command_hook)
    return app


class WebServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()


def listen_problem(exc: OSError) -> str:
    """Why a listening socket could not be opened, in the system's words (asyncio's own text
    repeats the address and is not one short phrase)."""
    return os.strerror(exc.errno).lower() if exc.errno else type(exc).__name__
