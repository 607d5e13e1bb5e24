"""The composition root: the one place that builds settings, clients, store, executor, services
and web app, and owns the order they start and stop in. Nothing else constructs clients: the
command line's one-shot commands get theirs here too (:func:`logged_in`, :func:`command_session`).

Build (each step a small named function, each service built once, never changed afterwards):
validate configuration → open the store and take the lease (SQLite; an earlier version's
chat-edited list files are imported into the store once) → load the wordlists, the configured
ones and the store's chat-edited ones (no connection to the server before that) → web endpoints →
on PostgreSQL, wait as a warm standby until this instance leads (:mod:`bot.store.leadership`;
/readyz answers 200 with role "standby"), then import as SQLite does and rebuild the matcher if
the store's chat-edited lists changed meanwhile (a previous leader's edits) → REST
(login, server version, feature switches, the bot's identity) → the executor → the services
(:func:`build_services`, one frozen :class:`Services`).
Start: realtime (connects when its events are read) → the background loops (:meth:`BotApp._loops`,
in order). Stop is the reverse, and the lease (or the leadership lock) is released last so a
restart (or a standby) can take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from bot.audit import actions
from bot.audit.checkpoints import checkpoint_head
from bot.audit.integrity import checkpoints_in
from bot.audit.signing import load_or_create_signing_key
from bot.commands.handlers.dispatch import LOOKUP_TTL, CommandInbox, Dispatcher
from bot.commands.handlers.enforcement import EnforcementCommands
from bot.commands.handlers.images import ImageCommands
from bot.commands.handlers.mod import DRY_RUN_KEY, ModCommands
from bot.commands.handlers.sanctions import SanctionCommands
from bot.config import Credentials, Settings
from bot.errors import ConfigError, Fatal, RcmodError
from bot.metrics import Metrics
from bot.moderation import Matcher, read_wordlists
from bot.moderation import compile as compile_lists
from bot.moderation.normalize import warm_up
from bot.realtime.backoff import exponential_backoff
from bot.realtime.client import RealtimeClient
from bot.realtime.events import (
    Connected,
    MessageEvent,
    RoomChanged,
    SubscriptionChanged,
    SystemMessage,
)
from bot.rest import RestClient, ServerInfo
from bot.services.alerts import KeywordAlerts
from bot.services.enforcement import Enforcer
from bot.services.executor import Executor
from bot.services.images import FileSource, ImageCheck, ImageModeration
from bot.services.ingest import Ingest
from bot.services.lookups import Lookups, RoleDirectory, TtlCache
from bot.services.moderators import BotModerators
from bot.services.names import NameWatch
from bot.services.outbox import Outbox
from bot.services.policies import PolicyKeeper, outbox_notify
from bot.services.protections import Protector
from bot.services.purge import Purger, holder_is_dead
from bot.services.reports import ReportDesk
from bot.services.router import Handler, Router, Unfinished
from bot.services.sanctions import Sanctioner
from bot.services.screening import Scans
from bot.services.supervisor import Supervisor
from bot.store import Store
from bot.store.leadership import CHECK_INTERVAL, POLL_INTERVAL, Leadership
from bot.store.lists import ChatList, ChatListEdit, ChatTerm, read_file_lists
from bot.web.hook import StoredReplays, command_hook
from bot.web.server import Hook, WebServer, build_app, late, listen_problem

__all__ = [
    "BotApp",
    "Extras",
    "Services",
    "Session",
    "Shared",
    "build_purger",
    "build_services",
    "command_session",
    "logged_in",
    "open_store",
]

log = logging.getLogger("rcmod.app")

LEASE_TTL = 30.0
HOUSEKEEPING_INTERVAL = 3600.0
FREE_SPACE_INTERVAL = 60.0
SITE_URL_KEY = "site_url"
SITE_URL_WAIT = 2.0  # seconds a start waits for Site_Url when one is kept in the store

T = TypeVar("T")
Route = tuple[str, tuple[type, ...], Handler]


@dataclass
class Extras:
    """What a caller (the demo, a test) may add: more handlers, and injected I/O edges."""

    handlers: list[Route] = field(default_factory=list)
    realtime_options: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    # Image checks' I/O edges (a test's fakes); None: the bot's own (see image_edges()).
    image_checker: ImageCheck | None = None
    file_source: FileSource | None = None


def always(value: T) -> Callable[[], T]:
    """For a service that asks for a value by calling: one learnt at login, fixed afterwards."""
    return lambda: value


def never() -> bool:
    return False


def _with_edit(lists: Sequence[ChatList], edit: ChatListEdit) -> tuple[ChatList, ...]:
    """The chat-edited lists as they would be with ``edit`` (to compile before it is stored)."""
    term = ChatTerm(edit.term, edit.actor, "")
    if all(c.name != edit.name for c in lists):
        return (*lists, ChatList(edit.name, edit.options, (term,)))
    return tuple(ChatList(c.name, c.options, (*c.terms, term)) if c.name == edit.name else c for c in lists)


# -- build: settings → clients → store → executor ---------------------------------------------------


def file_lists(settings: Settings) -> Path:
    """Where versions before the store kept the lists moderators edit in chat: imported into the
    store once (:func:`import_file_lists`), never read again."""
    return settings.storage.data_dir / "lists"


def import_file_lists(settings: Settings, store: Store) -> bool:
    """Once per store, by the instance that writes (the leader): the files of an earlier
    version's data folder become the store's lists. Later starts, and every other instance, read
    the store only (True: imported now)."""
    if store.lists.imported():
        return False
    lists = read_file_lists(file_lists(settings))
    imported = store.lists.import_once(lists)
    if imported and lists:
        log.info("chat-edited lists: %d imported into the store from %s", len(lists), file_lists(settings))
    return imported


async def load_wordlists(settings: Settings, chat: Sequence[ChatList] = ()) -> Matcher | None:
    """The configured lists, then the chat-edited ones (``chat``, read from the store), compiled
    off the loop (CPU-heavy at 100k terms). ConfigError on a broken list."""
    paths = list(settings.moderation.wordlists)
    if not paths and not chat:
        log.warning("no wordlists configured: messages are watched but nothing is matched")
        return None

    def build() -> Matcher:
        return compile_lists((*read_wordlists(paths), *(c.wordlist() for c in chat)))

    matcher = await asyncio.to_thread(build)
    log.info("wordlists loaded from %d path(s) and %d chat-edited list(s)", len(paths), len(chat))
    return matcher


def open_store(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    on_audit: Callable[[str, str], None] | None = None,
) -> Store:
    if settings.storage.url is not None:
        return Store.connect(settings.storage.url.get_secret_value(), clock=clock, on_audit=on_audit)
    return Store.open(settings.storage.data_dir / "rcmod.sqlite3", clock=clock, on_audit=on_audit)


def dry_run_on(store: Store) -> bool:
    """`/mod dryrun on`: deletions and sanctions are recorded, not carried out (every part
    that acts asks this one question)."""
    return store.state.state_get(DRY_RUN_KEY) == "on"


def rest_client(
    settings: Settings,
    credentials: Credentials | None = None,
    *,
    clock: Callable[[], float] = time.time,
    on_error: Callable[[str], None] | None = None,
) -> RestClient:
    """The REST client, not logged in yet (the one place one is built from settings)."""
    assert settings.server.url is not None  # credentials() checks it
    return RestClient(
        settings.server.url,
        credentials or settings.credentials(),  # ConfigError before any connection opens
        threads=settings.server.rest_threads,
        timeout=settings.server.rest_timeout,
        clock=clock,
        on_error=on_error,
    )


@contextlib.asynccontextmanager
async def logged_in(settings: Settings) -> AsyncIterator[RestClient]:
    """A logged-in REST client for one command, closed after it (a failed login included)."""
    rest = rest_client(settings)
    try:
        await rest.login()
        yield rest
    finally:
        await rest.close()


def build_executor(
    settings: Settings,
    store: Store,
    rest: RestClient,
    *,
    dry_run: Callable[[], bool],
    ddp_call: Callable[..., Awaitable[Any]] | None = None,
    fence: Callable[[], Awaitable[None]] | None = None,
) -> Executor:
    """The one place an action is carried out (evidence first, audited, dry-run honoured; with
    replicas, only while this instance leads: ``fence``)."""
    return Executor(
        rest=rest,
        audit=store.audit,
        retention_days=settings.storage.retention_days,
        dry_run=dry_run,
        ddp_call=ddp_call,
        fence=fence,
    )


@dataclass(frozen=True)
class Session:
    """The store, a logged-in REST client and the executor: what a one-shot command needs, and
    what the bot's services are built on."""

    settings: Settings
    store: Store
    rest: RestClient
    executor: Executor
    clock: Callable[[], float]


@contextlib.asynccontextmanager
async def command_session(settings: Settings) -> AsyncIterator[Session]:
    """For `rcmod purge` and `rcmod policy sync`: the bot's own clients and executor, without
    realtime or loops. Its executor does not follow `/mod dryrun`: a command has its own --dry-run."""
    settings.credentials()  # ConfigError (exit 2) before the store or a connection opens
    store = open_store(settings)
    try:
        async with logged_in(settings) as rest:
            executor = build_executor(settings, store, rest, dry_run=never)
            yield Session(settings=settings, store=store, rest=rest, executor=executor, clock=time.time)
    finally:
        store.close()


def build_purger(
    session: Session,
    *,
    bot_moderators: Callable[[], frozenset[str]] = frozenset,
    roles: RoleDirectory | None = None,
) -> Purger:
    return Purger(
        audit=session.store.audit,
        purges=session.store.purges,
        lease=session.store.lease,
        rest=session.rest,
        executor=session.executor,
        bot_user_id=session.rest.user_id or "",
        clock=session.clock,
        bot_moderators=bot_moderators,
        roles=roles,
    )


# -- build: the bot's services ------------------------------------------------------------------


@dataclass(frozen=True)
class Shared(Session):
    """What every service of the running bot is built on, one of each."""

    realtime: RealtimeClient
    server: ServerInfo
    metrics: Metrics
    bot_moderators: BotModerators  # bound to user ids once per process, at the first connection
    roles: RoleDirectory  # one users.list snapshot of workspace roles for every guard
    lookups: Lookups  # one cache of rooms and users
    matcher: Callable[[], Matcher | None]  # the current one: a reload swaps it whole
    scans: Scans  # each message scanned once, for the alerts and the enforcer both
    site_url: Callable[[], str]  # permalinks use the workspace's own address
    bot_username: Callable[[], str | None]
    bot_user_id: Callable[[], str | None]
    # Replicas: every executor's call waits for the leader's permit (None: one instance, SQLite).
    fence: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class CommandWiring:
    desk: ReportDesk
    mod: ModCommands
    dispatcher: Dispatcher
    inbox: CommandInbox


@dataclass(frozen=True)
class Services:
    """Everything the running bot is made of, built once, in dependency order."""

    shared: Shared
    outbox: Outbox
    alerts: KeywordAlerts
    enforcer: Enforcer
    sanctioner: Sanctioner
    protector: Protector
    images: ImageModeration
    names: NameWatch
    policies: PolicyKeeper
    purger: Purger
    commands: CommandWiring
    router: Router
    ingest: Ingest


def build_outbox(base: Shared) -> Outbox:
    """Alerts and notices to people, delivered once. They go out even in a dry run (they are how
    one is watched): through an executor of their own that never runs dry, whose DDP connection
    lets an alert's edit replace its buttons with its text."""
    return Outbox(
        alerts=base.store.alerts,
        audit=base.store.audit,
        rest=base.rest,
        executor=build_executor(
            base.settings, base.store, base.rest, dry_run=never, ddp_call=base.realtime.call, fence=base.fence
        ),
        moderation=base.settings.moderation,
        site_url=base.site_url,
        metrics=base.metrics,
        bot_username=base.bot_username,
        clock=base.clock,
        lookups=base.lookups,
        bot_moderators=base.bot_moderators,
    )


def build_alerts(base: Shared, outbox: Outbox) -> KeywordAlerts:
    return KeywordAlerts(
        alerts=base.store.alerts,
        outbox=outbox,
        matcher=base.matcher,
        moderation=base.settings.moderation,
        metrics=base.metrics,
        lookups=base.lookups,
        scans=base.scans,
    )


def build_enforcer(base: Shared, outbox: Outbox) -> Enforcer:
    """Block lists and blocked users: evidence first, then delete or censor, then the author's
    notice (through the outbox)."""
    return Enforcer(
        audit=base.store.audit,
        evidence=base.store.evidence,
        blocks=base.store.blocks,
        rest=base.rest,
        executor=base.executor,
        outbox=outbox,
        matcher=base.matcher,
        moderation=base.settings.moderation,
        clock=base.clock,
        lookups=base.lookups,
        scans=base.scans,
    )


def build_sanctioner(base: Shared, outbox: Outbox) -> Sanctioner:
    """Strikes, mutes that expire (the expiry is in the store, so it fires on time after
    downtime), bans. Alert-only until an admin sets a mode to "act"."""
    return Sanctioner(
        audit=base.store.audit,
        sanctions=base.store.sanctions,
        bans=base.store.bans,
        rest=base.rest,
        executor=base.executor,
        outbox=outbox,
        settings=base.settings.sanctions,
        moderation=base.settings.moderation,
        bot_username=base.bot_username,
        clock=base.clock,
        lookups=base.lookups,
        room_bans=always(base.server.features.room_bans),
        bot_moderators=base.bot_moderators,
    )


def build_protector(
    base: Shared, outbox: Outbox, sanctioner: Sanctioner, unfinished: Unfinished | None = None
) -> Protector:
    """Floods, repeats, mention and link spam, raids."""
    return Protector(
        unfinished=unfinished,
        audit=base.store.audit,
        evidence=base.store.evidence,
        sanctions=base.store.sanctions,
        rest=base.rest,
        executor=base.executor,
        outbox=outbox,
        sanctioner=sanctioner,
        settings=base.settings.protections,
        moderation=base.settings.moderation,
        bot_username=base.bot_username,
        site_url=base.site_url,
        clock=base.clock,
        lookups=base.lookups,
    )


def image_edges(
    base: Shared, checker: ImageCheck | None, files: FileSource | None
) -> tuple[ImageCheck | None, FileSource | None]:
    """The image checker and the download: a caller's (a test's fakes), else the bot's own.

    The bot's own are wired here and nowhere else: the checker is built from settings.images
    (its max_pixels and hash lists) and the download is the REST client's own session
    (RestClient.download), so an upload is fetched as the bot, from the workspace's origin.
    A bot that watches no room's uploads builds neither: the model (about 0.2 s to load and
    verify) and the hash lists are loaded only when image checks are on."""
    images = base.settings.images
    if checker is None and images.watching:
        # Imported here: Pillow, numpy and onnxruntime are needed only with image checks on.
        from bot.vision import ImageChecker, NsfwScorer, load_hash_list

        checker = ImageChecker(
            max_bytes=images.max_bytes,
            max_pixels=images.max_pixels,
            workers=images.workers,
            hash_lists=[load_hash_list(h.path, h.kind, h.distance) for h in images.hash_lists],
            scorer=NsfwScorer(),
        )
    return checker, files if files is not None else base.rest


def build_images(
    base: Shared,
    outbox: Outbox,
    unfinished: Unfinished,
    *,
    checker: ImageCheck | None = None,
    files: FileSource | None = None,
) -> ImageModeration:
    """Image checks on this host: uploads of watched rooms downloaded, checked, decided."""
    checker, files = image_edges(base, checker, files)
    return ImageModeration(
        settings=base.settings.images,
        ledger=base.store.images,
        evidence=base.store.evidence,
        audit=base.store.audit,
        executor=base.executor,
        outbox=outbox,
        checker=checker,
        files=files,
        rooms=base.rest,
        metrics=base.metrics,
        site_url=base.site_url,
        retention_days=base.settings.storage.retention_days,
        unfinished=unfinished,
        room_info=base.lookups.room,
    )


def build_names(base: Shared, outbox: Outbox) -> NameWatch:
    """Names and room texts, and accounts awaiting approval: see bot.services.names."""
    return NameWatch(
        policies=base.store.policies,
        state=base.store.state,
        rest=base.rest,
        outbox=outbox,
        matcher=base.matcher,
        moderation=base.settings.moderation,
        site_url=base.site_url,
        bot_user_id=base.bot_user_id,
        lookups=base.lookups,
        clock=base.clock,
    )


def build_policies(base: Shared, outbox: Outbox) -> PolicyKeeper:
    """Policy announcements: pinned and kept pinned, banners in sync. The keeper syncs at startup
    and every policy.sync_interval; the bot joining a room, a banner edit (router) and an unpin
    re-emit (seen before dedup, as it is the bot's own unedited message) wake it early. Notices
    about who did it go through the outbox."""
    return PolicyKeeper(
        audit=base.store.audit,
        policies=base.store.policies,
        rest=base.rest,
        executor=base.executor,
        policy_dir=base.settings.policy.dir,
        bot_user_id=base.bot_user_id,
        notify=outbox_notify(outbox),
        interval=base.settings.policy.sync_interval,
        dm_on_join=base.settings.policy.dm_on_join,
        bot_username=base.bot_username,
        clock=base.clock,
    )


def build_enforcement_commands(
    base: Shared, enforcer: Enforcer, purger: Purger, policies: PolicyKeeper
) -> EnforcementCommands:
    """/mod block|unblock|purge|confirm|policy: the chat front of the enforcer, the purger and the
    policy keeper, declared in bot.commands.spec like the rest."""
    return EnforcementCommands(
        enforcer=always(enforcer),
        purger=purger,
        policies=always(policies),
        rest=base.rest,
        executor=base.executor,
        clock=base.clock,
    )


def build_report_desk(base: Shared, outbox: Outbox, enforcement: EnforcementCommands) -> ReportDesk:
    return ReportDesk(
        audit=base.store.audit,
        alerts=base.store.alerts,
        reports=base.store.reports,
        rest=base.rest,
        outbox=outbox,
        settings=base.settings.reports,
        retention_days=base.settings.storage.retention_days,
        executor=base.executor,
        site_url=base.site_url,
        clock=base.clock,
        enforce=enforcement.for_report,
    )


def build_mod_commands(
    base: Shared,
    outbox: Outbox,
    desk: ReportDesk,
    lookups: TtlCache,
    *,
    reload: Callable[[], Awaitable[bool]],
    edit_list: Callable[[ChatListEdit], Awaitable[bool]],
    readiness: Callable[[], Mapping[str, bool]],
    status: Callable[[], list[str]],
) -> ModCommands:
    return ModCommands(
        audit=base.store.audit,
        alerts=base.store.alerts,
        reports=base.store.reports,
        messages=base.store.messages,
        state=base.store.state,
        rest=base.rest,
        executor=base.executor,
        outbox=outbox,
        desk=desk,
        matcher=base.matcher,
        reload=reload,
        # /mod status names a background loop only while it is down.
        readiness=functools.partial(_down_loops_only, readiness),
        retention_days=base.settings.storage.retention_days,
        forget_lookups=lookups.forget,
        lists=base.store.lists,
        edit_list=edit_list,
        more_status=status,
    )


def _down_loops_only(readiness: Callable[[], Mapping[str, bool]]) -> Mapping[str, bool]:
    return {k: v for k, v in readiness().items() if not (v and k.startswith("loop:"))}


def build_commands(
    base: Shared,
    outbox: Outbox,
    desk: ReportDesk,
    mod: ModCommands,
    enforcement: EnforcementCommands,
    sanctioner: Sanctioner,
    protector: Protector,
    lookups: TtlCache,
) -> CommandWiring:
    """/report and /mod: one dispatcher behind three transports — DMs to the bot and slash
    commands typed in rooms (via the router), and the companion app's hook."""
    sanctions = SanctionCommands(
        sanctioner=sanctioner,
        audit=base.store.audit,
        sanctions=base.store.sanctions,
        bans=base.store.bans,
        outbox=outbox,
        restore=protector.restore,
        clock=base.clock,
    )
    dispatcher = Dispatcher(
        rest=base.rest,
        audit=base.store.audit,
        handlers={
            **mod.handlers(),
            **enforcement.handlers(),
            **sanctions.handlers(),
            **ImageCommands(images=base.store.images, alerts=base.store.alerts, outbox=outbox).handlers(),
        },
        bot_moderators=functools.partial(base.bot_moderators.current_ids, base.rest),
        site_url=base.site_url,
        clock=base.clock,
        roles=base.roles,
        cache=lookups,
    )
    inbox = CommandInbox(
        dispatcher=dispatcher, rest=base.rest, executor=base.executor, bot_username=base.bot_username
    )
    return CommandWiring(desk, mod, dispatcher, inbox)


def build_ingest(
    base: Shared, router: Router, policies: PolicyKeeper, unfinished: Unfinished | None = None
) -> Ingest:
    return Ingest(
        messages=base.store.messages,
        rest=base.rest,
        router=router,
        metrics=base.metrics,
        bot_user_id=base.bot_user_id,
        watch_room=base.realtime.watch_room,
        clock=base.clock,
        server_now=base.rest.server_now,
        backoff=realtime_backoff(base.settings),
        state_watchers=[policies.on_message_state],
        unfinished=unfinished,
    )


def build_hook(base: Shared, dispatcher: Dispatcher) -> Hook:
    """The companion app's command hook, answered by the dispatcher."""
    http = base.settings.http
    return command_hook(
        always(http.webhook_secret.get_secret_value() if http.webhook_secret else None),
        dispatcher.run,
        clock=base.clock,
        replays=StoredReplays(base.store.hooks, base.clock),
    )


def build_web(
    settings: Settings,
    metrics: Metrics,
    readiness: Callable[[], Mapping[str, bool]],
    hook: Callable[[], Hook | None],
    role: Callable[[], str] | None = None,
) -> WebServer:
    """/healthz, /readyz, /metrics and the companion app's command hook (not listening yet).
    Built before the services (a standby answers /readyz): the hook answers 503 until they are."""
    http = settings.http
    return WebServer(build_app(metrics, readiness, late(hook), role=role), http.host, http.port)


def realtime_backoff(settings: Settings) -> Callable[[], Any]:
    return functools.partial(
        exponential_backoff,
        initial=settings.realtime.backoff_initial,
        maximum=settings.realtime.backoff_max,
    )


def build_services(
    base: Shared,
    *,
    reload: Callable[[], Awaitable[bool]],
    edit_list: Callable[[ChatListEdit], Awaitable[bool]],
    readiness: Callable[[], Mapping[str, bool]],
    more_handlers: list[Route],
    image_checker: ImageCheck | None = None,
    file_source: FileSource | None = None,
) -> Services:
    """Each service once, in dependency order; the router's order is the order handlers run in."""
    # Messages whose handling goes on off the ingest path (a probation lookup, an image check):
    # recorded as handled only once every part holding them has released them.
    unfinished = Unfinished()
    outbox = build_outbox(base)
    alerts = build_alerts(base, outbox)
    enforcer = build_enforcer(base, outbox)
    sanctioner = build_sanctioner(base, outbox)
    protector = build_protector(base, outbox, sanctioner, unfinished)
    images = build_images(base, outbox, unfinished, checker=image_checker, files=file_source)
    names = build_names(base, outbox)
    policies = build_policies(base, outbox)
    purger = build_purger(base, bot_moderators=base.bot_moderators.ids, roles=base.roles)
    enforcement = build_enforcement_commands(base, enforcer, purger, policies)
    desk = build_report_desk(base, outbox, enforcement)
    lookups = TtlCache(base.clock, ttl=LOOKUP_TTL)  # the dispatcher's; /mod appoint drops what it changed
    status = functools.partial(_status_lines, base.bot_moderators, protector, names, images)
    mod = build_mod_commands(
        base, outbox, desk, lookups, reload=reload, edit_list=edit_list, readiness=readiness, status=status
    )
    commands = build_commands(base, outbox, desk, mod, enforcement, sanctioner, protector, lookups)
    router = Router(
        base.metrics,
        routes=[
            ("alerts", (MessageEvent,), alerts.on_event),
            # After the keyword alerts, so the moderators' alert is decided first.
            ("enforcer", (MessageEvent,), enforcer.on_event),
            # Bans on servers without them (before 8.3): a banned user's rejoin is undone.
            ("bans", (SystemMessage,), sanctioner.on_event),
            ("protector", (MessageEvent,), protector.on_event),
            # Holds a message with uploads to check and returns; the check runs in its workers.
            ("images", (MessageEvent,), images.on_event),
            ("names", (MessageEvent, RoomChanged), names.on_event),
            *more_handlers,
            ("policies", (SubscriptionChanged, SystemMessage), policies.on_event),
            ("commands", (MessageEvent,), commands.inbox.on_event),
        ],
    )
    # A message whose probation check waits for its author's account age, or whose uploads wait
    # for their check, is recorded as handled only once that is done.
    ingest = build_ingest(base, router, policies, unfinished)
    return Services(
        shared=base,
        outbox=outbox,
        alerts=alerts,
        enforcer=enforcer,
        sanctioner=sanctioner,
        protector=protector,
        images=images,
        names=names,
        policies=policies,
        purger=purger,
        commands=commands,
        router=router,
        ingest=ingest,
    )


def _status_lines(
    moderators: BotModerators, protector: Protector, names: NameWatch, images: ImageModeration
) -> list[str]:
    return [*moderators.status(), *protector.status(), *names.status(), *images.status()]


# -- the running bot: build, start, consume, stop ------------------------------------------------


class _Built(Generic[T]):
    """A read-only view of the bot's app into one part of its services: None until they are built."""

    def __init__(self, part: Callable[[Services], T]) -> None:
        self._part = part

    def __get__(self, app: BotApp, owner: type[BotApp]) -> T | None:
        return self._part(app.services) if app.services else None

    def __set__(self, app: BotApp, value: object) -> None:
        raise AttributeError("a view of the built services")


class BotApp:
    def __init__(self, settings: Settings, extras: Extras | None = None) -> None:
        self.settings = settings
        self.extras = extras or Extras()
        self.credentials = settings.credentials()  # ConfigError before any connection opens
        self.metrics = Metrics()
        self.ready = asyncio.Event()
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = asyncio.Event()
        # The one reference a wordlist reload swaps (a new matcher, whole); services read it.
        self.matcher: Matcher | None = None
        # The store's revision of the chat-edited lists the matcher was compiled with (None: not
        # yet compiled with them); reloads and chat edits are made one at a time.
        self._lists_revision: int | None = None
        self._lists_lock = asyncio.Lock()
        self._store: Store | None = None  # once opened (run())
        # Built once, when connected (run()); None before.
        self.services: Services | None = None
        # Every long-running task runs under it: restarted after a failure, shown in /readyz.
        self.loops = Supervisor(self.metrics, backoff=realtime_backoff(settings), on_fatal=self._fatal_error)
        self._fatal: Fatal | None = None
        # Replicas (a PostgreSQL store): this instance's lock session; None on SQLite.
        self.leadership: Leadership | None = None
        self._web: WebServer | None = None
        self._hook: Hook | None = None  # the command hook, once the services are built
        # Bound to user ids once per process (at the first connection), not at each reconnect:
        # a name registered meanwhile must not become a moderator.
        self.bot_moderators = BotModerators(settings.moderation.moderators)

    # What tests and the demo look at; None until the services are built.
    store = _Built(lambda s: s.shared.store)
    rest = _Built(lambda s: s.shared.rest)
    executor = _Built(lambda s: s.shared.executor)
    ingest = _Built(lambda s: s.ingest)
    enforcer = _Built(lambda s: s.enforcer)
    sanctioner = _Built(lambda s: s.sanctioner)
    names = _Built(lambda s: s.names)
    policies = _Built(lambda s: s.policies)
    images = _Built(lambda s: s.images)

    @property
    def web(self) -> WebServer | None:
        """The web endpoints, once listening (a standby's too)."""
        return self._web

    def current_matcher(self) -> Matcher | None:
        return self.matcher

    async def reload_wordlists(self) -> bool:
        """Build a new matcher off the loop (the configured lists and the store's chat-edited
        ones) and swap it in whole; a broken list keeps the old one."""
        async with self._lists_lock:
            return await self._reload()

    async def edit_list(self, edit: ChatListEdit) -> bool:
        """A moderator's edit of a chat-edited list: the lists are compiled with it first, and
        only a matcher that builds is swapped in, once the edit is in the store (audited there).
        False, and nothing written: the edit would break the lists."""
        async with self._lists_lock:
            store = self._store
            assert store is not None, "edits come from the commands, built once the store is open"
            chat = _with_edit(store.lists.lists(), edit)
            try:
                new = await load_wordlists(self.settings, chat)
            except ConfigError as exc:
                log.error("list edit refused (list %s): %s", edit.name, exc)
                return False
            store.lists.add_term(edit)
            self._swap(new, store, store.lists.revision())
            return True

    async def _reload(self) -> bool:
        store = self._store
        revision = store.lists.revision() if store is not None else None
        try:
            new = await load_wordlists(self.settings, store.lists.lists() if store is not None else ())
        except ConfigError as exc:
            log.error("wordlist reload failed, keeping the current lists: %s", exc)
            return False
        self._swap(new, store, revision)
        return True

    def _swap(self, new: Matcher | None, store: Store | None, revision: int | None) -> None:
        self.matcher = new
        self._lists_revision = revision
        # Only an instance that writes records it (a standby is not a writer).
        if store is not None and (self.leadership is None or self.leadership.leading):
            store.audit.append_audit(
                actor="operator",
                action=actions.CONFIG_RELOADED,
                targets={"paths": [str(p) for p in self.settings.moderation.wordlists]},
            )

    async def _lead_lists(self, store: Store) -> None:
        """As this instance starts to write: an earlier version's list files are imported into
        the store (once per store), and the matcher is rebuilt when the store's chat-edited lists
        are no longer those it was compiled with (a previous leader's edits, above all), before
        anything is handled."""
        async with self._lists_lock:
            import_file_lists(self.settings, store)
            if store.lists.revision() != self._lists_revision:
                await self._reload()  # a failure keeps the warm matcher, and says why in the log

    def readiness(self) -> Mapping[str, bool]:
        lead = self.leadership
        if lead is not None and not lead.leading:
            # A warm standby: wordlists loaded, store open, asking for the lock.
            return {"standby": lead.alive and not self._stopping.is_set()}
        rt = self.services.shared.realtime if self.services else None
        return {
            **({"leading": lead.leading} if lead is not None else {}),
            "connected": bool(rt and rt.connected),
            "logged_in": bool(rt and rt.logged_in),
            "subscribed": bool(rt and rt.subscribed),
            **self.loops.readiness(),
        }

    def role(self) -> str:
        """What /readyz says this instance is, with replicas: "standby" until it leads."""
        lead = self.leadership
        if lead is None or lead.leading:
            return "leader"
        return "deposed" if lead.lost else "standby"

    def _fatal_error(self, exc: BaseException) -> None:
        """A loop met an error no restart can cure (a full disk, leadership lost): stop, and let
        run() raise it."""
        if isinstance(exc, Fatal) and self._fatal is None:
            self._fatal = exc
        self.stop()

    async def run(self) -> None:
        store = open_store(self.settings, clock=self.extras.clock, on_audit=self.metrics.count_action)
        self._store = store
        url = self.settings.storage.url
        try:
            if url is None:  # SQLite: one instance per data folder, exactly as ever
                store.lease.acquire_lease(self._holder, LEASE_TTL, is_dead=holder_is_dead)
                import_file_lists(self.settings, store)
            else:
                self.leadership = Leadership.connect(url.get_secret_value(), self._holder)
            # A broken wordlist is a configuration error: fail before any connection to the
            # server. The chat-edited lists come from the store (a standby's too: it is warm).
            self._lists_revision = store.lists.revision()
            self.matcher = await load_wordlists(self.settings, store.lists.lists())
            async with contextlib.AsyncExitStack() as running:  # unwinds in reverse: the stop order
                await self._serve(running)
                if self.leadership is not None and not await self._await_leadership(store, self.leadership):
                    return  # stopped while a standby
                services = await self._build(store, running)
                self._hook = build_hook(services.shared, services.commands.dispatcher)
                # The last batch of handled marks, once the loops have stopped (they unwind first).
                running.callback(services.ingest.close)
                await self._start(services, running)
                await self._consume(services)
            if self._fatal is not None:
                raise self._fatal
        finally:
            if self.leadership is None or self.leadership.leading:
                self._checkpoint_audit(store)  # the records of this run, anchored before the store closes
            with contextlib.suppress(Exception):
                store.lease.release_lease(self._holder)
            store.close()
            if self.leadership is not None:
                self.leadership.close()  # last: a standby takes over once nothing here writes
            log.info("stopped")

    async def _serve(self, running: contextlib.AsyncExitStack) -> None:
        """The web endpoints, from before the services: a standby answers /healthz and /readyz."""
        http = self.settings.http
        server = build_web(
            self.settings,
            self.metrics,
            self.readiness,
            lambda: self._hook,
            role=self.role if self.leadership is not None else None,
        )
        try:
            port = await server.start()
        except OSError as exc:
            raise RcmodError(
                f"cannot listen on {http.host}:{http.port} (http.port): {listen_problem(exc)}"
            ) from None
        self._web = server
        running.push_async_callback(server.stop)
        log.info("http endpoints on %s:%d", http.host, port)

    async def _await_leadership(self, store: Store, leadership: Leadership) -> bool:
        """A warm standby until this instance leads (True), or until stopped (False): wordlists
        loaded, store open, endpoints up, the lock asked for every POLL_INTERVAL. Leading, its
        store writes are fenced with its token from the first one on."""
        if self.settings.protections.repeat.mode != "off":
            await asyncio.to_thread(warm_up)  # as _build does: the first message pays nothing
        log.info("standby: waiting to lead (another instance leads, or is starting)")
        while not self._stopping.is_set():
            if await asyncio.to_thread(leadership.try_acquire):
                assert leadership.epoch is not None
                store.db.fence(leadership.epoch)
                log.info("leading now (epoch %d): starting", leadership.epoch)
                await self._lead_lists(store)
                return True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL):
                    await self._stopping.wait()
        return False

    async def _build(self, store: Store, running: contextlib.AsyncExitStack) -> Services:
        base = await self._connect(store, running)
        if self.settings.protections.repeat.mode != "off":
            # The repeat check folds text with the matcher's tables; build them now, off the
            # loop, or the first message pays ~150 ms for it (no wordlists: no matcher built them).
            await asyncio.to_thread(warm_up)
        services = build_services(
            base,
            reload=self.reload_wordlists,
            edit_list=self.edit_list,
            readiness=self.readiness,
            more_handlers=self.extras.handlers,
            image_checker=self.extras.image_checker,
            file_source=self.extras.file_source,
        )
        self.services = services
        # What start-up built lives as long as the bot (the matcher's tables: millions of objects
        # at 100k terms); out of the collector's reach, a full collection no longer walks it on
        # every pass, a pause of ~0.2 s on the message path. Garbage is collected first so that
        # none of it is kept for good; objects built later (a reloaded matcher) are collected as usual.
        gc.collect()
        gc.freeze()
        return services

    async def _connect(self, store: Store, running: contextlib.AsyncExitStack) -> Shared:
        """REST login, what the server is and who the bot is; the realtime client (not connected
        yet); the executor. Everything the services share."""
        s, clock, metrics = self.settings, self.extras.clock, self.metrics
        rest = rest_client(
            s, self.credentials, clock=clock, on_error=lambda kind: metrics.rest_errors.labels(kind).inc()
        )
        running.push_async_callback(rest.close)
        await rest.login()
        server = await rest.server_info()
        bot_username = str((await rest.me()).get("username") or "") or None
        await self.bot_moderators.resolve(rest)
        log.info("server version %s", server.version)
        for note in server.notes:
            log.warning("%s", note)
        realtime = self._realtime_client()
        site_url = await self._site_url(store, rest)
        dry_run = functools.partial(dry_run_on, store)
        fence = self.leadership.permit if self.leadership is not None else None
        # Servers before 6.8 have no rooms.muteUser: there the realtime method does it.
        mute_call = None if server.features.mute_endpoints else realtime.call
        roles = RoleDirectory(rest, clock=clock)
        # Read beside the start: the first message that needs a role then finds it read.
        prefetch = asyncio.create_task(roles.prefetch())
        running.callback(prefetch.cancel)
        return Shared(
            settings=s,
            store=store,
            rest=rest,
            executor=build_executor(s, store, rest, dry_run=dry_run, ddp_call=mute_call, fence=fence),
            clock=clock,
            realtime=realtime,
            server=server,
            metrics=metrics,
            bot_moderators=self.bot_moderators,
            roles=roles,
            lookups=Lookups(rest, clock=clock, roles=roles),
            matcher=self.current_matcher,
            scans=Scans(self.current_matcher),
            site_url=always(site_url),
            bot_username=always(bot_username),
            bot_user_id=always(rest.user_id),
            fence=fence,
        )

    async def _site_url(self, store: Store, rest: RestClient) -> str:
        """The workspace's own address (Site_Url), for permalinks. settings.public is limited to
        10 calls a minute per address whoever asks (it needs no login), so a run of restarts or
        takeovers would wait out a minute at start-up: the answer is kept in the store, and a
        start that gets none within SITE_URL_WAIT uses the kept one."""
        kept = store.state.state_get(SITE_URL_KEY)
        try:
            async with asyncio.timeout(SITE_URL_WAIT if kept else None):
                site = (await rest.public_settings("Site_Url")).get("Site_Url")
        except (RcmodError, TimeoutError):
            site = None
        if isinstance(site, str) and site.startswith("http"):
            if site != kept:
                store.state.state_set(SITE_URL_KEY, site)
            return site
        return kept or self.settings.server.url or ""

    def _realtime_client(self) -> RealtimeClient:
        s = self.settings.realtime
        assert self.settings.server.url is not None  # credentials() checked it
        client = RealtimeClient(
            self.settings.server.url,
            self.credentials,
            ping_interval=s.ping_interval,
            pong_timeout=s.pong_timeout,
            call_timeout=s.call_timeout,
            backoff=realtime_backoff(self.settings),
            room_sub_interval=s.room_sub_interval,
            queue_size=s.queue_size,
            on_queue_full=self.metrics.count_queue_full,
            **self.extras.realtime_options,
        )
        self.metrics.watch_queue_depth(lambda: client.queue_depth)
        return client

    async def _start(self, services: Services, running: contextlib.AsyncExitStack) -> None:
        """Realtime (it connects when _consume reads it), then the loops."""
        running.push_async_callback(services.shared.realtime.close)
        for name, loop in self._loops(services):
            self.loops.start(name, loop)
        running.push_async_callback(self._stop_loops, services)

    def _loops(self, services: Services) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The background loops, in the order they start."""
        store, interval = services.shared.store, self.settings.reports.poll_interval
        return [
            *(
                [("leadership", functools.partial(self._watch_leadership, self.leadership))]
                if self.leadership is not None
                else [("lease", functools.partial(self._renew_lease, store))]
            ),
            ("catch-up", services.ingest.run),  # retries the rooms whose catch-up failed
            ("housekeeping", functools.partial(self._housekeeping, store, services.ingest)),
            ("free-space", self._watch_free_space),
            ("outbox", services.outbox.run),
            # Members' native reports.
            *(
                [("reports", functools.partial(services.commands.desk.run_native_poll, interval))]
                if interval > 0
                else []
            ),
            # Purges a crash or restart interrupted resume where their journal stopped, and block
            # actions the server failed are retried from their evidence.
            ("resume-purges", functools.partial(_resume_purges, services.purger)),
            ("enforcer", services.enforcer.run),
            ("images", services.images.run),
            ("policies", services.policies.run),
            ("sanctions", services.sanctioner.run),
            # Two loops, supervised apart: under one gather, one's death would leave the other
            # running while the pair was restarted, and sweeps would then run twice.
            ("names", services.names.run_sweeps),
            ("registrations", services.names.run_registrations),
        ]

    async def _stop_loops(self, services: Services) -> None:
        """Graceful stop: no new events are taken (the consumer has returned); messages waiting
        for their author's account age are checked (else the next start would handle them again);
        background tasks stop; the outbox gets one last pass so decided alerts go out now rather
        than at the next start (whatever does not make it stays queued in the store)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(services.protector.settled(), timeout=5)
        with contextlib.suppress(Exception):  # uploads being checked; the rest wait for the next start
            await asyncio.wait_for(services.images.settled(), timeout=5)
        await self.loops.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(services.outbox.deliver_due(), timeout=5)

    async def _consume(self, services: Services) -> None:
        """Each event costs one await. stop() ends the stream: the event being handled is
        finished (its calls still reach the server), no further one is taken."""
        ingest, realtime = services.ingest, services.shared.realtime
        if self._stopping.is_set():
            return

        async def end_on_stop() -> None:
            await self._stopping.wait()
            realtime.stop_events()

        stopper = asyncio.create_task(end_on_stop())  # one per run, not one per event
        announcing: asyncio.Task[None] | None = None
        try:
            async with contextlib.aclosing(realtime.events()) as events:
                async for event in events:
                    if self._stopping.is_set():  # set while the last event was being handled
                        break
                    await ingest.handle(event)
                    if (
                        isinstance(event, Connected)
                        and not self.ready.is_set()
                        and (not announcing or announcing.done())
                    ):
                        # Catch-up runs beside live events; ready means every message posted
                        # meanwhile was handled (the quiet rooms' sweep goes on behind: Ingest.ready).
                        announcing = asyncio.create_task(self._ready_when_caught_up(ingest, services.shared))
        finally:
            stopper.cancel()
            if announcing is not None:
                announcing.cancel()

    async def _ready_when_caught_up(self, ingest: Ingest, base: Shared) -> None:
        try:
            await ingest.ready()
        except Exception:  # the pass failed: the supervised catch-up loop reports it
            return
        if not self.ready.is_set():
            self._log_ready(base)
        self.ready.set()

    def _log_ready(self, base: Shared) -> None:
        """One line an operator can read: who the bot is, where, and what it watches for."""
        matcher = self.matcher
        lists = len(matcher.lists) if matcher else 0
        terms = matcher.term_count if matcher else 0
        log.info(
            "ready: logged in as %s on %s; watching %d rooms with %d list%s of %d terms",
            base.bot_username() or f"user id {base.realtime.user_id}",
            urlsplit(self.settings.server.url or "").netloc,
            len(base.realtime.watched_rooms),
            lists,
            "" if lists == 1 else "s",
            terms,
        )

    async def _housekeeping(self, store: Store, ingest: Ingest) -> None:
        """Hourly: erase evidence past its preservation window (legal holds excepted), delete
        what is finished past it (alerts, purge journals, held messages, image checks), forget
        dedup records older than catch-up could reach and the cursors of rooms the bot left, and
        sign the audit head."""
        days = self.settings.storage.retention_days
        while True:
            try:
                erased = store.evidence.erase_expired_evidence()
                store.alerts.expire_alert_excerpts(days)
                if erased:
                    log.info("retention: erased %d evidence item(s) past the window", erased)
                for what, removed in (
                    ("finished alert(s) past the window", store.alerts.delete_finished_alerts(days)),
                    (
                        "journal item(s) of purges ended before the window",
                        store.purges.forget_finished_purges(days),
                    ),
                    (
                        "held message(s) that can no longer be restored",
                        store.sanctions.forget_held_messages(days),
                    ),
                    ("image check(s) past the window", store.images.forget_checks(days)),
                    ("dedup record(s) past 30 days", ingest.prune()),
                    ("cursor(s) of rooms left 30 days ago", ingest.prune_cursors()),
                ):
                    if removed:
                        log.info("retention: deleted %d %s", removed, what)
            except RcmodError as exc:
                log.error("housekeeping failed (%s); will retry", type(exc).__name__)
            self._checkpoint_audit(store)
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    def _checkpoint_audit(self, store: Store) -> None:
        """Sign the audit head into the checkpoint file beside the key (bot.audit.checkpoints), so a
        database rewritten later cannot pass `rcmod audit verify`. Never fatal."""
        data_dir = self.settings.storage.data_dir
        try:
            key, _ = load_or_create_signing_key(data_dir)
            written = checkpoint_head(store, data_dir, key)
        except RcmodError as exc:
            log.error("audit checkpoint failed (%s); will retry", type(exc).__name__)
            return
        if written is not None:
            log.info("audit checkpoint signed at record %d", written.seq)
        elif store.audit.audit_head() is not None and not _audit_head_checkpointed(store, data_dir):
            log.error("audit log does not verify: its head was not signed; run rcmod audit verify")

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

    async def _renew_lease(self, store: Store) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                store.lease.renew_lease(self._holder, LEASE_TTL)
            except ConfigError:
                log.error("lost the store lease to another instance; stopping")
                self.stop()
                return

    async def _watch_leadership(self, leadership: Leadership) -> None:
        """The watchdog: the lock session checked every CHECK_INTERVAL, which also keeps the
        executor's permit fresh. A failed check raises Deposed: the supervisor hands it to
        _fatal_error, and the bot stops acting (loops cancelled, realtime closed)."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            await leadership.verify()

    def stop(self) -> None:
        self._stopping.set()


def _audit_head_checkpointed(store: Store, data_dir: Path) -> bool:
    head = store.audit.audit_head()
    checkpoints, _ = checkpoints_in(data_dir)
    return any((c.seq, c.hash) == head for c in checkpoints)


async def _resume_purges(purger: Purger) -> None:
    """Finish confirmed purges a crash interrupted (one a live `rcmod purge` runs is left to it)."""
    try:
        for result in await purger.resume():
            log.info("purge %d resumed: %d deleted, %d failed", result.job_id, result.deleted, result.failed)
    except RcmodError as exc:
        log.error("resuming purges failed (%s); they stay open for the next start", type(exc).__name__)
