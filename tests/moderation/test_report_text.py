"""The pure side of reports: severity by category, rate-limit decisions, and the moderators' DM
(inert: nothing from users can ping, link or format)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.commands import REPORT_CATEGORIES
from bot.models import Room
from bot.moderation.neutralize import inline_literal
from bot.moderation.reports import RateLimits, ReportView, rate_refusal, render_report, severity_for

MENTION = re.compile(r"(^|\s|>)@([\w.-]+)")


@pytest.mark.parametrize(
    ("category", "severity"),
    [("illegal", "high"), ("hate", "high"), ("harassment", "medium"), ("privacy", "medium"), ("spam", "low")],
)
def test_severity_by_category(category: str, severity: str) -> None:
    assert severity_for(category) == severity


def test_every_category_has_a_severity() -> None:
    assert {severity_for(c) for c in REPORT_CATEGORIES} <= {"low", "medium", "high"}


@pytest.mark.parametrize(
    ("in_window", "in_day", "refused"),
    [(0, 0, False), (4, 19, False), (5, 5, True), (1, 20, True), (4, 25, True)],
)
def test_rate_limits(in_window: int, in_day: int, refused: bool) -> None:
    answer = rate_refusal(in_window, in_day, RateLimits(per_window=5, window=600, per_day=20))
    assert (answer is not None) is refused
    if answer:
        assert "Thank you" in answer


def view(**kw: object) -> ReportView:
    base: dict[str, object] = {
        "id": 7,
        "target_kind": "message",
        "category": "harassment",
        "severity": "medium",
        "room": Room("R1", "general", "c"),
        "mid": "Ab3defghijkmnopqr",
        "author_username": "bob",
        "reporters": ("alice", "anonymous"),
        "excerpt": inline_literal("@all look at https://evil.example `code` **bold**"),
        "native": "filed",
        "escalated": False,
        "opened_at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    }
    base.update(kw)
    return ReportView(**base)  # type: ignore[arg-type]


def test_the_moderators_dm_is_complete_and_inert() -> None:
    text = render_report(view(), site_url="https://chat.example.org")
    assert "*rcmod report 7*" in text and "category *harassment*" in text and "2 reporters" in text
    assert "https://chat.example.org/channel/general?msg=Ab3defghijkmnopqr" in text
    assert "` alice `, anonymous" in text
    assert "/mod resolve 7 dismiss" in text
    assert not MENTION.search(text) and "https://evil" not in text
    assert "Filed in Rocket.Chat's moderation console." in text


def test_escalated_closed_and_unreachable_variants() -> None:
    closed = render_report(view(escalated=True, outcome="dismissed by mod1"), site_url="https://x")
    assert "*escalated*" in closed and closed.endswith(":white_check_mark: dismissed by mod1")
    blind = render_report(view(native="unreachable", excerpt=None), site_url="https://x")
    assert "not quoted" in blind and "bot is not in that room" in blind
    user = render_report(view(target_kind="user", room=None, mid=None), site_url="https://x")
    assert "Reported user: ` bob `" in user
