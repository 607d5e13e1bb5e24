"""Ingest: every message handled once, across reconnects and restarts.

The realtime stream says what happened; this layer decides whether it is news. It remembers each
handled revision ``(message id, editedAt)`` in the store, so re-emits after reactions, previews or
thread counters are dropped, and an edit is handled exactly when ``editedAt`` changes. It keeps a
per-room cursor, "caught up to": after every (re)connection it catches up each room from its
cursor with ``chat.syncMessages`` (updates and deletions) and room history (new messages), feeding
what it finds through the same path as live events. Events are processed one at a time (one lock
for live events and catch-up retries), so the two cannot race: frames that arrive during catch-up
wait in the socket and are deduplicated when their turn comes.

Three rules keep a gap from being skipped:

* The cursor is *inclusive*: catch-up asks from one millisecond before it, since another message
  can share the last handled millisecond. Dedup by revision makes the overlap harmless.
* A room whose catch-up failed stays *pending*: live events there are handled, but do not move its
  cursor past the gap; the room is retried with backoff until its catch-up succeeds.
* A cursor never passes the server's time as last seen (REST answers' ``Date`` header): one frame
  dated in the far future (a wrong server clock, an injected frame) would otherwise pin it there.

Handled marks and cursor moves are written in batches (one transaction per ``batch_size`` events
or ``batch_wait`` seconds, whichever comes first), not one commit per message. A mark is buffered
only once the message's handlers have returned, and whatever they did (audit, evidence, queued
alerts) they committed themselves before that, so a crash loses at most marks: those messages
are read again by catch-up and handled again, which the executor's evidence, the outbox's keys
and the ledgers' duplicate checks make harmless. A message a handler left :class:`Unfinished`
(a check still waiting on the server) is not marked, and its room's cursor does not pass it,
until it is released.

Most revisions are new, and a new one costs no store lookup: every batch also records the newest
revision time (``editedAt``, else ``ts``) it marks, and a revision dated after that mark as it
stood when this instance started handling (the *horizon*) cannot have been handled before, unless
by this instance, which remembers what it handled after the horizon. Older revisions (catch-up,
re-emits of old messages) are looked up. The horizon moves up as memory is pruned, and up to the
mark again when another process has written to the store (checked once per batch).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import ActionRefused, DiskFull, RcmodError
from bot.models import Message
from bot.realtime.backoff import exponential_backoff
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
from bot.services.router import Router, Unfinished
from bot.store.messages import MessageLog

__all__ = ["Ingest", "IngestCounters", "RestForIngest"]

log = logging.getLogger("rcmod.ingest")

# A new room's cursor starts a little in the past: server and bot clocks may disagree, and dedup
# makes any overlap harmless.
_CLOCK_MARGIN = timedelta(seconds=60)
_DEDUP_KEEP = timedelta(days=30)
_REPAIR_MARGIN = timedelta(minutes=1)  # clock skew between the bot and the server
# The server's history and sync queries are exclusive (``$gt``); one millisecond back makes them
# inclusive of the cursor's own millisecond.
_ONE_MS = timedelta(milliseconds=1)
BATCH_SIZE = 100
BATCH_WAIT = 0.05  # seconds a handled mark may wait for its batch's commit
# How far a client may date a message ahead of the server's clock: Rocket.Chat's sendMessage
# refuses a client-set ``ts`` more than 60 s off the server's clock (error-message-ts-out-of-sync
# in executeSendMessage, apps/meteor/app/lib/server/methods/sendMessage.ts) and replaces one more
# than 10 s off. A ``Date`` header has whole seconds (the server's time as read errs early by up to
# one), and four more seconds are slack.
_CLIENT_TS_AHEAD = timedelta(seconds=65)
# Revisions this instance handled stay in memory while their time is within this of the newest it
# handled (and the server's time): an edit or re-emit that recent skips the store's lookup.
_RECENT_SPAN = 10.0
_RECENT_MAX = 50_000


class IngestCounters(Protocol):
    """What ingest counts (``bot.metrics.Metrics`` is one); ingest needs no metrics library."""

    def set_connected(self, up: bool) -> None: ...

    def count_reconnect(self) -> None: ...

    def count_frame_rejected(self) -> None: ...

    def count_message(self, kind: str, outcome: str) -> None: ...

    def count_caught_up(self, messages: int) -> None: ...


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
        messages: MessageLog,
        rest: RestForIngest,
        router: Router,
        metrics: IngestCounters,
        bot_user_id: Callable[[], str | None],
        watch_room: Callable[[str], None] = lambda rid: None,
        clock: Callable[[], float] = time.time,
        server_now: Callable[[], datetime | None] = lambda: None,
        backoff: Callable[[], Iterator[float]] = exponential_backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        state_watchers: Iterable[Callable[[MessageEvent], Awaitable[None]]] = (),
        unfinished: Unfinished | None = None,
        batch_size: int = BATCH_SIZE,
        batch_wait: float = BATCH_WAIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._messages = messages
        self._rest = rest
        self._router = router
        self._metrics = metrics
        self._bot_user_id = bot_user_id
        self._watch_room = watch_room
        self._clock = clock
        self._server_now = server_now
        self._backoff = backoff
        self._sleep = sleep
        self._room_types: dict[str, str] = {}
        # Rooms with a gap that catch-up has not filled yet: their cursors wait for catch-up.
        self._pending: set[str] = set()
        self._retry_wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.catch_ups = 0
        # They see every message event *before* deduplication, the bot's own messages included:
        # they watch message state rather than content (unpinning a policy message re-emits the
        # bot's own, unedited message with ``pinned: false``, which dedup would drop as a repeat).
        # A watcher must be cheap and must not assume it sees a revision once.
        self._state_watchers = tuple(state_watchers)
        # The batch not yet committed, in the order it was handled: (mid or None for a cursor
        # move alone, version, rid, where the room's cursor may move to or None).
        self._batch: list[tuple[str | None, str, str, datetime | None, float | None]] = []
        self._batched: set[tuple[str, str]] = set()  # the marks in it, for dedup
        self._batch_kept = 0  # entries still held back by an unfinished message
        self._batch_since: float | None = None
        self._batch_size = max(1, batch_size)
        self._batch_wait = batch_wait
        self._monotonic = monotonic
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._unfinished = unfinished if unfinished is not None else Unfinished()
        self._unfinished.on_release(self._arm)
        # Dedup without a store lookup for most messages. A revision's time is its ``editedAt``,
        # else its ``ts`` (what Message.version names). The horizon is set when this instance
        # first asks (when it starts handling, not when the process starts: a standby sharing the
        # store takes over then) to the newest revision time any instance recorded as handled, so
        # a revision dated after it was handled by nobody before, unless by this instance since;
        # those are kept in ``_recent`` until the horizon passes them. Invariant: every revision
        # handled with a time after the horizon is in ``_recent``, and every one in ``_recent``
        # is in the store or in the batch. Revisions up to the horizon are asked of the store.
        self._horizon: float | None = None
        self._recent: set[tuple[str, str]] = set()
        self._recent_by_time: list[tuple[float, str, str]] = []  # a heap: the oldest first
        self._newest_at = float("-inf")
        self._store_version = 0  # see _others_handled

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def _server_time(self) -> datetime:
        """The server's time as last seen, else ours: message times are the server's."""
        return self._server_now() or self._now()

    def _ceiling(self) -> datetime:
        """The latest a cursor may be: the server's time as last seen, else ours with the margin."""
        server = self._server_now()
        return server if server is not None else self._now() + _CLOCK_MARGIN

    def _move_cursor(self, rid: str, when: datetime) -> None:
        self._add(None, "", rid, when)

    # -- the batch of marks and cursor moves -----------------------------------------------------

    def _start_horizon(self) -> float:
        self._store_version = self._messages.others_wrote()
        newest = self._messages.newest_handled()
        if newest is None and self._messages.any_handled():
            # Marks from an rcmod that kept no revision times: none of those revisions can be
            # dated later than the server's clock now allows a client to date one.
            newest = (self._server_time() + _CLIENT_TS_AHEAD).timestamp()
        self._horizon = float("-inf") if newest is None else newest
        return self._horizon

    def _seen(self, mid: str, version: str, at: float | None = None) -> bool:
        """Whether revision ``version`` of ``mid``, of time ``at``, was handled (by anyone)."""
        key = (mid, version)
        if key in self._batched:
            return True
        if at is not None:
            horizon = self._horizon if self._horizon is not None else self._start_horizon()
            if at > horizon:
                return key in self._recent
        return self._messages.is_handled(mid, version)

    def _add(
        self, mid: str | None, version: str, rid: str, when: datetime | None, at: float | None = None
    ) -> None:
        """Buffer a handled mark and/or a cursor move; commit the batch when it is full or old."""
        if when is not None:
            when = min(when, self._ceiling())
        self._batch.append((mid, version, rid, when, at))
        if mid is not None:
            self._batched.add((mid, version))
            if at is not None:
                horizon = self._horizon if self._horizon is not None else self._start_horizon()
                if at > horizon:
                    self._recent.add((mid, version))
                    heapq.heappush(self._recent_by_time, (at, mid, version))
                    if at > self._newest_at:
                        self._newest_at = at
        now = self._monotonic()
        if self._batch_since is None:
            self._batch_since = now
        if (
            len(self._batch) - self._batch_kept >= self._batch_size
            or now - self._batch_since >= self._batch_wait
        ):
            self.flush()
        else:
            self._arm()

    def _arm(self) -> None:
        """Commit what is buffered within ``batch_wait`` even if no further event comes."""
        if self._timer is None and self._batch and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self._batch_wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except Exception as exc:  # the next event commits (and raises) in the ingest path
            log.error("could not commit handled messages: %s", type(exc).__name__)
            self._arm()

    def close(self) -> None:
        """Commit the last batch at a stop; a failure only means those messages are read again.
        Nothing is committed after this (the store closes next)."""
        self._closed = True
        try:
            self.flush()
        except Exception as exc:
            log.warning(
                "could not commit the last handled messages (%s); they will be read again", type(exc).__name__
            )

    def flush(self) -> None:
        """Commit the buffered marks and cursor moves in one transaction, but for the messages a
        handler left unfinished: their marks wait, and so does every later cursor move in their
        room (a crash must make catch-up read them again)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._batch:
            return
        marks: list[tuple[str, str, str, float | None]] = []
        cursors: dict[str, datetime] = {}
        kept: list[tuple[str | None, str, str, datetime | None, float | None]] = []
        blocked: set[str] = set()
        for entry in self._batch:
            mid, version, rid, when, at = entry
            if mid is not None and self._unfinished.held(mid, version):
                kept.append(entry)
                blocked.add(rid)
                continue
            if mid is not None:
                marks.append((mid, version, rid, at))
            if when is not None:
                if rid in blocked:
                    kept.append((None, "", rid, when, None))
                else:
                    cursors[rid] = max(when, cursors.get(rid, when))
        if marks or cursors:
            self._messages.record(marks, cursors)
        self._batch = kept
        self._batched = {(mid, version) for mid, version, _, _, _ in kept if mid is not None}
        self._batch_kept = len(kept)
        self._batch_since = self._monotonic() if kept else None
        self._others_handled()
        self._forget_recent()

    def _others_handled(self) -> None:
        """Another process has written to the store since the last batch: if it recorded
        revisions as handled (a second instance, which the lease should have kept away), the
        horizon moves up past them, so they are asked of the store rather than of memory."""
        if self._horizon is None:
            return
        version = self._messages.others_wrote()
        if version == self._store_version:
            return
        self._store_version = version
        newest = self._messages.newest_handled()
        if newest is not None and newest > self._horizon:
            self._horizon = newest

    def _forget_recent(self) -> None:
        """Move the horizon up and forget the revisions it passes: memory stays bounded. Any
        horizon that only rises keeps the invariant (what is forgotten is in the store or the
        batch, and now asked of them); this one trails the newest revision handled, and the
        server's time, by ``_RECENT_SPAN``, so a message dated a little late still skips the store."""
        heap = self._recent_by_time
        if not heap or self._horizon is None:
            return
        horizon = max(self._horizon, min(self._newest_at, self._server_time().timestamp()) - _RECENT_SPAN)
        while heap and (heap[0][0] <= horizon or len(heap) > _RECENT_MAX):
            at, mid, version = heapq.heappop(heap)
            horizon = max(horizon, at)
            self._recent.discard((mid, version))
        self._horizon = horizon

    @property
    def pending_rooms(self) -> frozenset[str]:
        """Rooms whose catch-up has not succeeded since the last (re)connection."""
        return frozenset(self._pending)

    async def handle(self, event: Event) -> None:
        async with self._lock:
            await self._handle(event)

    async def _handle(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            await self._handle_message(event, live=True)
        elif isinstance(event, MessageDeleted):
            await self._handle_deleted(event)
        elif isinstance(event, Connected):
            self._metrics.set_connected(True)
            if event.reconnect:
                self._metrics.count_reconnect()
            await self._router.dispatch(event)
            await self.catch_up()
            self.flush()  # rare: what catch-up recorded is committed at once
        elif isinstance(event, Disconnected):
            self._metrics.set_connected(False)
            await self._router.dispatch(event)
        elif isinstance(event, SubscriptionChanged):
            await self._handle_subscription(event)
            self.flush()
        elif isinstance(event, FrameRejected):
            self._metrics.count_frame_rejected()
            log.warning("realtime frame rejected: %s (%d bytes)", event.reason, event.size)
            await self._router.dispatch(event)
        else:
            if isinstance(event, BulkDeleted):
                self._metrics.count_message("bulk_deleted", "handled")
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
        version = message.version
        at = (message.edited_at or message.ts).timestamp()
        if self._seen(message.id, version, at):
            self._metrics.count_message(kind, "duplicate")
            return False
        if message.author.id != self._bot_user_id():  # the bot ignores its own messages
            await self._router.dispatch(event)
            outcome = "handled" if live else "caught_up"
        else:
            outcome = "own"
        # Catch-up moves its room's cursor when the room is done.
        moves = live and message.rid not in self._pending
        self._add(message.id, version, message.rid, (message.updated_at or message.ts) if moves else None, at)
        self._metrics.count_message(kind, outcome)
        return True

    async def _handle_deleted(self, event: MessageDeleted, *, live: bool = True) -> bool:
        # A deletion can be seen three ways (notify, tombstone, sync); handle it once.
        if self._seen(event.mid, "deleted"):
            self._metrics.count_message("MessageDeleted", "duplicate")
            return False
        moves = event.at is not None and live and event.rid not in self._pending
        self._add(event.mid, "deleted", event.rid, event.at if moves else None)
        self._metrics.count_message("MessageDeleted", "handled")
        await self._router.dispatch(event)
        return True

    async def _handle_subscription(self, event: SubscriptionChanged) -> None:
        if event.action == "inserted":
            if event.room_type:
                self._room_types[event.rid] = event.room_type
            if self._messages.room_cursor(event.rid) is None:
                self._move_cursor(event.rid, self._server_time() - _CLOCK_MARGIN)
            else:
                self._messages.note_room_present(event.rid)
            self._watch_room(event.rid)
        await self._router.dispatch(event)

    async def catch_up(self) -> int:
        """Recover what happened while disconnected; returns how many events were new. Rooms
        whose catch-up fails stay pending and are retried by :meth:`run`."""
        self.catch_ups += 1
        recovered = 0
        self.flush()  # the cursors read below include what live events moved
        try:
            subs = await self._rest.subscriptions()
        except RcmodError as exc:
            log.warning("catch-up: cannot list subscriptions (%s); relying on cursors", type(exc).__name__)
            subs = []
        else:
            listed = {rid for sub in subs if isinstance(rid := sub.get("rid"), str)}
            # An empty list is taken as a glitch, not as the bot having left every room: only a
            # list that names rooms dates the others missing (see prune_cursors).
            if listed:
                self._messages.note_subscriptions(listed)
        cursors = self._messages.room_cursors()
        # Every room has a gap now (the outage) until its catch-up succeeds.
        self._pending = set(cursors)
        start = self._server_time() - _CLOCK_MARGIN
        for sub in subs:
            rid = sub.get("rid")
            if not isinstance(rid, str):
                continue
            kind = sub.get("t")
            if isinstance(kind, str):
                self._room_types[rid] = kind
            self._watch_room(rid)
            if rid not in cursors:
                self._move_cursor(rid, start)  # first sight: start from now
        for rid in cursors:
            recovered += await self._try_room(rid, "will retry")
        if recovered:
            self._metrics.count_caught_up(recovered)
            log.info("catch-up recovered %d events in %d rooms", recovered, len(cursors))
        if self._pending:
            self._retry_wake.set()
        self.flush()  # what catch-up recorded (first-sight cursors included) is durable when it ends
        return recovered

    async def run(self) -> None:
        """Background loop: retry, with backoff, the rooms whose catch-up failed, without
        waiting for the next connection (their cursors stay at the gap meanwhile)."""
        while True:
            await self._retry_wake.wait()
            self._retry_wake.clear()
            delays = self._backoff()
            while self._pending:
                await self._sleep(next(delays))
                async with self._lock:
                    recovered = 0
                    for rid in sorted(self._pending):
                        recovered += await self._try_room(rid, "retrying")
                if recovered:
                    self._metrics.count_caught_up(recovered)
                    log.info("catch-up retry recovered %d events", recovered)

    async def _try_room(self, rid: str, then: str) -> int:
        """Catch up one room; on success (or a refusal: the bot cannot read it) it is no longer
        pending. Returns how many events were new."""
        self.flush()
        cursor = self._messages.room_cursor(rid)
        if cursor is None:
            self._pending.discard(rid)
            return 0
        try:
            count = await self._catch_up_room(rid, cursor)
        except ActionRefused as exc:
            log.warning("catch-up: room %s refused (%s); skipping it", rid, exc.code or type(exc).__name__)
            self._pending.discard(rid)
            return 0
        except RcmodError as exc:
            log.warning("catch-up: room %s failed (%s); %s", rid, type(exc).__name__, then)
            return 0
        self._pending.discard(rid)
        return count

    def _repair_point(self, rid: str, ceiling: datetime) -> datetime:
        handled = self._messages.last_handled_at(rid)
        if handled is not None:
            return datetime.fromtimestamp(handled[1], UTC) - _REPAIR_MARGIN
        anywhere = self._messages.last_handled_at()
        if anywhere is not None:
            return datetime.fromtimestamp(anywhere[0], UTC) - _REPAIR_MARGIN
        return ceiling

    async def _catch_up_room(self, rid: str, cursor: datetime) -> int:
        ceiling = self._ceiling()
        if cursor > ceiling:
            # A cursor pinned in the future (before cursors were bounded) would hide every
            # later message. The server's present would lose what was posted since the bot last
            # handled something here: go back to then (less a margin for clock skew), or, for a
            # room it never handled anything in, to when it first handled anything at all;
            # dedup absorbs the overlap.
            cursor = min(ceiling, self._repair_point(rid, ceiling))
            log.warning("catch-up: room %s had a cursor past the server's time; reset", rid)
            self._messages.lower_room_cursor(rid, cursor)
        since = cursor - _ONE_MS
        updated, deleted = await self._rest.sync_messages(rid, since)
        fresh: dict[tuple[str, str], Message] = {(m.id, m.version): m for m in updated}
        room_type = self._room_types.get(rid)
        if room_type:
            async for m in self._rest.history(rid, room_type, oldest=since):
                fresh.setdefault((m.id, m.version), m)
        count = 0
        reached = cursor
        for message in sorted(fresh.values(), key=lambda m: (m.ts, m.updated_at or m.ts)):
            reached = max(reached, message.updated_at or message.ts)
            event = message_event(message, RoomHint(type=self._room_types.get(rid)))
            if isinstance(event, MessageEvent):
                count += await self._handle_message(event, live=False)
            elif isinstance(event, MessageDeleted):
                count += await self._handle_deleted(event, live=False)
        for mid, at in deleted:
            reached = max(reached, at)
            gone = MessageDeleted(rid=rid, mid=mid, via="sync", at=at)
            count += await self._handle_deleted(gone, live=False)
        # Only now, with everything up to ``reached`` handled, does the cursor move.
        self._move_cursor(rid, reached)
        return count

    def prune(self) -> int:
        """Forget dedup records older than catch-up could ever reach."""
        return self._messages.forget_handled_before((self._now() - _DEDUP_KEEP).timestamp())

    def prune_cursors(self) -> int:
        """Forget the cursors of rooms the bot is no longer in; how many went.

        A dropped cursor of a room the bot is still in would make it start from "now" there and
        skip what was posted meanwhile, so a cursor goes only when both hold: its room has been
        missing from every subscription list catch-up read (and only a list that was read and
        named rooms counts; a failed or empty one dates nothing) for the dedup window, and the
        cursor has not moved for as long, so no message of the room was handled in that time.
        A room the bot joins again is present at once (its subscription event)."""
        cutoff = self._now() - _DEDUP_KEEP
        return self._messages.forget_rooms_missing(missing_before=cutoff.timestamp(), idle_before=cutoff)
