"""The I/O edge shared by setup and doctor: building REST clients and naming what went wrong.

Setup and doctor talk to a server that may be misconfigured, so transport faults are retried
only briefly (a person is waiting), and each failure is translated into a sentence that says
what to do — never quoting a password or a token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Credentials
from bot.errors import ActionRefused, AuthError, RcmodError, RetryableError
from bot.rest import RestClient
from bot.rest.client import RetryPolicy

__all__ = ["QUICK_RETRY", "Probe", "RestFactory", "default_rest", "describe", "is_transport", "probe"]

RestFactory = Callable[[str, Credentials], RestClient]
QUICK_RETRY = RetryPolicy(attempts=2, initial_delay=0.2, max_delay=1.0, max_rate_wait=30.0)


def default_rest(url: str, credentials: Credentials) -> RestClient:
    return RestClient(url, credentials, threads=2, timeout=15.0, retry=QUICK_RETRY)


def is_transport(exc: BaseException) -> bool:
    """A connection that failed before any HTTP answer (refused, DNS, TLS, timeout).

    The REST facade chains exactly those from the ``requests`` exception; answers it did get
    (HTML, 5xx) are not chained."""
    return isinstance(exc, RetryableError) and exc.__cause__ is not None


@dataclass(frozen=True, slots=True)
class Probe:
    """What ``GET /api/info`` (no credentials) told us. ``kind``: ok, unreachable, not-rocketchat."""

    kind: str
    sentence: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def fix(self) -> str:
        if self.kind == "unreachable":
            return "check the URL, DNS, TLS and firewall, and that Rocket.Chat is running"
        if self.kind == "not-rocketchat":
            return "give the workspace's base URL (what the browser shows, without /api)"
        return ""


async def probe(rest: RestClient, url: str) -> Probe:
    try:
        info = await rest.info()
    except RcmodError as exc:
        if is_transport(exc):
            return Probe(
                "unreachable", f"cannot connect to {url} ({exc}); check the URL and that the server is up"
            )
        return Probe("not-rocketchat", f"{url} does not answer like a Rocket.Chat server (/api/info: {exc})")
    if info.get("success") is not True and "version" not in info:
        return Probe(
            "not-rocketchat",
            f"{url} does not answer like a Rocket.Chat server (/api/info has no success flag)",
        )
    return Probe("ok", f"Rocket.Chat answers at {url}")


def describe(exc: RcmodError, endpoint: str, version: str | None = None) -> str:
    """One sentence for a failed step."""
    if isinstance(exc, ActionRefused) and exc.status == 404 and exc.code in (None, "not-found"):
        where = f"Rocket.Chat {version}" if version else "this Rocket.Chat"
        return f"{where} has no {endpoint} endpoint (too old for it?)"
    text = str(exc)
    where = "" if text.startswith(f"{endpoint}:") else f"{endpoint}: "
    if isinstance(exc, AuthError):
        return f"{where}the server refused the credentials ({text})"
    if is_transport(exc):
        return f"{where}the connection failed ({text})"
    return f"{where}{text}"
