"""Text folding shared by wordlist terms and message text.

The matcher works in two layers, and this module provides both:

* **Coarse text** (:func:`coarse`, :func:`coarse_raw`): what the matcher's fast path reads.
  Every message goes through it, so it is one NFKC call and one ``str.translate`` (a byte table
  for ASCII messages). It is deliberately *coarser* than the rules -- every digit reads as a
  leetspeak letter, even in numbers -- so that everything the rules accept produces a hit. A few
  context-dependent readings (``! ( +`` inside a word, ``@`` for a, ``1``/``|`` for l and ``6``
  for b) are extra readings, made only when the text has such a character in such a place.
* **Base folding with provenance** (:func:`analyse`): only for messages that may match. It folds
  the text again segment by segment, keeping the original offsets, and records which characters
  may be read as leetspeak (digits and ``@ $ € ! | ( +`` inside a token that also has letters).
  The matcher uses it to map hits back to the original text and to verify each hit exactly.

Folding a character (``base``): NFKC, casefold, drop invisible characters, strip diacritics,
fold confusable look-alikes onto Latin letters (Unicode's confusables data, from the
``confusable-homoglyphs`` package), and turn everything that is not a letter, digit or mark
into a space. Scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) get a space
on each side of every character, so each character is a word of its own: a term in those
scripts matches wherever its characters appear in a row, and a Latin term next to them still
has a word boundary.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "LEET_READINGS",
    "Analysis",
    "NormalizeOptions",
    "analyse",
    "base_fold",
    "coarse",
    "coarse_keys",
    "coarse_raw",
    "extra_readings",
    "fold_for_display",
]


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """Which evasion folds a list asks for. Case folding, NFKC and invisible characters are always on.

    ``repeats`` (letters stretched: "fuuuck") is the one fold that is off unless a list asks for
    it: looking for it makes every message cost about half again as much in the matcher.
    """

    leet: bool = True
    confusables: bool = True
    separators: bool = True
    diacritics: bool = True
    repeats: bool = False


ALL_ON = NormalizeOptions()

# Readings of leetspeak characters. ``1`` and ``|`` are ambiguous between i and l, ``6`` between
# g and b: the coarse layer reads them as i and g, the ALT reading as l and b, terms written
# with them get a key for each, and the exact check accepts either letter. ``2`` is not read as
# z: in chat it is "to" ("2day", "me2") far more often than a disguised z.
LEET_READINGS: dict[str, frozenset[str]] = {
    "0": frozenset("o"),
    "1": frozenset("il"),
    "3": frozenset("e"),
    "4": frozenset("a"),
    "5": frozenset("s"),
    "6": frozenset("gb"),
    "7": frozenset("t"),
    "8": frozenset("b"),
    "9": frozenset("g"),
    "@": frozenset("a"),
    "$": frozenset("s"),
    "€": frozenset("e"),
    "!": frozenset("i"),
    "|": frozenset("il"),
    "(": frozenset("c"),
    "+": frozenset("t"),
}
# Leetspeak characters that are not letters or digits: base folding keeps them (instead of
# turning them into word breaks) so that the readings and the exact check can decide.
LEET_PUNCT = frozenset("@$€!|(+")
# Where a leetspeak character may stand for a letter, besides inside a word: ``!`` and ``(`` only
# inside ("hell!", "(see"), ``+`` also at a word's end ("shi+", "sh!+") but not its start ("+1").
_EDGE_START = frozenset("!(+")
_EDGE_END = frozenset("!(")

# Coarse maps applied after base folding. The PLAIN reading takes ``! | @ ( +`` as word breaks
# ("hell!", "@bob", "(see") and ``1``/``6`` as i/g. Further readings only run when a cheap test
# says they could matter: AT reads ``@`` as a ("@ss", "c@t"); LEET_PUNCT_READING also reads
# ``! | ( +`` inside a word (and ``+`` at its end) as letters ("sh!t", "fu(k", "shi+"); ALT reads
# ``1`` and ``|`` as l and ``6`` as b ("1ame", "6itch").
_COARSE_COMMON = {
    "0": "o", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g", "$": "s", "€": "e",
    "!": " ", "|": " ", "(": " ", "+": " ", "1": "i",
}  # fmt: skip
PLAIN, AT, LEET_PUNCT_READING, ALT = 0, 1, 2, 3
READING_NAMES = ("plain", "at-as-a", "leet-punctuation", "alt-leet")
_COARSE = (
    str.maketrans({**_COARSE_COMMON, "@": " "}),
    str.maketrans({**_COARSE_COMMON, "@": "a"}),
    str.maketrans({**_COARSE_COMMON, "@": " "}),  # after _leet_punct_sub
    str.maketrans({**_COARSE_COMMON, "1": "l", "|": "l", "6": "b", "@": "a"}),
)
_PUNCT_LETTER = {"!": "i", "|": "i", "@": "a", "(": "c", "+": "t"}
_LEET_PUNCT = re.compile(r"(?<=[^\W_])[!|(+]*(?:[!|(+](?=[^\W_])|\+(?![!|(+]))|@(?=[^\W_])|(?<=[^\W_])@")


def _leet_punct_sub(text: str) -> str:
    """``text`` with leet punctuation read as letters, one character for one (offsets stay)."""
    return _LEET_PUNCT.sub(lambda m: "".join(_PUNCT_LETTER[c] for c in m.group()), text)


# Invisible characters that are not format characters (category Cf is dropped wholesale):
# combining grapheme joiner, variation selectors, Hangul fillers, Mongolian vowel separator.
_EXTRA_INVISIBLE = frozenset(
    [chr(0x034F), chr(0x115F), chr(0x1160), chr(0x17B4), chr(0x17B5), chr(0x180E), chr(0x3164), chr(0xFFA0)]
    + [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
    + [chr(c) for c in range(0x180B, 0x1810)]
)

# Combining marks that are diacritics on Latin, Greek and Cyrillic letters. Marks of other
# scripts (Devanagari vowel signs, Thai tone marks) are part of their words and stay.
_DIACRITIC_BLOCKS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F))

# Latin letters with a stroke or ligature have no Unicode decomposition, so stripping marks
# leaves them alone; these are the ones people use in place of plain letters.
_UNDECOMPOSABLE = {
    "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i", "ʉ": "u", "ƶ": "z",
    "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ȷ": "j", "ɍ": "r", "ɏ": "y", "ǥ": "g", "ꞁ": "l",
}  # fmt: skip

_NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3FFFF),
)


# The same ranges as a regular-expression class body.
NO_SPACE_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _NO_SPACE_RANGES)


def _is_no_space_script(ch: str) -> bool:
    cp = ord(ch)
    return cp >= 0x0E00 and any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


def _is_diacritic(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _DIACRITIC_BLOCKS)


@functools.cache
def _confusables() -> dict[str, str]:
    """Non-ASCII characters that look like one ASCII letter, from Unicode's confusables data.

    Lower-case Cyrillic and Greek letters are often listed only as look-alikes of small capitals
    (``т`` -> ``ᴛ``) while their capitals map to ASCII; following the capital and one more step
    of the data catches those. Look-alikes of digits (``З`` -> ``3``) are left alone: reading
    them as digits and then as leetspeak would be a guess too far.
    """
    # The data is read from the package rather than through its ``confusables`` module, which
    # imports urllib.request (and so socket and ssl) for its update command: the core imports
    # no network library.
    package = resources.files("confusable_homoglyphs")
    raw: dict[str, list[dict[str, str]]] = json.loads(package.joinpath("confusables.json").read_text("utf-8"))
    data: dict[str, list[str]] = {k: [h["c"] for h in v] for k, v in raw.items()}

    def ascii_letters(c: str) -> list[str]:
        c = c.strip("\u200e\u200f")
        if len(c) == 1 and c.isascii() and c.isalpha():
            return [c]
        return [d.strip("\u200e\u200f") for d in data.get(c, []) if _is_ascii_letter(d.strip("\u200e\u200f"))]

    table: dict[str, str] = {}
    for ch in data:
        if len(ch) != 1 or ch.isascii():
            continue
        starts = [ch, ch.upper()] if ch.upper() != ch else [ch]
        for start in starts:
            found = [letter for cand in data.get(start, []) for letter in ascii_letters(cand)]
            if found:
                # A capital prefers a capital ("Ι" is I, not l); everything else takes the first.
                same_case = [f for f in found if f.isupper() == (ch.isupper() and start == ch)]
                letter = (same_case or found)[0].lower()
                # The data's prototype for a vertical stroke is "l"; as a capital it is an I.
                table[ch] = "i" if letter == "l" and ch.isupper() else letter
                break
    return table


def _is_ascii_letter(c: str) -> bool:
    return len(c) == 1 and c.isascii() and c.isalpha()


def _strip_diacritics(s: str) -> str:
    decomposed = unicodedata.normalize("NFD", s)
    kept = "".join(c for c in decomposed if not _is_diacritic(c))
    out = unicodedata.normalize("NFC", kept)
    return "".join(_UNDECOMPOSABLE.get(c, c) for c in out)


def _is_invisible(ch: str) -> bool:
    return ch in _EXTRA_INVISIBLE or unicodedata.category(ch) == "Cf"


def _base_char(ch: str, opts: NormalizeOptions) -> str:
    """Fold one code point of NFKC text. Returns letters, digits, marks, leet punctuation, spaces.

    Apostrophes are word breaks like other punctuation, so "Canada's" holds the word "canada".
    """
    category = unicodedata.category(ch)
    if category in ("Cn", "Co", "Cs"):  # unassigned, private use, lone surrogates: not words
        return " "
    if _is_invisible(ch):
        return ""
    conf = _confusables() if opts.confusables else {}
    if ch in conf and not ch.islower():
        # A capital is looked up before case folding: Greek "Ν" looks like N, its small "ν" like v.
        return conf[ch]
    s = unicodedata.normalize("NFKC", ch.casefold())
    if opts.diacritics:
        s = _strip_diacritics(s)
    out: list[str] = []
    for x in s:
        if _is_invisible(x):
            continue
        if not x.isascii():
            x = conf.get(x, x)
        if x.isalnum() or unicodedata.category(x)[0] == "M":
            out.append(f" {x} " if _is_no_space_script(x) else x)
        elif x in LEET_PUNCT:
            out.append(x)
        else:
            out.append(" ")
    return "".join(out)


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table filled on first sight of each code point.

    Precomputing all 1.1 million code points would cost seconds at start-up; chat uses a few
    hundred. The cache stops growing at a bound so hostile text cannot make it huge.
    """

    _LIMIT = 200_000

    def __init__(self, fold: Callable[[str], str]) -> None:
        super().__init__()
        self._fold = fold

    def __missing__(self, cp: int) -> str:
        value = self._fold(chr(cp))
        if len(self) < self._LIMIT:
            self[cp] = value
        return value


@functools.cache
def _base_table(opts: NormalizeOptions) -> _FoldTable:
    return _FoldTable(lambda ch: _base_char(ch, opts))


@functools.cache
def _coarse_tables() -> tuple[tuple[_FoldTable, ...], tuple[bytes, ...]]:
    """Per reading: a translate table for any text, and a byte table for ASCII text."""

    def folder(table: dict[int, str]) -> Callable[[str], str]:
        return lambda ch: _base_char(ch, ALL_ON).translate(table)

    tables = tuple(_FoldTable(folder(t)) for t in _COARSE)
    # Every ASCII character folds to exactly one ASCII character, so a byte table does it at
    # memcpy speed; it is built from the same function, so the two paths agree.
    byte_tables: list[bytes] = []
    for table in tables:
        b = bytearray(range(256))
        for cp in range(128):
            v = table[cp]
            assert len(v) == 1 and v.isascii()
            b[cp] = ord(v)
        byte_tables.append(bytes(b))
    return tables, tuple(byte_tables)


# Blocks whose characters are mostly punctuation, symbols and emoji.
_SYMBOL_BLOCKS = ((0x80, 0xBF), (0x2000, 0x2BFF), (0x3000, 0x303F), (0x1F000, 0x1FAFF))


@functools.cache
def not_a_word_break() -> re.Pattern[str]:
    """Finds a non-ASCII character that does not fold to plain word breaks.

    Most non-ASCII chat is ASCII plus emoji. When every non-ASCII character of a message folds
    to spaces (emoji, dashes, quotes, but not ``™`` which is letters, nor invisible characters,
    which vanish), replacing each with ``?`` -- itself a word break -- and using the ASCII byte
    table gives the same coarse text, without a dictionary lookup per character.
    """
    table = _coarse_tables()[0][PLAIN]

    def breaks_a_word(cp: int) -> bool:
        value = table[cp]
        compat = unicodedata.normalize("NFKC", chr(cp))
        return bool(
            value
            and not value.strip(" ")
            and not _is_invisible(chr(cp))
            # Not a compatibility form of leet punctuation ("＠", "‼"): its readings differ.
            and not any(ch in LEET_PUNCT for ch in compat)
        )

    cls = _class_of(cp for lo, hi in _SYMBOL_BLOCKS for cp in range(lo, hi + 1) if breaks_a_word(cp))
    return re.compile(f"[^\\x00-\\x7f{cls}]")


def _class_of(code_points: Iterable[int]) -> str:
    """A regex character class's body for increasing ``code_points``, as runs ``lo-hi``."""
    ranges: list[tuple[int, int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


def warm_up() -> None:
    """Build the tables now (the first message would otherwise pay for it)."""
    _coarse_tables()
    not_a_word_break()
    _long_mark_run()
    _base_table(ALL_ON)


# Runs of combining marks longer than this are cut, as in Unicode's stream-safe text format
# (UAX #15): NFKC reorders a run of marks with an insertion sort, which is quadratic in the
# run's length, so a message of 100,000 accents would otherwise take minutes.
MAX_MARK_RUN = 30
_LONG_TEXT = 256


@functools.cache
def _long_mark_run() -> re.Pattern[str]:
    cls = _class_of(cp for cp in range(0x110000) if unicodedata.combining(chr(cp)))
    return re.compile(f"[{cls}]{{{MAX_MARK_RUN + 1},}}")


def _stream_safe(text: str) -> str:
    """Insert a combining grapheme joiner (invisible, dropped later) every 30 marks of a long run."""
    if len(text) <= _LONG_TEXT:
        return text
    pattern = _long_mark_run()
    if pattern.search(text) is None:
        return text
    cgj = "\u034f"

    def cut(m: re.Match[str]) -> str:
        run = m.group()
        return cgj.join(run[i : i + MAX_MARK_RUN] for i in range(0, len(run), MAX_MARK_RUN))

    return pattern.sub(cut, text)


def collapse(c: str) -> str:
    """``c`` single-spaced and padded with one space at each end."""
    # Two rounds of replace handle ordinary text (runs up to four spaces) at C speed; a split
    # catches anything longer in one linear pass.
    if "  " in c:
        c = c.replace("  ", " ").replace("  ", " ")
        if "  " in c:
            c = " ".join(filter(None, c.split(" ")))
    return f" {c.strip(' ')} "


def nfkc(text: str) -> str:
    if len(text) > _LONG_TEXT:
        text = _stream_safe(text)
    return unicodedata.normalize("NFKC", text)


# "! | ( +" standing inside a word ("sh!t"), or "+" right after one ("shi+"); "1 | 6" next to a
# letter ("1ame", "6itch"). Each starts with its character class, so the search skips to them.
_LEET_INSIDE = re.compile(r"[!|(+](?<=[^\W_].)[!|(+]*(?:(?<=\+)(?![!|(+])|(?=[^\W_]))")
_ALT_LETTER = re.compile(r"[16|](?:(?=[^\W\d_])|(?<=[^\W\d_].))")
_MENTION = re.compile(r"@([^\W_]*)")
_STRETCHED = re.compile(r"([^\W\d_])\1\1")


def leet_punctuation_inside(text: str) -> bool:
    """Whether ``! | ( +`` stand for letters somewhere in ``text`` (the LEET_PUNCT reading)."""
    return _LEET_INSIDE.search(text if text.isascii() else nfkc(text)) is not None


def extra_readings(
    text: str, mention_filter: tuple[Container[str], Container[str]] | None = None
) -> tuple[int, ...]:
    """The readings besides PLAIN that ``text`` needs (usually none).

    This runs for every message with a ``! @ | 1 6 ( +`` in it (a sixth of chat, mostly a
    mention or a number), so it is a few regular-expression searches that skip from candidate
    to candidate.

    ``mention_filter`` holds the words of the automaton's keys that start with "a", and the
    words a term may continue (``abc*``). A mention ("@peggy") is then only read as "apeggy"
    when some term could be that word; without a filter every mention is.
    """
    ascii_text = text.isascii()
    if not ascii_text:
        text = nfkc(text)
    at = False
    if "@" in text:
        for m in _MENTION.finditer(text):
            i = m.start()
            if i > 0 and text[i - 1].isalnum():
                at = True
                break
            word = m.group(1)
            if word:
                if mention_filter is None or not ascii_text:
                    at = True
                    break
                word = ("a" + word.lower()).translate(_COARSE[AT])
                whole, prefixes = mention_filter
                if (
                    word in whole
                    or (prefixes and any(word[:k] in prefixes for k in range(2, len(word))))
                    or _STRETCHED.search(word)  # "@sssss" may be "ass" stretched
                ):
                    at = True
                    break
    bang = ("!" in text or "|" in text or "(" in text or "+" in text) and bool(_LEET_INSIDE.search(text))
    alt = ("1" in text or "|" in text or "6" in text) and bool(_ALT_LETTER.search(text))
    first = (LEET_PUNCT_READING,) if bang else (AT,) if at else ()
    return (*first, ALT) if alt else first


def coarse_raw(text: str, reading: int = PLAIN) -> str:
    """The coarse text of ``text`` in one reading, before runs of spaces are collapsed.

    Every character folds on its own, so the gaps between words stay as wide as the punctuation
    and spaces that made them ("b. a. d" is "b  a  d"): the matcher reads letters split by
    separators from them.
    """
    tables, byte_tables = _coarse_tables()
    if reading == LEET_PUNCT_READING:
        # Which "! | ( + @" stand for letters depends on their neighbours once folded, as in
        # Analysis.coarse_with_owners, so the two agree.
        folded = _leet_punct_sub(nfkc(text).translate(_base_table(ALL_ON)))
        return folded.translate(_COARSE[LEET_PUNCT_READING])
    if text.isascii():
        return text.encode("ascii").translate(byte_tables[reading]).decode("ascii")
    return nfkc(text).translate(tables[reading])


def coarse(text: str, reading: int = PLAIN) -> str:
    """The automaton's view of ``text``: folded, single-spaced, padded with a space at each end."""
    return collapse(coarse_raw(text, reading))


def coarse_keys(body: str) -> tuple[str, ...]:
    """The automaton keys of a term body (empty strings if it has no word characters).

    A term is folded like text, in the reading its own characters call for ("sh!t" is "shit");
    a term that itself uses ``1``, ``|`` or ``6`` also gets the key where they read as l and b.
    """
    text = nfkc(body)
    extra = extra_readings(text)
    reading = extra[0] if extra and extra[0] != ALT else PLAIN
    keys = [coarse(text, reading).strip(" ")]
    if "1" in text or "|" in text or "6" in text:
        alt = coarse(text, ALT).strip(" ")
        if alt != keys[0]:
            keys.append(alt)
    return tuple(keys)


def base_fold(text: str, opts: NormalizeOptions = ALL_ON) -> str:
    """Fold without leetspeak or coarse merging: what an admin sees as 'the normalised text'."""
    return nfkc(text).translate(_base_table(opts))


def fold_for_display(text: str) -> str:
    return " ".join(base_fold(text).split())


# --- analysis with provenance (slow path) --------------------------------------------------


def _segment_bounds(text: str) -> list[int]:
    """Start offsets of NFKC-independent segments: a starter and the marks that follow it.

    Normalising each segment on its own gives the same result as normalising the whole text
    (Hangul vowel and final jamo join the segment before them, because NFKC composes them), and
    lets every folded character point back at the original code points it came from.
    """
    bounds: list[int] = []
    marks = 0
    combining = unicodedata.combining
    for i, ch in enumerate(text):
        if ch.isascii():
            bounds.append(i)
            marks = 0
            continue
        cp = ord(ch)
        joins = combining(ch) != 0 or 0x1160 <= cp <= 0x11FF or 0xD7B0 <= cp <= 0xD7FF
        if joins and bounds and marks < MAX_MARK_RUN:
            marks += 1
            continue
        bounds.append(i)
        marks = 0
    return bounds


@dataclass(frozen=True, slots=True)
class Analysis:
    """A text folded segment by segment.

    ``seg_start[k]``/``seg_end[k]`` are the original offsets of segment ``k``; ``base[k]`` is its
    folded form; ``eligible[k]`` says whether its leetspeak characters may be read as letters
    (they sit in a token that also has letters). ``chars``/``owner`` flatten ``base`` into one
    character sequence and the segment each character came from.
    """

    text: str
    seg_start: tuple[int, ...]
    seg_end: tuple[int, ...]
    base: tuple[str, ...]
    eligible: tuple[bool, ...]
    chars: str
    owner: tuple[int, ...]
    extra_readings: tuple[int, ...]

    def coarse_with_owners(self, reading: int, collapse: bool = True) -> tuple[str, list[int]]:
        """The coarse text (as :func:`coarse` builds it) and each character's segment (-1: padding).

        Without ``collapse`` the runs of spaces stay (as :func:`coarse_raw` leaves them)."""
        chars = _leet_punct_sub(self.chars) if reading == LEET_PUNCT_READING else self.chars
        folded = chars.translate(_COARSE[reading])  # one character for one
        owner = self.owner
        if not collapse:
            owners = [-1, *owner]
            if folded.endswith(" ") or not folded:
                return f" {folded}", owners
            return f" {folded} ", [*owners, -1]
        # Single-spaced: the first space of each run stays (with its segment), the rest go.
        parts: list[str] = [" "]
        owners = [-1]
        pos = 0
        for m in _NOT_SPACES.finditer(folded):
            a, b = m.span()
            if a > pos and pos > 0:
                parts.append(" ")
                owners.append(owner[pos])
            parts.append(folded[a:b])
            owners.extend(owner[a:b])
            pos = b
        if pos > 0 and pos < len(folded):
            parts.append(" ")
            owners.append(owner[pos])
        elif pos > 0:
            parts.append(" ")
            owners.append(-1)
        return "".join(parts), owners


_NOT_SPACES = re.compile("[^ ]+")
_LEET_CHAR = re.compile("[" + re.escape("".join(LEET_READINGS)) + "]")
_LETTER = re.compile(r"[^\W\d_]")


def analyse(text: str) -> Analysis:
    table = _base_table(ALL_ON)
    if text.isascii():
        # Every ASCII character is a segment of its own and folds to exactly one character.
        chars = text.translate(table)
        n = len(text)
        seg_start: tuple[int, ...] = tuple(range(n))
        seg_end: tuple[int, ...] = tuple(range(1, n + 1))
        base: tuple[str, ...] = tuple(chars)
        owner: tuple[int, ...] = seg_start
    else:
        bounds = _segment_bounds(text)
        seg_start = tuple(bounds)
        seg_end = (*bounds[1:], len(text))
        folded: list[str] = []
        for a, b in zip(seg_start, seg_end, strict=True):
            seg = text[a:b]
            if len(seg) == 1 and seg.isascii():
                folded.append(table[ord(seg)])
            else:
                folded.append(unicodedata.normalize("NFKC", seg).translate(table))
        base = tuple(folded)
        owner_list: list[int] = []
        for k, s in enumerate(base):
            owner_list.extend([k] * len(s))
        chars = "".join(base)
        owner = tuple(owner_list)
    eligible = [False] * len(base)
    # Tokens are runs of non-spaces. "!" and "(" at a token's edge are punctuation ("hell!",
    # "(see"), and so is "+" at its start ("+1"); "@ $ € |" may stand for letters anywhere
    # ("@ss", "a$$", "|ame"), so a mention is read both ways. Only tokens with a leetspeak
    # character are looked at.
    n = len(chars)
    done = -1  # the end of the last token looked at
    for m in _LEET_CHAR.finditer(chars):
        if m.start() < done:
            continue
        i = chars.rfind(" ", 0, m.start()) + 1
        j = chars.find(" ", m.end())
        j = n if j == -1 else j
        done = j
        lo, hi = i, j
        while lo < hi and chars[lo] in _EDGE_START:
            lo += 1
        while hi > lo and chars[hi - 1] in _EDGE_END:
            hi -= 1
        if _LETTER.search(chars, lo, hi) is not None:
            for p in range(lo, hi):
                if chars[p] in LEET_READINGS:
                    eligible[owner[p]] = True
    return Analysis(
        text=text,
        seg_start=seg_start,
        seg_end=seg_end,
        base=base,
        eligible=tuple(eligible),
        chars=chars,
        owner=owner,
        extra_readings=extra_readings(text),
    )


def readings(analysis: Analysis, first: int, last: int, opts: NormalizeOptions) -> list[frozenset[str]]:
    """The letters segments ``first..last`` spell under ``opts``, one set of readings per character.

    Spaces and leet punctuation that is not read as a letter are word breaks and are skipped.
    """
    table = _base_table(opts)
    out: list[frozenset[str]] = []
    for k in range(first, last + 1):
        if opts.confusables and opts.diacritics:  # the base folding of ALL_ON
            folded = analysis.base[k]
        else:
            folded = unicodedata.normalize("NFKC", analysis.text[analysis.seg_start[k] : analysis.seg_end[k]])
            folded = folded.translate(table)
        leet_ok = opts.leet and analysis.eligible[k]
        for ch in folded:
            if ch == " ":
                continue
            if ch in LEET_PUNCT and not analysis.eligible[k]:
                continue
            if leet_ok and ch in LEET_READINGS:
                out.append(LEET_READINGS[ch] | {ch})
            else:
                out.append(frozenset(ch))
    return out
