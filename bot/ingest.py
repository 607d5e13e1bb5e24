"""Ingest: every message handled once, across reconnects and restarts.

The realtime stream says what happened; this layer decides whether it is news. It remembers each
handled revision ``(message id, editedAt)`` in the store, so re-emits after reactions, previews or
thread counters are dropped, and an edit is handled exactly when ``editedAt`` changes. It keeps a
per-room cursor (the newest ``_updatedAt`` handled); after every (re)connection it catches up each
room from its cursor with ``chat.syncMessages`` (updates and deletions) and room history (new
messages), feeding what it finds through the same path as live events. Events are processed one at
a time, so the live stream and catch-up cannot race: frames that arrive during catch-up wait in
the socket and are deduplicated when their turn comes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import ActionRefused, DiskFull, RcmodError
from bot.models import Message
from bot.realtime.events import (
    BulkDeleted,
    Connected,
    Disconnected,
    Event,
    FrameRejected,
    MessageDeleted,
    MessageEvent,
    RoomHint,
    SubscriptionChanged,
    message_event,
)
from bot.router import Router
from bot.store import Store
from bot.web.metrics import Metrics

__all__ = ["Ingest", "RestForIngest"]

log = logging.getLogger("rcmod.ingest")

# A new room's cursor starts a little in the past: server and bot clocks may disagree, and dedup
# makes any overlap harmless.
_CLOCK_MARGIN = timedelta(seconds=60)
_DEDUP_KEEP = timedelta(days=30)


class RestForIngest(Protocol):
    """The REST calls catch-up needs (the RestClient provides them; tests may use the sandbox)."""

    async def subscriptions(self) -> list[dict[str, object]]: ...

    async def sync_messages(
        self, rid: str, last_update: datetime
    ) -> tuple[list[Message], list[tuple[str, datetime]]]: ...

    def history(
        self, rid: str, room_type: str, *, oldest: datetime, latest: datetime | None = None, page: int = 100
    ) -> AsyncIterator[Message]: ...


class Ingest:
    def __init__(
        self,
        *,
        store: Store,
        rest: RestForIngest,
        router: Router,
        metrics: Metrics,
        bot_user_id: Callable[[], str | None],
        watch_room: Callable[[str], None] = lambda rid: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._rest = rest
        self._router = router
        self._metrics = metrics
        self._bot_user_id = bot_user_id
        self._watch_room = watch_room
        self._clock = clock
        self._room_types: dict[str, str] = {}
        self.catch_ups = 0
        self._state_watchers: list[Callable[[MessageEvent], Awaitable[None]]] = []

    def watch_state(self, watcher: Callable[[MessageEvent], Awaitable[None]]) -> None:
        """See every message event *before* deduplication, the bot's own messages included.

        For watchers of message state rather than content: unpinning a policy message re-emits
        the bot's own, unedited message with ``pinned: false``, which dedup would drop as a
        repeat. A watcher must be cheap and must not assume it sees a revision once.
        """
        self._state_watchers.append(watcher)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    async def handle(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            await self._handle_message(event, live=True)
        elif isinstance(event, MessageDeleted):
            await self._handle_deleted(event)
        elif isinstance(event, Connected):
            self._metrics.connected.set(1)
            if event.reconnect:
                self._metrics.reconnects.inc()
            await self._router.dispatch(event)
            await self.catch_up()
        elif isinstance(event, Disconnected):
            self._metrics.connected.set(0)
            await self._router.dispatch(event)
        elif isinstance(event, SubscriptionChanged):
            await self._handle_subscription(event)
        elif isinstance(event, FrameRejected):
            self._metrics.frames_rejected.inc()
            log.warning("realtime frame rejected: %s (%d bytes)", event.reason, event.size)
            await self._router.dispatch(event)
        else:
            if isinstance(event, BulkDeleted):
                self._metrics.messages_seen.labels("bulk_deleted", "handled").inc()
            await self._router.dispatch(event)

    async def _handle_message(self, event: MessageEvent, *, live: bool) -> bool:
        message = event.message
        kind = type(event).__name__
        for watcher in self._state_watchers:
            try:
                await watcher(event)
            except DiskFull:
                raise
            except Exception as exc:  # a watcher's failure must not stop ingest (ids only)
                log.error("state watcher failed on message %s: %s", message.id, type(exc).__name__)
        if event.room.type:
            self._room_types.setdefault(message.rid, event.room.type)
        if self._store.is_handled(message.id, message.version):
            self._metrics.messages_seen.labels(kind, "duplicate").inc()
            return False
        if message.author.id != self._bot_user_id():  # the bot ignores its own messages
            await self._router.dispatch(event)
            outcome = "handled" if live else "caught_up"
        else:
            outcome = "own"
        self._store.mark_handled(message.id, message.version, message.rid)
        self._store.advance_room_cursor(message.rid, message.updated_at or message.ts)
        self._metrics.messages_seen.labels(kind, outcome).inc()
        return True

    async def _handle_deleted(self, event: MessageDeleted) -> bool:
        # A deletion can be seen three ways (notify, tombstone, sync); handle it once.
        if not self._store.mark_handled(event.mid, "deleted", event.rid):
            self._metrics.messages_seen.labels("MessageDeleted", "duplicate").inc()
            return False
        if event.at is not None:
            self._store.advance_room_cursor(event.rid, event.at)
        self._metrics.messages_seen.labels("MessageDeleted", "handled").inc()
        await self._router.dispatch(event)
        return True

    async def _handle_subscription(self, event: SubscriptionChanged) -> None:
        if event.action == "inserted":
            if event.room_type:
                self._room_types[event.rid] = event.room_type
            if self._store.room_cursor(event.rid) is None:
                self._store.advance_room_cursor(event.rid, self._now() - _CLOCK_MARGIN)
            self._watch_room(event.rid)
        await self._router.dispatch(event)

    async def catch_up(self) -> int:
        """Recover what happened while disconnected; returns how many events were new."""
        self.catch_ups += 1
        recovered = 0
        try:
            subs = await self._rest.subscriptions()
        except RcmodError as exc:
            log.warning("catch-up: cannot list subscriptions (%s); relying on cursors", type(exc).__name__)
            subs = []
        cursors = self._store.room_cursors()
        start = self._now() - _CLOCK_MARGIN
        for sub in subs:
            rid = sub.get("rid")
            if not isinstance(rid, str):
                continue
            kind = sub.get("t")
            if isinstance(kind, str):
                self._room_types[rid] = kind
            self._watch_room(rid)
            if rid not in cursors:
                self._store.advance_room_cursor(rid, start)  # first sight: start from now
        for rid, cursor in cursors.items():
            recovered += await self._catch_up_room(rid, cursor)
        if recovered:
            self._metrics.caught_up.inc(recovered)
            log.info("catch-up recovered %d events in %d rooms", recovered, len(cursors))
        return recovered

    async def _catch_up_room(self, rid: str, cursor: datetime) -> int:
        try:
            updated, deleted = await self._rest.sync_messages(rid, cursor)
            fresh: dict[tuple[str, str], Message] = {(m.id, m.version): m for m in updated}
            room_type = self._room_types.get(rid)
            if room_type:
                async for m in self._rest.history(rid, room_type, oldest=cursor):
                    fresh.setdefault((m.id, m.version), m)
        except ActionRefused as exc:
            log.warning("catch-up: room %s refused (%s); skipping it", rid, exc.code or type(exc).__name__)
            return 0
        except RcmodError as exc:
            log.warning(
                "catch-up: room %s failed (%s); will retry on next connection", rid, type(exc).__name__
            )
            return 0
        count = 0
        for message in sorted(fresh.values(), key=lambda m: (m.ts, m.updated_at or m.ts)):
            event = message_event(message, RoomHint(type=self._room_types.get(rid)))
            if isinstance(event, MessageEvent):
                count += await self._handle_message(event, live=False)
            elif isinstance(event, MessageDeleted):
                count += await self._handle_deleted(event)
        for mid, at in deleted:
            count += await self._handle_deleted(MessageDeleted(rid=rid, mid=mid, via="sync", at=at))
        return count

    def prune(self) -> int:
        """Forget dedup records older than catch-up could ever reach."""
        return self._store.forget_handled_before((self._now() - _DEDUP_KEEP).timestamp())
