"""Purges as data: the request, its validation, which messages it selects, the preview and the
confirmation token (pure).

The shell (:mod:`bot.services.purge`) walks room history, asks :func:`selects` about each message,
journals what it selected, shows :func:`summarize`'s preview, and deletes only after the
confirmation. A user purge selects exactly what ``rooms.cleanHistory`` would delete with the
same switches (the user's messages, minus pins unless ``include_pinned``, minus thread messages
unless ``threads == "purge"``, minus discussions), so the evidence stored first covers everything
the bulk call removes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.errors import ConfigError
from bot.models import Message
from bot.moderation.matcher import Matcher, compile
from bot.moderation.neutralize import inline_literal, shown_name
from bot.moderation.wordlist import ListOptions, Wordlist, WordlistError, parse_terms

__all__ = [
    "DEFAULT_CONFIRM_THRESHOLD",
    "Preview",
    "PurgeRequest",
    "PurgeUsageError",
    "confirmation_token",
    "parse_when",
    "selects",
    "summarize",
    "term_matcher",
]

DEFAULT_CONFIRM_THRESHOLD = 100
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class PurgeUsageError(ConfigError):
    """The purge as asked cannot run (unknown user or room, reversed range, empty term...).

    A usage error: exit status 2 on the command line, a usage line in chat; nothing is deleted.
    """


def parse_scope(
    words: Sequence[str], now: datetime
) -> tuple[tuple[str, ...], bool, datetime | None, datetime | None]:
    """The tail of ``/mod purge``: ``[in] #room ... | everywhere``, ``since X``, ``until Y``.

    Returns (room names, everywhere, since, until); raises PurgeUsageError on anything else.
    """
    rooms: list[str] = []
    everywhere = False
    since = until = None
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word == "in":
            i += 1
            continue
        if word == "everywhere":
            everywhere = True
        elif words[i].startswith("#") and len(words[i]) > 1:
            rooms.append(words[i][1:])
        elif word in ("since", "until"):
            if i + 1 >= len(words):
                raise PurgeUsageError(f"'{word}' needs a duration (30d) or a date (2026-01-31)")
            when = parse_when(words[i + 1], now)
            since, until = (when, until) if word == "since" else (since, when)
            i += 1
        else:
            raise PurgeUsageError(f"I did not understand {words[i]!r}: use #room, everywhere, since or until")
        i += 1
    return tuple(rooms), everywhere, since, until


def parse_when(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` (that long before ``now``) or an ISO date or date-time (UTC
    unless it says otherwise)."""
    value = text.strip()
    m = _DURATION.match(value)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PurgeUsageError(
            f"{value!r} is neither a duration (30d, 12h, 90m, 2w) nor a date (2026-01-31)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    kind: Literal["user", "term"]
    target: str  # the username (without @) or the term
    rooms: tuple[str, ...] = ()  # room names; empty only with ``everywhere``
    everywhere: bool = False
    since: datetime | None = None
    until: datetime | None = None
    include_pinned: bool = False
    threads: Literal["keep", "purge"] = "keep"

    def validate(self) -> PurgeRequest:
        if self.kind not in ("user", "term"):
            raise PurgeUsageError(f"purge what? 'user' or 'term', not {self.kind!r}")
        if not self.target.strip():
            raise PurgeUsageError(
                f"purge {self.kind}: give the {'username' if self.kind == 'user' else 'term'}"
            )
        if self.rooms and self.everywhere:
            raise PurgeUsageError("name rooms or say everywhere, not both")
        if not self.rooms and not self.everywhere:
            raise PurgeUsageError(
                "a purge of every room needs 'everywhere' said explicitly (or name the rooms)"
            )
        if self.since and self.until and self.since >= self.until:
            raise PurgeUsageError("the date range is reversed: 'since' must be before 'until'")
        if self.threads not in ("keep", "purge"):
            raise PurgeUsageError(f"threads: 'keep' or 'purge', not {self.threads!r}")
        if self.kind == "term":
            term_matcher(self.target)  # a term that normalises to nothing fails here
        return self

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rooms"] = list(self.rooms)
        out["since"] = self.since.isoformat() if self.since else None
        out["until"] = self.until.isoformat() if self.until else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PurgeRequest:
        return cls(
            kind=data["kind"],
            target=data["target"],
            rooms=tuple(data.get("rooms") or ()),
            everywhere=bool(data.get("everywhere")),
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
            include_pinned=bool(data.get("include_pinned")),
            threads=data.get("threads", "keep"),
        )

    def describe(self) -> str:
        where = "everywhere" if self.everywhere else "in " + ", ".join(f"#{r}" for r in self.rooms)
        what = f"user {self.target}" if self.kind == "user" else f"term {inline_literal(self.target)}"
        span = ""
        if self.since:
            span += f" since {self.since:%Y-%m-%d %H:%M}"
        if self.until:
            span += f" until {self.until:%Y-%m-%d %H:%M}"
        return f"purge {what} {where}{span}"


def term_matcher(term: str) -> Matcher:
    """A one-term matcher with the default list options (whole word, normalised)."""
    try:
        terms = parse_terms(term, "purge term")
        if not terms:
            raise PurgeUsageError("the term is empty")
        return compile([Wordlist(ListOptions(name="purge", kind="block"), terms)])
    except WordlistError as exc:
        raise PurgeUsageError(f"the term cannot be matched: {exc.reason}") from None


def selects(
    request: PurgeRequest, message: Message, *, bot_user_id: str | None, matcher: Matcher | None = None
) -> bool:
    """Whether the purge takes this message. The bot's own messages (policy announcements, alerts)
    are never taken."""
    if message.author.id == bot_user_id or message.is_tombstone:
        return False
    raw = message.raw
    if message.pinned and not request.include_pinned:
        return False
    if request.threads == "keep" and (message.tmid or raw.get("tcount") is not None):
        return False  # what ignoreThreads keeps: replies and thread parents
    if raw.get("drid"):
        return False  # discussions are rooms of their own; ignoreDiscussion is always sent
    if request.kind == "user":
        return message.author.username == request.target
    if message.is_system or message.is_encrypted or matcher is None:
        return False
    return any(matcher.scan(text) for text in message.scannable_texts())


@dataclass(frozen=True, slots=True)
class Example:
    room: str
    username: str
    mid: str
    excerpt: str  # neutralised and quoted


@dataclass(frozen=True, slots=True)
class Preview:
    total: int
    per_room: tuple[tuple[str, int], ...]
    per_user: tuple[tuple[str, int], ...]
    examples: tuple[Example, ...] = field(default=())

    def render(self, request: PurgeRequest, *, token: str | None, dry_run: bool) -> str:
        lines = [f"{request.describe()}: {self.total} message(s) selected"]
        if self.per_room:
            lines.append("  by room: " + ", ".join(f"#{shown_name(name)} {n}" for name, n in self.per_room))
        if self.per_user:
            lines.append("  by user: " + ", ".join(f"{shown_name(name)} {n}" for name, n in self.per_user))
        for ex in self.examples:
            lines.append(f"  e.g. #{shown_name(ex.room)} {shown_name(ex.username)}: {ex.excerpt}")
        kept = "kept" if not request.include_pinned else "included"
        lines.append(
            f"  pinned messages {kept}; thread messages {request.threads}; the bot's own messages kept"
        )
        if dry_run:
            lines.append("dry run: nothing will be deleted")
        elif token:
            lines.append(f"confirmation token: {token}")
        return "\n".join(lines)


def summarize(items: Iterable[tuple[str, str, str, str]], *, examples: int = 3) -> Preview:
    """``items`` are (room name, username, message id, text); counts biggest first."""
    rooms: Counter[str] = Counter()
    users: Counter[str] = Counter()
    shown: list[Example] = []
    total = 0
    for room, username, mid, text in items:
        total += 1
        rooms[room] += 1
        users[username] += 1
        if len(shown) < examples:
            short = text if len(text) <= 60 else text[:59] + "…"
            shown.append(Example(room, username, mid, inline_literal(short)))
    return Preview(total, tuple(rooms.most_common()), tuple(users.most_common()), tuple(shown))


def confirmation_token(job_id: int, request: PurgeRequest, total: int) -> str:
    """A short token naming this job, its request and its size: a token from another preview (or
    from before the selection changed) does not confirm this one."""
    body = json.dumps([job_id, request.to_json(), total], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:8]


def needs_token(total: int, threshold: int = DEFAULT_CONFIRM_THRESHOLD) -> bool:
    return total > threshold
