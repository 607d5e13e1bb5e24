"""Make text copied out of a message inert before it goes into a moderator's DM.

Rocket.Chat finds mentions with ``(^|\\s|>)@name`` over the raw text (code spans are *not*
special to it), auto-links URLs, and renders markdown. So the excerpt is quoted as an inline code
span (no markdown, no links inside) *and* every ``@`` becomes a fullwidth ``＠`` (no mention can
match, whatever precedes it). Backticks are swapped for a look-alike so the span cannot be closed
early, newlines are shown as ``⏎`` so the span stays inline, and bidi controls and invisible
characters are removed so a right-to-left override cannot reorder what the moderator reads.

Identifiers are untrusted too: Rocket.Chat takes a message ``_id`` from the client as any string
(``check(message, {_id: Match.Maybe(String)})`` in sendMessage, ``type: 'string'`` in
chat.sendMessage's schema), and only its own clients pick 17-character ``Random.id()`` values.
The bot still moderates a message with any id — refusing odd ids would let a member opt out —
but only a plain id (:func:`plain_id`) is pasted into a command, a button or a log line as it is;
any other is shown with :func:`id_literal` and left out of commands.

Pure code: strings in, strings out.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "defuse_everyone",
    "excerpt",
    "id_literal",
    "inline_literal",
    "link_label",
    "neutralize",
    "one_line",
    "plain_id",
    "plain_name",
    "shown_name",
]

# Rocket.Chat's Random.id(): 17 characters of [23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz];
# any 17 ASCII letters or digits are accepted as plain (an imported message may use others).
_PLAIN_ID = re.compile(r"[0-9A-Za-z]{17}")
# A username or room name as Rocket.Chat's default validation allows ([0-9a-zA-Z-_.]+), widened
# to letters of any script: nothing in it can format, link, mention or break a line.
_PLAIN_NAME = re.compile(r"[\w.-]{1,100}")
# What the server may read as a mention of everyone: @all / @here after the start, a space, ">"
# or "(" (a trailing "." or "," does not save it).
_EVERYONE = re.compile(r"(^|[\s>(])@(all|here)(?![0-9A-Za-z_-])", re.IGNORECASE)

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
        "\u2028": " ⏎ ",  # line and paragraph separators break a line as \n does
        "\u2029": " ⏎ ",
        "\r": "",
        "\t": " ",
    }
)


def neutralize(text: str) -> str:
    """The text with mentions, markdown, links, bidi tricks and control characters disarmed
    (still to be wrapped with :func:`inline_literal` before it is sent)."""
    cleaned = text.translate(_INVISIBLE).translate(_SWAPS)
    # Other control and format characters (category Cc/Cf) are dropped: they only hide things.
    # Printable ASCII has none (its only Cc are what isprintable() refuses, and it has no Cf).
    if not (cleaned.isascii() and cleaned.isprintable()):
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


def plain_id(value: str) -> bool:
    """Whether ``value`` is an id of the shape Rocket.Chat's own clients create (safe to paste
    into a command, a button, a log line or a link as it is)."""
    return _PLAIN_ID.fullmatch(value) is not None


def id_literal(value: str) -> str:
    """An id for a moderator's DM: a plain one inside a code span as it is, any other one
    neutralised (it was chosen by a member's client and may hold markdown, mentions or newlines)."""
    return f"`{value}`" if plain_id(value) else inline_literal(value[:80] + ("…" if len(value) > 80 else ""))


def defuse_everyone(text: str) -> str:
    """``text`` with every ``@all``/``@here`` the server would read as a mention of everyone made
    inert (``＠all``). The last guard before a DM goes out: the bot lacks ``mention-all``, so the
    server refuses any message that still has one, and a moderator never gets the alert."""
    return _EVERYONE.sub(lambda m: f"{m.group(1)}＠{m.group(2)}", text)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with line breaks, other control characters and bidi/invisible format characters
    escaped (``\\n``, ``\\u202e``): a value a member chose cannot start a forged log line or
    reorder one."""
    out = []
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def plain_name(value: str) -> bool:
    """Whether a username or room name is safe to paste as it is (in a command or a button);
    an administrator may relax the server's name validation, so it is checked, not assumed."""
    return _PLAIN_NAME.fullmatch(value) is not None


def shown_name(value: str) -> str:
    """A username or room name for text a moderator reads: as it is when plain, else quoted inert."""
    return value if plain_name(value) else inline_literal(value)


def link_label(text: str) -> str:
    """``text`` neutralised for the label of a markdown link ``[label](url)``: brackets and
    parentheses are swapped for look-alikes too, so a room name cannot end the label early and
    start a link of its own."""
    body = neutralize(text).strip() or "…"
    return body.translate(_LABEL_SWAPS)


_LABEL_SWAPS = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "<": "‹", ">": "›", "|": "｜"})
