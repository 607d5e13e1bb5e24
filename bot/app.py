"""The composition root: the one place that builds settings, clients, store, router and web app,
and owns the order they start and stop in. Nothing else constructs clients.

Start order: validate configuration (no connection before that) → open the store and take the
lease → REST (server version, feature switches) → web endpoints → realtime loop. Stop order is
the reverse, and the lease is released last so a restart can take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.errors import ConfigError, RcmodError
from bot.ingest import Ingest
from bot.moderation import Matcher, load_matcher
from bot.notifier import Notifier
from bot.realtime.backoff import exponential_backoff
from bot.realtime.client import RealtimeClient
from bot.realtime.events import Connected, Event, MessageEvent
from bot.rest import RestClient, ServerInfo
from bot.router import Handler, Router
from bot.store import Store
from bot.web.metrics import Metrics
from bot.web.server import WebServer, build_app

__all__ = ["BotApp", "Extras"]

log = logging.getLogger("rcmod.app")

LEASE_TTL = 30.0
HOUSEKEEPING_INTERVAL = 3600.0


@dataclass
class Extras:
    """What a caller (the demo, a test) may add: more handlers, and injected I/O edges."""

    handlers: list[tuple[str, tuple[type, ...], Handler]] = field(default_factory=list)
    realtime_options: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time


class BotApp:
    def __init__(self, settings: Settings, extras: Extras | None = None) -> None:
        self.settings = settings
        self.extras = extras or Extras()
        self.credentials = settings.credentials()  # ConfigError before any connection opens
        self.metrics = Metrics()
        self.router = Router(self.metrics)
        self.store: Store | None = None
        self.rest: RestClient | None = None
        self.realtime: RealtimeClient | None = None
        self.ingest: Ingest | None = None
        self.web: WebServer | None = None
        self.server_info: ServerInfo | None = None
        self.ready = asyncio.Event()
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = asyncio.Event()
        self.matcher: Matcher | None = None
        self.notifier: Notifier | None = None
        self.site_url = settings.server.url or ""
        self.bot_username: str | None = None

    async def _build_matcher(self) -> Matcher | None:
        paths = self.settings.moderation.wordlists
        if not paths:
            log.warning("no wordlists configured: messages are watched but nothing is matched")
            return None
        matcher = await asyncio.to_thread(load_matcher, paths)  # CPU-heavy at 100k terms: off the loop
        log.info("wordlists loaded from %d path(s)", len(paths))
        return matcher

    async def reload_wordlists(self) -> bool:
        """Build a new matcher off the loop and swap it in whole; a broken list keeps the old one."""
        try:
            new = await self._build_matcher()
        except ConfigError as exc:
            log.error("wordlist reload failed, keeping the current lists: %s", exc)
            return False
        self.matcher = new
        if self.store is not None:
            self.store.append_audit(
                actor="operator",
                action="wordlists.reloaded",
                targets={"paths": [str(p) for p in self.settings.moderation.wordlists]},
            )
        return True

    def readiness(self) -> Mapping[str, bool]:
        rt = self.realtime
        return {
            "connected": bool(rt and rt.connected),
            "logged_in": bool(rt and rt.logged_in),
            "subscribed": bool(rt and rt.subscribed),
        }

    async def run(self) -> None:
        s = self.settings
        assert s.server.url is not None  # credentials() checked it
        clock = self.extras.clock
        # A broken wordlist is a configuration error: fail before opening anything.
        self.matcher = await self._build_matcher()
        self.store = Store.open(s.storage.data_dir / "rcmod.sqlite3", clock=clock)
        try:
            self.store.acquire_lease(self._holder, LEASE_TTL, is_dead=_holder_is_dead)
            await self._run_connected(s.server.url, clock)
        finally:
            with contextlib.suppress(Exception):
                self.store.release_lease(self._holder)
            self.store.close()

    async def _run_connected(self, url: str, clock: Callable[[], float]) -> None:
        s = self.settings
        assert self.store is not None
        self.rest = RestClient(
            url,
            self.credentials,
            threads=s.server.rest_threads,
            timeout=s.server.rest_timeout,
            clock=clock,
            on_error=lambda kind: self.metrics.rest_errors.labels(kind).inc(),
        )
        web_server: WebServer | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.rest.login()
            self.server_info = await self.rest.server_info()
            self.bot_username = str((await self.rest.me()).get("username") or "") or None
            log.info("server version %s", self.server_info.version)
            for note in self.server_info.notes:
                log.warning("%s", note)
            self.realtime = RealtimeClient(
                url,
                self.credentials,
                ping_interval=s.realtime.ping_interval,
                pong_timeout=s.realtime.pong_timeout,
                call_timeout=s.realtime.call_timeout,
                backoff=functools.partial(
                    exponential_backoff, initial=s.realtime.backoff_initial, maximum=s.realtime.backoff_max
                ),
                room_sub_interval=s.realtime.room_sub_interval,
                **self.extras.realtime_options,
            )
            realtime = self.realtime
            with contextlib.suppress(RcmodError):
                site = (await self.rest.public_settings("Site_Url")).get("Site_Url")
                if isinstance(site, str) and site.startswith("http"):
                    self.site_url = site  # permalinks use the workspace's own address
            self.notifier = Notifier(
                store=self.store,
                rest=self.rest,
                matcher=lambda: self.matcher,
                moderation=s.moderation,
                site_url=lambda: self.site_url,
                metrics=self.metrics,
                bot_username=lambda: self.bot_username,
                clock=clock,
            )
            self.router.add("notifier", (MessageEvent,), self.notifier.on_event)
            self.ingest = Ingest(
                store=self.store,
                rest=self.rest,
                router=self.router,
                metrics=self.metrics,
                bot_user_id=lambda: realtime.user_id,
                watch_room=realtime.watch_room,
                clock=clock,
            )
            for name, types, handler in self.extras.handlers:
                self.router.add(name, types, handler)
            web_server = WebServer(build_app(self.metrics, self.readiness), s.http.host, s.http.port)
            port = await web_server.start()
            self.web = web_server
            log.info("http endpoints on %s:%d", s.http.host, port)
            tasks.append(asyncio.create_task(self._renew_lease()))
            tasks.append(asyncio.create_task(self._housekeeping()))
            tasks.append(asyncio.create_task(self.notifier.run()))
            await self._consume(realtime)
        finally:
            # Graceful stop: no new events are taken (the consumer has returned); background tasks
            # stop; the outbox gets one last pass so decided alerts go out now rather than at the
            # next start (whatever does not make it stays queued in the store).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.notifier is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.notifier.deliver_due(), timeout=5)
            if self.realtime is not None:
                await self.realtime.close()
            if web_server is not None:
                await web_server.stop()
            await self.rest.close()

    async def _consume(self, realtime: RealtimeClient) -> None:
        assert self.ingest is not None
        ingest = self.ingest
        stop = asyncio.create_task(self._stopping.wait())
        events = realtime.events().__aiter__()
        while not self._stopping.is_set():
            nxt: asyncio.Task[Event] = asyncio.create_task(anext(events))  # type: ignore[arg-type]
            done, _ = await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                break
            event = nxt.result()
            await ingest.handle(event)
            if isinstance(event, Connected):
                self.ready.set()
        stop.cancel()

    async def _housekeeping(self) -> None:
        """Hourly: erase evidence past its preservation window (legal holds excepted), and forget
        dedup records older than catch-up could reach."""
        assert self.store is not None and self.ingest is not None
        while True:
            try:
                erased = self.store.erase_expired_evidence()
                self.store.expire_alert_excerpts(self.settings.storage.retention_days)
                if erased:
                    log.info("retention: erased %d evidence item(s) past the window", erased)
                self.ingest.prune()
            except RcmodError as exc:
                log.error("housekeeping failed (%s); will retry", type(exc).__name__)
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    async def _renew_lease(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                self.store.renew_lease(self._holder, LEASE_TTL)
            except ConfigError:
                log.error("lost the store lease to another instance; stopping")
                self.stop()
                return

    def stop(self) -> None:
        self._stopping.set()


def _holder_is_dead(holder: str) -> bool:
    """A lease holder on this host whose process no longer exists has crashed (kill -9, OOM)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only the lease's expiry can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False
