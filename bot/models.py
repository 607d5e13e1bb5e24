"""Domain models shared by every layer: messages and rooms as Rocket.Chat names them.

Pure code: no I/O library is imported here. A message arrives in two wire forms — DDP (dates as
EJSON ``{"$date": ms}``) and REST (ISO-8601 strings) — and both parse into the same frozen
:class:`Message`, so nothing downstream needs to know where it came from.

Frozen dataclasses rather than pydantic models: they sit on the message hot path, and parsing is
a handful of dictionary reads that we validate by hand with clear errors.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

__all__ = [
    "Actor",
    "AttachmentText",
    "FileRef",
    "HashMatch",
    "ImageFinding",
    "MalformedPayload",
    "Message",
    "Room",
    "UserRef",
    "files_of",
    "parse_date",
]


class MalformedPayload(ValueError):
    """A payload from the server does not have the shape Rocket.Chat documents.

    The message names the field, never the content, so it is safe to log.
    """


def parse_date(value: Any, field_name: str = "date") -> datetime:
    """Parse an EJSON date (``{"$date": ms}``), an ISO-8601 string or epoch milliseconds."""
    if isinstance(value, Mapping) and "$date" in value:
        value = value["$date"]
    if isinstance(value, bool):
        raise MalformedPayload(f"{field_name}: not a date")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedPayload(f"{field_name}: timestamp out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():  # chat.delete answers ts as a string of epoch ms
            return parse_date(int(text), field_name)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedPayload(f"{field_name}: not an ISO-8601 date") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise MalformedPayload(f"{field_name}: not a date")


def to_ms(when: datetime) -> int:
    """Epoch milliseconds, the unit of DDP dates and of Rocket.Chat's rate-limit headers."""
    return int(when.timestamp() * 1000)


def to_iso(when: datetime) -> str:
    """The ISO form REST endpoints take, with milliseconds and a ``Z`` like the server writes."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class UserRef:
    id: str
    username: str


@dataclass(frozen=True, slots=True)
class Room:
    """A room as the bot knows it: always its id (``rid``); its name and type when known.
    Types as Rocket.Chat names them: ``c`` public channel, ``p`` private group, ``d`` direct."""

    id: str
    name: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who decided an action. ``id`` is what the audit log names: ``rule:<name>`` for a rule, a
    user id for a moderator (a username can change hands), ``operator`` for the command line.
    ``name`` is what people are shown: the rule's or the moderator's name."""

    id: str
    name: str
    operator: bool = False

    @property
    def is_rule(self) -> bool:
        return self.id.startswith("rule:")


@dataclass(frozen=True, slots=True)
class AttachmentText:
    """The scannable text of one attachment: Rocket.Chat renders title and description."""

    title: str = ""
    description: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class HashMatch:
    """An image matched an operator's known-bad hash list: exactly (SHA-256 of the bytes) or as a
    near duplicate (PDQ, within the list's Hamming distance). Always critical."""

    list_name: str  # the list file's stem: what moderators and the audit log are shown
    kind: Literal["sha256", "pdq"]
    distance: int  # 0 for sha256; the Hamming distance (0..256) for pdq


@dataclass(frozen=True, slots=True)
class ImageFinding:
    """What the image checker learnt of one downloaded file. Holds hashes and a score, never
    the picture: this is what the audit log and alerts may carry."""

    sha256: str  # hex digest of the bytes as downloaded
    pdq: str | None  # 64 hex characters; None when the picture is too flat for a reliable PDQ
    pdq_quality: int  # 0..100, PDQ's own quality figure (0 when pdq is None)
    width: int
    height: int
    match: HashMatch | None
    score: float | None  # NSFW probability in [0, 1]; None when scoring was not asked for


@dataclass(frozen=True, slots=True)
class FileRef:
    """One uploaded file a message carries, as the server describes it. Every field but ``path``
    is what the member's client claimed (name, type, size): untrusted, so a file is checked by
    its bytes, and its name is never logged (``repr`` leaves it out).

    ``path`` is the same-origin route the server serves it from, ``/file-upload/<id>/<name>``,
    built from the validated id with the name percent-encoded whole: nothing a member chose can
    turn it into another route or another host.
    """

    id: str
    name: str
    type: str  # the claimed MIME type ("" when none was given)
    size: int  # the claimed size in bytes (0 when none was given)
    path: str

    @property
    def is_image(self) -> bool:
        return self.type.lower().startswith("image/")

    def __repr__(self) -> str:  # the name never reaches a log through repr()
        return f"FileRef(id={self.id!r}, type={self.type!r}, size={self.size})"


# Upload ids: Meteor's Random.id() (17 characters of an unambiguous alphabet), and the 24 hex
# digits of a Mongo ObjectId in older stores; nothing with a slash, a dot or a percent sign.
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UPLOAD_PREFIX = "/file-upload/"


def _file_path(file_id: str, name: str) -> str:
    # As the server builds it (FileUpload.getPath(`${_id}/${encodeURI(name)}`)), except that the
    # name is encoded whole (slashes, ?, # included): the server finds the file by its id alone.
    return f"{_UPLOAD_PREFIX}{file_id}/{quote(name[:255], safe='')}"


def upload_id(link: Any) -> str | None:
    """The upload id in a same-origin ``/file-upload/<id>/<name>`` link, else None: a link
    with a scheme or a host (another origin), a backslash, or an id of the wrong shape (a dot
    segment, an encoded slash) is no upload. The rest of the link is never used: the server
    writes the name with encodeURI, which leaves ``?`` and ``#`` as they are, and the bot
    fetches by a path it builds from the id (:attr:`FileRef.path`)."""
    if not isinstance(link, str) or not link.startswith(_UPLOAD_PREFIX) or "\\" in link:
        return None
    fid, slash, _ = link[len(_UPLOAD_PREFIX) :].partition("/")
    return fid if slash and _FILE_ID.fullmatch(fid) else None


def files_of(obj: Mapping[str, Any]) -> tuple[FileRef, ...]:
    """The uploads a wire message carries, each once, thumbnails left out.

    sendFileMessage (apps/meteor/app/file-upload/server/methods/sendFileMessage.ts) writes
    ``files`` (the upload, then for an image the thumbnail it made), ``file`` (the first of
    them) and one attachment per upload whose ``title_link`` and ``fileId`` name the upload
    and whose ``image_url`` names the thumbnail when there is one. A thumbnail is the server's
    resize of the upload: fetching both would check one picture twice. An attachment naming a
    same-origin upload absent from ``files`` (older servers, apps) counts too, with the type and
    size it claims; links elsewhere are not uploads and are never fetched.
    """
    raw_attachments = obj.get("attachments")
    attachments = (
        [a for a in raw_attachments if isinstance(a, Mapping)] if isinstance(raw_attachments, list) else []
    )
    listed = obj.get("files")
    entries = [e for e in (listed if isinstance(listed, list) else []) if isinstance(e, Mapping)]
    first = obj.get("file")
    if isinstance(first, Mapping):
        entries.append(first)
    ids = [e.get("_id") for e in entries]
    # A thumbnail: an attachment shows it (image_url) for another upload (fileId, title_link)
    # listed before it in `files`; never `file`, which is always the upload itself.
    thumbnails: set[str] = set()
    for att in attachments:
        original = (
            att.get("fileId") if isinstance(att.get("fileId"), str) else upload_id(att.get("title_link"))
        )
        shown = upload_id(att.get("image_url"))
        if original in ids and shown in ids and ids.index(shown) > ids.index(original):
            thumbnails.add(str(shown))
    if isinstance(first, Mapping):
        thumbnails.discard(str(first.get("_id")))
    found: dict[str, FileRef] = {}
    for entry in entries:
        fid = entry.get("_id")
        if not isinstance(fid, str) or not _FILE_ID.fullmatch(fid) or fid in thumbnails or fid in found:
            continue
        name = entry.get("name")
        name = name if isinstance(name, str) else ""
        found[fid] = FileRef(
            fid,
            name,
            _claimed_type(entry.get("type")),
            _claimed_size(entry.get("size")),
            _file_path(fid, name),
        )
    for att in attachments:
        # The upload's own link; image_url only when there is none (it may be a thumbnail's).
        key = "title_link" if upload_id(att.get("title_link")) else "image_url"
        fid = upload_id(att.get(key))
        if fid is not None and fid not in thumbnails and fid not in found:
            name = unquote(str(att.get(key)).rsplit("/", 1)[-1])
            found[fid] = FileRef(
                fid,
                name,
                _claimed_type(att.get("image_type") or att.get("type")),
                _claimed_size(att.get("image_size") or att.get("size")),
                _file_path(fid, name),
            )
    return tuple(found.values())


def _claimed_type(value: Any) -> str:
    return value.strip()[:255] if isinstance(value, str) else ""


def _claimed_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return 0
    return max(0, min(int(value), 2**53))


# System message types whose `t` still means user content.
_CONTENT_TYPES = frozenset({None, "e2e"})


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    rid: str
    text: str
    ts: datetime
    author: UserRef
    updated_at: datetime | None = None
    edited_at: datetime | None = None
    edited_by: UserRef | None = None
    type: str | None = None  # Rocket.Chat's `t`: None for ordinary messages
    tmid: str | None = None
    pinned: bool = False
    attachments: tuple[AttachmentText, ...] = ()
    shown_names: tuple[str, ...] = ()  # uploaded file names and the `alias` display name
    files: tuple[FileRef, ...] = ()  # the uploads it carries (thumbnails left out)
    # The wire object as received, kept for the evidence archive; never logged.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_system(self) -> bool:
        return self.type not in _CONTENT_TYPES

    @property
    def is_encrypted(self) -> bool:
        return self.type == "e2e"

    @property
    def is_tombstone(self) -> bool:
        return self.type == "rm"

    @property
    def version(self) -> str:
        """Identity of this revision: an edit changes ``editedAt``, a reaction or preview does not.

        A digest of the text is added because ``editedAt`` has millisecond resolution: two edits
        in one millisecond (scripts, bridges) must still be two revisions.
        """
        if self.edited_at is None:
            return ""
        digest = zlib.crc32(self.text.encode("utf-8", "surrogatepass"))
        return f"{self.edited_at.isoformat()}#{digest:08x}"

    def scannable_texts(self) -> tuple[str, ...]:
        """What members see of it: the text, its attachments' titles and descriptions, the names
        of uploaded files and the display ``alias`` (all shown in the room, all abusable)."""
        if not self.attachments and not self.shown_names:  # most messages: asked of every one
            return (self.text,) if self.text else ()
        parts = [self.text] if self.text else []
        for att in self.attachments:
            parts.extend(p for p in (att.title, att.description, att.text) if p)
        parts.extend(self.shown_names)
        return tuple(parts)

    def __repr__(self) -> str:  # message text never reaches a log through repr()
        return f"Message(id={self.id!r}, rid={self.rid!r}, type={self.type!r}, len={len(self.text)})"

    @classmethod
    def from_wire(cls, obj: Any) -> Message:
        """Parse a message object in either wire form; raise :class:`MalformedPayload`."""
        if not isinstance(obj, Mapping):
            raise MalformedPayload("message: not an object")
        mid = _str(obj, "_id")
        rid = _str(obj, "rid")
        user = obj.get("u")
        if not isinstance(user, Mapping):
            raise MalformedPayload("message.u: missing")
        author = UserRef(id=_str(user, "_id"), username=str(user.get("username") or ""))
        text = obj.get("msg", "")
        if not isinstance(text, str):
            raise MalformedPayload("message.msg: not a string")
        if "ts" not in obj:
            raise MalformedPayload("message.ts: missing")
        edited_by = obj.get("editedBy")
        kind = obj.get("t")
        return cls(
            id=mid,
            rid=rid,
            text=text,
            ts=parse_date(obj["ts"], "message.ts"),
            author=author,
            updated_at=parse_date(obj["_updatedAt"], "message._updatedAt") if obj.get("_updatedAt") else None,
            edited_at=parse_date(obj["editedAt"], "message.editedAt") if obj.get("editedAt") else None,
            edited_by=(
                UserRef(id=str(edited_by.get("_id", "")), username=str(edited_by.get("username", "")))
                if isinstance(edited_by, Mapping)
                else None
            ),
            type=kind if isinstance(kind, str) else None,
            tmid=obj["tmid"] if isinstance(obj.get("tmid"), str) else None,
            pinned=bool(obj.get("pinned", False)),
            attachments=_attachments(obj.get("attachments")),
            shown_names=_shown_names(obj),
            files=files_of(obj) if ("files" in obj or "file" in obj or "attachments" in obj) else (),
            raw=obj,
        )


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{key}: missing or not a string")
    return value


def _attachments(value: Any) -> tuple[AttachmentText, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for att in value:
        if isinstance(att, Mapping):
            out.append(AttachmentText(_text(att, "title"), _text(att, "description"), _text(att, "text")))
    return tuple(out)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _shown_names(obj: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    files = obj.get("files")
    for f in [*(files if isinstance(files, list) else []), obj.get("file")]:
        if isinstance(f, Mapping) and isinstance(f.get("name"), str) and f["name"]:
            names.append(f["name"])
    alias = obj.get("alias")
    if isinstance(alias, str) and alias:
        names.append(alias)
    return tuple(dict.fromkeys(names))
