"""Sanction decisions (pure): which ladder step a strike brings, who may not be sanctioned, and
the private notice the sanctioned user gets. The shell (:mod:`bot.services.sanctions`) carries them out.

The ladder is data (``sanctions.ladder`` in the config): the n-th live strike brings the step
with the largest ``strikes`` not above n, so counts past the last step repeat it. A moderator's
``/mod warn`` and a protection's rule both add a strike and climb the same ladder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.moderation.durations import format_duration
from bot.moderation.neutralize import inline_literal
from bot.moderation.settings import LadderStep

__all__ = ["Notice", "ladder_step", "protected", "render_notice", "step_label"]

# Roles whose holders no bot sanction may touch: they run the workspace (or are bots).
PROTECTED_ROLES = frozenset({"admin", "bot"})


def ladder_step(ladder: Sequence[LadderStep], live_strikes: int) -> LadderStep | None:
    """The step ``live_strikes`` brings; None below the first step (a plain warning)."""
    chosen: LadderStep | None = None
    for step in ladder:
        if step.strikes <= live_strikes:
            chosen = step
    return chosen


def step_label(step: LadderStep | None) -> str:
    if step is None:
        return "warn"
    if step.action == "mute" and step.duration is not None:
        return f"mute {format_duration(step.duration)}"
    return step.action.replace("_", " ")


def protected(
    *,
    username: str,
    roles: Iterable[str],
    bot_username: str | None,
    bot_moderators: Iterable[str],
    user_id: str = "",
    exempt_roles: Iterable[str] = (),
) -> str | None:
    """Why ``username`` may not be sanctioned by the bot (None: they may). ``bot_moderators``
    holds user ids, matched with ``user_id`` (a username can be taken over)."""
    held = set(roles)
    name = inline_literal(username)
    if bot_username and username == bot_username:
        return "I do not sanction myself."
    if "admin" in held:
        return f"{name} is an administrator; administrators cannot be sanctioned through the bot."
    if user_id and user_id in set(bot_moderators):
        return f"{name} is a bot moderator; remove them from moderation.moderators first."
    shielded = (PROTECTED_ROLES | set(exempt_roles)) & held
    if shielded:
        return f"{name} holds the {', '.join(sorted(shielded))} role, which is exempt from sanctions."
    return None


@dataclass(frozen=True, slots=True)
class Notice:
    """What the user is told, privately."""

    kind: str  # warn | mute | unmute | kick | ban | unban | expired
    reason: str
    rooms: tuple[str, ...] = ()  # room names; empty with everywhere=True
    everywhere: bool = False
    until: float | None = None  # for a mute: when it ends (None: until a moderator lifts it)
    live_strikes: int = 0
    appeal: str = ""


def render_notice(notice: Notice) -> str:
    """The DM text. The reason is a moderator's (or a rule's) words: quoted and made inert."""
    where = "every room" if notice.everywhere else ", ".join(inline_literal("#" + r) for r in notice.rooms)
    reason = inline_literal(notice.reason or "no reason given")
    if notice.kind == "warn":
        head = "You have received a warning from the moderators"
    elif notice.kind == "mute":
        ends = (
            "until a moderator lifts it"
            if notice.until is None
            else "until " + datetime.fromtimestamp(notice.until, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        head = f"You have been muted in {where} {ends}: you can read but not post"
    elif notice.kind == "kick":
        head = f"You have been removed from {where}"
    elif notice.kind == "ban":
        head = f"You have been banned from {where}: you cannot rejoin it until a moderator lifts the ban"
    elif notice.kind == "unban":
        return f"A moderator lifted your ban from {where}; you may join it again."
    elif notice.kind == "expired":
        return f"Your mute in {where} has ended; you can post there again."
    else:  # unmute
        return f"A moderator lifted your mute in {where}; you can post there again."
    lines = [f"{head}.", f"Reason: {reason}"]
    if notice.live_strikes:
        lines.append(
            f"Strikes on record: {notice.live_strikes} (repeated strikes lead to longer mutes; they expire "
            "with time)."
        )
    if notice.appeal:
        lines.append(notice.appeal)
    return "\n".join(lines)
