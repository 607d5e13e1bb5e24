"""Automatic anti-spam protections: flood, repeated content, mention spam, links, raids.

Pure core: the shell turns each new message into a :class:`Post` and each join into a
:class:`Join`; :meth:`Protections.on_post` and :meth:`Protections.on_join` return the decisions as
frozen :class:`Trigger` values. Nothing here sleeps, reads a clock, calls Rocket.Chat or logs; time
is the ``ts`` the shell passes in (server time or the bot's clock, in seconds).

How each protection decides (``limit`` on a trigger is always the most that is allowed, so the
first trigger of a burst has ``count == limit + 1``):

* **flood** -- more than ``messages`` (on probation: ``probation_messages``) messages by one user in
  one room within ``seconds``. Fires once per burst: after a trigger that user+room stays quiet
  until the window empties, i.e. until the user has posted nothing in that room for ``seconds``
  (``act`` mutes once, not on every later message). The next message after that starts a new count.
* **repeat** -- the same normalised text (:func:`repeat_fold`: the matcher's fold — case, NFKC,
  confusables, invisible characters, leetspeak, punctuation and runs of spaces — plus the numbers
  written as numbers, which the fold would read as letters: "see you at 6" and "see you at 9"
  differ) by one user in ``rooms`` distinct rooms, or ``copies`` times in one room, within
  ``seconds``. Only a hash of the text is kept. The first trigger carries every copy in the window
  (all rooms). After it, each further copy yields its own trigger with just that message, so the
  shell deletes it too, until the user has posted no copy for ``seconds``; then counting starts
  again from zero. Texts shorter than ``min_length`` once normalised never count.
* **mentions** -- per message: more than ``max_mentions`` (on probation: ``probation_mentions``)
  distinct users, or ``@all``/``@here`` from an author without one of ``everyone_roles``.
* **links** -- a link to a blocked domain or any subdomain of one, or (``hold_probation``) any link
  from an account on probation. See :func:`find_domains` for what counts as a link.
* **raid** -- more than ``joins`` distinct members joining one room within ``seconds``. Once per
  raid: quiet until the window empties (no join to that room for ``seconds``).

Windows are half-open: an event exactly ``seconds`` older than the current one has left the
window. Timestamps that go backwards for one user+room (catch-up after a reconnect) are taken as
the newest time already seen there. Exempt rooms (``exempt_rooms``, by name or rid) produce nothing;
a protection in mode ``off`` keeps no state and costs one attribute test.

Memory is bounded: every per-(user, room), per-(user, text) and per-room window lives in an LRU
of at most ``max_keys`` keys per protection (least recently used dropped first), and holds only
the events that can still matter -- at most ``limit + 1`` (repeat: ``(rooms - 1) * (copies - 1) +
1``), none once its burst has fired. Windows whose newest event has left the window are dropped in
batches as new keys arrive, so state follows the traffic, not only the cap.

The shell should pass new messages only (not edits or re-emits; ingest already drops those) and
skip the bot's own messages. ``Post.urls`` may carry Rocket.Chat's own parse of the links (the
message's ``urls`` field); their hosts count as links next to what :func:`find_domains` finds.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, NamedTuple, TypeVar
from urllib.parse import unquote

from bot.moderation.normalize import base_fold, coarse
from bot.moderation.settings import Mode, ProtectionSettings

__all__ = ["Join", "Post", "Protections", "Trigger", "find_domains"]

Protection = Literal["flood", "repeat", "mentions", "links", "raid"]
ActiveMode = Literal["alert", "act"]
Action = Literal["mute", "delete", "hold", "lock", "none"]


class Post(NamedTuple):
    """One new message, as the shell extracts it from the stream (no REST call needed).

    A named tuple rather than a frozen dataclass: one is built for every message, and a frozen
    dataclass's constructor (a guarded ``object.__setattr__`` per field) costs several times more."""

    mid: str
    rid: str
    room_name: str | None
    user_id: str
    username: str
    text: str  # the message text (attachments are not looked at)
    ts: float  # seconds
    mentions: tuple[str, ...]  # distinct mentioned usernames, without "all" and "here"
    everyone: bool  # the message mentions @all or @here
    probation: bool  # the account is younger than probation_days (the shell looks it up)
    may_mention_everyone: bool  # the author holds one of mentions.everyone_roles (only needed if everyone)
    # Rocket.Chat's own parse of the links (the message's ``urls[].url``), when the shell has it:
    # their hosts count as links too, so a link the server saw is never missed.
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Join:
    """A member joined a room."""

    rid: str
    room_name: str | None
    user_id: str
    username: str
    ts: float


@dataclass(frozen=True, slots=True)
class Trigger:
    """A decision of one protection, as data. ``detail`` never contains message text."""

    protection: Protection
    mode: ActiveMode
    user_id: str | None  # None for raids
    username: str | None
    rid: str
    room_name: str | None
    mids: tuple[str, ...]  # the messages involved (repeat: every copy in the window, in all rooms)
    rooms: tuple[str, ...]  # rids involved (repeat across rooms)
    action: Action  # what `act` does: flood mute, repeat/mentions delete, links hold, raid lock/none
    detail: str  # short explanation for the moderators, e.g. "11 messages in 60 s (limit 10)"
    count: int
    limit: int  # the most that is allowed; the first trigger of a burst has count == limit + 1
    users: tuple[str, ...] = ()  # raid: the user ids of the members who joined in the window


# --- links ---------------------------------------------------------------------------------------

# A URL with a scheme (its authority, then the rest up to white space), or a bare dotted name. Both
# are fixed patterns, linear in the text: labels cannot contain the dot that separates them, and
# the look-behind stops a bare name from starting inside a word or another name.
_BARE = r"(?<![\w.-])(?P<host>(?:[\w-]+\.)+[\w-]+)"
_LINK = re.compile(
    r"\b[a-z][a-z0-9+-]{0,31}://(?P<auth>[^\s/?#\\<>\"'`|(){}]+)(?P<rest>[/?#\\][^\s<>\"'`]*)?|" + _BARE,
    re.IGNORECASE,
)
_BARE_ONLY = re.compile(_BARE)
_DOT_WORD = re.compile(r"\.[^\W_]")
_ANCHOR = re.compile(r"\.[^\W_]|://")
_SPACE = re.compile(r"\s")
_DIGIT = re.compile(r"\d")
_PUNCT = ".,;:!?()[]{}\"'#*"
# A number in an ASCII text is a word (white space around it, as str.split() cuts) that is ASCII
# digits once _PUNCT is stripped from its ends. Its first digit follows white space, _PUNCT or
# nothing: with digits read as "0" and those as " ", a text without " 0" that does not start with
# "0" has no number.
_NUMBER_MARKS = bytes(
    ord("0") if chr(b).isdigit() else ord(" ") if chr(b).isspace() or chr(b) in _PUNCT else ord("a")
    for b in range(256)
)
# The digits of each such word. (In ASCII, isdigit() is [0-9] and \s is isspace().)
_ASCII_NUMBER = re.compile(rf"(?<!\S)[{re.escape(_PUNCT)}]*([0-9]+)[{re.escape(_PUNCT)}]*(?!\S)")
# Dots that IDNA (and browsers) read as "." in a host name.
_ALT_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# Invisible characters that would split a bare name ("ex\u200bample.com") or hide in it.
_INVISIBLE = dict.fromkeys(
    [
        *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFEFF, 0xFFA0),
        *range(0x180B, 0x1810),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *range(0xFE00, 0xFE10),
    ]
)
_HAS_INVISIBLE = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]")

# A bare name with no scheme, no "www." and no path is a link only if its top-level domain is one
# that links use; "file.txt", "main.py", "README.md", "e.g." and "3.14" are not links. (Names that
# are also file extensions -- py, sh, md, rs, pl, so, zip, mov, ai -- count only with a scheme,
# "www." or a path.) Any dotted name, link or not, is still compared with the block list.
_LINK_TLD_NAMES = """
    com net org info biz edu gov mil int name pro mobi asia tel travel jobs aero coop museum
    app dev io co me gg ly tv cc to ws su fm am la gl sx
    xyz top site online store shop club live link click win vip fun icu buzz cam space website tech
    fit life world today news blog cloud email host page art best chat cool digital fyi guru help
    lol love network one plus run sbs cfd bond quest rocks social stream team tips media group
    uk de fr nl eu ru cn jp br au ca es it ch se no dk fi at be cz sk hu ro gr pt ie il ae sa pk
    ng ke eg ph th vn id my sg hk tw kr nz za mx ar cl pe ve ua by kz ir tr in us tk ml ga cf gq
"""
_LINK_TLDS = frozenset(_LINK_TLD_NAMES.split())


def _host_of(authority: str) -> str:
    host = authority.rpartition("@")[2]  # "trusted.com@evil.com" goes to evil.com
    if host.startswith("["):  # an IPv6 literal
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.partition(":")[0]


def _canonical(host: str) -> str:
    """A host as the block list compares it: lower case, IDNA (punycode), no "www.", no trailing dot."""
    if "%" in host:
        host = unquote(host)
    host = host.rstrip(".").lower()
    if not host.isascii():
        # Not a valid IDNA name (an over-long label, say): compare it as written.
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if host.startswith("www."):
        host = host[4:]
    return host


def _valid_bare(name: str) -> bool:
    """Whether a bare dotted name (hyphens at its ends already cut) may be a host: its last label
    is letters (or punycode) and at least two long, so "e.g", "3.14" and "v1.2.3" are not."""
    tld = name[name.rfind(".") + 1 :]
    return len(tld) >= 2 and (tld.isalpha() or tld[:4].lower() == "xn--") and len(name) <= 253


def _scan(text: str, urls: Iterable[str] = ()) -> list[tuple[str, bool]]:
    """Every host the text names, canonical, in order, each with whether it is a link."""
    found: list[tuple[str, bool]] = []
    for url in urls:
        m = _LINK.match(url.strip())
        if m is not None and m.group("auth") is not None:
            found.append((_canonical(_host_of(m.group("auth"))), True))
    if (
        "." not in text
        and "://" not in text
        and (text.isascii() or not any(d in text for d in "\u3002\uff0e\uff61"))
    ):
        return found
    if not text.isascii():
        if "\u3002" in text or "\uff0e" in text or "\uff61" in text:
            text = text.translate(_ALT_DOTS)
        if _HAS_INVISIBLE.search(text) is not None:
            text = text.translate(_INVISIBLE)
    if "://" not in text and _DOT_WORD.search(text) is None:
        return found  # dots only at the end of sentences ("ok.", "wait... what")
    # Links cannot span white space, so the pattern only runs over the white-space-delimited
    # stretches around an anchor (a dot before a letter or digit, or "://"), not the whole text:
    # a sentence's final dot costs one search. Each stretch starts at white space (or where the
    # previous one ended) and ends at white space, so the pattern sees the same boundaries there
    # as in the whole text; every character is searched a bounded number of times.
    n = len(text)
    pos = 0
    while pos < n:
        a = _ANCHOR.search(text, pos)
        if a is None:
            break
        i = a.start()
        start = max(text.rfind(" ", pos, i), text.rfind("\n", pos, i), pos - 1) + 1
        ws = _SPACE.search(text, a.end())
        end = n if ws is None else ws.start()
        _names(text, start, end, found)
        pos = end
    return found


def _names(text: str, start: int, end: int, found: list[tuple[str, bool]]) -> None:
    n = len(text)
    for m in _LINK.finditer(text, start, end):
        auth = m.group("auth")
        if auth is not None:
            found.append((_canonical(_host_of(auth)), True))
            rest = m.group("rest")
            if rest and "." in rest:
                # A name inside a path or query ("?to=evil.com") is not a link of its own, but a
                # redirect through it is still compared with the block list.
                for r in _BARE_ONLY.finditer(rest):
                    name = r.group("host").strip("-")
                    if _valid_bare(name):
                        found.append((_canonical(name), False))
            continue
        name = m.group("host").strip("-")  # "-evil.com-" names evil.com
        if not _valid_bare(name):
            continue
        e = m.end()
        after = text[e] if e < n else ""
        pathish = after in ("/", "?", "#") or (after == ":" and e + 1 < n and text[e + 1].isdigit())
        if after == "@":  # the user part of "trusted.com@evil.com"
            link = False
        elif pathish or name[:4].lower() == "www.":
            link = True
        else:
            tld = name[name.rfind(".") + 1 :]
            at = m.start() > 0 and text[m.start() - 1] == "@"  # an e-mail address or a mention
            if not at and (tld.islower() or tld.isupper()):
                host = _canonical(name)
                found.append((host, host[host.rfind(".") + 1 :] in _LINK_TLDS))
                continue
            link = False
        found.append((_canonical(name), link))


def repeat_fold(text: str) -> str:
    """The text as the repeat check compares it. The matcher's fold turns digits into letters
    (leetspeak: "fr33" is "free"), which would make "order 16" and "order 19" one text; numbers
    standing on their own are kept as they are, after the fold."""
    folded = coarse(text).strip(" ")
    if text.isascii():
        # The words that are digits once stripped of punctuation, at C speed: every message is
        # folded, and most have no such word (a digit inside a word, "n42", is no number).
        marks = text.encode("ascii").translate(_NUMBER_MARKS)
        if b" 0" not in marks and marks[:1] != b"0":
            return folded
        numbers = _ASCII_NUMBER.findall(text)
    else:
        if _DIGIT.search(text) is None:
            return folded
        numbers = [t for w in text.split() if (t := w.strip(_PUNCT)).isdigit()]
    return f"{folded}\x00{' '.join(numbers)}" if numbers else folded


def find_domains(text: str) -> list[str]:
    """The domains of the links in ``text``: lower case, punycode, without ``www.``, port or user part.

    A link is a URL with a scheme (``https://...``, any ``name://``), a name starting with
    ``www.``, a dotted name followed by a path, query or port (``example.com/x``, ``t.me/join``,
    ``evil.zip/a``), or a bare dotted name whose top-level domain is one links use
    (``example.com``, ``discord.gg``; the suffix in one case, so "end.It" is not a link). File
    names ("file.txt", "main.py"), abbreviations ("e.g.") and numbers are not links; e-mail
    addresses are not links either. Each domain is listed once, in order of appearance.
    """
    return list(dict.fromkeys(host for host, link in _scan(text) if link and host))


def _skeleton(host: str) -> str:
    """A canonical host folded like the matcher folds text: look-alike letters become Latin."""
    if "xn--" in host:
        try:
            host = host.encode("ascii").decode("idna")
        except UnicodeError:
            return host
    return ".".join(
        "-".join("".join(base_fold(part).split()) for part in label.split("-")) for label in host.split(".")
    )


def _block_entry(entry: str) -> str:
    entry = entry.strip()
    if "://" in entry:
        m = _LINK.match(entry)
        entry = _host_of(m.group("auth")) if m is not None and m.group("auth") else ""
    return _canonical(entry.lstrip("*").lstrip("."))


# --- windows -------------------------------------------------------------------------------------

E = TypeVar("E")


class _Window(Generic[E]):
    """One key's burst: its events in the window (oldest first; the newest is always in it while
    the window is armed), the newest event's time, and the limit it fired at (0: armed)."""

    __slots__ = ("events", "last", "limit", "total")

    def __init__(self, ts: float, first: E) -> None:
        self.events: list[E] = [first]
        self.last = ts
        self.limit = 0
        self.total = 0  # repeat: copies in the burst so far

    def rearm(self, ts: float, first: E) -> None:
        """The window had emptied: the burst is over, ``first`` starts the next one."""
        self.events = [first]
        self.last = ts
        self.limit = 0
        self.total = 0


class _Windows(Generic[E]):
    """An LRU of windows, at most ``cap`` keys, least recently touched first.

    :meth:`enter` brings an event to its key's window (:meth:`start` adds a key). Windows whose
    newest event has left the window are dropped in batches as time moves on, so that state follows
    the traffic and not only the cap: the front window expires first, so one comparison per new
    key says whether a sweep is due.
    """

    __slots__ = ("cap", "d", "span", "sweep_at")

    _BATCH = 1024  # at most this many windows dropped per new key (a bounded pause)

    def __init__(self, cap: int, span: float) -> None:
        self.d: OrderedDict[Hashable, _Window[E]] = OrderedDict()
        self.cap = cap
        self.span = span
        self.sweep_at = float("inf")

    def __len__(self) -> int:
        return len(self.d)

    def enter(self, key: Hashable, ts: float, first: E) -> tuple[_Window[E], float] | None:
        """Bring the event ``first``, at ``ts``, to the window of ``key``, moving the key to the end.

        None when it begins a burst (a new key, or a window emptied since its newest event): it is
        then the window's only event. Else the window and the event's time, never before the
        window's newest (a clock stepping back does not reorder it); the caller decides what the
        event adds to the window.
        """
        d = self.d
        w = d.get(key)
        if w is None:
            self.start(key, ts, first)
            return None
        d.move_to_end(key)
        last = w.last
        if ts < last:
            ts = last
        if last <= ts - self.span:
            w.rearm(ts, first)
            return None
        w.last = ts
        return w, ts

    def start(self, key: Hashable, ts: float, first: E) -> None:
        d = self.d
        if ts >= self.sweep_at:
            self._sweep(ts)
        elif not d:
            self.sweep_at = ts + self.span * 1.0625
        d[key] = _Window(ts, first)
        if len(d) > self.cap:
            d.popitem(last=False)

    def _sweep(self, ts: float) -> None:
        d = self.d
        cutoff = ts - self.span
        for _ in range(self._BATCH):
            if not d:
                self.sweep_at = ts + self.span * 1.0625
                return
            oldest = next(iter(d.values())).last
            if oldest > cutoff:
                # Next sweep when the front has expired, plus a sixteenth of the window so that
                # steady traffic drops windows in batches rather than one per message.
                self.sweep_at = oldest + self.span * 1.0625
                return
            d.popitem(last=False)


def _active(mode: Mode) -> ActiveMode | None:
    return None if mode == "off" else mode


def _s(seconds: float) -> str:
    return f"{seconds:g}"


_NOT_COUNTED = frozenset({"all", "here"})


class Protections:
    """The decision engine. One instance per settings; build a new one when the settings change."""

    def __init__(self, settings: ProtectionSettings, *, max_keys: int = 50_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.settings = settings
        self._exempt = frozenset(r.strip().lstrip("#") for r in settings.exempt_rooms)
        self._probation_on = settings.probation_days > 0
        f, r, mn, ln, rd = settings.flood, settings.repeat, settings.mentions, settings.links, settings.raid
        self._flood_mode = _active(f.mode)
        self._repeat_mode = _active(r.mode)
        self._mentions_mode = _active(mn.mode)
        self._links_mode = _active(ln.mode)
        self._raid_mode = _active(rd.mode)
        # Read once here rather than through the settings on every message.
        self._flood_seconds = f.seconds
        self._flood_limit = f.messages
        self._flood_probation_limit = f.probation_messages
        self._repeat_min_length = r.min_length
        # Each window holds at most limit + 1 events: nothing is added once a burst has fired
        # (repeat: before it fires, fewer than `rooms` rooms hold fewer than `copies` copies each).
        self._flood: _Windows[tuple[float, str]] = _Windows(max_keys, f.seconds)
        self._repeat: _Windows[tuple[float, str, str]] = _Windows(max_keys, r.seconds)
        self._raid: _Windows[tuple[float, str]] = _Windows(max_keys, rd.seconds)
        block = {_block_entry(d) for d in ln.block_domains}
        block.discard("")
        self._block = frozenset(block)
        self._block_skeletons = {_skeleton(d): d for d in sorted(block)}

    def tracked(self) -> dict[str, int]:
        """How many keys each windowed protection holds now (for metrics and tests)."""
        return {"flood": len(self._flood), "repeat": len(self._repeat), "raid": len(self._raid)}

    def _exempted(self, rid: str, room_name: str | None) -> bool:
        ex = self._exempt
        return bool(ex) and (rid in ex or (room_name is not None and room_name in ex))

    # --- messages --------------------------------------------------------------------------------

    def on_post(self, post: Post) -> list[Trigger]:
        """The protections a new message sets off: flood, repeat, mentions, links, in this order."""
        if self._exempt and self._exempted(post.rid, post.room_name):
            return []
        probation = post.probation and self._probation_on
        out: list[Trigger] = []
        if self._flood_mode is not None:
            t = self._check_flood(post, self._flood_mode, probation)
            if t is not None:
                out.append(t)
        if self._repeat_mode is not None:
            t = self._check_repeat(post, self._repeat_mode)
            if t is not None:
                out.append(t)
        if self._mentions_mode is not None:
            t = self._check_mentions(post, self._mentions_mode, probation)
            if t is not None:
                out.append(t)
        if self._links_mode is not None:
            t = self._check_links(post, self._links_mode, probation)
            if t is not None:
                out.append(t)
        return out

    def _trigger(
        self,
        post: Post,
        protection: Protection,
        mode: ActiveMode,
        action: Action,
        detail: str,
        count: int,
        limit: int,
        mids: tuple[str, ...] | None = None,
        rooms: tuple[str, ...] | None = None,
    ) -> Trigger:
        return Trigger(
            protection=protection,
            mode=mode,
            user_id=post.user_id,
            username=post.username,
            rid=post.rid,
            room_name=post.room_name,
            mids=(post.mid,) if mids is None else mids,
            rooms=(post.rid,) if rooms is None else rooms,
            action=action,
            detail=detail,
            count=count,
            limit=limit,
        )

    def _check_flood(self, post: Post, mode: ActiveMode, probation: bool) -> Trigger | None:
        ts = post.ts
        entered = self._flood.enter((post.user_id, post.rid), ts, (ts, post.mid))
        if entered is None:  # one message is never a flood (messages >= 1)
            return None
        w, ts = entered
        if w.limit:
            return None  # this burst already fired; only its end (w.last) matters now
        events = w.events
        cutoff = ts - self._flood_seconds
        while events and events[0][0] <= cutoff:
            del events[0]
        events.append((ts, post.mid))
        limit = self._flood_probation_limit if probation else self._flood_limit
        n = len(events)
        if n <= limit:
            return None
        s = self.settings.flood
        w.limit = limit
        mids = tuple(m for _, m in events)
        w.events = []
        on = ", on probation" if probation else ""
        detail = f"{n} messages in {_s(s.seconds)} s (limit {limit}{on})"
        return self._trigger(post, "flood", mode, "mute", detail, n, limit, mids=mids)

    def _check_repeat(self, post: Post, mode: ActiveMode) -> Trigger | None:
        text = post.text
        min_length = self._repeat_min_length
        # ASCII folds one character to at most one, so a short ASCII text cannot reach min_length.
        if len(text) < min_length and text.isascii():
            return None
        norm = repeat_fold(text)
        if len(norm) < min_length:
            return None
        key = hash((post.user_id, norm))  # an int: the text itself is not kept
        mid, rid, ts = post.mid, post.rid, post.ts
        entered = self._repeat.enter(key, ts, (ts, mid, rid))
        if entered is None:  # one copy is never repeated content (rooms, copies >= 2)
            return None
        s = self.settings.repeat
        w, ts = entered
        if w.limit:
            # After the trigger every further copy is reported on its own, until the user has
            # posted no copy for `seconds` (then the window is re-armed above).
            w.total += 1
            detail = f"another copy of a repeated text (copy {w.total} within {_s(s.seconds)} s)"
            return self._trigger(post, "repeat", mode, "delete", detail, w.total, w.limit)
        events = w.events
        cutoff = ts - s.seconds
        while events and events[0][0] <= cutoff:
            del events[0]
        in_room = 1
        for e in events:
            if e[1] == mid:
                return None  # the same message again: already counted
            if e[2] == rid:
                in_room += 1
        events.append((ts, mid, rid))
        rooms = tuple(dict.fromkeys(e[2] for e in events))
        if len(rooms) >= s.rooms:
            count, limit = len(rooms), s.rooms - 1
            detail = f"same text in {count} rooms within {_s(s.seconds)} s (limit {limit})"
        elif in_room >= s.copies:
            count, limit = in_room, s.copies - 1
            detail = f"same text {count} times in one room within {_s(s.seconds)} s (limit {limit})"
        else:
            return None
        w.limit = limit
        w.total = len(events)
        mids = tuple(e[1] for e in events)
        w.events = []
        return self._trigger(post, "repeat", mode, "delete", detail, count, limit, mids=mids, rooms=rooms)

    def _check_mentions(self, post: Post, mode: ActiveMode, probation: bool) -> Trigger | None:
        s = self.settings.mentions
        limit = s.probation_mentions if probation else s.max_mentions
        n = len(post.mentions)
        if n > limit:
            n = len(set(post.mentions) - _NOT_COUNTED)
        too_many = n > limit
        everyone = post.everyone and not post.may_mention_everyone
        if not (too_many or everyone):
            return None
        on = ", on probation" if probation else ""
        parts = []
        if too_many:
            parts.append(f"{n} users mentioned (limit {limit}{on})")
        if everyone:
            parts.append("＠all or ＠here without a role allowed to use it")  # fullwidth: no live mention
        # With only @all/@here at fault, the count is that one mention of everyone and no more
        # than zero are allowed.
        count, lim = (n, limit) if too_many else (1, 0)
        return self._trigger(post, "mentions", mode, "delete", "; ".join(parts), count, lim)

    def _check_links(self, post: Post, mode: ActiveMode, probation: bool) -> Trigger | None:
        s = self.settings.links
        hold_any = probation and s.hold_probation
        if not self._block and not hold_any:
            return None
        hosts = _scan(post.text, post.urls)
        if not hosts:
            return None
        if self._block:
            blocked = list(dict.fromkeys(b for b in map(self._blocked, (h for h, _ in hosts)) if b))
            if blocked:
                return self._trigger(
                    post,
                    "links",
                    mode,
                    "hold",
                    f"link to a blocked domain ({', '.join(blocked)})",
                    len(blocked),
                    0,
                )
        if hold_any:
            links = len({h for h, link in hosts if link and h})
            if links:
                plural = "s" if links != 1 else ""
                return self._trigger(
                    post,
                    "links",
                    mode,
                    "hold",
                    f"{links} link{plural} from an account on probation",
                    links,
                    0,
                )
        return None

    def _blocked(self, host: str) -> str | None:
        """The block-list entry ``host`` falls under (itself or a parent domain), if any."""
        block = self._block
        h = host
        while h:
            if h in block:
                return h
            h = h.partition(".")[2]
        if "xn--" in host or not host.isascii():
            # A look-alike ("exаmple.com" with a Cyrillic a) is held as its Latin original would be.
            skeletons = self._block_skeletons
            h = _skeleton(host)
            while h:
                if h in skeletons:
                    return skeletons[h]
                h = h.partition(".")[2]
        return None

    # --- joins -----------------------------------------------------------------------------------

    def on_join(self, join: Join) -> list[Trigger]:
        """A raid trigger when this join makes more than ``joins`` distinct members in the window."""
        mode = self._raid_mode
        if mode is None or (self._exempt and self._exempted(join.rid, join.room_name)):
            return []
        s = self.settings.raid
        uid = join.user_id
        entered = self._raid.enter(join.rid, join.ts, (join.ts, uid))
        if entered is None:  # one member is never a raid (joins >= 1)
            return []
        w, ts = entered
        if w.limit:
            return []  # this raid already fired
        events = w.events
        cutoff = ts - s.seconds
        while events and events[0][0] <= cutoff:
            del events[0]
        for i, e in enumerate(events):
            if e[1] == uid:  # a member leaving and joining again counts once
                del events[i]
                break
        events.append((ts, uid))
        n = len(events)
        if n <= s.joins:
            return []
        w.limit = s.joins
        w.events = []
        return [
            Trigger(
                protection="raid",
                mode=mode,
                user_id=None,
                username=None,
                rid=join.rid,
                room_name=join.room_name,
                mids=(),
                rooms=(join.rid,),
                action="lock" if s.lock else "none",
                detail=f"{n} members joined in {_s(s.seconds)} s (limit {s.joins})",
                count=n,
                limit=s.joins,
                users=tuple(e[1] for e in events),
            )
        ]
