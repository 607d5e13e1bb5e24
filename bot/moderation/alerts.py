"""Alerts for moderators, as data: which incidents a message raises, how a burst coalesces, and
the DM text. Pure code — the keyword scan lives in :mod:`bot.services.alerts`, the persisted
outbox that delivers every alert and notice in :mod:`bot.services.outbox`.

An *incident* is one list and term found in one message. Incidents from the same author, in the
same room, for the same list, within the coalescing window, belong to one *alert*: the first
creates the alert (one DM per moderator), the rest bump its counter and the DM is edited, so a
burst of 100 messages is one DM that says 100, not 100 DMs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from bot.models import Message, Room, UserRef
from bot.moderation.matcher import Match
from bot.moderation.neutralize import excerpt, id_literal, inline_literal, link_label, plain_id

__all__ = [
    "Alert",
    "DigestItem",
    "Incident",
    "OpenAlert",
    "buttons",
    "coalesce",
    "incidents_for",
    "keyword_actions",
    "permalink",
    "render_alert",
    "render_digest",
]

ALERTING_KINDS = frozenset({"notify", "block"})
SEVERITY_ICON = {
    "low": ":large_blue_circle:",
    "medium": ":large_orange_diamond:",
    "high": ":red_circle:",
    "critical": ":rotating_light:",
}


@dataclass(frozen=True, slots=True)
class Incident:
    mid: str
    room: Room
    author: UserRef
    ts: datetime
    list: str
    term: str
    severity: str
    categories: tuple[str, ...]
    excerpt: str  # already neutralised and quoted
    kind: str = "notify"

    @property
    def key(self) -> str:
        """What coalesces: the same author, in the same room, tripping the same list."""
        return f"{self.author.id}|{self.room.id}|{self.list}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence to tell people about, as the outbox keeps it (an ``alert`` row): a keyword
    incident, a notice (a protection firing, a sanction step, a name, a policy unpinned), a report,
    or a private message to one member.

    Alerts with the same ``key`` within the coalescing window are one message with a counter that
    shows the newest occurrence. ``(mid, list, term)`` names the occurrence: raising it again (an
    edit, a replay, a restart) tells no one twice.
    """

    kind: str  # how it reads: "notify"/"block" (a keyword alert) or a kind with its own renderer
    key: str  # what coalesces
    list: str  # the wordlist, or what raised it ("protection", "policy", "block-notice")
    term: str
    mid: str  # the message it is about, or an id naming the occurrence
    room: Room
    author: UserRef  # whom it is about
    excerpt: str | None  # the quoted text or the whole body, already inert; None once expired
    severity: str = "high"
    categories: tuple[str, ...] = ()
    actions: tuple[tuple[str, str], ...] = ()  # a notice's buttons (label, command), Dismiss aside
    ts: float | None = None  # when it happened (epoch seconds); None: when it is raised

    @classmethod
    def of(cls, incident: Incident) -> Alert:
        return cls(
            kind=incident.kind,
            key=incident.key,
            list=incident.list,
            term=incident.term,
            mid=incident.mid,
            room=incident.room,
            author=incident.author,
            excerpt=incident.excerpt,
            severity=incident.severity,
            categories=incident.categories,
            ts=incident.ts.timestamp(),
        )

    def incident(self) -> Incident:
        """The keyword incident this alert now shows (its newest message, after a burst)."""
        return Incident(
            mid=self.mid,
            room=self.room,
            author=self.author,
            ts=datetime.fromtimestamp(self.ts or 0.0, UTC),
            list=self.list,
            term=self.term,
            severity=self.severity,
            categories=self.categories,
            excerpt=self.excerpt or "` (excerpt removed) `",
            kind=self.kind,
        )


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One alert held back by the per-moderator cap, as the hourly digest lists it."""

    alert_id: int
    severity: str
    list: str
    term: str
    room: Room
    mid: str
    count: int


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    key: str
    count: int
    first_at: datetime
    last_at: datetime


def incidents_for(message: Message, matches: Iterable[Match], room: Room) -> list[Incident]:
    """One incident per (list, term) in the message, at the term's first occurrence."""
    seen: set[tuple[str, str]] = set()
    out = []
    for m in sorted(matches, key=lambda m: m.start):
        if m.kind not in ALERTING_KINDS or (m.list, m.term) in seen:
            continue
        seen.add((m.list, m.term))
        out.append(
            Incident(
                mid=message.id,
                room=room,
                author=message.author,
                ts=message.ts,
                list=m.list,
                term=m.term,
                severity=m.severity,
                categories=m.categories,
                excerpt=excerpt(message.text, m.start, m.end),
                kind=m.kind,
            )
        )
    return out


def coalesce(
    incident: Incident, open_alerts: Sequence[OpenAlert], now: datetime, window: timedelta
) -> OpenAlert | None:
    """The open alert this incident joins, or None when it starts a new one."""
    for alert in open_alerts:
        if alert.key == incident.key and now - alert.last_at <= window:
            return alert
    return None


def permalink(site_url: str, room: Room, mid: str) -> str:
    """The web client's link to a message (protocol reference E.4)."""
    base = site_url.rstrip("/")
    if room.type == "d" or not room.name:
        return f"{base}/direct/{quote(room.id, safe='')}?msg={quote(mid, safe='')}"
    route = "group" if room.type == "p" else "channel"
    return f"{base}/{route}/{quote(room.name, safe='')}?msg={quote(mid, safe='')}"


def render_alert(
    alert_id: int,
    incident: Incident,
    *,
    count: int,
    site_url: str,
    first_at: datetime | None = None,
    outcome: str | None = None,
) -> str:
    """The DM text. Everything taken from the message or its author is neutralised."""
    icon = SEVERITY_ICON.get(incident.severity, ":warning:")
    link = permalink(site_url, incident.room, incident.mid)
    room_label = link_label(f"#{incident.room.name}") if incident.room.name else "a direct message"
    cats = ", ".join(incident.categories) or "none"
    author = inline_literal(incident.author.username)
    when = incident.ts.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"{icon} *rcmod alert {alert_id}* · severity *{incident.severity}* · "
        f"list {inline_literal(incident.list)} · term {inline_literal(incident.term)} · categories: {cats}",
        f"Room: [{room_label}]({link}) · author {author} · {when}",
        f"Message: {incident.excerpt}",
    ]
    if count > 1:
        since = (first_at or incident.ts).strftime("%H:%M")
        lines.append(
            f"*{count} matching messages* from this author in this room since {since} UTC (latest linked)."
        )
    if outcome:
        lines.append(f":white_check_mark: {outcome}")
    elif incident.kind == "block":
        # The block list already removed (or censored) it, evidence kept: nothing to delete.
        lines.append(
            f"Handled by the block list (evidence kept). `/mod dismiss {alert_id}` · "
            f"`/mod allow {neutral_term(incident.term)}` (false positive)"
        )
    else:
        lines.append(
            f"Act: {_delete_hint(incident.mid)} · `/mod dismiss {alert_id}` · "
            f"`/mod allow {neutral_term(incident.term)}` (false positive)"
        )
    return "\n".join(lines)


def _delete_hint(mid: str) -> str:
    """``/mod delete ID`` for an id a command can carry; for any other (a member's client chose
    it) the id is shown inert and the moderator deletes through the link."""
    if plain_id(mid):
        return f"`/mod delete {mid}`"
    return (
        f"delete it from the linked message's menu (its id {id_literal(mid)} was chosen by the "
        "sender's client)"
    )


def keyword_actions(alert_id: int, incident: Incident) -> list[tuple[str, str]]:
    """The one-click buttons of a keyword alert: the same commands its text shows."""
    acts = (
        [("Delete message", f"mod delete {incident.mid}")]
        if incident.kind != "block" and plain_id(incident.mid)
        else []
    )
    acts.append(("Dismiss", f"mod dismiss {alert_id}"))
    if not any(c in incident.term for c in "@#\n`"):  # the command is sent as the moderator's message
        acts.append(("Allow term (false positive)", f"mod allow {incident.term}"))
    return acts


def buttons(actions: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    """Message attachment buttons (E.3). A click makes the moderator send the command as their own
    message in the DM with the bot, which reads it like a typed ``mod …``: no app, no setting."""
    if not actions:
        return []
    return [
        {
            "button_alignment": "horizontal",
            "actions": [
                {
                    "type": "button",
                    "text": label,
                    "msg": command,
                    "msg_in_chat_window": True,
                    "msg_processing_type": "sendMessage",
                }
                for label, command in actions
            ],
        }
    ]


def neutral_term(term: str) -> str:
    """The term as it may appear inside our own code span."""
    return inline_literal(term)[2:-2]


def render_digest(items: Sequence[DigestItem], *, cap: int, site_url: str, shown: int = 25) -> str:
    """The hourly digest: alerts held back by the per-moderator cap, one line each, no excerpts
    (the permalinks lead to the messages; the alerts themselves are in the store)."""
    lines = [
        f":inbox_tray: *rcmod digest* · {len(items)} alert(s) held back this hour (cap: {cap} new alert "
        "DMs per hour)"
    ]
    for item in items[:shown]:
        label = link_label(f"#{item.room.name}") if item.room.name else "a direct message"
        link = permalink(site_url, item.room, item.mid)
        lines.append(
            f"- alert {item.alert_id} · *{item.severity}* · list {inline_literal(item.list)} · "
            f"term {inline_literal(item.term)} · [{label}]({link})"
            + (f" · {item.count} messages" if item.count > 1 else "")
        )
    if len(items) > shown:
        lines.append(f"…and {len(items) - shown} more (`/mod status`).")
    lines.append("Act on one with `/mod dismiss ALERT` or follow its link.")
    return "\n".join(lines)
