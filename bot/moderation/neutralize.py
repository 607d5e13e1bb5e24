"""Make text copied out of a message inert before it goes into a moderator's DM.

Rocket.Chat finds mentions with ``(^|\\s|>)@name`` over the raw text (code spans are *not*
special to it), auto-links URLs, and renders markdown. So the excerpt is quoted as an inline code
span (no markdown, no links inside) *and* every ``@`` becomes a fullwidth ``＠`` (no mention can
match, whatever precedes it). Backticks are swapped for a look-alike so the span cannot be closed
early, newlines are shown as ``⏎`` so the span stays inline, and bidi controls and invisible
characters are removed so a right-to-left override cannot reorder what the moderator reads.
Pure code: strings in, strings out.
"""

from __future__ import annotations

import unicodedata

__all__ = ["excerpt", "inline_literal", "neutralize"]

# Bidi embeddings/overrides/isolates, zero-width characters, word joiner, BOM, soft hyphen.
_INVISIBLE = dict.fromkeys(
    [
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        0x00AD,
        0x061C,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ],
    None,
)
_SWAPS = str.maketrans(
    {
        "@": "＠",  # no mention can form
        "`": "ˋ",  # the code span cannot be closed from inside
        "\n": " ⏎ ",
        "\r": "",
        "\t": " ",
    }
)


def neutralize(text: str) -> str:
    """The text with mentions, markdown, links, bidi tricks and control characters disarmed
    (still to be wrapped with :func:`inline_literal` before it is sent)."""
    cleaned = text.translate(_INVISIBLE).translate(_SWAPS)
    # Other control and format characters (category Cc/Cf) are dropped: they only hide things.
    cleaned = "".join(ch for ch in cleaned if unicodedata.category(ch) not in ("Cc", "Cf") or ch == " ")
    # Defang links for clients that show the raw text (push notifications, email digests).
    return cleaned.replace("://", "[:]//").replace("www.", "www[.]")


def inline_literal(text: str) -> str:
    """``text`` neutralised and quoted as an inline code span (never empty)."""
    body = neutralize(text).strip() or "…"
    return f"` {body} `"


def excerpt(text: str, start: int, end: int, *, context: int = 60, mark: tuple[str, str] = ("⟦", "⟧")) -> str:
    """A window of ``text`` around ``[start, end)`` with the match marked, neutralised and quoted.

    Offsets are code points into ``text`` (what the matcher reports). The window is cut at
    ``context`` characters each side, with ``…`` where text was left out.
    """
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    left = max(0, start - context)
    right = min(len(text), end + context)
    before = ("…" if left > 0 else "") + neutralize(text[left:start])
    after = neutralize(text[end:right]) + ("…" if right < len(text) else "")
    body = f"{before}{mark[0]}{neutralize(text[start:end])}{mark[1]}{after}".strip()
    return f"` {body} `"
