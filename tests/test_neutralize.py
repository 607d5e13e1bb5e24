"""Text copied into alert DMs pings no one, links nothing and formats nothing."""

from __future__ import annotations

import re

import pytest

from bot.moderation.neutralize import excerpt, inline_literal, neutralize

# Rocket.Chat's server-side mention detection (RC-MENTIONS): (^|\s|>)@name
MENTION = re.compile(r"(^|\s|>)@([\w.-]+)")


@pytest.mark.parametrize(
    "text",
    [
        "@all look at this",
        "hey @here and @alice",
        "` @all` escaping the code span",
        "```\n@all\n```",
        "> @channel quoted",
        "\u200b@all after a zero width space",
        "@@all",
    ],
)
def test_no_mention_survives(text: str) -> None:
    out = inline_literal(text)
    assert not MENTION.search(out)
    assert "@" not in out


def test_markdown_and_links_are_inert() -> None:
    out = inline_literal("*bold* [click](https://evil.example/x) www.evil.example ``` # heading")
    assert out.startswith("` ") and out.endswith(" `")
    inner = out[2:-2]
    assert "`" not in inner  # the span cannot be closed early
    assert "https://" not in out and "www.evil" not in out
    assert "[:]//" in out


def test_bidi_override_and_controls_removed() -> None:
    name = "admin\u202egnp.exe\u2066x\x07"
    out = neutralize(name)
    assert "\u202e" not in out and "\u2066" not in out and "\x07" not in out
    assert out == "admingnp.exex"


def test_newlines_keep_the_span_inline() -> None:
    out = inline_literal("line one\nline two")
    assert "\n" not in out and "⏎" in out


def test_excerpt_marks_the_span_and_cuts_context() -> None:
    text = "x" * 100 + "badword" + "y" * 100
    out = excerpt(text, 100, 107, context=10)
    assert "⟦badword⟧" in out
    assert out == "` …xxxxxxxxxx⟦badword⟧yyyyyyyyyy… `"


def test_excerpt_of_huge_mention_storm_stays_short_and_inert() -> None:
    text = " ".join(f"@user{i}" for i in range(5000)) + " badword"
    start = text.index("badword")
    out = excerpt(text, start, start + 7)
    assert len(out) < 200
    assert not MENTION.search(out)


def test_excerpt_offsets_are_clamped() -> None:
    assert excerpt("short", 3, 99) == "` sho⟦rt⟧ `"
