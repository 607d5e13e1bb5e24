"""Typed events the DDP protocol core turns frames into.

The protocol classifies what a frame *says*; whether a message was already handled is decided
later by the ingest layer, which remembers ``(message id, editedAt)`` in the store. So a re-emit
of an unedited message after a reaction is a :class:`NewMessage` here and a duplicate there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.models import Message

__all__ = [
    "BulkDeleted",
    "Connected",
    "Disconnected",
    "EditedMessage",
    "EncryptedMessage",
    "Event",
    "FrameRejected",
    "MessageDeleted",
    "MessageEvent",
    "NewMessage",
    "RoomChanged",
    "RoomHint",
    "SubscriptionChanged",
    "SubscriptionFailed",
    "SystemMessage",
    "ThreadReply",
    "UserNotice",
]


@dataclass(frozen=True, slots=True)
class RoomHint:
    """What ``__my_messages__`` says about the room: the second element of ``args``."""

    participant: bool | None = None  # False: a public channel the bot has not joined
    type: str | None = None  # c, p, d, l
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    """Logged in and subscribed; ``reconnect`` is True after the first connection."""

    session: str
    user_id: str
    reconnect: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str  # a code or exception class name, never payload content


@dataclass(frozen=True, slots=True)
class MessageEvent:
    message: Message
    room: RoomHint = field(default_factory=RoomHint)


@dataclass(frozen=True, slots=True)
class NewMessage(MessageEvent):
    """A message without ``editedAt`` (possibly a re-emit after a reaction or preview)."""


@dataclass(frozen=True, slots=True)
class ThreadReply(MessageEvent):
    """A new message with ``tmid``."""


@dataclass(frozen=True, slots=True)
class EditedMessage(MessageEvent):
    """A message carrying ``editedAt``; thread replies that were edited come here too."""


@dataclass(frozen=True, slots=True)
class SystemMessage(MessageEvent):
    """``t`` is a system type (uj, ul, au, ru, message_pinned, room_changed_announcement, ...)."""


@dataclass(frozen=True, slots=True)
class EncryptedMessage(MessageEvent):
    """``t: "e2e"``: content the server cannot read, so the bot cannot scan it."""


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    rid: str
    mid: str
    via: str  # "notify" (stream-notify-room deleteMessage) | "tombstone" (t: rm) | "sync"
    at: datetime | None = None
    by: str | None = None  # user id of the deleter, when known


@dataclass(frozen=True, slots=True)
class BulkDeleted:
    """``<rid>/deleteMessageBulk``: apply the same filter to anything cached locally."""

    rid: str
    ids: tuple[str, ...] = ()
    usernames: tuple[str, ...] = ()  # empty: everyone
    oldest: datetime | None = None
    latest: datetime | None = None
    oldest_inclusive: bool = True
    latest_inclusive: bool = True
    exclude_pinned: bool = False
    ignore_discussion: bool = True
    files_only: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """``<uid>/subscriptions-changed``: the bot joined (inserted), left (removed) or changed a room."""

    action: str
    rid: str  # may be "" on "removed" when the server sent only the subscription's own _id
    room_type: str | None = None
    name: str | None = None
    subscription_id: str | None = None  # the subscription document's _id (not the rid)


@dataclass(frozen=True, slots=True)
class RoomChanged:
    action: str
    rid: str
    room: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UserNotice:
    """An ephemeral notice for the bot itself (``<uid>/message``), e.g. "not allowed to @all"."""

    message: Message


@dataclass(frozen=True, slots=True)
class SubscriptionFailed:
    sub_id: str
    name: str
    error: str  # the server's error code, e.g. not-allowed, too-many-requests
    retry_after_ms: int | None = None
    event_name: str | None = None  # what was subscribed, e.g. "<rid>/deleteMessage"


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame that could not be understood. Carries a reason and ids, never the body."""

    reason: str
    size: int = 0


Event = (
    Connected
    | MessageEvent
    | Disconnected
    | NewMessage
    | ThreadReply
    | EditedMessage
    | SystemMessage
    | EncryptedMessage
    | MessageDeleted
    | BulkDeleted
    | SubscriptionChanged
    | RoomChanged
    | UserNotice
    | SubscriptionFailed
    | FrameRejected
)


def message_event(message: Message, room: RoomHint | None = None) -> Event:
    """Classify a message by what it says (shared by the stream and by REST catch-up).

    A tombstone (``t: rm``) is a deletion; ``t: e2e`` cannot be scanned; any other ``t`` is a system
    message; ``editedAt`` makes an edit; ``tmid`` a thread reply; anything else a new message.
    """
    hint = room or RoomHint()
    if message.is_tombstone:
        return MessageDeleted(
            rid=message.rid,
            mid=message.id,
            via="tombstone",
            at=message.edited_at or message.updated_at,
            by=message.edited_by.id if message.edited_by else None,
        )
    if message.is_encrypted:
        return EncryptedMessage(message, hint)
    if message.is_system:
        return SystemMessage(message, hint)
    if message.edited_at is not None:
        return EditedMessage(message, hint)
    if message.tmid:
        return ThreadReply(message, hint)
    return NewMessage(message, hint)
