"""Text copied into alert DMs pings no one, links nothing and formats nothing."""

from __future__ import annotations

import re
import unicodedata

import pytest

from bot.models import Room, UserRef
from bot.moderation.alerts import Incident, keyword_actions, permalink, render_alert
from bot.moderation.neutralize import (
    _INVISIBLE,
    _SWAPS,
    defuse_everyone,
    excerpt,
    id_literal,
    inline_literal,
    link_label,
    neutralize,
    one_line,
    plain_id,
    plain_name,
    shown_name,
)

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


# Values a member can choose (a message _id is any string to chat.sendMessage; display names,
# room and file names are free text): each renderer must keep them inert.
HOSTILE = [
    pytest.param("abc`def", id="backtick"),
    pytest.param("a``b", id="double-backtick"),
    pytest.param("x @here", id="space-at-here"),
    pytest.param("@all", id="at-all"),
    pytest.param("x\n@here", id="newline-at-here"),
    pytest.param("line\nINFO rcmod.app: forged", id="newline-forged-log"),
    pytest.param("cr\rINFO forged", id="carriage-return"),
    pytest.param("[click](http://evil.example)", id="markdown-link"),
    pytest.param("<http://evil.example|click>", id="angle-link"),
    pytest.param("*bold* _it_ ~strike~", id="markdown"),
    pytest.param("gpj.\u202eexe", id="rtl-override"),
    pytest.param("ad\u200bmin", id="zero-width-space"),
    pytest.param("\u2066iso\u2069late", id="bidi-isolate"),
    pytest.param("a\u2028b", id="line-separator"),
    pytest.param("\x1b[31mred", id="ansi-escape"),
    pytest.param("(@here)", id="parenthesised-at-here"),
    pytest.param(">@all", id="quote-at-all"),
]
LIVE_EVERYONE = re.compile(r"(^|[\s>(])@(all|here)(?![0-9A-Za-z_-])", re.IGNORECASE)
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\x00-\x1f\x7f\u2028\u2029]")


@pytest.mark.parametrize("value", HOSTILE)
def test_id_literal_is_one_closed_inert_code_span(value: str) -> None:
    out = id_literal(value)
    assert out.startswith("`") and out.endswith("`") and out.count("`") == 2
    assert "\n" not in out and not MENTION.search(out) and not INVISIBLE.search(out)
    assert "://" not in out


@pytest.mark.parametrize("value", HOSTILE)
def test_one_line_never_breaks_or_reorders_a_log_line(value: str) -> None:
    out = one_line(value)
    assert len(out.splitlines()) == 1 and not INVISIBLE.search(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_defuse_everyone_leaves_no_mention_of_everyone(value: str) -> None:
    assert not LIVE_EVERYONE.search(defuse_everyone(value))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@all lunch", "＠all lunch"),
        ("ok @here.", "ok ＠here."),
        ("@allison and @hereford", "@allison and @hereford"),  # people, not everyone
        ("mail a@all.example", "mail a@all.example"),
        ("`/mod unmute @bob everywhere`", "`/mod unmute @bob everywhere`"),
    ],
)
def test_defuse_everyone_touches_only_everyone(text: str, expected: str) -> None:
    assert defuse_everyone(text) == expected


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("qPSCPWmoXBYqBdNAF", True),
        ("aaaaaaaaaaaaaaaaa", True),
        ("qPSCPWmoXBYqBdNA", False),
        ("qPSCPWmoXBYqBdNAF1", False),
        ("qPSCPWmoXBYqBdNA`", False),
        ("qPSCPWmoXBYqBdNA\n", False),
        ("8c4d3f52-1a2b-4c3d-9e8f-0a1b2c3d4e5f", False),
    ],
)
def test_plain_ids_are_random_id_shaped(value: str, plain: bool) -> None:
    assert plain_id(value) is plain


@pytest.mark.parametrize("mid", HOSTILE)
def test_an_alert_about_a_hostile_id_is_inert(mid: str) -> None:
    from datetime import UTC, datetime

    incident = Incident(
        kind="notify",
        list="watch",
        term="badword",
        severity="high",
        categories=("harassment",),
        room=Room("GENERAL", "general", "c"),
        mid=mid,
        author=UserRef("u1", "bob"),
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        excerpt=excerpt("a badword", 2, 9),
    )
    text = render_alert(7, incident, count=1, site_url="https://chat.example")
    assert not LIVE_EVERYONE.search(text) and not INVISIBLE.search(text.replace("\n", " "))
    assert len(text.splitlines()) == 4  # no line added by the id
    assert text.count("`") % 2 == 0
    assert "/mod delete" not in text  # a command that could not be typed back is not offered
    assert all("delete" not in cmd for _, cmd in keyword_actions(7, incident))
    link = permalink("https://chat.example", incident.room, mid)
    assert link in text
    assert re.fullmatch(r"[0-9A-Za-z%._~-]+", link.split("?msg=")[1])  # percent-encoded


@pytest.mark.parametrize("name", ["general", "mod2-away", "a.b_c", "Ελληνικά", "café"])
def test_plain_names_are_shown_as_they_are(name: str) -> None:
    assert plain_name(name) and shown_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_shown_quoted_and_inert(name: str) -> None:
    out = shown_name(name)
    assert not plain_name(name)
    assert out.startswith("`") and out.count("`") == 2 and "\n" not in out
    assert not MENTION.search(out) and not INVISIBLE.search(out) and "://" not in out


def test_a_purge_preview_shows_hostile_room_and_user_names_inert() -> None:
    from bot.moderation.purge import Example, Preview, PurgeRequest

    def render(room: str, user: str) -> str:
        preview = Preview(
            total=1,
            per_room=((room, 1),),
            per_user=((user, 1),),
            examples=(Example(room=room, username=user, mid="qPSCPWmoXBYqBdNAF", excerpt="` hi `"),),
        )
        return preview.render(PurgeRequest("user", "bob", rooms=("general",)), token=None, dry_run=True)

    plain, hostile = render("general", "bob"), render("x\n@here", "[me](http://evil.example)\nforged")
    assert len(hostile.splitlines()) == len(plain.splitlines())
    assert not MENTION.search(hostile) and "](http://" not in hostile


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_room_name_cannot_break_out_of_a_link_label(name: str) -> None:
    label = link_label("#" + name)
    assert not set(label) & set("[]()<>|`\n") and not MENTION.search(label) and not INVISIBLE.search(label)
    incident = Incident(
        mid="qPSCPWmoXBYqBdNAF",
        room=Room("R1", name, "c"),
        author=UserRef("u1", "bob"),
        ts=__import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC),
        list="watch",
        term="badword",
        severity="high",
        categories=(),
        excerpt="` x `",
    )
    room_line = render_alert(1, incident, count=1, site_url="https://chat.example").splitlines()[1]
    assert room_line.count("](") == 1 and room_line.count("[") == 1


def test_ascii_text_loses_exactly_its_control_characters() -> None:
    """Printable ASCII skips the per-character filter; ASCII text still comes out as the filter
    would have it (controls dropped, the rest swapped and defanged)."""

    def reference(text: str) -> str:
        swapped = text.translate(_INVISIBLE).translate(_SWAPS)
        kept = "".join(ch for ch in swapped if unicodedata.category(ch) not in ("Cc", "Cf") or ch == " ")
        return kept.replace("://", "[:]//").replace("www.", "www[.]")

    everything = "".join(map(chr, range(128)))
    for text in (everything, everything[32:127], "see https://www.example.com *now* @all"):
        assert neutralize(text) == reference(text)
