"""Names and room texts as things to moderate: usernames, display names, the reason given at
sign-up, room names, topics, announcements and descriptions. Pure code — which fields a user or
room document has, the id an incident is recorded under, and the alert text; when to look and
the I/O live in :mod:`bot.services.names`.

A field has no message id, so each scanned *value* gets a stable pseudo id built from the
subject, the field and a digest of the value — ``user:<uid>:name:<digest>``. The alert ledger
deduplicates on it exactly as on a message id (one incident per id, list and term): the same
value seen again — by the next sweep, a replayed system message, a restart — never alerts twice,
and a changed value is a new id that alerts again. Incidents on one subject (a user, a room) for
one list within the coalescing window share one alert, like a burst from one author in one room.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from bot.models import UserRef
from bot.moderation.alerts import ALERTING_KINDS, SEVERITY_ICON, neutral_term
from bot.moderation.matcher import Match
from bot.moderation.neutralize import excerpt, inline_literal, link_label
from bot.moderation.wordlist import ListOptions

__all__ = [
    "ROOM_FIELD_MESSAGES",
    "SCANNED_ROOM_TYPES",
    "NameField",
    "NameIncident",
    "Subject",
    "allow_action",
    "name_incidents",
    "render_name_alert",
    "render_pending",
    "room_fields",
    "room_link",
    "room_subject",
    "user_fields",
]

FieldName = Literal["username", "name", "reason", "room_name", "topic", "announcement", "description"]

_LABELS: dict[str, str] = {
    "username": "username",
    "name": "display name",
    "reason": "reason for joining",
    "room_name": "name",
    "topic": "topic",
    "announcement": "announcement",
    "description": "description",
}

_REASON_SHOWN = 300  # characters of a sign-up's reason quoted in the admins' notice

# System messages whose text is a room field's new value (protocol reference B.4, F.2).
ROOM_FIELD_MESSAGES: dict[str, FieldName] = {
    "r": "room_name",
    "room_changed_topic": "topic",
    "room_changed_announcement": "announcement",
    "room_changed_description": "description",
}

# Channels and private groups; discussions and team rooms are ones too (a `prid`, `teamMain`).
# A direct message is named after its members, whose usernames are scanned as users; livechat
# rooms are out of scope.
SCANNED_ROOM_TYPES = frozenset({"c", "p"})


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose field it is: a user (``name`` is the username) or a room (its display name)."""

    kind: Literal["user", "room"]
    id: str
    name: str
    room_type: str | None = None  # rooms: c or p
    handle: str | None = None  # rooms: the `name` the web client's route uses


@dataclass(frozen=True, slots=True)
class NameField:
    subject: Subject
    field: FieldName
    value: str
    changed_by: UserRef | None = None  # who set it, when a system message says so

    @property
    def pseudo_id(self) -> str:
        digest = hashlib.sha256(self.value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{self.subject.kind}:{self.subject.id}:{self.field}:{digest}"

    @property
    def label(self) -> str:
        """What was scanned, inert: "display name of ` ＠alice `", "topic of ` #random `"."""
        s = self.subject
        whose = (
            inline_literal(("@" if s.kind == "user" else "#") + s.name) if s.name else inline_literal(s.id)
        )
        return f"{_LABELS[self.field]} of {whose}"


@dataclass(frozen=True, slots=True)
class NameIncident:
    """One list and term found in one field value, at the term's first occurrence."""

    field: NameField
    list: str
    term: str
    severity: str
    categories: tuple[str, ...]
    kind: str
    excerpt: str  # neutralised and quoted, the match marked
    options: ListOptions = dataclass_field(
        repr=False, compare=False, default_factory=lambda: ListOptions(name="")
    )

    @property
    def key(self) -> str:
        """What coalesces: the same user or room tripping the same list."""
        return f"{self.field.subject.kind}:{self.field.subject.id}|names|{self.list}"


def user_fields(user: Mapping[str, Any], *, reason: bool = False) -> list[NameField]:
    """The username and display name of a users.list / users.listByStatus / users.info entry
    (and, with ``reason``, what the registration form asked them to give)."""
    uid, username = user.get("_id"), user.get("username")
    if not isinstance(uid, str) or not uid or not isinstance(username, str) or not username:
        return []
    subject = Subject("user", uid, username)
    out = [NameField(subject, "username", username)]
    for key in ("name", "reason") if reason else ("name",):
        value = user.get(key)
        if isinstance(value, str) and value.strip():
            out.append(NameField(subject, key, value))
    return out


def room_subject(room: Mapping[str, Any]) -> Subject | None:
    """The room as a subject, or None for rooms whose texts are not scanned (DMs, livechat)."""
    rid, kind = room.get("_id"), room.get("t")
    if not isinstance(rid, str) or not rid or kind not in SCANNED_ROOM_TYPES:
        return None
    name = room.get("name") if isinstance(room.get("name"), str) else None
    fname = room.get("fname") if isinstance(room.get("fname"), str) else None
    return Subject("room", rid, fname or name or "", str(kind), name)


def room_fields(room: Mapping[str, Any]) -> list[NameField]:
    """The name (display name, and the handle when it differs — a discussion's handle is an
    id, not scanned), topic, announcement and description of a room document."""
    subject = room_subject(room)
    if subject is None:
        return []
    out: list[NameField] = []
    names = [subject.name]
    if subject.handle and subject.handle != subject.name and not room.get("prid"):
        names.append(subject.handle)
    out += [NameField(subject, "room_name", n) for n in names if n.strip()]
    for key in ("topic", "announcement", "description"):
        value = room.get(key)
        if isinstance(value, str) and value.strip():
            out.append(NameField(subject, key, value))
    return out


def _applies(match: Match, subject: Subject) -> bool:
    options = match.options
    if subject.kind == "user":
        return not options.rooms  # a list scoped to some rooms says nothing about workspace names
    where = {subject.id, subject.name, subject.handle or ""}
    if where & set(options.skip_rooms):
        return False
    return not options.rooms or bool(where & set(options.rooms))


def name_incidents(field: NameField, matches: Iterable[Match]) -> list[NameIncident]:
    """One incident per alerting (list, term) found in the field's value."""
    seen: set[tuple[str, str]] = set()
    out = []
    for m in sorted(matches, key=lambda m: m.start):
        if m.kind not in ALERTING_KINDS or (m.list, m.term) in seen or not _applies(m, field.subject):
            continue
        seen.add((m.list, m.term))
        out.append(
            NameIncident(
                field=field,
                list=m.list,
                term=m.term,
                severity=m.severity,
                categories=m.categories,
                kind=m.kind,
                excerpt=excerpt(field.value, m.start, m.end),
                options=m.options,
            )
        )
    return out


def room_link(site_url: str, subject: Subject) -> str | None:
    """The web client's address of a channel or group (protocol reference E.4)."""
    if subject.kind != "room" or not subject.handle or not site_url:
        return None
    route = "group" if subject.room_type == "p" else "channel"
    return f"{site_url.rstrip('/')}/{route}/{quote(subject.handle, safe='')}"


def render_name_alert(incident: NameIncident, *, when: datetime, site_url: str) -> str:
    """The alert text (the outbox adds the alert number and how to dismiss it). Everything taken
    from the workspace — the value, the names — is quoted and made inert."""
    f = incident.field
    icon = SEVERITY_ICON.get(incident.severity, ":warning:")
    cats = ", ".join(incident.categories) or "none"
    kind = " (block list)" if incident.kind == "block" else ""
    link = room_link(site_url, f.subject)
    label = f"{_LABELS[f.field]} of [{link_label('#' + f.subject.name)}]({link})" if link else f.label
    lines = [
        f"{icon} *rcmod alert* · severity *{incident.severity}* · list {inline_literal(incident.list)}{kind}"
        f" · term {inline_literal(incident.term)} · categories: {cats}",
        f"{label[0].upper()}{label[1:]}: {incident.excerpt}",
    ]
    by = f"Set by {inline_literal('@' + f.changed_by.username)} · " if f.changed_by else ""
    lines.append(f"{by}seen {when.strftime('%Y-%m-%d %H:%M UTC')}")
    if f.subject.kind == "user" and f.field == "reason":
        act = "decide on the account in Administration → Users → Pending"
    elif f.subject.kind == "user":
        act = f"change it in Administration → Users → {inline_literal(f.subject.name)} → Edit"
    else:
        act = "change it in the room's Room Information → Edit"
    lines.append(f"Act: {act} · `/mod allow {neutral_term(incident.term)}` (false positive)")
    return "\n".join(lines)


def allow_action(term: str) -> list[tuple[str, str]]:
    """The one-click "Allow term" button, when the term can be sent as a command safely."""
    if any(c in term for c in "@#\n`"):
        return []
    return [("Allow term (false positive)", f"mod allow {term}")]


def render_pending(user: Mapping[str, Any], flagged: Iterable[NameIncident]) -> str:
    """The admins' notice about one account awaiting approval: who, why they say they want in,
    what the lists found in it, and how to approve or reject it."""
    uid = str(user.get("_id") or "")
    username = str(user.get("username") or "")
    name = user.get("name")
    reason = user.get("reason")
    who = inline_literal("@" + username) if username else inline_literal(uid)
    lines = [f":hourglass: *rcmod: an account awaits approval* · {who}"]
    if isinstance(name, str) and name.strip() and name != username:
        lines[0] += f" · display name {inline_literal(name)}"
    if isinstance(reason, str) and reason.strip():
        shown = reason if len(reason) <= _REASON_SHOWN else reason[:_REASON_SHOWN] + "…"
        lines.append(f"Reason given: {inline_literal(shown)}")
    else:
        lines.append("No reason given.")
    for incident in flagged:
        lines.append(
            f":warning: Its {_LABELS[incident.field.field]} matches list {inline_literal(incident.list)}, "
            f"term {inline_literal(incident.term)} (severity *{incident.severity}*): {incident.excerpt}"
        )
    body = inline_literal(f'{{"userId": "{uid}", "activeStatus": true}}')
    lines.append(
        "The account cannot log in until an admin acts. Approve (Activate) or delete it in "
        f"Administration → Users → Pending, or approve it over REST: `users.setActiveStatus` {body}."
    )
    return "\n".join(lines)
