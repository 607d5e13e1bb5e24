"""One Aho-Corasick automaton over all wordlists, and the exact check behind it.

How a message is scanned:

1. **Fast path** (every message): fold the text to its coarse form (:mod:`normalize`: a byte
   table for ASCII, and for ASCII plus emoji; NFKC and one translate table otherwise) and run
   the automaton once. Keys carry their word boundaries as spaces (``" term "``), so the
   automaton reports only whole-word hits and there is no per-hit work. Rarer readings run only
   when a cheap test says they could matter: small *gate* keys (value 0) notice spaced-out
   letters (``" b a d "``) and phrases split by punctuation (two spaces next to a phrase word),
   and a find() scan notices leet punctuation and ``1`` next to letters ("sh!t", "@ss", "1ame").
   No hit -- the common case -- means no match, and no offset map is built.
2. **Slow path** (messages with a hit): fold again segment by segment with provenance, scan the
   same readings, map each hit back to code-point offsets in the original text, and verify it
   exactly. The coarse form over-approximates (every digit reads as a letter), so each hit is
   re-checked against the term under its list's options; leetspeak is only accepted inside
   tokens that also contain letters ("455" stays a number). Finally, matches inside a match of
   an ``allow`` list are dropped.

A :class:`Matcher` is immutable: build a new one with :func:`compile` or :func:`load_matcher`
and swap the reference. Building is pure and either returns a valid matcher or raises
:class:`~bot.moderation.wordlist.WordlistError`.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ahocorasick

from bot.moderation import normalize
from bot.moderation.normalize import Analysis, NormalizeOptions, analyse, readings
from bot.moderation.wordlist import (
    ListOptions,
    Term,
    Wordlist,
    WordlistError,
    WordlistWarning,
    read_wordlists,
)

__all__ = ["MAX_TOTAL_TERMS", "Candidate", "Match", "Matcher", "ScanDetail", "compile", "load_matcher"]

MAX_TOTAL_TERMS = 1_000_000

Reading = Literal["plain", "at-as-a", "leet-punctuation", "one-as-l", "spaced"]


@dataclass(frozen=True, slots=True)
class Match:
    """A term found in a text. ``[start, end)`` are code-point offsets into the original text."""

    term: str  # as written in the list, wildcards included
    list: str  # the list's file stem
    start: int
    end: int
    severity: str
    categories: tuple[str, ...]
    options: ListOptions = field(repr=False, compare=False)
    line: int = field(default=0, compare=False)  # the term's line in its list

    @property
    def kind(self) -> str:
        return self.options.kind

    @property
    def action(self) -> str | None:
        return self.options.action


@dataclass(frozen=True, slots=True)
class Candidate:
    """A hit of the automaton and what the exact check made of it (for ``--explain``)."""

    match: Match
    reading: Reading
    verdict: str  # "match", or why it was rejected or suppressed


@dataclass(frozen=True, slots=True)
class ScanDetail:
    matches: tuple[Match, ...]
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    list_index: int
    term: Term


def _variant_bounds(n: int) -> list[tuple[int, int]]:
    """Slices of a run of ``n`` spaced-out letters to read as words: all of it, and without
    one-letter words next to it ("I'm a t e e b r u s h" holds "teebrush"). Dropping more than
    one letter needs five left, so "a s s e s s" does not hold "ass"."""
    bounds = []
    for a in range(4):
        for b in range(4 - a):
            left = n - a - b
            if left >= 2 and (a + b <= 1 or left >= 5):
                bounds.append((a, n - b))
    return bounds


def _is_letter_token(padded: str, start: int, end: int) -> bool:
    return end - start == 1 and padded[start].isalnum() and not normalize._is_no_space_script(padded[start])


def _spaced_reading(padded: str, owners: Sequence[int] | None = None) -> tuple[str, list[int]] | None:
    """``padded`` with each run of spaced-out letters ("b a d", "b. a. d") replaced by the words
    it may spell, and the owners of its characters; None if it has no such run.

    A run is two or more one-letter tokens with the same gap between each: in "s e r o r u! i"
    the "!" makes a wider gap, so the "i" after it is not part of the run.
    """
    items: list[tuple[int, int, int]] = []  # start, end, gap before
    i, n, gap = 0, len(padded), 0
    while i < n:
        if padded[i] == " ":
            gap += 1
            i += 1
            continue
        j = i
        while j < n and padded[j] != " ":
            j += 1
        items.append((i, j, gap))
        gap, i = 0, j
    out: list[str] = [" "]
    out_owners: list[int] = [-1]

    def emit(chars: str, who: Sequence[int]) -> None:
        out.append(chars + " ")
        out_owners.extend(who)
        out_owners.append(-1)

    found = False
    k = 0
    while k < len(items):
        start, end, _ = items[k]
        m = k + 1
        while m < len(items) and _is_letter_token(padded, items[m][0], items[m][1]):
            m += 1
        if not _is_letter_token(padded, start, end) or m - k < 2:
            emit(padded[start:end], owners[start:end] if owners else [-1] * (end - start))
            k += 1
            continue
        # Letters k..m-1 in a row: cut where the gap changes, the letter at a cut in both runs.
        found = True
        first = k
        for x in range(k + 1, m + 1):
            if x == m or (x > first + 1 and items[x][2] != items[x - 1][2]):
                positions = [items[y][0] for y in range(first, x)]
                for a, b in _variant_bounds(len(positions)):
                    chosen = positions[a:b]
                    emit(
                        "".join(padded[p] for p in chosen),
                        [owners[p] for p in chosen] if owners else [-1] * len(chosen),
                    )
                first = x - 1
        k = m
    return ("".join(out), out_owners) if found else None


@dataclass(frozen=True, slots=True, eq=False)
class Matcher:
    """Compiled wordlists. Immutable: build a new one to change anything."""

    lists: tuple[ListOptions, ...]
    warnings: tuple[WordlistWarning, ...]
    term_count: int
    _automaton: Any = field(repr=False)
    # Per automaton value: the terms sharing that key, and the key's length. Value 0 is the gates.
    _groups: tuple[tuple[_Entry, ...] | None, ...] = field(repr=False)
    _key_lengths: tuple[int, ...] = field(repr=False)
    _first_active: int = field(repr=False)  # groups below this hold only allow-list terms
    _table: Any = field(repr=False)  # normalize's coarse translate table, reading PLAIN
    _ascii_table: bytes = field(repr=False)  # the same for ASCII text, as a byte table
    _not_a_word_break: re.Pattern[str] = field(repr=False)  # see normalize.not_a_word_break
    _mention_filter: tuple[frozenset[str], frozenset[str]] | None = field(
        repr=False
    )  # normalize.extra_readings

    # -- fast path ---------------------------------------------------------------------------

    def scan(self, text: str, room: str | None = None) -> list[Match]:
        """Matches in ``text``, sorted by position. ``room`` (name or id) applies rooms/skip_rooms."""
        # The fast path, inlined because it runs for every message and each call and attribute
        # lookup shows in the benchmark: the coarse text as normalize.coarse() builds it, one
        # automaton pass, and out if nothing hits.
        if text.isascii():
            c = text.encode("ascii").translate(self._ascii_table).decode("ascii")
        else:
            t = text.replace("\u200d", "").replace("\ufe0f", "")  # emoji joiner and selector: invisible
            if self._not_a_word_break.search(t) is None:
                c = t.encode("ascii", "replace").translate(self._ascii_table).decode("ascii")
            else:
                # Collapsed here: scripts without spaces fold to " c " per character.
                c = normalize.collapse(normalize.nfkc(text).translate(self._table))
        # Runs of spaces ("word, word") are left in ASCII text: whole-word keys do not mind, and
        # the gate keys (value 0) notice when a phrase or spaced-out letters could need them gone.
        gated = False
        for _end, v in self._automaton.iter(f" {c} "):
            if v >= self._first_active:
                return list(self._scan_slow(text, room, detail=False).matches)
            gated = gated or v == 0
        if gated and self._gated_may_match(c):
            return list(self._scan_slow(text, room, detail=False).matches)
        # Chat ends many lines with "!", which cannot be inside a word: strip it before looking.
        if "@" in text or "|" in text or "1" in text or "!" in text.rstrip("!?.) "):
            for reading in normalize.extra_readings(text, self._mention_filter):
                if self._hits(normalize.coarse(text, reading)):
                    return list(self._scan_slow(text, room, detail=False).matches)
        return []

    def _hits(self, padded: str) -> bool:
        """Whether the padded coarse text ``padded`` has a hit of a list that is not allow-only."""
        gated = False
        for _end, v in self._automaton.iter(padded):
            if v >= self._first_active:
                return True
            gated = gated or v == 0
        return gated and self._gated_may_match(padded)

    def _gated_may_match(self, c: str) -> bool:
        """Whether ``c`` hits once single-spaced, or once spaced-out letters are joined."""
        collapsed = normalize.collapse(c)
        spaced = False
        for _end, v in self._automaton.iter(collapsed):
            if v >= self._first_active:
                return True
            # Gates left in single-spaced text are the ones for spaced-out letters.
            spaced = spaced or v == 0
        if not spaced:
            return False
        joined = _spaced_reading(f" {c} ")
        return joined is not None and self._any_active(joined[0])

    def _any_active(self, c: str) -> bool:
        first = self._first_active
        return any(v >= first for _end, v in self._automaton.iter(c))

    # -- slow path ---------------------------------------------------------------------------

    def explain(self, text: str, room: str | None = None) -> ScanDetail:
        """Every automaton hit in ``text`` and the verdict on it; ``matches`` is what :meth:`scan` returns."""
        return self._scan_slow(text, room, detail=True)

    def _readings(self, an: Analysis) -> Iterator[tuple[Reading, str, list[int]]]:
        plain, owners = an.coarse_with_owners(normalize.PLAIN)
        yield "plain", plain, owners
        for reading in an.extra_readings:
            c2, o2 = an.coarse_with_owners(reading)
            yield normalize.READING_NAMES[reading], c2, o2  # type: ignore[misc]
        # Split letters, found in the reading before runs of spaces were collapsed.
        spaced = _spaced_reading(*an.coarse_with_owners(normalize.PLAIN, collapse=False))
        if spaced is not None:
            yield "spaced", spaced[0], spaced[1]

    def _scan_slow(self, text: str, room: str | None, detail: bool) -> ScanDetail:
        an = analyse(text)
        seen: set[tuple[int, int, int, int]] = set()  # list, term line, start, end
        found: list[tuple[Match, Reading]] = []
        candidates: list[Candidate] = []
        for reading, c, owners in self._readings(an):
            for end, v in self._automaton.iter(c):
                entries = self._groups[v]
                if entries is None:
                    continue
                lo, hi = end - self._key_lengths[v] + 1, end
                while lo <= hi and c[lo] == " ":
                    lo += 1
                while hi >= lo and c[hi] == " ":
                    hi -= 1
                if lo > hi:
                    continue
                first_seg, last_seg = owners[lo], owners[hi]
                start, stop = an.seg_start[first_seg], an.seg_end[last_seg]
                for entry in entries:
                    key = (entry.list_index, entry.term.line, start, stop)
                    if key in seen:
                        continue
                    options = self.lists[entry.list_index]
                    match = Match(
                        term=entry.term.written,
                        list=options.name,
                        start=start,
                        end=stop,
                        severity=options.severity,
                        categories=options.categories,
                        options=options,
                        line=entry.term.line,
                    )
                    verdict = self._verify(an, first_seg, last_seg, entry, options, reading, room)
                    if verdict == "match":
                        seen.add(key)
                        found.append((match, reading))
                    elif detail:
                        candidates.append(Candidate(match, reading, verdict))
        # An allow match covers a match if it starts at or before it and ends at or after it:
        # among the allow spans starting at or before, the furthest end decides.
        allowed = sorted((m for m, _ in found if m.options.kind == "allow"), key=lambda a: a.start)
        allow_starts = [a.start for a in allowed]
        furthest: list[Match] = []
        for a in allowed:
            furthest.append(a if not furthest or a.end > furthest[-1].end else furthest[-1])
        matches: list[Match] = []
        for m, reading in found:
            if m.options.kind == "allow":
                if detail:
                    candidates.append(Candidate(m, reading, "allow-list match"))
                continue
            i = bisect.bisect_right(allow_starts, m.start) - 1
            cover = furthest[i] if i >= 0 and furthest[i].end >= m.end else None
            if cover is not None:
                if detail:
                    verdict = f"suppressed: inside {cover.term!r} from allow list {cover.list!r}"
                    candidates.append(Candidate(m, reading, verdict))
                continue
            matches.append(m)
            if detail:
                candidates.append(Candidate(m, reading, "match"))
        matches.sort(key=lambda m: (m.start, m.end, m.list, m.term))
        return ScanDetail(tuple(matches), tuple(candidates))

    def _verify(
        self,
        an: Analysis,
        first: int,
        last: int,
        entry: _Entry,
        options: ListOptions,
        reading: Reading,
        room: str | None,
    ) -> str:
        if not options.applies_to(room):
            return f"list {options.name!r} does not apply in room {room!r}"
        opts = options.normalize
        if reading == "spaced" and not opts.separators:
            return f"list {options.name!r} has normalize.separators = false"
        got = readings(an, first, last, opts)
        want = _term_readings(entry.term.text, opts)
        if len(got) != len(want) or any(not (g & w) for g, w in zip(got, want, strict=True)):
            return _why_not(got, want, opts)
        return "match"


def _why_not(got: Sequence[frozenset[str]], want: Sequence[frozenset[str]], opts: NormalizeOptions) -> str:
    if len(got) == len(want):
        for g, w in zip(got, want, strict=True):
            if g & w:
                continue
            shown = "/".join(sorted(g))
            if len(g) == 1 and shown in normalize.LEET_READINGS and opts.leet:
                return f"{shown!r} sits in a word without letters (a number), so it is not read as leetspeak"
            if len(g) == 1 and shown in normalize.LEET_READINGS:
                return f"{shown!r} would be leetspeak, which is off for this list"
            return f"{shown!r} does not read as {'/'.join(sorted(w))!r}"
    return "the letters differ once normalised"


@functools.lru_cache(maxsize=65536)
def _term_readings(body: str, opts: NormalizeOptions) -> list[frozenset[str]]:
    an = analyse(body)
    return readings(an, 0, len(an.base) - 1, opts) if an.base else []


# --- building -------------------------------------------------------------------------------


def compile(lists: Iterable[Wordlist]) -> Matcher:
    """Build a matcher from parsed lists. Raises :class:`WordlistError` on an unusable term."""
    lists = tuple(lists)
    names: dict[str, str] = {}
    for wl in lists:
        if wl.options.name in names:
            raise WordlistError(wl.options.source, None, f"two lists are called {wl.options.name!r}")
        names[wl.options.name] = wl.options.source
    total = sum(len(wl.terms) for wl in lists)
    if total > MAX_TOTAL_TERMS:
        raise WordlistError(lists[-1].options.source, None, f"more than {MAX_TOTAL_TERMS} terms in all lists")
    normalize.warm_up()

    by_key: dict[str, list[_Entry]] = {}
    gates: set[str] = set()
    warnings: list[WordlistWarning] = []
    count = 0
    for index, wl in enumerate(lists):
        opts = wl.options.normalize
        file = wl.options.source
        first_line: dict[tuple[bool, bool, str], int] = {}
        for term in wl.terms:
            bodies = normalize.coarse_keys(term.text)
            body = bodies[0]
            if not body:
                raise WordlistError(
                    file, term.line, f"term {term.written!r} has no letters or digits once normalised"
                )
            canonical = " ".join(normalize.base_fold(term.text, opts).split())
            dup = (term.prefix, term.suffix, canonical)
            if dup in first_line:
                warnings.append(
                    WordlistWarning(
                        file,
                        term.line,
                        f"{term.written!r} duplicates line {first_line[dup]} once normalised; merged",
                    )
                )
                continue
            first_line[dup] = term.line
            entry = _Entry(index, term)
            for variant in bodies:
                key = f"{'' if term.suffix else ' '}{variant}{'' if term.prefix else ' '}"
                by_key.setdefault(key, []).append(entry)
            count += 1
            words = body.split(" ")
            if len(words) > 1:
                # A phrase can span punctuation ("join, boaram"), which leaves two spaces. Each
                # gap gets a gate on its longer word (likely the rarer: "  boaram", not "join  ").
                for i in range(len(words) - 1):
                    left, right = words[i], words[i + 1]
                    if len(left) > len(right):
                        gates.add(f"{'' if i == 0 and term.suffix else ' '}{left}  ")
                    else:
                        gates.add(f"  {right}{'' if i == len(words) - 2 and term.prefix else ' '}")
            elif (
                opts.separators
                and len(body) >= 2
                and body.isalnum()
                and (body.isascii() or not any(normalize._is_no_space_script(ch) for ch in body[:3]))
            ):
                # Letters split by separators ("b a d", "b. a. d", "b - a - d"): gate on the
                # first three, for each width of gap ASCII text can leave (it is not collapsed).
                for gap in (" ", "  ", "   "):
                    gates.add(" " + gap.join(body[:3]) + " ")

    allow_lists = {i for i, wl in enumerate(lists) if wl.options.kind == "allow"}
    allow_only = {k for k, entries in by_key.items() if all(e.list_index in allow_lists for e in entries)}
    # Allow-only keys get the low values, so the fast path tells them apart with one comparison.
    keys = sorted(by_key, key=lambda k: k not in allow_only)
    groups: list[tuple[_Entry, ...] | None] = [None, *(tuple(by_key[k]) for k in keys)]
    first_active = 1 + len(allow_only)
    values = {k: v for v, k in enumerate(keys, start=1)}
    for gate in gates:
        values.setdefault(gate, 0)
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    # Keys go in sorted, so the trie's nodes are allocated in the order a scan walks them and
    # the scan misses the CPU cache less (about 15% faster at 100k terms than insertion order).
    for key in sorted(values):
        automaton.add_word(key, values[key])
    if len(automaton) == 0:
        # pyahocorasick refuses to search an empty automaton; a key no coarse text can contain
        # keeps "no lists" a valid (if useless) matcher.
        automaton.add_word("\x00", 0)
    automaton.make_automaton()
    mention_filter: tuple[frozenset[str], frozenset[str]] | None = None
    if all(k.startswith(" ") for k in keys):  # a "*term" key could hold an "a" anywhere
        whole = frozenset(w for k in keys for w in k.split() if w.startswith("a"))
        continued = (k.split()[-1] for k in keys if not k.endswith(" "))  # "abc*": abc may continue
        prefixes = frozenset(w for w in continued if w.startswith("a"))
        mention_filter = (whole, prefixes)
    return Matcher(
        lists=tuple(wl.options for wl in lists),
        warnings=tuple(warnings),
        term_count=count,
        _automaton=automaton,
        _groups=tuple(groups),
        _key_lengths=(0, *(len(k) for k in keys)),
        _first_active=first_active,
        _table=normalize._coarse_tables()[0][normalize.PLAIN],
        _ascii_table=normalize._coarse_tables()[1][normalize.PLAIN],
        _not_a_word_break=normalize.not_a_word_break(),
        _mention_filter=mention_filter,
    )


def load_matcher(paths: Iterable[str | Path]) -> Matcher:
    """Read wordlist files and folders and build a matcher (raises :class:`WordlistError`)."""
    return compile(read_wordlists(paths))
