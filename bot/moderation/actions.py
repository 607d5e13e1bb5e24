"""What the bot does to a workspace, as data (pure).

A rule or a shell decides; it does not act. It returns an :class:`Action`: one change to make on
the server (delete a message, mute a member, lock a room, pin a policy …) together with how the
change is accounted for: who decided it, the audit action and targets, and the messages to keep
as evidence *before* the change is made. One executor (:mod:`bot.services.executor`) carries
every action out, so evidence-first order, the audit record, the dry-run switch and the way a
refusal is recorded exist once.

The changes are named after the server's own verbs; each is one REST (or DDP) call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.models import Message

__all__ = [
    "Action",
    "AddRoomModerator",
    "BanUser",
    "Change",
    "CleanHistory",
    "DeleteMessage",
    "DismissReports",
    "EditMessage",
    "EvidenceFile",
    "FileReport",
    "JoinChannel",
    "KickUser",
    "MuteUser",
    "PinMessage",
    "PostMessage",
    "SetAnnouncement",
    "SetReadOnly",
    "SetUserActive",
    "UnbanUser",
    "UnmuteUser",
    "UnpinMessage",
]


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    rid: str
    mid: str


@dataclass(frozen=True, slots=True)
class CleanHistory:
    """``rooms.cleanHistory``: delete in bulk the messages of ``users`` (usernames) posted in
    ``[oldest, latest]``, pins and threads kept unless told otherwise. The call answers how many
    it deleted (None from servers that do not say)."""

    rid: str
    oldest: datetime
    latest: datetime
    users: tuple[str, ...]
    exclude_pinned: bool = True
    ignore_threads: bool = True
    ignore_discussion: bool = True


@dataclass(frozen=True, slots=True)
class EditMessage:
    """``chat.update``: censor a message in place, or refresh one the bot posted.

    ``attachments`` (not None) replace the message's attachments with its text, so the buttons
    of a message the bot posted follow its text; chat.update cannot, so that edit is the DDP
    method ``updateMessage``, where the executor has a DDP connection (without one, text only).
    """

    rid: str
    mid: str
    text: str
    attachments: tuple[Mapping[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class PostMessage:
    """``chat.sendMessage`` as the bot; ``mid`` chosen by the caller makes a retry idempotent.
    ``attachments``: message attachments (an alert's buttons)."""

    rid: str
    text: str
    mid: str | None = None
    tmid: str | None = None
    attachments: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class MuteUser:
    rid: str
    user_id: str
    username: str


@dataclass(frozen=True, slots=True)
class UnmuteUser:
    rid: str
    user_id: str
    username: str


@dataclass(frozen=True, slots=True)
class KickUser:
    rid: str
    room_type: str
    user_id: str


@dataclass(frozen=True, slots=True)
class BanUser:
    rid: str
    user_id: str


@dataclass(frozen=True, slots=True)
class UnbanUser:
    rid: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SetReadOnly:
    rid: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class SetUserActive:
    user_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class PinMessage:
    mid: str


@dataclass(frozen=True, slots=True)
class UnpinMessage:
    mid: str


@dataclass(frozen=True, slots=True)
class SetAnnouncement:
    rid: str
    text: str


@dataclass(frozen=True, slots=True)
class DismissReports:
    mid: str
    reason: str = ""
    action: str = ""


@dataclass(frozen=True, slots=True)
class AddRoomModerator:
    rid: str
    room_type: str
    user_id: str


@dataclass(frozen=True, slots=True)
class FileReport:
    """A member's report filed into Rocket.Chat's moderation console as the bot
    (``chat.reportMessage`` for a message, ``moderation.reportUser`` for a user)."""

    description: str
    mid: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class JoinChannel:
    rid: str


Change = (
    DeleteMessage
    | CleanHistory
    | EditMessage
    | PostMessage
    | MuteUser
    | UnmuteUser
    | KickUser
    | BanUser
    | UnbanUser
    | SetReadOnly
    | SetUserActive
    | PinMessage
    | UnpinMessage
    | SetAnnouncement
    | DismissReports
    | AddRoomModerator
    | FileReport
    | JoinChannel
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """An uploaded file kept with the evidence of the message ``mid`` that carried it: always its
    hashes; its bytes (``data``) only when the policy keeps them. The audit record cites the
    hashes, never the bytes."""

    mid: str
    file_id: str
    sha256: str
    pdq: str | None = None
    data: bytes | None = None

    def __repr__(self) -> str:  # the picture never reaches a log through repr()
        return f"EvidenceFile(mid={self.mid!r}, file_id={self.file_id!r}, kept={self.data is not None})"


@dataclass(frozen=True, slots=True)
class Action:
    """One decision: the change, and how it is accounted for.

    ``audit`` names the audit action (:mod:`bot.audit.actions`); None for upkeep the audit log
    does not record (a policy message refreshed, a channel joined to post in). ``evidence`` is
    stored, in one transaction with the audit record that cites it, before the change is made.
    ``dry_run_applies`` False: upkeep carried out even in a dry run, which holds back what
    moderation does to members, not the bot's housekeeping (a command removed from its room).
    ``moot`` names refusals that mean there was nothing to change (the user is not in the room):
    they come back as refusals like any other, but are not audited as failures.
    ``files`` are uploads kept with the evidence of the message they came in (one of
    ``evidence``), under the same retention, holds and erasure as its text.
    """

    change: Change
    actor: str
    audit: str | None = None
    targets: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    reason: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    evidence: tuple[Message, ...] = ()
    case: int | None = None
    dry_run_applies: bool = True
    moot: frozenset[str] = frozenset()
    files: tuple[EvidenceFile, ...] = ()
