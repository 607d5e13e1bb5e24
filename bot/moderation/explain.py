"""Why a text matched, or did not: the "test this text" tool behind ``rcmod match --explain``.

Pure: takes a matcher and a text, returns an :class:`Explanation`; :func:`format_explanation`
renders it for a terminal. The bot's ``/mod test`` can use the same two functions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.moderation import normalize
from bot.moderation.matcher import Candidate, Matcher
from bot.moderation.normalize import LEET_READINGS

__all__ = ["Explanation", "describe_span", "explain", "format_explanation"]


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    normalised: str  # folded (case, NFKC, invisibles, diacritics, look-alikes); leetspeak as written
    readings: tuple[tuple[str, str], ...]  # (reading, what the automaton saw)
    candidates: tuple[Candidate, ...]
    reasons: tuple[tuple[str, ...], ...]  # per candidate: the folds that made its text match


def _name(ch: str) -> str:
    return unicodedata.name(ch, f"U+{ord(ch):04X}")


def describe_span(text: str, start: int, end: int) -> tuple[str, ...]:
    """The folds that turn ``text[start:end]`` into the term's letters, one phrase each."""
    analysis = normalize.analyse(text)
    reasons: list[str] = []
    case = False
    separators = False
    conf = normalize._confusables()
    for k, (a, b) in enumerate(zip(analysis.seg_start, analysis.seg_end, strict=True)):
        if b <= start or a >= end:
            continue
        seg = text[a:b]
        base = analysis.base[k]
        for ch in seg:
            if normalize._is_invisible(ch):
                reasons.append(f"removed invisible {_name(ch)}")
        visible = "".join(ch for ch in seg if not normalize._is_invisible(ch))
        if not visible:
            continue
        if not base.strip():
            separators = True
            continue
        compat = unicodedata.normalize("NFKC", visible)
        if compat != visible and compat.lower() != visible.lower():
            reasons.append(f"{visible!r} is a compatibility form of {compat!r}")
        folded = compat.casefold()
        if folded != compat:
            case = True
        stripped = normalize._strip_diacritics(folded)
        if stripped != folded:
            reasons.append(f"{visible!r} without diacritics is {stripped!r}")
        for ch in stripped:
            if ch in conf:
                reasons.append(f"{ch!r} ({_name(ch)}) looks like {conf[ch]!r}")
        if analysis.eligible[k]:
            for ch in base:
                if ch in LEET_READINGS:
                    reasons.append(f"leetspeak {ch!r} read as {'/'.join(sorted(LEET_READINGS[ch]))!r}")
    if case:
        reasons.insert(0, "case folded")
    if separators:
        reasons.append("letters or words split by spaces or punctuation joined")
    return tuple(dict.fromkeys(reasons))


def explain(matcher: Matcher, text: str, room: str | None = None) -> Explanation:
    detail = matcher.explain(text, room)
    analysis = normalize.analyse(text)
    readings = [("plain", normalize.coarse(text).strip(" "))]
    for reading in analysis.extra_readings:
        readings.append((normalize.READING_NAMES[reading], normalize.coarse(text, reading).strip(" ")))
    reasons = tuple(
        (*describe_span(text, c.match.start, c.match.end), *_stretched(analysis, c))
        for c in detail.candidates
    )
    return Explanation(
        text=text,
        normalised=normalize.fold_for_display(text),
        readings=tuple(readings),
        candidates=detail.candidates,
        reasons=reasons,
    )


def _stretched(analysis: normalize.Analysis, cand: Candidate) -> tuple[str, ...]:
    """For a match read with stretched letters, the letters that were cut back."""
    if cand.reading != "stretched":
        return ()
    m = cand.match
    folded = "".join(
        analysis.base[k]
        for k in range(len(analysis.base))
        if analysis.seg_start[k] < m.end and analysis.seg_end[k] > m.start
    )
    return tuple(
        f"{run.group()!r} (a letter written {len(run.group())} times) read as one or two"
        for run in re.finditer(r"([^\W\d_])\1{2,}", folded)
    )


def format_explanation(exp: Explanation) -> str:
    lines = [f"text:        {exp.text!r}", f"normalised:  {exp.normalised!r}"]
    for name, seen in exp.readings:
        lines.append(f"automaton ({name}): {seen!r}")
    matches = [(c, r) for c, r in zip(exp.candidates, exp.reasons, strict=True) if c.verdict == "match"]
    others = [(c, r) for c, r in zip(exp.candidates, exp.reasons, strict=True) if c.verdict != "match"]
    if not matches:
        lines.append("no match")
    for cand, why in matches:
        m = cand.match
        lines.append(
            f"MATCH {m.term!r} from list {m.list!r} (line {m.line}, {m.options.kind}, severity {m.severity})"
            f" at [{m.start}, {m.end}) {exp.text[m.start : m.end]!r}"
        )
        lines.append(
            f"    reading: {cand.reading}" + (f"; {'; '.join(why)}" if why else "; written as listed")
        )
    for cand, _why in others:
        m = cand.match
        lines.append(
            f"not a match: {m.term!r} from list {m.list!r} at [{m.start}, {m.end}) "
            f"{exp.text[m.start : m.end]!r}: {cand.verdict}"
        )
    return "\n".join(lines)
