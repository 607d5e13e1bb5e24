"""Image decisions (pure): policy × finding × dry run → what is done, as data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.audit import actions as audit_actions
from bot.config import ConfigError, Settings, load_settings
from bot.models import FileRef, HashMatch, ImageFinding, Room
from bot.moderation.actions import DeleteMessage, EvidenceFile
from bot.moderation.images import ImageRules, alert_text, block_action, decide
from bot.moderation.settings import ImageSettings
from tests.helpers import chat_message

RULES = ImageRules("off", {"r-alert": "alert", "r-block": "block"}, alert_threshold=0.8, block_threshold=0.95)
SHA = "ab" * 32


def finding(score: float | None = None, match: HashMatch | None = None) -> ImageFinding:
    return ImageFinding(SHA, "cd" * 32, 90, 640, 480, match, score)


LISTED = HashMatch("known-bad", "pdq", 4)


@pytest.mark.parametrize(
    ("policy", "score", "verdict", "delete", "alert"),
    [
        ("off", 0.99, "clean", False, None),
        ("alert", 0.5, "clean", False, None),
        ("alert", 0.8, "alert", False, "high"),
        ("alert", 0.99, "alert", False, "high"),  # alert never deletes
        ("block", 0.85, "alert", False, "high"),
        ("block", 0.95, "block", True, "high"),
        ("block", 0.1, "clean", False, None),
    ],
)
def test_scores_against_the_thresholds(
    policy: str, score: float, verdict: str, delete: bool, alert: str | None
) -> None:
    d = decide(policy, finding(score), rules=RULES, dry_run=False)  # type: ignore[arg-type]
    assert (d.verdict, d.delete, d.tell_author, d.alert) == (verdict, delete, delete, alert)


@pytest.mark.parametrize("policy", ["alert", "block"])
def test_a_hash_list_match_is_critical_wherever_checks_run(policy: str) -> None:
    d = decide(policy, finding(0.0, LISTED), rules=RULES, dry_run=False)  # type: ignore[arg-type]
    assert (d.verdict, d.delete, d.tell_author, d.alert) == ("critical", True, True, "critical")
    assert "known-bad" in d.reason and "distance 4" in d.reason
    # A moderator's Allow never overrides an operator's list.
    assert (
        decide(policy, finding(0.0, LISTED), rules=RULES, dry_run=False, allowed=True).verdict == "critical"
    )  # type: ignore[arg-type]


def test_nothing_is_checked_where_the_policy_is_off() -> None:
    assert decide("off", finding(0.0, LISTED), rules=RULES, dry_run=False).verdict == "clean"


def test_a_refusal_is_counted_never_acted_on() -> None:
    d = decide("block", None, rules=RULES, dry_run=False, refused="bomb")
    assert (d.verdict, d.reason, d.delete, d.alert) == ("refused", "bomb", False, None)


def test_dry_run_turns_a_block_into_an_alert_saying_what_would_be_done() -> None:
    for f in (finding(0.99), finding(0.0, LISTED)):
        d = decide("block", f, rules=RULES, dry_run=True)
        assert not d.delete and not d.tell_author and d.would_block and d.alert is not None
        assert d.keep_evidence
        text = alert_text(
            d,
            room=Room("r", "general", "c"),
            author="alice",
            site_url="https://chat",
            mid="m1",
            done="",
            image_id=3,
        )
        assert "Dry run is on: I would delete" in text


def test_an_allowed_picture_is_never_flagged_by_score() -> None:
    for policy in ("alert", "block"):
        d = decide(policy, finding(1.0), rules=RULES, dry_run=False, allowed=True)  # type: ignore[arg-type]
        assert d.verdict == "allowed" and not d.delete and d.alert is None


@given(
    policy=st.sampled_from(["off", "alert", "block"]),
    score=st.one_of(st.none(), st.floats(0, 1)),
    listed=st.booleans(),
    dry_run=st.booleans(),
    allowed=st.booleans(),
    alert_at=st.floats(0, 1),
    gap=st.floats(0, 1),
)
def test_decision_invariants(
    policy: str, score: float | None, listed: bool, dry_run: bool, allowed: bool, alert_at: float, gap: float
) -> None:
    rules = ImageRules("off", {}, alert_at, min(1.0, alert_at + gap))
    d = decide(
        policy, finding(score, LISTED if listed else None), rules=rules, dry_run=dry_run, allowed=allowed
    )  # type: ignore[arg-type]
    # Nothing happens where checks are off; a dry run deletes nothing and tells no author.
    if policy == "off":
        assert d.verdict == "clean"
    if dry_run:
        assert not d.delete and not d.tell_author
    # Only a block policy or a hash-list match deletes; a deletion always alerts and tells.
    if d.delete:
        assert policy == "block" or listed
        assert d.tell_author and d.alert is not None
    # Every flagged picture alerts; a listed one is critical wherever checks run.
    if listed and policy != "off":
        assert d.alert == "critical"
    if d.verdict in ("alert", "block"):
        assert score is not None and score >= rules.alert_threshold and not allowed
    if d.verdict == "block":
        assert score is not None and score >= rules.block_threshold


def test_block_action_keeps_evidence_and_the_picture_before_deleting() -> None:
    message = chat_message("m1", "alice-id", "", rid="r-block")
    f = FileRef("F1", "private name.png", "image/png", 10, "/file-upload/F1/private%20name.png")
    d = decide("block", finding(0.99), rules=RULES, dry_run=False)
    kept = EvidenceFile("m1", "F1", SHA, None, b"\x89PNG")
    action = block_action(message, f, finding(0.99), d, kept)
    assert action.change == DeleteMessage("r-block", "m1")
    assert action.evidence == (message,) and action.files == (kept,)
    assert action.audit == audit_actions.MESSAGE_DELETED
    assert action.reason["sha256"] == SHA and action.reason["score"] == 0.99
    assert "private name" not in repr(action.reason) + repr(action.targets) + repr(kept)


def test_alert_text_carries_the_score_and_a_link_never_the_name() -> None:
    d = decide("alert", finding(0.91), rules=RULES, dry_run=False)
    text = alert_text(
        d,
        room=Room("r1", "general", "c"),
        author="alice",
        site_url="https://chat.example",
        mid="m1",
        done="",
        image_id=7,
    )
    assert "NSFW score 0.91" in text and "https://chat.example/channel/general?msg=m1" in text
    assert "/mod allowimage 7" in text


def test_rules_bind_configured_names_to_room_ids() -> None:
    settings = ImageSettings.model_validate(
        {
            "default": "alert",
            "rooms": [
                {"rooms": ["#general", "RID-staff"], "policy": "block"},
                {"rooms": ["random"], "policy": "off"},
            ],
        }
    )
    rules = ImageRules.bound(settings, {"general": "GENERAL", "random": "RANDOM"})
    assert rules.policy_for("GENERAL") == "block"
    assert rules.policy_for("RID-staff") == "block"
    assert rules.policy_for("RANDOM") == "off"
    assert rules.policy_for("general") == "alert"  # a name is no room id: the default applies
    assert rules.policy_for("elsewhere") == "alert"


def test_config_is_off_by_default_and_validated(tmp_path: Path) -> None:
    assert Settings().images.default == "off" and not Settings().images.watching
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[images]\ndefault = "alert"\n[[images.hash_lists]]\npath = "lists/bad.pdq"\nkind = "pdq"\n',
        encoding="utf-8",
    )
    s = load_settings(cfg, {})
    assert s.images.hash_lists[0].path == tmp_path / "lists" / "bad.pdq"
    assert s.images.hash_lists[0].distance == 31
    for bad, field in (
        ("[images]\nalert_threshold = 0.9\nblock_threshold = 0.5\n", "images"),
        ('[images]\ndefault = "delete"\n', "images.default"),
        ('[[images.hash_lists]]\npath = "x"\nkind = "sha256"\nmax_distance = 3\n', "images.hash_lists.0"),
        ("[images]\nmax_bytes = 0\n", "images.max_bytes"),
    ):
        cfg.write_text(bad, encoding="utf-8")
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            load_settings(cfg, {})
