"""Reports as data: severity by category, per-reporter rate limits, and the texts (the moderators'
DM, the reporter's acknowledgement). Pure code — filing and delivery live in :mod:`bot.services.reports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.models import Room
from bot.moderation.alerts import permalink
from bot.moderation.neutralize import inline_literal, link_label

__all__ = [
    "RateLimits",
    "ReportView",
    "rate_refusal",
    "render_report",
    "severity_for",
]

_HIGH = frozenset({"illegal", "violence", "sexual", "hate"})
_MEDIUM = frozenset({"harassment", "privacy", "impersonation"})


def severity_for(category: str) -> str:
    """Harm to people first: what could hurt someone now is high; nuisance is low."""
    if category in _HIGH:
        return "high"
    if category in _MEDIUM:
        return "medium"
    return "low"


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_window: int = 5
    window: float = 600.0
    per_day: int = 20


def rate_refusal(in_window: int, in_day: int, limits: RateLimits) -> str | None:
    """A polite refusal when the reporter is over a limit, else None."""
    if in_window >= limits.per_window:
        minutes = max(1, round(limits.window / 60))
        return (
            f"Thank you for looking out for others. You have sent {in_window} reports in the last "
            f"{minutes} minutes, which is the most I can take from one person; please try again a "
            "little later. If someone is in danger, contact a moderator directly."
        )
    if in_day >= limits.per_day:
        return (
            f"Thank you. You have sent {in_day} reports today, the daily limit; the moderators have "
            "them all. Please contact a moderator directly if something else needs attention."
        )
    return None


@dataclass(frozen=True, slots=True)
class ReportView:
    id: int
    target_kind: str  # message | user
    category: str
    severity: str
    room: Room | None
    mid: str | None
    author_username: str
    reporters: tuple[str, ...]  # usernames; "anonymous" for those who chose it
    excerpt: str | None  # neutralised and quoted, None when unreachable or erased
    native: str | None
    escalated: bool
    opened_at: datetime
    outcome: str | None = None


def render_report(view: ReportView, *, site_url: str) -> str:
    """The moderators' DM. Everything taken from users (names, text) is neutralised."""
    count = len(view.reporters)
    head = (
        f":triangular_flag_on_post: *rcmod report {view.id}* · category *{view.category}* · "
        f"severity *{view.severity}* · {count} reporter{'s' if count != 1 else ''}"
    )
    if view.escalated:
        head += " · *escalated*"
    lines = [head]
    author = (
        "an author the bot cannot see"
        if view.native == "unreachable"
        else inline_literal(view.author_username)
    )
    if view.target_kind == "user":
        lines.append(f"Reported user: {author}")
    elif view.room is not None and view.mid is not None:
        link = permalink(site_url, view.room, view.mid)
        label = link_label(f"#{view.room.name}") if view.room.name else "a room"
        lines.append(f"Message by {author} in [{label}]({link})")
    else:
        lines.append(f"Message by {author}")
    lines.append(
        "Reported by: " + ", ".join(r if r == "anonymous" else inline_literal(r) for r in view.reporters)
    )
    if view.excerpt:
        lines.append(f"Message: {view.excerpt}")
    elif view.target_kind == "message":
        lines.append("Message: (not quoted: the bot cannot read it)")
    if view.native == "filed":
        lines.append("Filed in Rocket.Chat's moderation console.")
    elif view.native == "unreachable":
        lines.append("Not filed in the moderation console: the bot is not in that room (open the link).")
    elif view.native and view.native != "pending":
        lines.append(f"Not filed in the moderation console ({inline_literal(view.native)}).")
    when = view.opened_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Opened {when}.")
    if view.outcome:
        lines.append(f":white_check_mark: {view.outcome}")
    else:
        lines.append(
            f"Act: `/mod resolve {view.id} dismiss` · `/mod resolve {view.id} delete` · `/mod reports`"
        )
    return "\n".join(lines)
