"""The policy core without a server: file parsing, target resolution and the reconciler's plans.

The reconciler is checked as a table (state in, actions out) and for idempotence: applying a plan
to the state and reconciling again plans nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from bot.models import Room, UserRef
from bot.moderation.policy import (
    BANNER_MAX,
    Action,
    JoinRoom,
    PinPolicy,
    PolicyError,
    PolicySpec,
    PolicyVersion,
    PostedPolicy,
    PostPolicy,
    RetirePolicyMessage,
    RoomState,
    SetBanner,
    Targets,
    describe,
    parse_policy_file,
    reconcile,
    resolve_targets,
)

GENERAL = Room("GEN", "general", "c")
RANDOM = Room("RND", "random", "c")
STAFF = Room("STF", "staff", "p")
TEAM_A = Room("TA", "team-a", "c")
BOB = UserRef("u-bob", "bob")


def version(
    name: str = "conduct", v: int = 1, *, banner: str | None = "Be kind", delete_old: bool = False
) -> PolicyVersion:
    spec = PolicySpec(name, f"{name} text v{v}", Targets(rooms=("general",)), banner, delete_old)
    return PolicyVersion(spec, v, "file")


# -- files ---------------------------------------------------------------------------------------


def test_a_policy_file_parses_front_matter_and_text() -> None:
    spec = parse_policy_file(
        "conduct",
        "---\nrooms: [general, random]\nbanner: Be kind\ndelete_old: true\n---\n"
        "# Code of conduct\n\nBe kind.\n",
        where="conduct.md",
    )
    assert spec.targets == Targets(rooms=("general", "random"))
    assert spec.banner == "Be kind" and spec.delete_old
    assert spec.text == "# Code of conduct\n\nBe kind."


def test_star_means_every_public_channel_and_pattern_is_a_glob() -> None:
    spec = parse_policy_file("a", '---\nrooms: "*"\npattern: "team-*"\n---\nText\n', where="a.md")
    assert spec.targets == Targets(all_public=True, pattern="team-*")
    rooms, problems = resolve_targets(spec.targets, [GENERAL, STAFF, TEAM_A])
    assert rooms == [GENERAL, TEAM_A] and problems == []


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("---\nrooms: [general]\n---\n\n  \n", "no text"),
        ("Just text, no front matter\n", "no front matter"),
        ("---\nrooms: [general\n---\nText\n", "not valid YAML"),
        (f"---\nrooms: [general]\nbanner: {'x' * (BANNER_MAX + 1)}\n---\nText\n", "banner is 201 characters"),
        ("---\nrooms: general\n---\nText\n", "rooms must be a list"),
        ("---\nbanner: hi\n---\nText\n", "no target rooms"),
        ("---\n---\nText\n", "no target rooms"),
        ("---\nrooms: [general]\nroom: [x]\n---\nText\n", "unknown option(s) room"),
        ("---\nrooms: ['#general']\n---\nText\n", "is not a room name"),
        ("---\nrooms: [general]\ndelete_old: maybe\n---\nText\n", "delete_old must be true or false"),
        ("---\n- a\n---\nText\n", "must be a mapping"),
    ],
)
def test_bad_policy_files_get_a_clear_error(content: str, complaint: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy_file("conduct", content, where="policies/conduct.md")
    assert complaint in str(info.value)
    assert str(info.value).startswith("policies/conduct.md: ")


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(PolicyError, match="name"):
        parse_policy_file("Bad Name", "---\nrooms: [general]\n---\nText\n", where="Bad Name.md")


def test_unknown_rooms_and_empty_patterns_are_reported_one_by_one() -> None:
    rooms, problems = resolve_targets(
        Targets(rooms=("general", "nowhere"), pattern="ops-*"), [GENERAL, RANDOM, STAFF]
    )
    assert rooms == [GENERAL]
    assert problems == [
        "#nowhere: no such room, or the bot cannot see it",
        "pattern 'ops-*' matches no room the bot can see",
    ]


# -- the reconciler ------------------------------------------------------------------------------


def state(room: Room = GENERAL, *messages: PostedPolicy, **kw: object) -> RoomState:
    return RoomState(room, member=bool(kw.pop("member", True)), messages=messages, **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, dict[str, list[PolicyVersion]], dict[str, RoomState], list[Action]]] = [
    (
        "nothing pinned yet: post, pin, set the banner",
        {"GEN": [version()]},
        {"GEN": state()},
        [PostPolicy(GENERAL, "conduct", 1), SetBanner(GENERAL, "Be kind", "")],
    ),
    (
        "in sync: nothing to do",
        {"GEN": [version()]},
        {"GEN": state(GENERAL, PostedPolicy("m1", "conduct", 1, True), announcement="Be kind")},
        [],
    ),
    (
        "a new version replaces the old pin (post first, retire after)",
        {"GEN": [version(v=2, delete_old=True)]},
        {"GEN": state(GENERAL, PostedPolicy("m1", "conduct", 1, True), announcement="Be kind")},
        [PostPolicy(GENERAL, "conduct", 2), RetirePolicyMessage(GENERAL, "m1", "conduct", 1, True, True)],
    ),
    (
        "someone unpinned it: pin again, saying who",
        {"GEN": [version()]},
        {
            "GEN": state(
                GENERAL, PostedPolicy("m1", "conduct", 1, False, unpinned_by=BOB), announcement="Be kind"
            )
        },
        [PinPolicy(GENERAL, "m1", "conduct", 1, BOB)],
    ),
    (
        "someone deleted it: post again and forget the old id",
        {"GEN": [version()]},
        {
            "GEN": state(
                GENERAL, PostedPolicy("m1", "conduct", 1, False, exists=False), announcement="Be kind"
            )
        },
        [PostPolicy(GENERAL, "conduct", 1), RetirePolicyMessage(GENERAL, "m1", "conduct", 1, False, False)],
    ),
    (
        "someone edited the banner: put it back",
        {"GEN": [version()]},
        {"GEN": state(GENERAL, PostedPolicy("m1", "conduct", 1, True), announcement="lol")},
        [SetBanner(GENERAL, "Be kind", "lol")],
    ),
    (
        "a room no longer targeted: unpin there and clear the banner we set",
        {},
        {
            "RND": state(
                RANDOM, PostedPolicy("m9", "conduct", 1, True), announcement="Be kind", our_banner="Be kind"
            )
        },
        [RetirePolicyMessage(RANDOM, "m9", "conduct", 1, True, False), SetBanner(RANDOM, "", "Be kind")],
    ),
    (
        "a banner someone else set is left alone when no policy wants one",
        {},
        {"RND": state(RANDOM, announcement="Welcome!", our_banner="Be kind")},
        [],
    ),
    (
        "not a member of a public channel: join first",
        {"RND": [version(banner=None)]},
        {"RND": state(RANDOM, member=False)},
        [JoinRoom(RANDOM), PostPolicy(RANDOM, "conduct", 1)],
    ),
    (
        "two policies in one room: one banner line each, by name",
        {"GEN": [version("safety", banner="Report abuse with /report"), version("conduct")]},
        {
            "GEN": state(
                GENERAL,
                PostedPolicy("m1", "conduct", 1, True),
                PostedPolicy("m2", "safety", 1, True),
                announcement="Be kind",
            )
        },
        [SetBanner(GENERAL, "Be kind\nReport abuse with /report", "Be kind")],
    ),
]


@pytest.mark.parametrize(("desired", "actual", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reconcile_plans(
    desired: dict[str, list[PolicyVersion]], actual: dict[str, RoomState], expected: list[Action]
) -> None:
    plan = reconcile(desired, actual)
    assert list(plan.actions) == expected
    assert plan.problems == ()
    assert all(describe(a) for a in plan.actions)


def apply(plan_actions: Sequence[Action], actual: dict[str, RoomState]) -> dict[str, RoomState]:
    """What the server and store look like after the executor carried the actions out."""
    out = dict(actual)
    n = 0
    for action in plan_actions:
        s = out[action.room.id]
        if isinstance(action, JoinRoom):
            s = dataclasses.replace(s, member=True)
        elif isinstance(action, PostPolicy):
            n += 1
            posted = PostedPolicy(f"new{n}", action.name, action.version, True)
            s = dataclasses.replace(s, messages=(*s.messages, posted))
        elif isinstance(action, PinPolicy):
            s = dataclasses.replace(
                s,
                messages=tuple(
                    dataclasses.replace(m, pinned=True, unpinned_by=None) if m.mid == action.mid else m
                    for m in s.messages
                ),
            )
        elif isinstance(action, RetirePolicyMessage):
            s = dataclasses.replace(s, messages=tuple(m for m in s.messages if m.mid != action.mid))
        elif isinstance(action, SetBanner):
            s = dataclasses.replace(s, announcement=action.text, our_banner=action.text or None)
        out[action.room.id] = s
    return out


@pytest.mark.parametrize(("desired", "actual"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_a_second_run_plans_nothing(
    desired: dict[str, list[PolicyVersion]], actual: dict[str, RoomState]
) -> None:
    after = apply(reconcile(desired, actual).actions, actual)
    assert reconcile(desired, after).actions == ()


def test_pinning_disabled_is_reported_and_only_the_banner_is_kept_in_sync() -> None:
    plan = reconcile({"GEN": [version()]}, {"GEN": state()}, pinning_allowed=False)
    assert list(plan.actions) == [SetBanner(GENERAL, "Be kind", "")]
    [problem] = plan.problems
    assert "Message_AllowPinning" in str(problem) and problem.room == "general"


def test_a_private_group_without_the_bot_is_a_problem_for_that_room_only() -> None:
    plan = reconcile(
        {"STF": [version(banner=None)], "GEN": [version(banner=None)]},
        {"STF": state(STAFF, member=False), "GEN": state()},
    )
    assert list(plan.actions) == [PostPolicy(GENERAL, "conduct", 1)]
    [problem] = plan.problems
    assert problem.room == "staff" and "invite" in problem.reason
