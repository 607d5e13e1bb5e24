"""The command declarations, parser, privilege model and generated help (pure, table-driven)."""

from __future__ import annotations

import pytest

from bot.commands import (
    COMMANDS,
    MAX_ARGS,
    Invocation,
    MessageRef,
    Privilege,
    RoomName,
    UsageError,
    UserName,
    check,
    find,
    parse,
    render_help,
    resolve,
)

SITE = "https://chat.example.org"
MID = "Ab3defghijkmnopqr"
LINK = f"{SITE}/channel/general?msg={MID}"


def ok(root: str, args: str) -> Invocation:
    result = parse(root, args, site_url=SITE)
    assert isinstance(result, Invocation), result
    return result


def bad(root: str, args: str) -> UsageError:
    result = parse(root, args, site_url=SITE)
    assert isinstance(result, UsageError), result
    return result


@pytest.mark.parametrize(
    ("args", "category", "target", "description", "anonymous"),
    [
        ("", "other", None, None, False),
        ("spam", "spam", None, None, False),
        ("SPAM", "spam", None, None, False),
        (
            f"hate {LINK} slurs in general",
            "hate",
            MessageRef(MID, room_name="general", room_type="c"),
            "slurs in general",
            False,
        ),
        (f"{MID}", "other", MessageRef(MID), None, False),
        ("harassment @bob keeps messaging me", "harassment", UserName("bob"), "keeps messaging me", False),
        ("--anonymous privacy @bob posted my address", "privacy", UserName("bob"), "posted my address", True),
        ("this is awful --anonymous", "other", None, "this is awful", True),
        ("incomprehensibles word", "other", None, "incomprehensibles word", False),  # 17 letters, not an id
        (f"{SITE}/direct/RID1?msg={MID}", "other", MessageRef(MID, rid="RID1", room_type="d"), None, False),
    ],
)
def test_report_arguments(
    args: str, category: str, target: object, description: str | None, anonymous: bool
) -> None:
    inv = ok("report", args)
    assert inv.get("category") == category
    assert inv.get("target") == target
    assert inv.get("description") == description
    assert ("anonymous" in inv.flags) is anonymous


@pytest.mark.parametrize(
    ("root", "args", "needle"),
    [
        ("report", f"spam https://evil.example/channel/general?msg={MID}", "not on this workspace"),
        ("report", f"{SITE}/channel/general", "does not point at a message"),
        ("report", "x" * (MAX_ARGS + 1), "too long"),
        ("mod", "", "Which /mod command"),
        ("mod", "frobnicate", "Unknown command"),
        ("mod", "delete", "Missing MSGID"),
        ("mod", "delete not-an-id", "not a message link or id"),
        ("mod", "resolve x dismiss", "must be a number"),
        ("mod", "resolve 3 explode", "must be one of dismiss, delete, purge, block"),
        ("mod", "dismiss 0", "must be a number"),
        ("mod", "dryrun maybe", "must be one of on, off"),
        ("mod", "appoint bob #general", "Expected @username"),
        ("mod", "appoint @bob general", "Expected #room"),
        ("mod", "reload now", "Unexpected argument"),
        ("mod", "status --anonymous", "Unexpected argument"),
        ("shout", "", "Unknown command"),
    ],
)
def test_bad_input_gets_a_clear_usage_message(root: str, args: str, needle: str) -> None:
    error = bad(root, args)
    assert needle in error.text


def test_usage_errors_show_the_declared_usage() -> None:
    assert "Usage: `/mod resolve ID dismiss|delete|purge|block [NOTE]`" in bad("mod", "resolve").text


def test_echoed_tokens_cannot_ping_or_break_out() -> None:
    text = bad("mod", "frob`@all").text
    assert "@" not in text and "`/mod frobˋ＠all`" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("resolve #12 dismiss  spam, not abuse", {"id": 12, "action": "dismiss", "note": "spam, not abuse"}),
        ("resolve 12 delete", {"id": 12, "action": "delete", "note": None}),
        (f"delete {MID} too rude", {"msgid": MessageRef(MID), "reason": "too rude"}),
        ("dismiss 7", {"alert": 7}),
        ('deny "scam link" spam', {"term": "scam link", "list": "spam"}),
        ("deny casino", {"term": "casino", "list": "runtime"}),
        ("allow Scunthorpe town", {"term": "Scunthorpe town"}),
        ("appoint @carol #random", {"user": UserName("carol"), "room": RoomName("random")}),
        ("dryrun ON", {"state": "on"}),
        ("test free crypto now", {"text": "free crypto now"}),
        ("help", {"command": None}),
        ("HELP delete", {"command": "delete"}),
    ],
)
def test_mod_arguments(args: str, expected: dict[str, object]) -> None:
    inv = ok("mod", args)
    assert dict(inv.values) == expected


def test_invocations_are_frozen_and_never_show_arguments() -> None:
    inv = ok("mod", "test my secret text")
    with pytest.raises(AttributeError):
        inv.flags = frozenset()  # type: ignore[misc]
    assert "secret" not in repr(inv)


@pytest.mark.parametrize(
    ("user_id", "global_roles", "room_roles", "moderators", "expected"),
    [
        ("alice", ["user"], [], [], Privilege.MEMBER),
        ("mod1", ["user"], ["moderator"], [], Privilege.ROOM_MODERATOR),
        ("bob", ["user"], ["owner", "moderator"], [], Privilege.ROOM_OWNER),
        ("mod2", ["user"], [], ["mod2"], Privilege.BOT_MODERATOR),
        ("mod2", ["user"], ["owner"], ["mod2"], Privilege.BOT_MODERATOR),
        ("root", ["admin", "user"], [], [], Privilege.ADMIN),
    ],
)
def test_privilege_resolution(
    user_id: str, global_roles: list[str], room_roles: list[str], moderators: list[str], expected: Privilege
) -> None:
    assert (
        resolve(user_id=user_id, global_roles=global_roles, room_roles=room_roles, bot_moderators=moderators)
        == expected
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("have", list(Privilege), ids=lambda p: p.name)
def test_every_command_checks_its_minimum(command: object, have: Privilege) -> None:
    from bot.commands import Command

    assert isinstance(command, Command)
    denied = check(command, have)
    assert (denied is None) == (have >= command.privilege)
    if denied is not None:
        assert command.privilege.label in denied.text and have.label in denied.text


def test_denial_says_what_is_needed() -> None:
    command = find("mod", "delete")
    assert command is not None
    denied = check(command, Privilege.MEMBER)
    assert denied is not None
    assert denied.text == "`/mod delete` needs room moderator of that room or above; you are member there."


def test_help_is_generated_and_shows_only_what_the_asker_may_use() -> None:
    member = render_help(Privilege.MEMBER)
    admin = render_help(Privilege.ADMIN)
    assert "/report" in member and "/mod help" in member and "/mod delete" not in member
    for command in COMMANDS:
        assert f"`{command.usage}` — {command.help}" in admin
    assert "/mod dryrun" not in render_help(Privilege.BOT_MODERATOR)
    assert render_help(Privilege.ADMIN, "delete").count("\n") == 1


def test_each_command_is_declared_once() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for command in COMMANDS:
        if command.room_from is not None:
            assert command.room_from in {a.name for a in command.args}


def test_member_help_lists_only_what_a_member_may_use() -> None:
    member = render_help(Privilege.MEMBER)
    listed = [line.split("`")[1].split()[0:2] for line in member.splitlines()[1:]]
    assert listed == [["/report", "[CATEGORY]"], ["/mod", "help"], ["/mod", "appeal"]], member
    assert "/mod purge" not in member and "/mod confirm" not in member
    room_moderator = render_help(Privilege.ROOM_MODERATOR)
    assert "/mod purge" in room_moderator and "/mod confirm" in room_moderator
    # Asking about one by name as a member says it is not theirs to use.
    assert render_help(Privilege.MEMBER, "purge").startswith("No command `purge` that you may use")
