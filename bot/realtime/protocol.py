"""Sans-I/O core of Rocket.Chat's realtime API (DDP version 1).

No sockets, no event loop, no clock: text frames go in with :meth:`DDPProtocol.receive_text`,
typed events come out of :meth:`DDPProtocol.events_received`, and frames to write come out of
:meth:`DDPProtocol.data_to_send`. The asyncio driver in :mod:`bot.realtime.client` moves bytes
between this object and a websocket; everything worth testing lives here and is tested without a
server (the same split as websockets' own ``protocol.py``).

Two families of events come out:

* session plumbing the driver consumes — :class:`SessionStarted`, :class:`SessionFailed`,
  :class:`CallResult`, :class:`SubscriptionReady`, :class:`SubscriptionEnded`, :class:`Pong`;
* the public events of :mod:`bot.realtime.events` that the bot reacts to — message events,
  deletions, subscription and room changes, :class:`SubscriptionFailed` and
  :class:`FrameRejected`.

Bad input never raises out of this module. A frame that cannot be understood becomes a
:class:`FrameRejected` whose reason names the problem and ids only — never message content, which
may be exactly the harmful text a moderator must not see in a log — and the next frame is
processed normally.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.models import MalformedPayload, Message, parse_date
from bot.realtime.events import (
    BulkDeleted,
    Event,
    FrameRejected,
    MessageDeleted,
    RoomChanged,
    RoomHint,
    SubscriptionChanged,
    SubscriptionFailed,
    UserNotice,
    message_event,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MY_MESSAGES",
    "CallResult",
    "DDPError",
    "DDPProtocol",
    "Pong",
    "ProtocolEvent",
    "SessionFailed",
    "SessionStarted",
    "State",
    "SubscriptionEnded",
    "SubscriptionReady",
    "login_user_id",
    "password_digest",
]

DDP_VERSION = "1"
MY_MESSAGES = "__my_messages__"
RATE_LIMIT_CODES = frozenset({"too-many-requests", "error-too-many-requests"})
# Big enough for a long subscription list in a method result; a chat message is a few kB.
DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024


class State(Enum):
    CONNECTING = "connecting"  # connect sent (or about to be), no answer yet
    OPEN = "open"  # the server said `connected`
    FAILED = "failed"  # the server said `failed`: it does not speak our DDP version


# --- session plumbing events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session: str


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """The server refused DDP version 1; ``version`` is the one it prefers."""

    version: str | None


@dataclass(frozen=True, slots=True)
class DDPError:
    """A Meteor.Error as serialised in ``result``/``nosub`` frames (protocol reference A.4)."""

    error: str | int
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)
    error_type: str | None = None

    @property
    def code(self) -> str:
        """The error code as a string: old-style numeric codes (403, 404) become ``"403"``."""
        return str(self.error)

    @property
    def is_rate_limit(self) -> bool:
        return self.code in RATE_LIMIT_CODES

    @property
    def retry_after_ms(self) -> int | None:
        """``details.timeToReset`` — milliseconds, per Rocket.Chat's rate limiter."""
        value = self.details.get("timeToReset")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return None
        return int(value)

    @classmethod
    def from_wire(cls, obj: Any) -> DDPError:
        if not isinstance(obj, Mapping):
            return cls(error="malformed-error")
        raw = obj.get("error")
        error: str | int
        if (isinstance(raw, str) and raw) or (isinstance(raw, int) and not isinstance(raw, bool)):
            error = raw
        elif isinstance(raw, float) and raw.is_integer():
            error = int(raw)
        else:
            error = "unknown-error"
        reason = obj.get("reason")
        details = obj.get("details")
        error_type = obj.get("errorType")
        return cls(
            error=error,
            reason=reason if isinstance(reason, str) else None,
            details=details if isinstance(details, Mapping) else {},
            error_type=error_type if isinstance(error_type, str) else None,
        )


@dataclass(frozen=True, slots=True)
class CallResult:
    """The answer to one method call; ``result`` is None when the server sent no ``result`` key."""

    call_id: str
    result: Any = field(default=None, repr=False)  # may be a message: never in a repr
    error: DDPError | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionReady:
    sub_id: str


@dataclass(frozen=True, slots=True)
class SubscriptionEnded:
    """``nosub`` without an error: the server stopped the subscription, or answered an unsub."""

    sub_id: str


@dataclass(frozen=True, slots=True)
class Pong:
    ping_id: str | None


ProtocolEvent = (
    SessionStarted | SessionFailed | CallResult | SubscriptionReady | SubscriptionEnded | Pong | Event
)


# --- pure helpers --------------------------------------------------------------------------------


def password_digest(password: str) -> str:
    """What DDP ``login`` sends instead of the password: lowercase hex SHA-256 of its UTF-8."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def login_user_id(result: Any) -> str:
    """The user id from a ``login`` result; raise :class:`MalformedPayload` if there is none."""
    if not isinstance(result, Mapping):
        raise MalformedPayload("login result: not an object")
    uid = result.get("id")
    if not isinstance(uid, str) or not uid:
        raise MalformedPayload("login result: id missing")
    return uid


def _room_hint(value: Any) -> RoomHint:
    if not isinstance(value, Mapping):
        return RoomHint()
    participant = value.get("roomParticipant")
    kind = value.get("roomType")
    name = value.get("roomName")
    return RoomHint(
        participant=participant if isinstance(participant, bool) else None,
        type=kind if isinstance(kind, str) else None,
        name=name if isinstance(name, str) else None,
    )


def _short(value: Any, limit: int = 40) -> str:
    """A peer-chosen value (msg type, call id, event name, error reason) as its shape only: a
    reason is logged, and a frame's values can carry what members wrote, so none is echoed."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return repr(value)  # the form of the call ids this client numbers: nothing a member wrote
    if isinstance(value, str):
        return f"(a {min(len(value), limit)}{'+' if len(value) > limit else ''}-character string)"
    return f"(a {type(value).__name__})"


def _id_of(obj: Any) -> str | None:
    if isinstance(obj, Mapping):
        mid = obj.get("_id")
        if isinstance(mid, str) and mid:
            return mid
    return None


# --- the protocol object -------------------------------------------------------------------------


class DDPProtocol:
    """One DDP session. Create a new one for every websocket connection.

    Typical use by a driver::

        proto = DDPProtocol()
        proto.connect()
        send(proto.data_to_send())
        for frame in incoming:
            proto.receive_text(frame)
            send(proto.data_to_send())  # pongs are queued as soon as a ping arrives
            handle(proto.events_received())
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self.state = State.CONNECTING
        self.session: str | None = None
        self._next_id = 0
        self._outgoing: list[str] = []
        self._events: list[ProtocolEvent] = []
        self._pending_calls: dict[str, str] = {}  # call id -> method name
        self._subs: dict[str, tuple[str, str]] = {}  # sub id -> (publication, event name)
        self._handlers: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "connected": self._on_connected,
            "failed": self._on_failed,
            "ping": self._on_ping,
            "pong": self._on_pong,
            "result": self._on_result,
            "ready": self._on_ready,
            "nosub": self._on_nosub,
            "changed": self._on_changed,
            "error": self._on_error,
            # Ordinary Meteor collection traffic (e.g. `users` after login) and write fences.
            "added": _ignore,
            "removed": _ignore,
            "addedBefore": _ignore,
            "movedBefore": _ignore,
            "updated": _ignore,
        }

    # -- outgoing ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Queue the ``connect`` frame, which must be the first one the server sees."""
        self._send({"msg": "connect", "version": DDP_VERSION, "support": [DDP_VERSION]})

    def call(self, method: str, params: Sequence[Any] = ()) -> str:
        """Queue a method call and return its id; the answer comes as a :class:`CallResult`."""
        call_id = self._new_id()
        self._pending_calls[call_id] = method
        self._send({"msg": "method", "method": method, "id": call_id, "params": list(params)})
        return call_id

    def login_with_token(self, token: str) -> str:
        """``login`` with a resume token — a previous login token or a personal access token."""
        return self.call("login", [{"resume": token}])

    def login_with_password(self, username: str, password: str) -> str:
        """``login`` with a username and the SHA-256 digest of the password (never the password)."""
        return self.call(
            "login",
            [
                {
                    "user": {"username": username},
                    "password": {"digest": password_digest(password), "algorithm": "sha-256"},
                }
            ],
        )

    def subscribe(self, name: str, event_name: str) -> str:
        """Subscribe to a Rocket.Chat stream publication and return the subscription id.

        ``useCollection: false`` so the server sends stream events only, no pseudo document.
        """
        sub_id = self._new_id()
        self._subs[sub_id] = (name, event_name)
        self._send({"msg": "sub", "id": sub_id, "name": name, "params": [event_name, False]})
        return sub_id

    def unsubscribe(self, sub_id: str) -> None:
        # Forget it now: the EE ddp-streamer may never answer an unsub.
        self._subs.pop(sub_id, None)
        self._send({"msg": "unsub", "id": sub_id})

    def send_ping(self) -> str:
        """Queue a client ping; the matching :class:`Pong` carries the returned id."""
        ping_id = self._new_id()
        self._send({"msg": "ping", "id": ping_id})
        return ping_id

    def subscription(self, sub_id: str) -> tuple[str, str] | None:
        """``(publication, event name)`` of a live or pending subscription."""
        return self._subs.get(sub_id)

    def data_to_send(self) -> list[str]:
        frames, self._outgoing = self._outgoing, []
        return frames

    def events_received(self) -> list[ProtocolEvent]:
        events, self._events = self._events, []
        return events

    # -- incoming ------------------------------------------------------------------------------

    def receive_text(self, data: str | bytes) -> None:
        """Parse one websocket message. Never raises on bad input: see :class:`FrameRejected`."""
        size = len(data)
        if size > self.max_message_size:
            self._reject(f"frame too large ({size} > {self.max_message_size} bytes)", size)
            return
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                self._reject(f"frame is not UTF-8 (byte {exc.start})", size)
                return
        else:
            text = data
        try:
            frame = json.loads(text)
        except json.JSONDecodeError as exc:
            self._reject(f"malformed JSON at char {exc.pos}", size)
            return
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit int, absurd nesting
            self._reject(f"unparseable JSON ({type(exc).__name__})", size)
            return
        if not isinstance(frame, dict):
            self._reject(f"frame is not an object ({type(frame).__name__})", size)
            return
        kind = frame.get("msg")
        if kind is None:
            return  # {"server_id": "0"} and other preambles: the spec says ignore
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self._reject(f"unknown msg type {_short(kind)}", size)
            return
        try:
            handler(frame)
        except MalformedPayload as exc:
            self._reject(f"{kind}: {exc}", size)
        except Exception as exc:  # a shape we did not foresee must not kill the connection
            self._reject(f"{kind}: unexpected shape ({type(exc).__name__})", size)

    # -- handlers --------------------------------------------------------------------------------

    def _on_connected(self, frame: Mapping[str, Any]) -> None:
        session = frame.get("session")
        if not isinstance(session, str):
            raise MalformedPayload("session missing")
        self.state = State.OPEN
        self.session = session
        self._events.append(SessionStarted(session))

    def _on_failed(self, frame: Mapping[str, Any]) -> None:
        version = frame.get("version")
        self.state = State.FAILED
        self._events.append(SessionFailed(version if isinstance(version, str) else None))

    def _on_ping(self, frame: Mapping[str, Any]) -> None:
        # The id is an optional string (DDP spec); anything else is not echoed, but still answered:
        # the server's heartbeat only needs to hear from us.
        pong: dict[str, Any] = {"msg": "pong"}
        ping_id = frame.get("id")
        if isinstance(ping_id, str):
            pong["id"] = ping_id
        self._send(pong)

    def _on_pong(self, frame: Mapping[str, Any]) -> None:
        ping_id = frame.get("id")
        self._events.append(Pong(ping_id if isinstance(ping_id, str) else None))

    def _on_result(self, frame: Mapping[str, Any]) -> None:
        call_id = frame.get("id")
        if not isinstance(call_id, str):
            raise MalformedPayload("result without id")
        if self._pending_calls.pop(call_id, None) is None:
            raise MalformedPayload(f"result for unknown call id {_short(call_id)}")
        if "error" in frame:
            self._events.append(CallResult(call_id, error=DDPError.from_wire(frame["error"])))
        else:
            self._events.append(CallResult(call_id, result=frame.get("result")))

    def _on_ready(self, frame: Mapping[str, Any]) -> None:
        subs = frame.get("subs")
        if not isinstance(subs, list):
            raise MalformedPayload("ready without subs")
        for sub_id in subs:
            if isinstance(sub_id, str) and sub_id in self._subs:
                self._events.append(SubscriptionReady(sub_id))

    def _on_nosub(self, frame: Mapping[str, Any]) -> None:
        sub_id = frame.get("id")
        if not isinstance(sub_id, str):
            raise MalformedPayload("nosub without id")
        name, event_name = self._subs.pop(sub_id, ("", ""))
        if "error" not in frame:
            self._events.append(SubscriptionEnded(sub_id))
            return
        error = DDPError.from_wire(frame["error"])
        self._events.append(
            SubscriptionFailed(
                sub_id=sub_id,
                name=name,
                error=error.code,
                retry_after_ms=error.retry_after_ms,
                event_name=event_name or None,
            )
        )

    def _on_error(self, frame: Mapping[str, Any]) -> None:
        # Top-level: the server could not make sense of something we sent. The offending
        # message is not repeated: it may be our own login frame.
        raise MalformedPayload(f"server error frame: {_short(frame.get('reason'), 80)}")

    def _on_changed(self, frame: Mapping[str, Any]) -> None:
        collection = frame.get("collection")
        if not isinstance(collection, str) or not collection.startswith("stream-"):
            return  # ordinary Meteor collection
        fields = frame.get("fields")
        if not isinstance(fields, Mapping):
            raise MalformedPayload(f"{collection}: fields missing")
        event_name = fields.get("eventName")
        args = fields.get("args")
        if not isinstance(event_name, str) or not isinstance(args, list):
            raise MalformedPayload(f"{collection}: eventName or args missing")
        if collection == "stream-room-messages":
            self._on_room_message(event_name, args)
        elif collection == "stream-notify-room":
            self._on_notify_room(event_name, args)
        elif collection == "stream-notify-user":
            self._on_notify_user(event_name, args)
        # Other streams (notify-logged, presence, ...) are not subscribed by the bot: ignore.

    def _on_room_message(self, event_name: str, args: list[Any]) -> None:
        if not args:
            raise MalformedPayload(f"stream-room-messages {_short(event_name)}: no args")
        first = args[0]
        if isinstance(first, list):  # older servers: [[message], {...}]
            if not first:
                raise MalformedPayload("stream-room-messages: empty message list")
            first = first[0]
        hint = _room_hint(args[1]) if len(args) > 1 else RoomHint()
        mid = _id_of(first)
        try:
            message = Message.from_wire(first)
        except MalformedPayload as exc:
            if isinstance(first, Mapping) and first.get("t") == "rm":
                # A tombstone needs only ids; do not lose a deletion over a missing `u`.
                self._tombstone_without_author(first, mid)
                return
            raise MalformedPayload(f"stream-room-messages message {mid or '?'}: {exc}") from exc
        self._events.append(message_event(message, hint))

    def _tombstone_without_author(self, obj: Mapping[str, Any], mid: str | None) -> None:
        rid = obj.get("rid")
        if mid is None or not isinstance(rid, str) or not rid:
            raise MalformedPayload(f"stream-room-messages tombstone {mid or '?'}: ids missing")
        edited_at = parse_date(obj["editedAt"], "editedAt") if obj.get("editedAt") else None
        by = _id_of(obj.get("editedBy"))
        self._events.append(MessageDeleted(rid=rid, mid=mid, via="tombstone", at=edited_at, by=by))

    def _on_notify_room(self, event_name: str, args: list[Any]) -> None:
        rid, _, suffix = event_name.rpartition("/")
        if suffix == "deleteMessage":
            mid = _id_of(args[0]) if args else None
            if not rid or mid is None:
                raise MalformedPayload(f"deleteMessage in room {rid or '?'}: _id missing")
            self._events.append(MessageDeleted(rid=rid, mid=mid, via="notify"))
        elif suffix == "deleteMessageBulk":
            if not args or not isinstance(args[0], Mapping):
                raise MalformedPayload(f"deleteMessageBulk in room {rid or '?'}: no filter")
            self._events.append(_bulk_deleted(rid, args[0]))
        # typing, user-activity, messagesRead, videoconf ...: not subscribed, ignore.

    def _on_notify_user(self, event_name: str, args: list[Any]) -> None:
        _, _, suffix = event_name.rpartition("/")
        if suffix == "subscriptions-changed":
            self._events.append(_subscription_changed(args))
        elif suffix == "rooms-changed":
            self._events.append(_room_changed(args))
        elif suffix == "message":
            self._events.append(_user_notice(args))

    # -- internals -----------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _send(self, frame: Mapping[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate (echoed from a peer's "\ud800") cannot go out as UTF-8; as a JSON
                # escape it can, and the peer reads back the same string.
                text = json.dumps(frame, separators=(",", ":"))
        self._outgoing.append(text)

    def _reject(self, reason: str, size: int) -> None:
        self._events.append(FrameRejected(reason=reason, size=size))


def _ignore(frame: Mapping[str, Any]) -> None:
    return None


def _bulk_deleted(rid_from_event: str, spec: Mapping[str, Any]) -> BulkDeleted:
    rid = spec.get("rid") if isinstance(spec.get("rid"), str) and spec.get("rid") else rid_from_event
    if not isinstance(rid, str) or not rid:
        raise MalformedPayload("deleteMessageBulk: rid missing")
    oldest = latest = None
    oldest_inclusive = latest_inclusive = True
    ts = spec.get("ts")
    if isinstance(ts, Mapping):
        if "$gte" in ts:
            oldest = parse_date(ts["$gte"], "deleteMessageBulk.ts.$gte")
        elif "$gt" in ts:
            oldest, oldest_inclusive = parse_date(ts["$gt"], "deleteMessageBulk.ts.$gt"), False
        if "$lte" in ts:
            latest = parse_date(ts["$lte"], "deleteMessageBulk.ts.$lte")
        elif "$lt" in ts:
            latest, latest_inclusive = parse_date(ts["$lt"], "deleteMessageBulk.ts.$lt"), False
    return BulkDeleted(
        rid=rid,
        ids=_strings(spec.get("ids"), "deleteMessageBulk.ids"),
        usernames=_strings(spec.get("users"), "deleteMessageBulk.users"),
        oldest=oldest,
        latest=latest,
        oldest_inclusive=oldest_inclusive,
        latest_inclusive=latest_inclusive,
        exclude_pinned=spec.get("excludePinned") is True,
        ignore_discussion=spec.get("ignoreDiscussion") is not False,
        files_only=spec.get("filesOnly") is True,
    )


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedPayload(f"{what}: not a list of strings")
    return tuple(value)


def _action_and_object(args: list[Any], what: str) -> tuple[str, Mapping[str, Any]]:
    if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], Mapping):
        raise MalformedPayload(f"{what}: expected [action, object]")
    return args[0], args[1]


def _subscription_changed(args: list[Any]) -> SubscriptionChanged:
    action, sub = _action_and_object(args, "subscriptions-changed")
    rid = sub.get("rid")
    kind = sub.get("t")
    name = sub.get("name")
    sub_id = _id_of(sub)
    if not isinstance(rid, str) or not rid:
        if action != "removed":
            raise MalformedPayload(f"subscriptions-changed {action[:20]} {sub_id or '?'}: rid missing")
        rid = ""  # some servers send only the subscription's _id on removal
    return SubscriptionChanged(
        action=action,
        rid=rid,
        room_type=kind if isinstance(kind, str) else None,
        name=name if isinstance(name, str) else None,
        subscription_id=sub_id,
    )


def _room_changed(args: list[Any]) -> RoomChanged:
    action, room = _action_and_object(args, "rooms-changed")
    rid = _id_of(room)
    if rid is None:
        raise MalformedPayload(f"rooms-changed {action[:20]}: _id missing")
    return RoomChanged(action=action, rid=rid, room=dict(room))


def _user_notice(args: list[Any]) -> UserNotice:
    if not args or not isinstance(args[0], Mapping):
        raise MalformedPayload("user message: no message object")
    obj = args[0]
    if "u" not in obj:
        # Ephemeral notices are built server-side without a sender; the web client shows them
        # as coming from rocket.cat, so do we.
        obj = {**obj, "u": {"_id": "rocket.cat", "username": "rocket.cat"}}
    try:
        return UserNotice(message=Message.from_wire(obj))
    except MalformedPayload as exc:
        raise MalformedPayload(f"user message {_id_of(obj) or '?'}: {exc}") from exc
