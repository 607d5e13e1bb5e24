"""The pure core of the name watch: which fields a user or room has, the ids incidents are
recorded under, list scoping, and alert texts that stay inert."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import UserRef
from bot.moderation import Matcher, load_matcher
from bot.moderation.names import (
    NameField,
    Subject,
    allow_action,
    name_incidents,
    render_name_alert,
    render_pending,
    room_fields,
    user_fields,
)

MENTION = re.compile(r"(^|\s|>)@([\w.-]+)")
WHEN = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    (tmp_path / "watch.txt").write_text("badword\n")
    (tmp_path / "kids.txt").write_text("darn\n")
    (tmp_path / "kids.toml").write_text('rooms = ["playground"]\n')
    (tmp_path / "quiet.txt").write_text("hush\n")
    (tmp_path / "quiet.toml").write_text('skip_rooms = ["library"]\n')
    return load_matcher([tmp_path])


def test_the_pseudo_id_is_stable_for_a_value_and_changes_with_it() -> None:
    alice = Subject("user", "U1", "alice")
    first = NameField(alice, "name", "Alice badword")
    assert first.pseudo_id == NameField(alice, "name", "Alice badword").pseudo_id
    assert first.pseudo_id.startswith("user:U1:name:")
    assert first.pseudo_id != NameField(alice, "name", "Alice badword!").pseudo_id
    assert first.pseudo_id != NameField(alice, "username", "Alice badword").pseudo_id
    assert first.pseudo_id != NameField(Subject("user", "U2", "bob"), "name", "Alice badword").pseudo_id


@pytest.mark.parametrize(
    ("doc", "reason", "expected"),
    [
        (
            {"_id": "U1", "username": "alice", "name": "Alice"},
            False,
            [("username", "alice"), ("name", "Alice")],
        ),
        ({"_id": "U1", "username": "alice", "name": "  "}, False, [("username", "alice")]),
        ({"_id": "U1", "username": "alice", "reason": "hi"}, False, [("username", "alice")]),
        ({"_id": "U1", "username": "alice", "reason": "hi"}, True, [("username", "alice"), ("reason", "hi")]),
        ({"_id": "U1"}, False, []),  # no username yet (mid-registration)
    ],
)
def test_user_fields(doc: dict[str, str], reason: bool, expected: list[tuple[str, str]]) -> None:
    assert [(f.field, f.value) for f in user_fields(doc, reason=reason)] == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"_id": "R", "t": "c", "name": "random", "fname": "random", "topic": "t", "announcement": "a"},
            [("room_name", "random"), ("topic", "t"), ("announcement", "a")],
        ),
        # special characters allowed: the display name and the handle are both shown somewhere
        (
            {"_id": "R", "t": "p", "name": "my-room", "fname": "My Room"},
            [("room_name", "My Room"), ("room_name", "my-room")],
        ),
        # a discussion's handle is an id; its title is the display name
        ({"_id": "D", "t": "p", "prid": "R", "name": "x7Yq2", "fname": "Title"}, [("room_name", "Title")]),
        (
            {"_id": "R", "t": "c", "name": "team", "teamMain": True, "description": "d"},
            [("room_name", "team"), ("description", "d")],
        ),
        ({"_id": "D", "t": "d", "usernames": ["a", "b"], "topic": "x"}, []),  # DMs: named after members
        ({"_id": "L", "t": "l", "name": "visitor", "topic": "x"}, []),  # livechat: out of scope
    ],
)
def test_room_fields(doc: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert [(f.field, f.value) for f in room_fields(doc)] == expected


def test_room_scoped_lists_apply_to_their_rooms_and_not_to_user_names(matcher: Matcher) -> None:
    user = NameField(Subject("user", "U1", "alice"), "name", "darn badword hush")
    assert sorted(i.list for i in name_incidents(user, matcher.scan(user.value))) == ["quiet", "watch"]
    playground = Subject("room", "R1", "playground", "c", "playground")
    topic = NameField(playground, "topic", "darn badword hush")
    assert sorted(i.list for i in name_incidents(topic, matcher.scan(topic.value))) == [
        "kids",
        "quiet",
        "watch",
    ]
    library = Subject("room", "R2", "library", "c", "library")
    topic = NameField(library, "topic", "darn badword hush")
    assert sorted(i.list for i in name_incidents(topic, matcher.scan(topic.value))) == ["watch"]


def test_one_incident_per_list_and_term_with_the_match_marked(matcher: Matcher) -> None:
    field = NameField(Subject("user", "U1", "alice"), "name", "badword and badword")
    [incident] = name_incidents(field, matcher.scan(field.value))
    assert (incident.list, incident.term) == ("watch", "badword")
    assert "⟦badword⟧" in incident.excerpt
    assert incident.key == "user:U1|names|watch"


def test_the_alert_says_what_was_scanned_and_is_inert(matcher: Matcher) -> None:
    hostile = "@all see https://evil.example *now* badword \u202e"
    field = NameField(Subject("user", "U1", "alice"), "name", hostile)
    [incident] = name_incidents(field, matcher.scan(hostile))
    text = render_name_alert(incident, when=WHEN, site_url="https://chat.example")
    assert "Display name of ` ＠alice `" in text
    assert not MENTION.search(text)
    assert "https://evil" not in text and "\u202e" not in text
    assert "`/mod allow badword`" in text and "2026-01-02 03:04 UTC" in text

    room = Subject("room", "R1", "random", "p", "random")
    topic = NameField(room, "topic", "hey @here badword", changed_by=UserRef("U2", "bob"))
    [incident] = name_incidents(topic, matcher.scan(topic.value))
    text = render_name_alert(incident, when=WHEN, site_url="https://chat.example")
    assert "Topic of [#random](https://chat.example/group/random)" in text
    assert "Set by ` ＠bob `" in text
    assert not MENTION.search(text)


def test_the_pending_notice_says_how_to_approve_and_what_matched(matcher: Matcher) -> None:
    user = {"_id": "U9", "username": "eve", "name": "Eve @all", "reason": "badword, let me in"}
    flagged = []
    for field in user_fields(user, reason=True):
        flagged += name_incidents(field, matcher.scan(field.value))
    text = render_pending(user, flagged)
    assert "` ＠eve `" in text and "Reason given: ` badword, let me in `" in text
    assert "reason for joining matches list ` watch `" in text
    assert "Administration → Users → Pending" in text and '"userId": "U9", "activeStatus": true' in text
    assert not MENTION.search(text)
    assert render_pending({"_id": "U8", "username": "zed"}, []).count("No reason given.") == 1


def test_the_allow_button_only_for_terms_that_are_safe_to_send() -> None:
    assert allow_action("badword") == [("Allow term (false positive)", "mod allow badword")]
    assert allow_action("@all") == [] and allow_action("a`b") == []
