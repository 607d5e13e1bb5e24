"""Fault injection for tests: outages, slow frames and scripted HTTP failures."""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FailRule", "Faults"]


@dataclass
class FailRule:
    path_suffix: str
    status: int
    body: str | dict[str, Any] | None
    content_type: str | None
    times: int
    # For an injected 429: when the (imaginary) window resets, in clock seconds from now.
    retry_after: float = 1.0


@dataclass
class Faults:
    clock: Callable[[], float]
    refusing: bool = False
    frame_delay: float = 0.0
    rules: list[FailRule] = field(default_factory=list)
    # (method, path) of recent requests, so a test can assert what a client did *not* send.
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=10_000))

    def take(self, path: str) -> FailRule | None:
        for rule in self.rules:
            if path.endswith(rule.path_suffix):
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def response(self, rule: FailRule) -> web.Response:
        headers: dict[str, str] = {}
        body = rule.body
        if rule.status == 429:
            # What the real limiter sends (C.0): Reset is epoch milliseconds.
            headers = {
                "X-RateLimit-Limit": "10",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil((self.clock() + rule.retry_after) * 1000)),
            }
            if body is None:
                seconds = math.ceil(rule.retry_after)
                body = {
                    "success": False,
                    "error": f"Error, too many requests. Please slow down. You must wait {seconds} seconds "
                    "before trying this endpoint again. [error-too-many-requests]",
                    "errorType": "error-too-many-requests",
                }
        elif body is None:
            body = _default_body(rule.status)
        if isinstance(body, dict):
            # Bytes, not text: aiohttp would add "; charset=utf-8", which the server never sends.
            return web.Response(
                status=rule.status,
                body=json.dumps(body).encode(),
                content_type=rule.content_type or "application/json",
                headers=headers,
            )
        return web.Response(
            status=rule.status, text=body, content_type=rule.content_type or "text/plain", headers=headers
        )

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def inject(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            rule = self.take(request.path)
            if rule is not None:
                return self.response(rule)
            return await handler(request)

        return inject


def _default_body(status: int) -> dict[str, Any]:
    if status == 401:
        return {"status": "error", "message": "You must be logged in to do this."}
    if status == 500:
        return {"success": False, "error": "Internal error occured"}
    if status == 404:
        return {"success": False, "error": "Resource not found"}
    return {"success": False, "error": f"HTTP {status}"}
