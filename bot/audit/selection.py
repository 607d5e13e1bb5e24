"""What an export or a hold is about: a user, a case, or everything since a date (pure).

Audit records name what they concern in ``targets`` (and sometimes ``reason``) by convention:

- users: ``user`` (the member acted on), ``users`` (a list), ``author``, ``reporter``,
  ``moderator``; the record's ``actor`` is a user id too when a moderator acted;
- cases: ``case`` (an integer) or ``cases`` (a list). The store gives a record its case when it
  appends it (:func:`case_key`): one case per report, per purge, and per message acted on;
- ``room``/``rid``, ``message``/``mid``, ``evidence`` (ids, message ids and content hashes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.audit import actions

__all__ = ["USER_KEYS", "Selection", "case_key", "cases_in", "record_selected", "users_in"]

USER_KEYS = ("user", "users", "author", "reporter", "moderator")


@dataclass(frozen=True, slots=True)
class Selection:
    """Exactly one of ``user``, ``case``, ``since`` is set."""

    user: str | None = None
    case: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.user, self.case, self.since))
        if given != 1:
            raise ValueError("a selection needs exactly one of user, case, since")

    @property
    def since_iso(self) -> str | None:
        """``since`` in the store's timestamp form (UTC, milliseconds, ``Z``), which sorts as text."""
        if self.since is None:
            return None
        when = self.since if self.since.tzinfo else self.since.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    def describe(self) -> dict[str, Any]:
        if self.user is not None:
            return {"user": self.user}
        if self.case is not None:
            return {"case": self.case}
        return {"since": self.since_iso}


def _values(section: Mapping[str, Any], keys: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for key in keys:
        value = section.get(key)
        if isinstance(value, list | tuple):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def users_in(targets: Mapping[str, Any], reason: Mapping[str, Any], actor: str) -> set[str]:
    found = {v for v in _values(targets, USER_KEYS) + _values(reason, USER_KEYS) if isinstance(v, str)}
    found.add(actor)
    return found


def cases_in(targets: Mapping[str, Any], reason: Mapping[str, Any]) -> set[int]:
    keys = ("case", "cases")
    return {
        v
        for v in _values(targets, keys) + _values(reason, keys)
        if isinstance(v, int) and not isinstance(v, bool)
    }


def record_selected(
    selection: Selection, *, at: str, actor: str, targets: Mapping[str, Any], reason: Mapping[str, Any]
) -> bool:
    if selection.user is not None:
        return selection.user in users_in(targets, reason, actor)
    if selection.case is not None:
        return selection.case in cases_in(targets, reason)
    since = selection.since_iso
    return since is not None and at >= since


# Actions on one message that open (or join) that message's case when no report or purge owns them.
_MESSAGE_ACTIONS = frozenset(
    {
        actions.MESSAGE_DELETED,
        actions.MESSAGE_CENSORED,
        actions.MESSAGE_HELD,
        actions.MESSAGE_RESTORED,
        actions.IMAGE_FLAGGED,
    }
)


def case_key(action: str, targets: Mapping[str, Any], reason: Mapping[str, Any]) -> tuple[str, str] | None:
    """What case a record belongs to, as (kind, ref): its report, its purge, or the message an
    enforcement action was taken on; None for records that are about no case (config, holds...).

    A report's later records (escalation, resolution) name the report in ``targets`` or ``reason``,
    so they land in the report's case; a message deleted by a rule and later restored shares one.
    """
    for kind in ("report", "purge"):
        for section in (targets, reason):
            value = section.get(kind)
            if isinstance(value, int) and not isinstance(value, bool):
                return kind, str(value)
    mid = targets.get("message")
    if action in _MESSAGE_ACTIONS and isinstance(mid, str) and mid:
        return "message", mid
    return None
