"""Ingest: every message handled once, across reconnects and restarts.

The realtime stream says what happened; this layer decides whether it is news. It remembers each
handled revision ``(message id, editedAt)`` in the store, so re-emits after reactions, previews or
thread counters are dropped, and an edit is handled exactly when ``editedAt`` changes. It keeps a
per-room cursor, "caught up to": after every (re)connection it catches up each room from its
cursor with ``chat.syncMessages`` (updates and deletions) and room history (new messages), feeding
what it finds through the same path as live events. Events are processed one at a time (one lock
for live events and catch-up), so the two cannot race.

Catch-up runs beside live traffic: a bounded number of rooms are fetched at once (REST, the slow
part) outside the lock, and each room's messages are then handled in order in one short turn of
the lock, so live events go on between rooms. A live event in a room whose catch-up has not been
handled yet waits for it (that room is fetched next), so each room's events stay in order.

A pass asks the rooms in two tiers. One ``rooms.get?updatedSince=`` call first says which rooms
were written since their cursor: the server writes a room on every new message (its message
count, so its ``_updatedAt`` moves), but on an edit only when the edited message is the room's
last one. Those rooms are caught up first; once they are, the pass is *ready* (:meth:`ready`):
every message posted while the bot was away has been handled, unless the server wrote its room
only after that call (the room write follows the message's; a message that slips between them
is caught up by the sweep, moments later). The other rooms, where only an edit of an older
message or a deletion can have been missed, are swept behind at the same bound; they stay
pending until then, so their live events are held and move them up, as in any room not yet
caught up. The pass ends (:meth:`caught_up`) when every room has been asked. Without that
call's answer, every room is in the first tier.

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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import ActionRefused, Fatal, RateLimited, RcmodError
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
from bot.store.messages import DEDUP_KEEP_DAYS, MessageLog

__all__ = ["Ingest", "IngestCounters", "RestForIngest"]

log = logging.getLogger("rcmod.ingest")

# A new room's cursor starts a little in the past: server and bot clocks may disagree, and dedup
# makes any overlap harmless.
_CLOCK_MARGIN = timedelta(seconds=60)
_DEDUP_KEEP = timedelta(days=DEDUP_KEEP_DAYS)
_REPAIR_MARGIN = timedelta(minutes=1)  # clock skew between the bot and the server
# The server's history and sync queries are exclusive (``$gt``); one millisecond back makes them
# inclusive of the cursor's own millisecond.
_ONE_MS = timedelta(milliseconds=1)
# At most this many events per commit. Below BATCH_SIZE / BATCH_WAIT (10,000 msg/s) the wait
# bounds a batch; the size only bounds one under a backlog (a catch-up, a burst), when a commit
# per few hundred events rather than per hundred cuts what each mark costs by about a third: a
# commit writes every page it dirtied (the room cursors' above all) once, however many of its
# rows changed.
BATCH_SIZE = 500
BATCH_WAIT = 0.05  # seconds a handled mark may wait for its batch's commit
# Rooms fetched at once during catch-up. REST calls are also bounded by the client's thread pool
# (8 threads by default); a few more rooms than threads keep the pool busy while fetched rooms
# wait for the lock. Against a server some milliseconds away, the number of calls in flight sets
# the pace of a catch-up of thousands of quiet rooms.
CATCH_UP_CONCURRENCY = 12
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


# A buffered handled mark and/or cursor move: (mid or None for a cursor move alone, version, rid,
# where the room's cursor may move to or None, the revision's time or None).
_Entry = tuple[str | None, str, str, datetime | None, float | None]


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

    async def rooms_updated_since(self, since: datetime) -> dict[str, datetime | None]: ...

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
        catch_up_concurrency: int = CATCH_UP_CONCURRENCY,
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
        # Catch-up passes completed (one per connection, unless a newer connection cut it short).
        self.catch_ups = 0
        self._concurrency = max(1, catch_up_concurrency)
        # The running pass (one per connection), and what ended one by an unexpected error: run(),
        # which the app supervises, raises it.
        self._pass: asyncio.Task[int] | None = None
        self._pass_failure: BaseException | None = None
        # Connections seen: a room fetched before the latest one must not leave "pending".
        self._epoch = 0
        # The pass's rooms, in the order they will be fetched (a room with live traffic goes first).
        self._queue: deque[str] = deque()
        self._started: set[str] = set()
        # The pass's first tier (rooms written since their cursor) not yet asked, and the event
        # set once none is left (or the pass ended): see ready().
        self._first: set[str] = set()
        self._pass_ready = asyncio.Event()
        self._setting_up = asyncio.Event()  # cleared while a connection's pass is being set up
        self._setting_up.set()
        # The rooms' cursors as read when the pass began: a pending room's cursor does not move
        # until its catch-up, so one read serves the pass (see _try_room).
        self._pass_cursors: dict[str, datetime] = {}
        # Live events of the rooms the pass has not handled yet: they follow their room's catch-up.
        self._held: dict[str, list[Event]] = {}
        # They see every message event *before* deduplication, the bot's own messages included:
        # they watch message state rather than content (unpinning a policy message re-emits the
        # bot's own, unedited message with ``pinned: false``, which dedup would drop as a repeat).
        # A watcher must be cheap and must not assume it sees a revision once.
        self._state_watchers = tuple(state_watchers)
        # The batch not yet committed, in the order it was handled: (mid or None for a cursor
        # move alone, version, rid, where the room's cursor may move to or None).
        self._batch: list[_Entry] = []
        self._batched: set[tuple[str, str]] = set()  # the marks in it and in _kept, for dedup
        # Entries held back by an unfinished message, in order, and the rooms whose cursor moves
        # wait behind them. They are looked at again only once a message has been released: a
        # slow lookup for each of many new authors must not make every flush walk them all.
        self._kept: list[_Entry] = []
        self._kept_rooms: set[str] = set()
        self._released = False
        self._batch_since: float | None = None
        self._batch_size = max(1, batch_size)
        self._batch_wait = batch_wait
        self._monotonic = monotonic
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._unfinished = unfinished if unfinished is not None else Unfinished()
        self._unfinished.on_release(self._on_release)
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
        """Buffer a handled mark and/or a cursor move; commit the batch when it is full or old.
        A cursor move is bounded by :meth:`_ceiling` when it is committed (once per batch)."""
        batch = self._batch
        batch.append((mid, version, rid, when, at))
        if mid is not None:
            key = (mid, version)
            self._batched.add(key)
            if at is not None:
                horizon = self._horizon if self._horizon is not None else self._start_horizon()
                if at > horizon:
                    self._recent.add(key)
                    heapq.heappush(self._recent_by_time, (at, mid, version))
                    if at > self._newest_at:
                        self._newest_at = at
        now = self._monotonic()
        since = self._batch_since
        if since is None:
            since = self._batch_since = now
        if len(batch) >= self._batch_size or now - since >= self._batch_wait:
            self.flush()
        elif self._timer is None:
            self._arm()

    def _arm(self) -> None:
        """Commit what is buffered within ``batch_wait`` even if no further event comes."""
        if self._timer is None and self._due() and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self._batch_wait, self._on_timer)

    def _due(self) -> bool:
        """Something to commit: new entries, or held-back ones a release may have freed."""
        return bool(self._batch) or (self._released and bool(self._kept))

    def _on_release(self) -> None:
        self._released = True
        self._arm()

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
        if not self._due():
            return
        marks: list[tuple[str, str, str, float | None]] = []
        cursors: dict[str, datetime] = {}
        if self._released:  # the held-back entries are looked at again, before the new ones
            entries, kept, blocked = [*self._kept, *self._batch], [], set()
        else:
            entries, kept, blocked = self._batch, self._kept, set(self._kept_rooms)
        # Most batches hold no unfinished message and no held-back room: each entry is then a
        # mark and/or a cursor move as it stands, with no lookup per entry.
        holding = self._unfinished.holding()
        for entry in entries:
            mid, version, rid, when, at = entry
            if mid is not None:
                if holding and self._unfinished.held(mid, version):
                    kept.append(entry)
                    blocked.add(rid)
                    continue
                marks.append((mid, version, rid, at))
            if when is not None:
                if blocked and rid in blocked:
                    kept.append((None, "", rid, when, None))
                else:
                    last = cursors.get(rid)
                    if last is None or when > last:
                        cursors[rid] = when
        if cursors:
            # A cursor never passes the server's time as last seen (see the module's docstring).
            ceiling = self._ceiling()
            for rid, when in cursors.items():
                if when > ceiling:
                    cursors[rid] = ceiling
        if marks or cursors:
            self._messages.record(marks, cursors)
        self._batch, self._kept, self._kept_rooms, self._released = [], kept, blocked, False
        if kept:
            self._batched.difference_update((mid, version) for mid, version, _, _ in marks)
        else:
            self._batched.clear()  # nothing kept back: every mark it held was just recorded
        self._batch_since = None
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
        recent, pop = self._recent, heapq.heappop
        while heap and (heap[0][0] <= horizon or len(heap) > _RECENT_MAX):
            at, mid, version = pop(heap)
            if at > horizon:
                horizon = at
            recent.discard((mid, version))
        self._horizon = horizon

    @property
    def pending_rooms(self) -> frozenset[str]:
        """Rooms whose catch-up has not succeeded since the last (re)connection."""
        return frozenset(self._pending)

    async def handle(self, event: Event) -> None:
        rid = _room_of(event)
        held = self._held.get(rid) if rid is not None else None
        if held is not None and rid is not None:
            # Handled right after its room's catch-up, which is fetched next.
            held.append(event)
            if rid not in self._started:
                self._queue.appendleft(rid)
            return
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
            await self._begin_catch_up()
            self.flush()  # rare: first-sight cursors are committed at once
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
            except Fatal:
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
        """Recover what happened while disconnected; returns how many events were new, once
        every room has been asked. Rooms whose catch-up fails stay pending and are retried by
        :meth:`run`."""
        await self.begin_catch_up()
        return await self.caught_up()

    async def begin_catch_up(self) -> None:
        """Start a catch-up pass, as a (re)connection does, and return while it runs:
        :meth:`ready` and :meth:`caught_up` wait for it."""
        async with self._lock:
            await self._begin_catch_up()

    async def ready(self) -> None:
        """Wait until the current pass is ready: every room written while the bot was away (every
        room with a new message) caught up; the quiet rooms' sweep goes on behind. Returns at once
        when no pass has started; raises what ended the pass, as :meth:`caught_up`."""
        while (task := await self._current_pass()) is not None:
            event = self._pass_ready
            if not event.is_set():
                waiter = asyncio.ensure_future(event.wait())
                try:
                    await asyncio.wait((waiter, task), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            if self._superseded(task):
                continue
            if task.done():
                await self.caught_up()
            return

    async def caught_up(self) -> int:
        """Wait for the current catch-up pass (the one a newer connection started, if it cut this
        one short); how many events it recovered. 0 when no pass has started."""
        while (task := await self._current_pass()) is not None:
            try:
                recovered = await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled() and self._pass is not task:
                    continue  # superseded by a newer connection's pass
                raise
            if self._superseded(task):
                continue
            return recovered
        return 0

    async def _current_pass(self) -> asyncio.Task[int] | None:
        """The newest connection's pass, once it is set up; None before any."""
        while not (setting_up := self._setting_up).is_set():
            await setting_up.wait()
        return self._pass

    def _superseded(self, task: asyncio.Task[int]) -> bool:
        """A newer connection's pass replaces ``task`` (or is being set up to)."""
        return self._pass is not task or not self._setting_up.is_set()

    async def _begin_catch_up(self) -> None:
        """Under the lock, at a (re)connection: every known room has a gap until its catch-up
        succeeds; rooms seen for the first time start from now. Starts the pass and returns, so
        live events flow while it runs."""
        self._epoch += 1
        # While the new pass is being set up (REST calls), the older one winds down: whoever
        # waits for a pass waits for this one instead.
        self._setting_up = asyncio.Event()
        try:
            await self._set_up_pass()
        finally:
            self._setting_up.set()

    async def _set_up_pass(self) -> None:
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
        written = await self._written_since(cursors)
        if self._pass is not None and not self._pass.done():
            self._pass.cancel()  # its rooms are all in the new pass; events it held are kept
        rooms = sorted(cursors.keys() | self._held.keys())
        for rid in rooms:
            self._held.setdefault(rid, [])
        # Rooms with live events held by a pass this one replaces had traffic: first tier too.
        first = (
            set(rooms)
            if written is None
            else {rid for rid in rooms if rid in written or rid not in cursors or self._held[rid]}
        )
        self._queue = deque([*(r for r in rooms if r in first), *(r for r in rooms if r not in first)])
        self._started = set()
        self._first = first
        self._pass_ready = asyncio.Event()
        if not first:
            self._pass_ready.set()
        self._pass_cursors = cursors
        self._pass = asyncio.create_task(self._run_pass(self._epoch), name="rcmod-catch-up")

    async def _written_since(self, cursors: dict[str, datetime]) -> set[str] | None:
        """The rooms the server wrote since their cursor (less a margin), from one rooms.get; None
        when it cannot tell. The margin covers the server writing the room a moment after the
        message, and server instances whose clocks differ; a room it lets through only costs its
        place in the first tier. A cursor past the server's time is repaired in the first tier."""
        if not cursors:
            return set()
        try:
            updated = await self._rest.rooms_updated_since(min(cursors.values()) - _CLOCK_MARGIN)
        except RcmodError as exc:
            log.warning("catch-up: no list of rooms written (%s); every room first", type(exc).__name__)
            return None
        ceiling = self._ceiling()
        written: set[str] = set()
        for rid, cursor in cursors.items():
            if rid in updated:
                at = updated[rid]
                if at is None or at > cursor - _CLOCK_MARGIN:
                    written.add(rid)
            if cursor > ceiling:
                written.add(rid)
        return written

    async def _run_pass(self, epoch: int) -> int:
        this = asyncio.current_task()
        try:
            recovered = await self._sweep(self._queue, "will retry", epoch, held=True)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # A bug or a full disk: run() (supervised) raises it; the rooms stay pending.
            self._pass_failure = _first_cause(exc)
            raise self._pass_failure from None
        finally:
            if self._pass is this:
                self._pass_ready.set()
                self._retry_wake.set()
                if not (this is not None and this.cancelling()):
                    await self._release_all()
        self.flush()  # what the pass recorded is durable when it ends
        self.catch_ups += 1
        if recovered:
            self._metrics.count_caught_up(recovered)
        log.info("catch-up recovered %d events; %d rooms still pending", recovered, len(self._pending))
        return recovered

    async def _sweep(self, queue: deque[str], then: str, epoch: int, *, held: bool) -> int:
        """Catch up the rooms of ``queue``, at most ``catch_up_concurrency`` at once. A rate limit
        the client would not wait out stops the sweep: the other rooms would only be refused too
        (at most one refusal per worker); they stay pending for :meth:`run`."""
        recovered = 0
        halted = False

        async def worker() -> None:
            nonlocal recovered, halted
            while queue and not halted and epoch == self._epoch:  # a new connection: a new pass
                rid = queue.popleft()
                if held and (rid in self._started or rid not in self._held):
                    continue  # a room moved up by live traffic, already taken
                if held:
                    self._started.add(rid)
                try:
                    count = await self._try_room(rid, then, epoch)
                except RateLimited:
                    halted = True
                else:
                    recovered += count  # after the await: workers add to it in turn
                finally:
                    if held:
                        self._asked_first(rid, epoch)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, len(queue)) or 1):
                group.create_task(worker())
        return recovered

    def _asked_first(self, rid: str, epoch: int) -> None:
        """A room of the pass has been asked: once every first-tier room has, the pass is ready."""
        if epoch == self._epoch and rid in self._first:
            self._first.discard(rid)
            if not self._first:
                self._pass_ready.set()

    async def run(self) -> None:
        """Background loop (supervised by the app): raise what ended a catch-up pass unexpectedly,
        and retry, with backoff, the rooms whose catch-up failed, without waiting for the next
        connection (their cursors stay at the gap meanwhile)."""
        try:
            while True:
                if not self._pending or self._pass_running():
                    await self._retry_wake.wait()
                self._retry_wake.clear()
                if self._pass_failure is not None:
                    failure, self._pass_failure = self._pass_failure, None
                    raise failure
                delays = self._backoff()
                while self._pending and not self._pass_running():
                    await self._sleep(next(delays))
                    if self._pass_running():
                        break  # a new connection's pass covers every room
                    recovered = await self._sweep(
                        deque(sorted(self._pending)), "retrying", self._epoch, held=False
                    )
                    if recovered:
                        self._metrics.count_caught_up(recovered)
                        log.info("catch-up retry recovered %d events", recovered)
        except asyncio.CancelledError:
            # The app is stopping: the pass goes too (what it held was not handled, so its rooms'
            # cursors still wait at the gap for the next start).
            if self._pass is not None:
                self._pass.cancel()
            raise

    def _pass_running(self) -> bool:
        return self._pass is not None and not self._pass.done()

    async def _try_room(self, rid: str, then: str, epoch: int | None = None) -> int:
        """Catch up one room: fetch outside the lock, then handle what was fetched, in order, in
        one turn of the lock. On success (or a refusal: the bot cannot read it) it is no longer
        pending, unless a newer connection made a new gap meanwhile. Returns how many events
        were new; a rate limit is raised after the room is left pending."""
        epoch = self._epoch if epoch is None else epoch
        self.flush()  # the cursor read below includes what was handled before
        # The pass's first ask of a room uses the cursor read when it began (a pending room's
        # cursor stays put until its catch-up; one older than the stored one only re-reads what
        # dedup drops); a retry reads the store.
        cursor = self._pass_cursors.pop(rid, None) if epoch == self._epoch else None
        if cursor is None:
            cursor = self._messages.room_cursor(rid)
        fetched: _Fetched | None = None
        failure: RateLimited | None = None
        settled = cursor is None
        if cursor is not None:
            try:
                fetched = await self._fetch_room(rid, cursor)
                settled = True
            except ActionRefused as exc:
                log.warning(
                    "catch-up: room %s refused (%s); skipping it", rid, exc.code or type(exc).__name__
                )
                settled = True
            except RcmodError as exc:
                log.warning("catch-up: room %s failed (%s); %s", rid, type(exc).__name__, then)
                if isinstance(exc, RateLimited):
                    failure = exc
        news = fetched is not None and bool(fetched.messages or fetched.deleted)
        count = 0
        if not news and not self._held.get(rid):
            # Nothing to handle, nothing waiting: no turn of the lock, no write (a quiet room).
            if epoch == self._epoch:
                if settled:
                    self._pending.discard(rid)
                self._held.pop(rid, None)
        else:
            async with self._lock:
                if fetched is not None and news:
                    count = await self._catch_up_room(rid, fetched)
                if epoch == self._epoch:  # else the new connection's pass has this room in hand
                    if settled:
                        self._pending.discard(rid)
                    await self._release(rid)
        if failure is not None:
            raise failure
        return count

    def _repair_point(self, rid: str, ceiling: datetime) -> datetime:
        handled = self._messages.last_handled_at(rid)
        if handled is not None:
            return datetime.fromtimestamp(handled[1], UTC) - _REPAIR_MARGIN
        anywhere = self._messages.last_handled_at()
        if anywhere is not None:
            return datetime.fromtimestamp(anywhere[0], UTC) - _REPAIR_MARGIN
        return ceiling

    async def _fetch_room(self, rid: str, cursor: datetime) -> _Fetched:
        """What happened in ``rid`` since ``cursor`` (REST; no lock held)."""
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
        # chat.syncMessages (messages/get with lastUpdate: handleWithoutPagination in the server's
        # apps/meteor/server/publications/messages.ts) lists every message whose _updatedAt is
        # after lastUpdate, a new one included, and every deletion since: when it lists nothing,
        # history has nothing new either, and a quiet room costs one call.
        # Every room is asked, the quiet ones in the second tier: rooms.get?updatedSince= cannot
        # say which rooms to skip, since an edit moves a room's _updatedAt only when the edited
        # message is the room's last one (notifyUsersOnMessage in app/lib/server/lib;
        # updateMessage writes only the message).
        if room_type and (updated or deleted):
            async for m in self._rest.history(rid, room_type, oldest=since):
                fresh.setdefault((m.id, m.version), m)
        return _Fetched(cursor, sorted(fresh.values(), key=lambda m: (m.ts, m.updated_at or m.ts)), deleted)

    async def _catch_up_room(self, rid: str, fetched: _Fetched) -> int:
        """Handle what :meth:`_fetch_room` found, in order (the lock is held)."""
        count = 0
        reached = fetched.cursor
        for message in fetched.messages:
            reached = max(reached, message.updated_at or message.ts)
            event = message_event(message, RoomHint(type=self._room_types.get(rid)))
            if isinstance(event, MessageEvent):
                count += await self._handle_message(event, live=False)
            elif isinstance(event, MessageDeleted):
                count += await self._handle_deleted(event, live=False)
        for mid, at in fetched.deleted:
            reached = max(reached, at)
            gone = MessageDeleted(rid=rid, mid=mid, via="sync", at=at)
            count += await self._handle_deleted(gone, live=False)
        # Only now, with everything up to ``reached`` handled, does the cursor move.
        self._move_cursor(rid, reached)
        return count

    async def _release(self, rid: str) -> None:
        """Handle the live events held for ``rid`` (the lock is held), after its catch-up."""
        for event in self._held.pop(rid, ()):
            await self._handle(event)

    async def _release_all(self) -> None:
        """Hand the events still held to the live path: the pass is over (a rate limit stopped it,
        or it failed); those rooms stay pending, as rooms whose catch-up failed."""
        if not self._held:
            return
        async with self._lock:
            for rid in list(self._held):
                await self._release(rid)

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


class _Fetched:
    """One room's catch-up as fetched: its messages in order and its deletions."""

    __slots__ = ("cursor", "deleted", "messages")

    def __init__(
        self, cursor: datetime, messages: list[Message], deleted: list[tuple[str, datetime]]
    ) -> None:
        self.cursor = cursor
        self.messages = messages
        self.deleted = deleted


def _room_of(event: Event) -> str | None:
    """The room a message event or deletion belongs to: those keep their room's order."""
    if isinstance(event, MessageEvent):
        return event.message.rid
    if isinstance(event, MessageDeleted):
        return event.rid
    return None


def _first_cause(exc: BaseException) -> BaseException:
    """The error inside a task group's group: a fatal one first (it stops the app)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = list(_leaves(exc))
        return next((e for e in leaves if isinstance(e, Fatal)), leaves[0] if leaves else exc)
    return exc


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
