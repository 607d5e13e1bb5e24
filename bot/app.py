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
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.audit import actions
from bot.audit.checkpoints import checkpoint_head
from bot.audit.integrity import checkpoints_in
from bot.audit.signing import load_or_create_signing_key
from bot.commands.handlers.dispatch import CommandInbox, Dispatcher
from bot.commands.handlers.enforcement import EnforcementCommands
from bot.commands.handlers.mod import DRY_RUN_KEY, ModCommands
from bot.commands.handlers.sanctions import SanctionCommands
from bot.config import Settings
from bot.errors import ConfigError, DiskFull, RcmodError
from bot.metrics import Metrics
from bot.moderation import Matcher, load_matcher
from bot.moderation.normalize import warm_up
from bot.realtime.backoff import exponential_backoff
from bot.realtime.client import RealtimeClient
from bot.realtime.events import (
    Connected,
    Event,
    MessageEvent,
    RoomChanged,
    SubscriptionChanged,
    SystemMessage,
)
from bot.rest import RestClient, ServerInfo
from bot.services.alerts import Notifier
from bot.services.enforcement import Enforcer
from bot.services.executor import Executor
from bot.services.ingest import Ingest
from bot.services.lookups import Lookups, RoleDirectory
from bot.services.moderators import BotModerators
from bot.services.names import NameWatch
from bot.services.policies import PolicyKeeper, outbox_notify
from bot.services.protections import Protector
from bot.services.purge import Purger
from bot.services.reports import ReportDesk
from bot.services.router import Handler, Router
from bot.services.sanctions import Sanctioner
from bot.services.supervisor import Supervisor
from bot.store import Store
from bot.web.hook import StoredReplays, command_hook
from bot.web.server import WebServer, build_app, listen_problem

__all__ = ["BotApp", "Extras"]

log = logging.getLogger("rcmod.app")

LEASE_TTL = 30.0
HOUSEKEEPING_INTERVAL = 3600.0
FREE_SPACE_INTERVAL = 60.0


@dataclass
class Extras:
    """What a caller (the demo, a test) may add: more handlers, and injected I/O edges."""

    handlers: list[tuple[str, tuple[type, ...], Handler]] = field(default_factory=list)
    realtime_options: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class CommandWiring:
    desk: ReportDesk
    mod: ModCommands
    dispatcher: Dispatcher
    inbox: CommandInbox


class BotApp:
    def __init__(self, settings: Settings, extras: Extras | None = None) -> None:
        self.settings = settings
        self.extras = extras or Extras()
        self.credentials = settings.credentials()  # ConfigError before any connection opens
        self.metrics = Metrics()
        self.router = Router(self.metrics)
        self.store: Store | None = None
        self.rest: RestClient | None = None
        self.roles: RoleDirectory | None = None
        self.realtime: RealtimeClient | None = None
        self.ingest: Ingest | None = None
        self.web: WebServer | None = None
        self.server_info: ServerInfo | None = None
        self.ready = asyncio.Event()
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = asyncio.Event()
        self.matcher: Matcher | None = None
        self.notifier: Notifier | None = None
        self.commands: CommandWiring | None = None
        self.enforcer: Enforcer | None = None
        self.policies: PolicyKeeper | None = None
        self.sanctioner: Sanctioner | None = None
        self.protector: Protector | None = None
        self.names: NameWatch | None = None
        self.site_url = settings.server.url or ""
        self.bot_username: str | None = None
        # Every long-running task runs under it: restarted after a failure, shown in /readyz.
        self.loops = Supervisor(
            self.metrics,
            backoff=functools.partial(
                exponential_backoff,
                initial=settings.realtime.backoff_initial,
                maximum=settings.realtime.backoff_max,
            ),
            on_fatal=self._fatal_error,
        )
        self._fatal: DiskFull | None = None
        # Bound to user ids once per process (at the first connection), not at each reconnect:
        # a name registered meanwhile must not become a moderator.
        self.bot_moderators = BotModerators(settings.moderation.moderators)

    def runtime_lists(self) -> Path:
        """Lists moderators edit in chat (/mod allow, /mod deny): always loaded after the
        configured ones, so an edit survives restarts and reloads."""
        return self.settings.storage.data_dir / "lists"

    async def _build_matcher(self) -> Matcher | None:
        paths = list(self.settings.moderation.wordlists)
        runtime = self.runtime_lists()
        if runtime.is_dir() and any(runtime.glob("*.txt")):
            paths.append(runtime)
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
            self.store.audit.append_audit(
                actor="operator",
                action=actions.CONFIG_RELOADED,
                targets={"paths": [str(p) for p in self.settings.moderation.wordlists]},
            )
        return True

    def dry_run(self) -> bool:
        """`/mod dryrun on`: deletions and sanctions are recorded, not carried out (every part
        that acts asks this one question)."""
        return self.store is not None and self.store.state.state_get(DRY_RUN_KEY) == "on"

    def readiness(self) -> Mapping[str, bool]:
        rt = self.realtime
        return {
            "connected": bool(rt and rt.connected),
            "logged_in": bool(rt and rt.logged_in),
            "subscribed": bool(rt and rt.subscribed),
            **self.loops.readiness(),
        }

    def _fatal_error(self, exc: BaseException) -> None:
        """A loop met an error no restart can cure (a full disk): stop, and let run() raise it."""
        if isinstance(exc, DiskFull) and self._fatal is None:
            self._fatal = exc
        self.stop()

    async def run(self) -> None:
        s = self.settings
        assert s.server.url is not None  # credentials() checked it
        clock = self.extras.clock
        # A broken wordlist is a configuration error: fail before opening anything.
        self.matcher = await self._build_matcher()
        self.store = Store.open(s.storage.data_dir / "rcmod.sqlite3", clock=clock)
        try:
            self.store.lease.acquire_lease(self._holder, LEASE_TTL, is_dead=_holder_is_dead)
            self.store.db.on_audit = self.metrics.count_action
            await self._run_connected(s.server.url, clock)
            if self._fatal is not None:
                raise self._fatal
        finally:
            self._checkpoint_audit()  # the records of this run, anchored before the store closes
            with contextlib.suppress(Exception):
                self.store.lease.release_lease(self._holder)
            self.store.close()
            log.info("stopped")

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
        try:
            await self.rest.login()
            self.server_info = await self.rest.server_info()
            self.bot_username = str((await self.rest.me()).get("username") or "") or None
            await self.bot_moderators.resolve(self.rest)
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
            # One users.list snapshot of workspace roles for every guard (users.info hides them).
            self.roles = RoleDirectory(self.rest, clock=clock)
            # The one place an action is carried out (evidence first, audited, dry-run honoured).
            self.executor = Executor(
                rest=self.rest,
                store=self.store,
                retention_days=s.storage.retention_days,
                dry_run=self.dry_run,
                ddp_call=None if self.server_info.features.mute_endpoints else realtime.call,
            )
            lookups = Lookups(self.rest, clock=clock, roles=self.roles)  # one cache of rooms and users
            self.notifier = Notifier(
                store=self.store,
                rest=self.rest,
                matcher=lambda: self.matcher,
                moderation=s.moderation,
                site_url=lambda: self.site_url,
                metrics=self.metrics,
                bot_username=lambda: self.bot_username,
                clock=clock,
                lookups=lookups,
                ddp_call=realtime.call,
                bot_moderators=self.bot_moderators,
            )
            self.router.add("notifier", (MessageEvent,), self.notifier.on_event)
            # Block lists and blocked users: evidence first, then delete or censor, then the
            # author's notice (through the notifier's outbox). After the notifier, so the
            # moderators' alert is decided first.
            self.enforcer = Enforcer(
                store=self.store,
                rest=self.rest,
                notifier=self.notifier,
                matcher=lambda: self.matcher,
                moderation=s.moderation,
                retention_days=s.storage.retention_days,
                clock=clock,
                dry_run=self.dry_run,
                lookups=lookups,
            )
            self.router.add("enforcer", (MessageEvent,), self.enforcer.on_event)
            # Sanctions and automatic protections: strikes, mutes that expire (the
            # expiry is in the store, so it fires on time after downtime), floods, repeats,
            # mention and link spam, raids. Alert-only until an admin sets a mode to "act".
            self.sanctioner = Sanctioner(
                store=self.store,
                rest=self.rest,
                notifier=self.notifier,
                settings=s.sanctions,
                moderation=s.moderation,
                bot_username=lambda: self.bot_username,
                dry_run=self.dry_run,
                clock=clock,
                lookups=lookups,
                ddp_call=None if self.server_info.features.mute_endpoints else realtime.call,
                room_bans=lambda: self.server_info is not None and self.server_info.features.room_bans,
                bot_moderators=self.bot_moderators,
            )
            # Bans on servers without them (before 8.3): a banned user's rejoin is undone.
            self.router.add("bans", (SystemMessage,), self.sanctioner.on_event)
            self.protector = Protector(
                store=self.store,
                rest=self.rest,
                notifier=self.notifier,
                sanctioner=self.sanctioner,
                settings=s.protections,
                moderation=s.moderation,
                bot_username=lambda: self.bot_username,
                site_url=lambda: self.site_url,
                dry_run=self.dry_run,
                retention_days=s.storage.retention_days,
                clock=clock,
                lookups=lookups,
            )
            self.router.add("protector", (MessageEvent,), self.protector.on_event)
            # Names and room texts, and accounts awaiting approval: see bot.services.names.
            self.names = NameWatch(
                store=self.store,
                rest=self.rest,
                notifier=self.notifier,
                matcher=lambda: self.matcher,
                moderation=s.moderation,
                site_url=lambda: self.site_url,
                bot_user_id=lambda: realtime.user_id,
                lookups=lookups,
                clock=clock,
            )
            self.router.add("names", (MessageEvent, RoomChanged), self.names.on_event)
            if s.protections.repeat.mode != "off":
                # The repeat check folds text with the matcher's tables; build them now, off the
                # loop, or the first message pays ~150 ms for it (no wordlists: no matcher built them).
                await asyncio.to_thread(warm_up)
            self.ingest = Ingest(
                store=self.store,
                rest=self.rest,
                router=self.router,
                metrics=self.metrics,
                bot_user_id=lambda: realtime.user_id,
                watch_room=realtime.watch_room,
                clock=clock,
                server_now=self.rest.server_now,
                backoff=functools.partial(
                    exponential_backoff, initial=s.realtime.backoff_initial, maximum=s.realtime.backoff_max
                ),
            )
            for name, types, handler in self.extras.handlers:
                self.router.add(name, types, handler)
            # Policy announcements: pinned and kept pinned, banners in sync. The keeper
            # syncs at startup and every policy.sync_interval; the bot joining a room, a banner
            # edit (router) and an unpin re-emit (seen before dedup, as it is the bot's own
            # unedited message) wake it early. Notices about who did it go through the outbox.
            rest = self.rest
            self.policies = PolicyKeeper(
                store=self.store,
                rest=rest,
                policy_dir=s.policy.dir,
                bot_user_id=lambda: rest.user_id,
                notify=outbox_notify(self.notifier, self.store, clock),
                interval=s.policy.sync_interval,
                dm_on_join=s.policy.dm_on_join,
                bot_username=lambda: self.bot_username,
                clock=clock,
            )
            self.router.add("policies", (SubscriptionChanged, SystemMessage), self.policies.on_event)
            self.ingest.watch_state(self.policies.on_message_state)
            # /report and /mod: one dispatcher behind three transports — DMs to the bot
            # and slash commands typed in rooms (via the router), and the companion app's hook.
            self.commands = self._build_commands(clock)
            self.router.add("commands", (MessageEvent,), self.commands.inbox.on_event)
            hook = command_hook(
                lambda: s.http.webhook_secret.get_secret_value() if s.http.webhook_secret else None,
                self.commands.dispatcher.run,
                clock=clock,
                replays=StoredReplays(self.store, clock),
            )
            web_server = WebServer(build_app(self.metrics, self.readiness, hook), s.http.host, s.http.port)
            try:
                port = await web_server.start()
            except OSError as exc:
                raise RcmodError(
                    f"cannot listen on {s.http.host}:{s.http.port} (http.port): {listen_problem(exc)}"
                ) from None
            self.web = web_server
            log.info("http endpoints on %s:%d", s.http.host, port)
            loops = self.loops
            loops.start("lease", self._renew_lease)
            loops.start("catch-up", self.ingest.run)  # retries the rooms whose catch-up failed
            loops.start("housekeeping", self._housekeeping)
            loops.start("free-space", self._watch_free_space)
            loops.start("outbox", self.notifier.run)
            if s.reports.poll_interval > 0:  # members' native reports
                desk = self.commands.desk
                loops.start("reports", lambda: desk.run_native_poll(s.reports.poll_interval))
            # Purges a crash or restart interrupted resume where their journal stopped, and block
            # actions the server failed are retried from their evidence.
            loops.start("resume-purges", self._resume_purges)
            loops.start("enforcer", self.enforcer.run)
            loops.start("policies", self.policies.run)
            loops.start("sanctions", self.sanctioner.run)
            # Two loops, supervised apart: under one gather, one's death would leave the other
            # running while the pair was restarted, and sweeps would then run twice.
            loops.start("names", self.names.run_sweeps)
            loops.start("registrations", self.names.run_registrations)
            await self._consume(realtime)
        finally:
            # Graceful stop: no new events are taken (the consumer has returned); background tasks
            # stop; the outbox gets one last pass so decided alerts go out now rather than at the
            # next start (whatever does not make it stays queued in the store).
            await self.loops.stop()
            if self.notifier is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.notifier.deliver_due(), timeout=5)
            if self.realtime is not None:
                await self.realtime.close()
            if web_server is not None:
                await web_server.stop()
            await self.rest.close()

    def _build_commands(self, clock: Callable[[], float]) -> CommandWiring:
        """The report desk, the /mod handlers, the dispatcher and the message transport."""
        assert self.store is not None and self.rest is not None and self.notifier is not None
        s = self.settings
        store = self.store
        desk = ReportDesk(
            store=store,
            rest=self.rest,
            notifier=self.notifier,
            settings=s.reports,
            retention_days=s.storage.retention_days,
            site_url=lambda: self.site_url,
            dry_run=self.dry_run,
            clock=clock,
        )
        self.notifier.register_renderer("report", desk.render)
        holder: list[Dispatcher] = []
        mod = ModCommands(
            store=store,
            rest=self.rest,
            notifier=self.notifier,
            desk=desk,
            matcher=lambda: self.matcher,
            reload=self.reload_wordlists,
            # /mod status names a background loop only while it is down.
            readiness=lambda: {
                k: v for k, v in self.readiness().items() if not (v and k.startswith("loop:"))
            },
            retention_days=s.storage.retention_days,
            dispatcher=lambda: holder[0] if holder else None,
            runtime_lists=self.runtime_lists(),
            more_status=lambda: [
                *self.bot_moderators.status(),
                *(self.protector.status() if self.protector else []),
                *(self.names.status() if self.names else []),
            ],
        )
        # /mod block|unblock|purge|confirm|policy: the chat front of the enforcer, a purger and
        # the policy keeper, declared in bot.commands.spec like the rest.
        enforcement = EnforcementCommands(
            enforcer=lambda: self.enforcer,
            purger=Purger(
                store=store,
                rest=self.rest,
                bot_user_id=self.rest.user_id or "",
                retention_days=s.storage.retention_days,
                clock=clock,
                bot_moderators=self.bot_moderators.ids,
                roles=self.roles,
            ),
            policies=lambda: self.policies,
            rest=self.rest,
            dry_run=self.dry_run,
            clock=clock,
        )
        desk.enforce = enforcement.for_report
        assert self.sanctioner is not None and self.protector is not None
        sanctions = SanctionCommands(
            sanctioner=self.sanctioner,
            store=store,
            notifier=self.notifier,
            restore=self.protector.restore,
            clock=clock,
        )
        dispatcher = Dispatcher(
            rest=self.rest,
            store=store,
            handlers={**mod.handlers(), **enforcement.handlers(), **sanctions.handlers()},
            bot_moderators=functools.partial(self.bot_moderators.current_ids, self.rest),
            site_url=lambda: self.site_url,
            clock=clock,
            roles=self.roles,
        )
        holder.append(dispatcher)
        inbox = CommandInbox(dispatcher=dispatcher, rest=self.rest, bot_username=lambda: self.bot_username)
        return CommandWiring(desk, mod, dispatcher, inbox)

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
                if not self.ready.is_set():
                    self._log_ready(realtime)
                self.ready.set()
        stop.cancel()

    def _log_ready(self, realtime: RealtimeClient) -> None:
        """One line an operator can read: who the bot is, where, and what it watches for."""
        matcher = self.matcher
        lists = len(matcher.lists) if matcher else 0
        terms = matcher.term_count if matcher else 0
        log.info(
            "ready: logged in as %s on %s; watching %d rooms with %d list%s of %d terms",
            self.bot_username or f"user id {realtime.user_id}",
            urlsplit(self.settings.server.url or "").netloc,
            len(realtime.watched_rooms),
            lists,
            "" if lists == 1 else "s",
            terms,
        )

    async def _housekeeping(self) -> None:
        """Hourly: erase evidence past its preservation window (legal holds excepted), forget
        dedup records older than catch-up could reach, and sign the audit head."""
        assert self.store is not None and self.ingest is not None
        while True:
            try:
                erased = self.store.evidence.erase_expired_evidence()
                self.store.alerts.expire_alert_excerpts(self.settings.storage.retention_days)
                if erased:
                    log.info("retention: erased %d evidence item(s) past the window", erased)
                self.ingest.prune()
            except RcmodError as exc:
                log.error("housekeeping failed (%s); will retry", type(exc).__name__)
            self._checkpoint_audit()
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    def _checkpoint_audit(self) -> None:
        """Sign the audit head into the checkpoint file beside the key (bot.audit.checkpoints), so a
        database rewritten later cannot pass `rcmod audit verify`. Never fatal."""
        if self.store is None:
            return
        data_dir = self.settings.storage.data_dir
        try:
            key, _ = load_or_create_signing_key(data_dir)
            written = checkpoint_head(self.store, data_dir, key)
        except RcmodError as exc:
            log.error("audit checkpoint failed (%s); will retry", type(exc).__name__)
            return
        if written is not None:
            log.info("audit checkpoint signed at record %d", written.seq)
        elif self.store.audit.audit_head() is not None and not self._audit_head_checkpointed(data_dir):
            log.error("audit log does not verify: its head was not signed; run rcmod audit verify")

    def _audit_head_checkpointed(self, data_dir: Path) -> bool:
        assert self.store is not None
        head = self.store.audit.audit_head()
        checkpoints, _ = checkpoints_in(data_dir)
        return any((c.seq, c.hash) == head for c in checkpoints)

    async def _watch_free_space(self) -> None:
        """Measure the data folder's free space, and warn below the threshold: a full disk stops the
        bot (nothing lost, but nothing moderated either), so the operator hears of it before."""
        folder = self.settings.storage.data_dir
        threshold = self.settings.storage.free_space_warning_mb * 2**20
        warned = False
        while True:
            try:
                free = (await asyncio.to_thread(shutil.disk_usage, folder)).free
            except OSError as exc:
                log.warning("cannot measure free space in %s (%s)", folder, type(exc).__name__)
            else:
                self.metrics.data_free_bytes.set(free)
                low = free < threshold
                if low and not warned:
                    log.warning(
                        "low free space in %s: %d MB left (warning below %d MB); a full disk stops the bot",
                        folder,
                        free // 2**20,
                        threshold // 2**20,
                    )
                elif warned and not low:
                    log.info("free space in %s is back above %d MB", folder, threshold // 2**20)
                warned = low
            await asyncio.sleep(FREE_SPACE_INTERVAL)

    async def _resume_purges(self) -> None:
        """Finish confirmed purges a crash interrupted (one a live `rcmod purge` runs is left to it)."""
        assert self.store is not None and self.rest is not None
        purger = Purger(
            store=self.store,
            rest=self.rest,
            bot_user_id=self.rest.user_id or "",
            retention_days=self.settings.storage.retention_days,
            clock=self.extras.clock,
        )
        try:
            for result in await purger.resume():
                log.info(
                    "purge %d resumed: %d deleted, %d failed", result.job_id, result.deleted, result.failed
                )
        except RcmodError as exc:
            log.error("resuming purges failed (%s); they stay open for the next start", type(exc).__name__)

    async def _renew_lease(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                self.store.lease.renew_lease(self._holder, LEASE_TTL)
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
