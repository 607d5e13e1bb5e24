"""Sanctions, pure parts and store: durations, the ladder, who is protected, the notice, the
command grammar for durations, the config's validation, and the sanction ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import UsageError, parse
from bot.config import LadderStep, SanctionSettings, load_settings
from bot.errors import ConfigError
from bot.moderation.durations import DurationError, format_duration, parse_duration
from bot.moderation.sanctions import Notice, ladder_step, protected, render_notice, step_label
from bot.store import Store


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "longer than zero"),
        ("0m", "longer than zero"),
        ("-5m", "negative"),
        ("99999d", "longer than the limit"),
        ("15", "with its unit"),
        ("ten minutes", "with its unit"),
    ],
)
def test_bad_durations_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(DurationError, match=why):
        parse_duration(text)


def test_format_duration_shows_two_units() -> None:
    assert format_duration(600) == "10m"
    assert format_duration(93784) == "1d 2h"
    assert format_duration(30 * 86400) == "30d"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ("mute @x #general 0", "longer than zero"),
        ("mute @x #general -5m spam", "cannot be negative"),
        ("mute @x everywhere 99999d", "longer than the limit"),
    ],
)
def test_a_bad_duration_in_a_command_is_an_error_not_a_reason(args: str, error: str) -> None:
    parsed = parse("mod", args)
    assert isinstance(parsed, UsageError)
    assert error in parsed.text


def test_mute_command_reads_duration_and_reason() -> None:
    parsed = parse("mod", "mute @spammer #general 10m posting links")
    assert not isinstance(parsed, UsageError)
    assert parsed.get("duration") == 600
    assert parsed.text("reason") == "posting links"
    no_duration = parse("mod", "mute @spammer #general posting links")
    assert not isinstance(no_duration, UsageError)
    assert no_duration.get("duration") is None
    assert no_duration.text("reason") == "posting links"


LADDER = SanctionSettings().ladder


@pytest.mark.parametrize(
    ("strikes", "label"),
    [(0, "warn"), (1, "warn"), (2, "mute 10m"), (3, "mute 1d"), (4, "notify admins"), (9, "notify admins")],
)
def test_the_default_ladder_steps(strikes: int, label: str) -> None:
    assert step_label(ladder_step(LADDER, strikes)) == label


def test_a_ladder_starting_higher_gives_a_plain_warning_below_it() -> None:
    ladder = [LadderStep(strikes=3, action="kick")]
    assert ladder_step(ladder, 2) is None
    step = ladder_step(ladder, 3)
    assert step is not None and step.action == "kick"


def test_config_refuses_a_bad_ladder_and_thresholds(tmp_path: Path) -> None:
    cases = {
        "[[sanctions.ladder]]\nstrikes = 1\naction = 'mute'\n": "needs a duration",
        "[[sanctions.ladder]]\nstrikes = 2\naction = 'warn'\n"
        "[[sanctions.ladder]]\nstrikes = 1\naction = 'warn'\n": ("increasing order"),
        "[[sanctions.ladder]]\nstrikes = 1\naction = 'mute'\nduration = '-5m'\n": "negative",
        "[protections.flood]\nmessages = 0\n": "protections.flood.messages",
        "[protections.raid]\njoins = 0\n": "protections.raid.joins",
        "[protections.mentions]\nmode = 'loud'\n": "protections.mentions.mode",
        "[protections.links]\nblock_domains = ['spam']\n": "protections.links.block_domains",
        "[protections.flood]\nmessages = 100000\n": "protections.flood.messages",
    }
    for body, expected in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(body)
        with pytest.raises(ConfigError, match=expected):
            load_settings(path, {})


def test_config_defaults_alert_only_and_reads_durations(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[protections.flood]\nmode = 'act'\nmute = '5m'\n")
    s = load_settings(path, {})
    assert (s.protections.flood.mode, s.protections.flood.mute) == ("act", 300.0)
    d = load_settings(None, {})
    assert (d.protections.flood.mode, d.protections.repeat.mode, d.protections.mentions.mode) == (
        "alert",
        "alert",
        "alert",
    )
    assert (d.protections.links.mode, d.protections.raid.mode) == ("off", "off")


def test_protected_users() -> None:
    kw = {"bot_username": "rcmod", "bot_moderators": ["mia"]}
    assert protected(username="rcmod", roles=["bot"], **kw) == "I do not sanction myself."
    assert "administrator" in (protected(username="ann", roles=["user", "admin"], **kw) or "")
    assert "bot moderator" in (protected(username="mia", roles=["user"], user_id="mia", **kw) or "")
    # A name is not an identity: someone else called mia is no bot moderator.
    assert protected(username="mia", roles=["user"], user_id="other", **kw) is None
    assert "exempt" in (protected(username="hook", roles=["bot"], **kw) or "")
    assert protected(username="sam", roles=["user"], **kw) is None


def test_notice_quotes_the_reason_inertly_and_says_how_to_appeal() -> None:
    text = render_notice(
        Notice(
            "mute", "@all see https://x.example **now**", rooms=("general",), until=0.0, appeal="Appeal here."
        )
    )
    assert "You have been muted in ` #general ` until 1970-01-01 00:00 UTC" in text
    assert "@all" not in text and "https://" not in text and "**now**" in text.split("`")[-2]
    assert text.endswith("Appeal here.")


def test_sanction_ledger(tmp_path: Path) -> None:
    now = [1000.0]
    store = Store.open(tmp_path / "s.sqlite3", clock=lambda: now[0])
    first = store.sanctions.add_strike(
        user_id="u1", username="sam", source="moderator", actor="m1", rid=None, reason="r"
    )
    now[0] += 100
    store.sanctions.add_strike(
        user_id="u1", username="sam", source="flood", actor="rule:flood", rid="R", reason="f"
    )
    assert store.sanctions.live_strike_count("u1", since=1050.0) == 1  # the first is older than the window
    assert store.sanctions.live_strike_count("u1", since=0.0) == 2
    assert store.sanctions.pardon_strikes("u1") == 2
    assert store.sanctions.live_strike_count("u1", since=0.0) == 0
    assert [s.id for s in store.sanctions.strikes("u1")][-1] == first

    row, new = store.sanctions.begin_mute(
        user_id="u1", username="sam", rid="R", room_name="general", until=2000.0, reason="a", actor="m"
    )
    assert new and row.state == "pending"
    again, new2 = store.sanctions.begin_mute(
        user_id="u1", username="sam", rid="R", room_name="general", until=1500.0, reason="b", actor="m"
    )
    assert not new2 and again.id == row.id and again.until == 2000.0  # the longer mute stands
    store.sanctions.set_mute_state(row.id, "active")
    assert store.sanctions.due_mutes(1999.0) == []
    assert [m.id for m in store.sanctions.due_mutes(2000.0)] == [row.id]
    assert store.sanctions.next_mute_due() == 2000.0
    store.sanctions.set_mute_state(row.id, "expired", by="rcmod")
    assert store.sanctions.live_mutes("u1") == []

    assert store.sanctions.begin_room_lock("R", "general", "raid") is True
    assert store.sanctions.begin_room_lock("R", "general", "raid") is False
    assert store.sanctions.end_room_lock("R") is True

    held = store.sanctions.hold_message(mid="M1", rid="R", user_id="u1", username="sam", evidence_id=None)
    assert held is not None
    assert (
        store.sanctions.hold_message(mid="M1", rid="R", user_id="u1", username="sam", evidence_id=None)
        is None
    )
    assert store.sanctions.mark_restored(held, restored_mid="X", by="m1") is True
    assert store.sanctions.mark_restored(held, restored_mid="X", by="m1") is False
    store.close()
