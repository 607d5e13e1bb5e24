"""Asyncio driver for the realtime (DDP) API: a thin shell around :mod:`bot.realtime.protocol`.

This module moves frames between a websocket and the sans-I/O :class:`DDPProtocol`, keeps the
session alive (heartbeat, reconnection with backoff, re-login, re-subscription, paced per-room
subscriptions), stops reading when the consumer falls ``queue_size`` events behind (backpressure:
the server and TCP hold the rest) and turns server answers into exceptions. Everything it
decides about frames is decided by the protocol object; everything that waits is here.

Usage::

    client = RealtimeClient("https://chat.example.com", TokenCredentials(user_id=..., token=...))
    async for event in client.events():   # runs until close(), reconnecting as needed
        ...
    await client.call("getRoomRoles", rid)

Exceptions, by what the caller can do::

    RealtimeError
    ├── TransientError            retry: the request may not have arrived
    │   ├── ConnectionLost        not connected, or the connection dropped before the answer
    │   └── CallTimeout           no answer within the call timeout (also a TimeoutError)
    ├── RateLimited               wait .retry_after seconds (from the server's timeToReset), retry
    ├── MethodError               report and go on: the server refused (.code, .reason)
    └── FatalError                stop: fix the configuration or the server
        ├── LoginFailed           bad token or password, 2FA demanded, token of another user
        └── ProtocolViolation     the server refused DDP 1 or sent a login result without a user id

``events()`` raises only :class:`FatalError`; every other failure becomes
:class:`~bot.realtime.events.Disconnected` followed by a reconnection. Foreign exceptions
(websockets, OSError) are translated here and chained with ``from``.

Logs go to ``rcmod.realtime`` and carry ids, codes and sizes — never message bodies, tokens,
passwords or digests. websockets' own per-frame debug lines (which would print the login frame)
are switched off for our connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bot.models import MalformedPayload
from bot.realtime.backoff import BackoffPolicy, exponential_backoff
from bot.realtime.errors import (
    DEFAULT_RETRY_AFTER,
    CallTimeout,
    ConnectionLost,
    FatalError,
    LoginFailed,
    MethodError,
    ProtocolViolation,
    RateLimited,
    RealtimeError,
    TransientError,
    TwoFactorLoginRequired,
)
from bot.realtime.events import Connected, Disconnected, Event, FrameRejected, SubscriptionFailed
from bot.realtime.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MY_MESSAGES,
    CallResult,
    DDPError,
    DDPProtocol,
    Pong,
    ProtocolEvent,
    SessionFailed,
    SessionStarted,
    SubscriptionEnded,
    SubscriptionReady,
    login_user_id,
)

__all__ = [
    "CallTimeout",
    "ConnectFn",
    "ConnectionLost",
    "Credentials",
    "CredentialsLike",
    "FatalError",
    "LoginFailed",
    "MethodError",
    "PasswordCredentials",
    "ProtocolViolation",
    "RateLimited",
    "RealtimeClient",
    "RealtimeError",
    "TokenCredentials",
    "TransientError",
    "Transport",
    "as_credentials",
    "websocket_url",
]

logger = logging.getLogger("rcmod.realtime")

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
# Events read but not yet taken by the consumer. Beyond this the reader stops reading the socket
# (the server's buffers, then TCP flow control, hold the rest) instead of growing memory.
DEFAULT_QUEUE_SIZE = 5000
# A start of backpressure is logged at most this often (its metric counts every one).
_PRESSURE_LOG_INTERVAL = 60.0
USER_STREAMS = ("subscriptions-changed", "rooms-changed", "message")
ROOM_STREAMS = ("deleteMessage", "deleteMessageBulk")
# Unanswered room subscriptions asked again before the room is given up on this connection. No
# answer is not a refusal: on a busy connection the answer sits behind frames not read yet.
ROOM_SUB_ATTEMPTS = 3
# Login errors worth another try later rather than a configuration error.
_TRANSIENT_LOGIN_CODES = frozenset({"500", "502", "503", "504", "internal-server-error"})


# --- credentials ---------------------------------------------------------------------------------


class TokenCredentials(BaseModel):
    """A user id and a personal access token (created with "Ignore Two Factor Authentication")."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    token: SecretStr


class PasswordCredentials(BaseModel):
    """Username and password; only the SHA-256 digest of the password is ever sent."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: SecretStr


Credentials = TokenCredentials | PasswordCredentials


class CredentialsLike(Protocol):
    """Any object shaped like the settings' credentials (e.g. ``bot.config.Credentials``)."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def token(self) -> SecretStr | None: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> SecretStr | None: ...


def as_credentials(value: Credentials | CredentialsLike) -> Credentials:
    """Token credentials when a user id and token are set, else username and password."""
    if isinstance(value, TokenCredentials | PasswordCredentials):
        return value
    if value.token is not None and value.user_id:
        return TokenCredentials(user_id=value.user_id, token=value.token)
    if value.username and value.password is not None:
        return PasswordCredentials(username=value.username, password=value.password)
    raise ValueError("credentials: need a user id and token, or a username and password")


# --- transport seam ------------------------------------------------------------------------------


class Transport(Protocol):
    """The part of a websockets ``ClientConnection`` the driver uses; fakes implement this."""

    async def recv(self) -> str | bytes: ...

    async def send(self, message: str) -> None: ...

    async def close(self) -> None: ...


# Called as connect(url, max_size=..., ping_interval=None, ping_timeout=None, open_timeout=...,
# close_timeout=..., logger=...); websockets.asyncio.client.connect fits.
ConnectFn = Callable[..., Awaitable[Transport]]


class _WireLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets logs every frame at DEBUG, login frame included: claim DEBUG is always off."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def websocket_url(server_url: str) -> str:
    """``https://host[:port][/prefix]`` → ``wss://host[:port][/prefix]/websocket``.

    User info in the URL is dropped: credentials travel in the login call, never in a URL that
    may end up in a log.
    """
    parts = urlsplit(server_url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"server URL must look like https://host[:port][/prefix] (scheme {parts.scheme!r})")
    path = parts.path.rstrip("/")
    if not path.endswith("/websocket"):
        path += "/websocket"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((scheme, netloc, path, "", ""))


def _error_from(method: str, error: DDPError) -> RealtimeError:
    if error.is_rate_limit:
        ms = error.retry_after_ms
        return RateLimited(method, error.code, ms / 1000 if ms is not None else DEFAULT_RETRY_AFTER)
    return MethodError(method, error.code, error.reason, error.details)


def _describe(exc: BaseException) -> str:
    """A short reason for Disconnected and logs: a close code or an exception class."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd or exc.sent
        return f"closed {frame.code}" if frame else "closed 1006"
    if isinstance(exc, RealtimeError) and str(exc):
        return str(exc)
    return type(exc).__name__


class _Stop:
    """Queue sentinel: events() returns when it sees this."""


_STOP = _Stop()

_Item = Event | BaseException | _Stop


class _EventQueue:
    """Events from the reader to ``events()``: a bounded queue the reader respects.

    ``put`` never blocks and never refuses: stream events are put one frame at a time by a reader
    that checks :attr:`full` before it reads the next frame, and control items (Connected,
    Disconnected, errors, the stop sentinel) must get through whatever the depth. Once full, the
    reader waits in :meth:`wait_for_room` until the consumer has drained it to half (so it does
    not park and wake once per event), or until :meth:`wake_reader` says a call needs its answer.
    One consumer, one reader: the waiters are single futures, not lists.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.resume_at = limit // 2
        self.items: deque[_Item] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self.on_empty: Callable[[], None] | None = None  # the consumer caught up

    def __len__(self) -> int:
        return len(self.items)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def put(self, item: _Item) -> None:
        self.items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def put_first(self, item: _Item) -> None:
        """Ahead of everything queued (the stop sentinel of a stop that takes no further event)."""
        self.items.appendleft(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def get_nowait(self) -> _Item:
        """The next item; IndexError when empty."""
        item = self.items.popleft()
        if self._room is not None and len(self.items) <= self.resume_at:
            self.wake_reader()
        return item

    async def get(self) -> _Item:
        while not self.items:
            if self.on_empty is not None:
                self.on_empty()
            self._getter = getter = asyncio.get_running_loop().create_future()
            try:
                await getter
            finally:
                self._getter = None
        return self.get_nowait()

    async def wait_for_room(self) -> None:
        self._room = room = asyncio.get_running_loop().create_future()
        try:
            await room
        finally:
            self._room = None

    @property
    def reader_parked(self) -> bool:
        """The reader waits for room: it reads nothing until woken."""
        return self._room is not None and not self._room.done()

    def wake_reader(self) -> None:
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)


class _Pressure:
    """One episode of backpressure, for its two log lines (start, end) and nothing per event."""

    def __init__(self, started: float, logged: bool) -> None:
        self.started = started
        self.logged = logged
        self.pauses = 0
        self.paused = 0.0  # seconds the reader spent not reading


# --- one connection --------------------------------------------------------------------------------


class _Link:
    """One websocket and its DDP session, with the waiters that die with it."""

    def __init__(self, ws: Transport, proto: DDPProtocol) -> None:
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.proto = proto
        self.handshake: asyncio.Future[str] = loop.create_future()
        self.calls: dict[str, asyncio.Future[CallResult]] = {}
        self.sub_waiters: dict[str, asyncio.Future[SubscriptionReady | SubscriptionFailed]] = {}
        self.base_subs: set[str] = set()
        self.base_lost = False
        self.room_subs: dict[str, list[str]] = {}  # rid -> live or pending sub ids
        self.given_up: set[str] = set()  # rooms the server refused on this connection
        self.early: list[Event] | None = []  # stream events held back until Connected is out
        now = loop.time()
        self.last_rx = now  # when the reader last took a frame (or resumed reading)
        self.last_ping = now
        self.ping_deadline: float | None = None  # a ping is out: its pong is due by then
        self.parked = False  # the reader waits for room in a full queue and reads nothing
        self.send_lock = asyncio.Lock()
        self.session: str | None = None

    async def flush(self) -> None:
        async with self.send_lock:
            for frame in self.proto.data_to_send():
                try:
                    await self.ws.send(frame)
                except Exception as exc:  # the transport's own errors stop at this module
                    raise ConnectionLost(f"send failed: {_describe(exc)}") from exc

    def fail_waiters(self, exc: BaseException) -> None:
        if not self.handshake.done():
            self.handshake.cancel()
        waiters: list[asyncio.Future[Any]] = [*self.calls.values(), *self.sub_waiters.values()]
        for fut in waiters:
            if not fut.done():
                fut.set_exception(exc)
        self.calls.clear()
        self.sub_waiters.clear()


# --- the client ----------------------------------------------------------------------------------


class RealtimeClient:
    """Rocket.Chat realtime client: one logical session that survives reconnections.

    ``clock`` measures how long a connection stayed up (a stable one resets the backoff);
    ``sleep`` performs every wait the client chooses — backoff, subscription pacing, rate-limit
    waits — so tests can record them instead of sleeping. The heartbeat and call timeouts are
    deadlines on the event loop's own clock.

    At most ``queue_size`` events wait for the consumer (give or take the events of one frame and
    while a call awaits its answer, see ``_read``); then the reader stops reading the socket
    until the consumer has taken half of them. ``on_queue_full`` is called each time that happens.
    """

    def __init__(
        self,
        server_url: str,
        credentials: Credentials | CredentialsLike,
        *,
        backoff: BackoffPolicy = exponential_backoff,
        connect: ConnectFn = websockets_connect,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ping_interval: float = 10.0,
        pong_timeout: float = 15.0,
        call_timeout: float = 30.0,
        room_sub_interval: float = 1.0,
        stable_after: float = 60.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_queue_full: Callable[[], None] | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.url = websocket_url(server_url)
        self._host = urlsplit(self.url).netloc
        self._credentials = as_credentials(credentials)
        self._backoff = backoff
        self._connect = connect
        self._clock = clock
        self._sleep = sleep
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._call_timeout = call_timeout
        self._room_sub_interval = room_sub_interval
        self._stable_after = stable_after
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._max_frame_size = max_frame_size
        self._max_message_size = max_message_size
        self._wire_logger = _WireLogger(logging.getLogger("rcmod.realtime.wire"), {})
        self._queue_size = queue_size
        self._on_queue_full = on_queue_full
        self._pressure: _Pressure | None = None
        self._pressure_logged_at: float | None = None

        self._queue = _EventQueue(queue_size)
        self._runner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._link: _Link | None = None
        self._logged_in = False
        self._subscribed = False
        self._user_id: str | None = None
        self._announced = False  # a Connected went out at least once
        self._connected_at: float | None = None
        self._watched: dict[str, None] = {}  # insertion-ordered set of rids
        self._rooms_changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"RealtimeClient(host={self._host!r}, user_id={self._user_id!r}, connected={self.connected})"

    # -- health ----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A websocket is open and the DDP session is established."""
        return self._link is not None and self._link.session is not None

    @property
    def logged_in(self) -> bool:
        return self._logged_in

    @property
    def subscribed(self) -> bool:
        """``__my_messages__`` and the bot's own user streams are ready (per-room ones may lag)."""
        return self._subscribed

    @property
    def user_id(self) -> str | None:
        return self._user_id

    @property
    def watched_rooms(self) -> tuple[str, ...]:
        return tuple(self._watched)

    @property
    def queue_depth(self) -> int:
        """Events read from the server and not yet taken by the consumer."""
        return len(self._queue)

    @property
    def reading_paused(self) -> bool:
        """Backpressure: the reader has stopped reading the socket until the consumer catches up."""
        return self._queue.reader_parked

    # -- public API --------------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[Event, None]:
        """Connect, log in, subscribe and yield events until :meth:`close`.

        Raises :class:`FatalError` (e.g. :class:`LoginFailed`) when retrying cannot help.
        """
        if self._runner is not None:
            raise RuntimeError("events() is already running")
        self._closing.clear()
        self._queue = queue = _EventQueue(self._queue_size)
        queue.on_empty = self._pressure_over
        self._runner = asyncio.create_task(self._run(), name="rcmod-realtime")
        try:
            while True:
                # Under load the item is there already: take it without a coroutine or a wait.
                item = queue.get_nowait() if queue.items else await queue.get()
                if isinstance(item, _Stop):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await self._stop_runner()

    async def close(self) -> None:
        """Disconnect and make :meth:`events` return. Safe to call more than once."""
        self._closing.set()
        await self._stop_runner()
        self._queue.put(_STOP)

    def stop_events(self) -> None:
        """Make :meth:`events` return before it yields another event; callable from sync code.

        Unlike :meth:`close` it does not wait and leaves the connection to :meth:`events`, which
        closes it as it returns — so a call the consumer is awaiting still gets its answer. Events
        still queued are not handled; catch-up finds them at the next start.
        """
        self._queue.put_first(_STOP)

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Call a server method on the current connection and return its result.

        Raises :class:`ConnectionLost` when not logged in or when the connection drops before the
        answer, :class:`CallTimeout`, :class:`RateLimited` or :class:`MethodError`.
        """
        link = self._link
        if link is None or not self._logged_in:
            raise ConnectionLost(f"{method}: not connected")
        call_id = link.proto.call(method, params)
        outcome = await self._await_call(link, call_id, method, timeout)
        if outcome.error is not None:
            raise _error_from(method, outcome.error)
        return outcome.result

    def watch_room(self, rid: str) -> None:
        """Follow deletions in a room (``<rid>/deleteMessage`` and ``<rid>/deleteMessageBulk``).

        Subscriptions are made gradually in the background and again after every reconnection.
        Calling it again for a room the server refused (see :class:`SubscriptionFailed`) retries.
        """
        if not rid or "/" in rid:
            raise ValueError("not a room id")
        self._watched[rid] = None
        if self._link is not None:
            self._link.given_up.discard(rid)
        self._rooms_changed.set()

    def unwatch_room(self, rid: str) -> None:
        if rid in self._watched:
            del self._watched[rid]
            self._rooms_changed.set()
        if self._link is not None:
            self._link.given_up.discard(rid)

    # -- the reconnect loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._reconnect_forever()
        except asyncio.CancelledError:
            raise
        except FatalError as exc:
            logger.error("realtime client stopped: %s", exc)
            self._queue.put(exc)
        except Exception as exc:  # a bug here must surface, not hang events()
            logger.exception("realtime client crashed")
            self._queue.put(exc)
        finally:
            self._queue.put(_STOP)

    async def _reconnect_forever(self) -> None:
        delays = self._backoff()
        while not self._closing.is_set():
            at_least = 0.0
            try:
                await self._session()
                reason = "session ended"
            except FatalError:
                raise
            except RateLimited as exc:
                reason, at_least = str(exc), exc.retry_after
            except (TransientError, MethodError) as exc:
                reason = _describe(exc)
            finally:
                self._link = None
                self._logged_in = self._subscribed = False
            if self._closing.is_set():
                return
            if self._connected_at is not None:
                self._queue.put(Disconnected(reason))
                if self._clock() - self._connected_at >= self._stable_after:
                    delays = self._backoff()
            delay = max(next(delays), at_least)
            logger.warning(
                "realtime connection to %s lost (%s); reconnecting in %.2fs", self._host, reason, delay
            )
            await self._sleep(delay)

    async def _session(self) -> None:
        """One connection from open to loss. Returns only by raising."""
        self._connected_at = None
        logger.info("connecting to %s", self._host)
        try:
            ws = await self._connect(
                self.url,
                max_size=self._max_frame_size,
                ping_interval=None,  # DDP has its own heartbeat, which Rocket.Chat watches
                ping_timeout=None,
                open_timeout=self._open_timeout,
                close_timeout=self._close_timeout,
                logger=self._wire_logger,
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ConnectionLost(f"connect failed: {_describe(exc)}") from exc
        link = _Link(ws, DDPProtocol(max_message_size=self._max_message_size))
        self._link = link
        reader = asyncio.create_task(self._read(link), name="rcmod-realtime-read")
        heartbeat = asyncio.create_task(self._heartbeat(link), name="rcmod-realtime-heartbeat")
        main = asyncio.create_task(self._establish(link), name="rcmod-realtime-session")
        tasks = (reader, heartbeat, main)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            link.fail_waiters(ConnectionLost("connection closed"))
            try:
                await ws.close()
            except Exception as exc:  # closing a broken socket may fail; we are leaving anyway
                logger.debug("close failed: %s", type(exc).__name__)
        # The loser was cancelled; the first task to finish tells why the session is over.
        for task in (main, reader, heartbeat):
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
        raise ConnectionLost("session ended")

    async def _read(self, link: _Link) -> None:
        """Take frames off the socket, one at a time, and route what they hold.

        Between frames, a full queue parks the reader (see :meth:`_park`) — unless a call or a
        subscription awaits its answer: that answer is somewhere behind the frames still unread,
        and the consumer may be the one waiting for it (a handler's DDP call), so the reader goes
        on past the bound until no answer is awaited. What it reads meanwhile is bounded by what
        the server sends during a call's round trip.
        """
        loop = asyncio.get_running_loop()
        queue, proto, recv = self._queue, link.proto, link.ws.recv
        while True:
            if queue.full and not link.calls and not link.sub_waiters:
                await self._park(link)
            try:
                data = await recv()
            except Exception as exc:  # whatever the transport raises means this connection is over
                raise ConnectionLost(_describe(exc)) from exc
            link.last_rx = loop.time()
            proto.receive_text(data)
            await link.flush()  # pongs go out before anything else is handled
            for event in proto.events_received():
                self._dispatch(link, event)
            if link.base_lost:
                raise ConnectionLost("server ended a base subscription")

    async def _park(self, link: _Link) -> None:
        """Read nothing until the consumer has drained the queue to half, or an answer is awaited.

        The heartbeat keeps pinging meanwhile but holds no pong deadline: its pong is behind the
        frames we are not reading, and a full queue proves the server was talking a moment ago.
        Reading again counts as hearing from the server: the silence and an outstanding ping's
        deadline start over from then.
        """
        loop = asyncio.get_running_loop()
        queue = self._queue
        self._pressure_on(len(queue))
        started = loop.time()
        link.parked = True
        try:
            while len(queue) > queue.resume_at and not link.calls and not link.sub_waiters:
                await queue.wait_for_room()
        finally:
            link.parked = False
        now = loop.time()
        if self._pressure is not None:
            self._pressure.paused += now - started
        link.last_rx = now
        if link.ping_deadline is not None:
            link.ping_deadline = now + self._pong_timeout

    async def _heartbeat(self, link: _Link) -> None:
        """One timer per connection. It pings every ``ping_interval``, however busy the
        connection is (not only after a silence): Rocket.Chat's server drops a
        client it has not heard from (any frame counts), and a server's own ping sits behind the
        frames a slow bot has yet to read, so its pong would come too late. A ping's pong is due
        within ``pong_timeout``, but frames still arriving prove the link alive (the pong is
        behind them): the connection is lost only when its pong is late and nothing at all has
        arrived for ``pong_timeout``. While the reader is parked on a full queue it keeps pinging
        and gives up on no one.

        It sleeps until the earliest moment something could be due and then looks again: frames
        arriving meanwhile only move ``last_rx``, so a busy connection costs one wake-up per
        interval, not a timer per frame.
        """
        loop = asyncio.get_running_loop()
        while True:
            due = link.last_ping + self._ping_interval
            if not link.parked and link.ping_deadline is not None:
                due = min(due, max(link.ping_deadline, link.last_rx + self._pong_timeout))
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
                continue
            if (
                link.ping_deadline is not None
                and not link.parked
                and now >= max(link.ping_deadline, link.last_rx + self._pong_timeout)
            ):
                raise ConnectionLost(f"no pong within {self._pong_timeout:g}s")
            link.proto.send_ping()
            link.last_ping = now
            if link.ping_deadline is None:  # the oldest unanswered ping sets the deadline
                link.ping_deadline = now + self._pong_timeout
            await link.flush()

    def _pressure_on(self, depth: int) -> None:
        if self._on_queue_full is not None:
            self._on_queue_full()
        pressure = self._pressure
        if pressure is None:
            now = self._clock()
            last = self._pressure_logged_at
            logged = last is None or now - last >= _PRESSURE_LOG_INTERVAL
            if logged:
                self._pressure_logged_at = now
                logger.warning(
                    "realtime backpressure: %d events wait for the bot; reading from the server "
                    "pauses until it catches up",
                    depth,
                )
            self._pressure = pressure = _Pressure(now, logged)
        pressure.pauses += 1

    def _pressure_over(self) -> None:
        """The consumer found the queue empty: it has caught up."""
        pressure, self._pressure = self._pressure, None
        if pressure is not None and pressure.logged:
            logger.info(
                "realtime backpressure over after %.1fs: reading paused %d times, %.1fs in all",
                self._clock() - pressure.started,
                pressure.pauses,
                pressure.paused,
            )

    def _dispatch(self, link: _Link, event: ProtocolEvent) -> None:
        if isinstance(event, SessionStarted):
            link.session = event.session
            if not link.handshake.done():
                link.handshake.set_result(event.session)
        elif isinstance(event, SessionFailed):
            if not link.handshake.done():
                link.handshake.set_exception(
                    ProtocolViolation(f"server refused DDP version 1 (prefers {event.version!r})")
                )
        elif isinstance(event, CallResult):
            call = link.calls.pop(event.call_id, None)
            if call is not None and not call.done():
                call.set_result(event)
        elif isinstance(event, SubscriptionReady):
            waiter = link.sub_waiters.pop(event.sub_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        elif isinstance(event, SubscriptionFailed | SubscriptionEnded):
            waiter = link.sub_waiters.pop(event.sub_id, None)
            if waiter is not None and not waiter.done() and isinstance(event, SubscriptionFailed):
                waiter.set_result(event)
            else:
                self._subscription_stopped(link, event)
        elif isinstance(event, Pong):
            link.ping_deadline = None
        else:
            if isinstance(event, FrameRejected):
                logger.warning("frame rejected: %s (%d bytes)", event.reason, event.size)
            self._emit(link, event)

    def _subscription_stopped(self, link: _Link, event: SubscriptionFailed | SubscriptionEnded) -> None:
        """The server ended a subscription that was ready (or one we no longer wait for)."""
        code = event.error if isinstance(event, SubscriptionFailed) else "no error"
        if event.sub_id in link.base_subs:
            logger.warning("server ended base subscription %s (%s)", event.sub_id, code)
            link.base_lost = True
            return
        for rid, sub_ids in link.room_subs.items():
            if event.sub_id in sub_ids:
                # E.g. the bot was removed from the room: do not resubscribe on this connection.
                logger.info("server ended subscription %s for room %s (%s)", event.sub_id, rid, code)
                sub_ids.remove(event.sub_id)
                self._give_up(link, rid)
                if isinstance(event, SubscriptionFailed):
                    self._emit(link, event)
                return

    def _emit(self, link: _Link, event: Event) -> None:
        if link.early is not None:
            link.early.append(event)
        else:
            self._queue.put(event)

    # -- session setup ---------------------------------------------------------------------------------

    async def _establish(self, link: _Link) -> None:
        link.proto.connect()
        await link.flush()
        try:
            async with asyncio.timeout(self._open_timeout):
                session = await link.handshake
        except TimeoutError:
            raise ConnectionLost("no DDP handshake answer") from None
        user_id = await self._login(link)
        self._user_id = user_id
        self._logged_in = True
        await self._subscribe_base(link, user_id)
        self._subscribed = True
        self._connected_at = self._clock()
        # Who the bot is, by name, is the app's line ("ready: logged in as ..."); this one is the link.
        logger.info("realtime session %s ready on %s", session, self._host)
        # Connected goes out before any stream event that raced it, in one step.
        self._queue.put(Connected(session=session, user_id=user_id, reconnect=self._announced))
        self._announced = True
        early, link.early = link.early or [], None
        for event in early:
            self._queue.put(event)
        await self._pace_rooms(link)

    async def _login(self, link: _Link) -> str:
        creds = self._credentials
        if isinstance(creds, TokenCredentials):
            call_id = link.proto.login_with_token(creds.token.get_secret_value())
        else:
            call_id = link.proto.login_with_password(creds.username, creds.password.get_secret_value())
        outcome = await self._await_call(link, call_id, "login", None)
        if outcome.error is not None:
            error = outcome.error
            if error.is_rate_limit:
                raise _error_from("login", error)
            if error.code in _TRANSIENT_LOGIN_CODES:
                raise ConnectionLost(f"login: server error {error.code}")
            if error.code in ("totp-required", "totp-invalid", "totp-max-attempts"):
                method = error.details.get("method")
                raise TwoFactorLoginRequired(
                    f"login refused: {error.code}",
                    code=error.code,
                    method=method if isinstance(method, str) else None,
                )
            raise LoginFailed(f"login refused: {error.code}" + (f" ({error.reason})" if error.reason else ""))
        try:
            user_id = login_user_id(outcome.result)
        except MalformedPayload as exc:
            raise ProtocolViolation(str(exc)) from exc
        if isinstance(creds, TokenCredentials) and user_id != creds.user_id:
            raise LoginFailed(f"the token belongs to user {user_id}, not the configured {creds.user_id}")
        return user_id

    async def _subscribe_base(self, link: _Link, user_id: str) -> None:
        wanted = [("stream-room-messages", MY_MESSAGES)] + [
            ("stream-notify-user", f"{user_id}/{suffix}") for suffix in USER_STREAMS
        ]
        for name, event_name in wanted:
            while True:
                sub_id = link.proto.subscribe(name, event_name)
                link.base_subs.add(sub_id)
                outcome = await self._await_sub(link, sub_id)
                if isinstance(outcome, SubscriptionReady):
                    break
                link.base_subs.discard(sub_id)
                if outcome.error not in ("too-many-requests", "error-too-many-requests"):
                    raise ConnectionLost(f"subscription {name} {event_name} refused: {outcome.error}")
                await self._rate_limit_wait(f"{name} {event_name}", outcome)

    async def _pace_rooms(self, link: _Link) -> None:
        """Keep this connection's room subscriptions equal to the watched set, gently."""
        while True:
            self._rooms_changed.clear()
            for rid in [r for r in link.room_subs if r not in self._watched]:
                for sub_id in link.room_subs.pop(rid):
                    link.proto.unsubscribe(sub_id)
                logger.info("unwatched room %s", rid)
            await link.flush()
            todo = next(
                (r for r in self._watched if r not in link.room_subs and r not in link.given_up),
                None,
            )
            if todo is None:
                await self._rooms_changed.wait()
                continue
            await self._subscribe_room(link, todo)

    async def _subscribe_room(self, link: _Link, rid: str) -> None:
        sub_ids = link.room_subs.setdefault(rid, [])
        for suffix in ROOM_STREAMS:
            unanswered = 0
            while rid in self._watched:
                sub_id = link.proto.subscribe("stream-notify-room", f"{rid}/{suffix}")
                sub_ids.append(sub_id)
                try:
                    outcome: SubscriptionReady | SubscriptionFailed = await self._await_sub(link, sub_id)
                except CallTimeout:
                    unanswered += 1
                    if unanswered >= ROOM_SUB_ATTEMPTS:
                        logger.warning("no answer to subscription %s/%s; not retrying", rid, suffix)
                        self._give_up(link, rid)
                        await self._sleep(self._room_sub_interval)
                        return
                    # Withdraw this one (a late "ready" for it is ignored) and ask again.
                    sub_ids.remove(sub_id)
                    link.proto.unsubscribe(sub_id)
                    logger.info("no answer to subscription %s/%s yet; asking again", rid, suffix)
                    await self._sleep(self._room_sub_interval)
                    continue
                if isinstance(outcome, SubscriptionReady):
                    # Pace every subscription: the server allows ~40 per 40 s per connection.
                    await self._sleep(self._room_sub_interval)
                    break
                sub_ids.remove(sub_id)
                if outcome.error in ("too-many-requests", "error-too-many-requests"):
                    await self._rate_limit_wait(f"room {rid}", outcome)
                    continue
                logger.warning("subscription to %s/%s refused: %s", rid, suffix, outcome.error)
                self._give_up(link, rid)
                self._emit(link, outcome)
                await self._sleep(self._room_sub_interval)
                return

    def _give_up(self, link: _Link, rid: str) -> None:
        """Stop following a room on this connection until watch_room() asks again."""
        for sub_id in link.room_subs.pop(rid, []):
            link.proto.unsubscribe(sub_id)
        link.given_up.add(rid)

    async def _rate_limit_wait(self, what: str, failure: SubscriptionFailed) -> None:
        ms = failure.retry_after_ms
        wait = ms / 1000 if ms is not None else DEFAULT_RETRY_AFTER
        logger.info("subscription %s rate limited; retrying in %.2fs", what, wait)
        await self._sleep(wait)

    # -- waiting for answers -------------------------------------------------------------------------

    async def _await_call(self, link: _Link, call_id: str, method: str, limit: float | None) -> CallResult:
        limit = self._call_timeout if limit is None else limit
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        link.calls[call_id] = future
        self._queue.wake_reader()  # a parked reader must read on to this answer
        try:
            await link.flush()
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            raise CallTimeout(method, call_id, limit) from None
        finally:
            link.calls.pop(call_id, None)

    async def _await_sub(self, link: _Link, sub_id: str) -> SubscriptionReady | SubscriptionFailed:
        future: asyncio.Future[SubscriptionReady | SubscriptionFailed] = (
            asyncio.get_running_loop().create_future()
        )
        link.sub_waiters[sub_id] = future
        self._queue.wake_reader()
        try:
            await link.flush()
            async with asyncio.timeout(self._call_timeout):
                return await future
        except TimeoutError:
            raise CallTimeout("sub", sub_id, self._call_timeout) from None
        finally:
            link.sub_waiters.pop(sub_id, None)

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
