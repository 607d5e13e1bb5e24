"""What `rcmod setup` grants and `rcmod doctor` verifies, as data, and the pure checks over it.

Nothing here does I/O: each function takes what the server answered (permission table, the bot's
roles, public settings, version) and returns :class:`Check` values — a name, a status and, for
anything not ok, what to do about it. :mod:`bot.ops.doctor` and :mod:`bot.ops.setup` fetch the
inputs and print the results.

Permissions are granted to Rocket.Chat's built-in ``bot`` role (custom roles are an Enterprise
feature since 6.0, and ``bot`` already holds ``api-bypass-rate-limit``). References (C.x, D.x,
F.x) point into ``shared/reference/rocketchat-protocol.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ALL_FEATURES",
    "BANS_SINCE",
    "BASE_PERMISSIONS",
    "FEATURE_PERMISSIONS",
    "MIN_VERSION",
    "SETTING_RULES",
    "Check",
    "PermissionNeed",
    "SettingRule",
    "Status",
    "exit_code",
    "parse_features",
    "parse_version",
    "permission_checks",
    "plan_grants",
    "render",
    "required_permissions",
    "setting_checks",
    "version_checks",
]

BOT_ROLE = "bot"
MIN_VERSION = (6, 0)
BANS_SINCE = (8, 3)  # rooms.banUser / rooms.unbanUser


class Status(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str = ""
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


@dataclass(frozen=True, slots=True)
class PermissionNeed:
    permission: str
    why: str
    # The server version whose endpoints use it: older servers are neither granted nor checked
    # for it (None: every supported version).
    since: tuple[int, int] | None = None

    def applies(self, version: str | None) -> bool:
        """Whether a server of ``version`` needs it (an unknown version: assume it does)."""
        return self.since is None or version is None or parse_version(version) >= self.since


# Extra permissions per feature, each with the reason (the README lists the same table).
FEATURE_PERMISSIONS: dict[str, tuple[PermissionNeed, ...]] = {
    "blocklists": (
        PermissionNeed("delete-message", "delete a message that matches a block list, in any room (C.1)"),
        PermissionNeed("edit-message", "censor a matching message instead of deleting it (chat.update, C.1)"),
        # canDeleteMessage, and updateMessage through canSendMessage, refuse everyone without it in
        # a read-only room (an announcement channel, or one a raid lock closed).
        PermissionNeed("post-readonly", "delete and censor messages in read-only rooms"),
    ),
    "purge": (
        PermissionNeed(
            "clean-channel-history", "purge a user's or a term's messages (rooms.cleanHistory, C.3)"
        ),
        PermissionNeed("delete-message", "purge single messages found by term (chat.delete, C.1)"),
    ),
    "policies": (
        PermissionNeed("pin-message", "pin policy messages and re-pin them when unpinned (F.1)"),
        PermissionNeed("edit-room", "keep the room announcement in sync with the policy (F.2)"),
    ),
    "appoint": (PermissionNeed("set-moderator", "`/mod appoint` makes a user a room moderator (C.4)"),),
    # Mutes, kicks and raid locks (`/mod mute`, `/mod kick`, the strike ladder, the raid lock). The
    # server checks each in the room; by default only admins, and owners and moderators in their own
    # rooms, hold them, so the bot role needs a workspace-wide grant to act in every room.
    "sanctions": (
        # rooms.muteUser / rooms.unmuteUser from 6.8; before that the DDP methods muteUserInRoom /
        # unmuteUserInRoom, which check the same permission.
        PermissionNeed("mute-user", "mute and unmute a member in a room (rooms.muteUser / rooms.unmuteUser)"),
        PermissionNeed("remove-user", "remove a member from a room (channels.kick / groups.kick)"),
        # In every release's permission table, but used only since rooms.banUser (8.3); before
        # that the bot keeps a ban itself by kicking (remove-user) whoever rejoins.
        PermissionNeed(
            "ban-user",
            "ban a member from a room and lift it (rooms.banUser / rooms.unbanUser)",
            since=BANS_SINCE,
        ),
        # Also under policies; listed here so a raid lock works without a policy folder.
        PermissionNeed(
            "edit-room", "make a room read-only during a raid and lift it (rooms.saveRoomSettings)"
        ),
        # Without it the raid lock would shut the bot out too: no deleting, censoring or posting
        # in the locked room (canDeleteMessage, canSendMessage).
        PermissionNeed("post-readonly", "keep moderating and posting in a room the raid lock made read-only"),
        # users.info shows another account's createdAt only to holders (getFullUserData); the
        # roles the bot needs come from users.list, so this serves probation alone.
        PermissionNeed(
            "view-full-other-user-info",
            "read accounts' creation dates for probation (users.info createdAt); without it no account "
            "is on probation",
        ),
    ),
    "reports": (
        PermissionNeed("view-moderation-console", "read reports filed in the moderation console (C.2)"),
        PermissionNeed("manage-moderation-actions", "dismiss or act on reports in the console (C.2)"),
    ),
}
ALL_FEATURES = frozenset(FEATURE_PERMISSIONS)

# Held by the `bot` role by default (C.6); checked, and granted only if someone removed them.
BASE_PERMISSIONS: tuple[PermissionNeed, ...] = (
    PermissionNeed("view-c-room", "see public channels and their messages"),
    PermissionNeed("create-d", "open direct messages to moderators for alerts"),
    PermissionNeed("api-bypass-rate-limit", "no REST rate limit (10 calls/min per route otherwise)"),
    PermissionNeed(
        "create-personal-access-tokens", "create (and later rotate) the bot's own personal access token"
    ),
)
# Missing one of these does not stop the bot (probation is off without the second), so doctor
# only warns.
_WARN_ONLY = frozenset({"create-personal-access-tokens", "view-full-other-user-info"})


def parse_features(text: str | None) -> frozenset[str]:
    """``"all"`` or a comma-separated list; raises ValueError naming an unknown feature."""
    if text is None or text.strip() in ("", "all"):
        return ALL_FEATURES
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - ALL_FEATURES)
    if unknown:
        raise ValueError(f"unknown feature {', '.join(unknown)} (known: {', '.join(sorted(ALL_FEATURES))})")
    return names


def required_permissions(features: Iterable[str], version: str | None = None) -> dict[str, str]:
    """permission → why, for the base set plus the enabled features (first reason wins), as a
    server of ``version`` needs them (None: every permission any supported version needs)."""
    out: dict[str, str] = {}
    for need in BASE_PERMISSIONS:
        out.setdefault(need.permission, need.why)
    for feature in sorted(features):
        for need in FEATURE_PERMISSIONS[feature]:
            if need.applies(version):
                out.setdefault(need.permission, need.why)
    return out


def plan_grants(
    table: Mapping[str, list[str]], features: Iterable[str], version: str | None = None
) -> dict[str, list[str]]:
    """The permissions.update body: each needed permission the bot role lacks, with its current
    roles plus ``bot`` (the endpoint overwrites the role list). Unknown permissions are left out."""
    grants: dict[str, list[str]] = {}
    for permission in required_permissions(features, version):
        roles = table.get(permission)
        if roles is not None and BOT_ROLE not in roles:
            grants[permission] = [*roles, BOT_ROLE]
    return grants


def permission_checks(
    table: Mapping[str, list[str]],
    bot_roles: Iterable[str],
    features: Iterable[str],
    version: str | None = None,
) -> list[Check]:
    """One check per permission a server of ``version`` needs: held through one of the bot's
    global roles?"""
    roles = set(bot_roles)
    checks = []
    for permission, why in required_permissions(features, version).items():
        holders = table.get(permission)
        name = f"permission {permission}"
        if holders is None:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    "the server has no such permission",
                    "upgrade Rocket.Chat (6.0 or newer)",
                )
            )
            continue
        through = sorted(roles & set(holders))
        if through:
            checks.append(Check(name, Status.OK, f"held through role {', '.join(through)}"))
            continue
        status = Status.WARN if permission in _WARN_ONLY else Status.FAIL
        checks.append(
            Check(
                name,
                status,
                f"none of the bot's roles ({', '.join(sorted(roles)) or 'none'}) has it; needed to {why}",
                f"Administration > Workspace > Permissions: tick {permission} for role {BOT_ROLE} "
                "(or run rcmod setup again)",
            )
        )
    return checks


@dataclass(frozen=True, slots=True)
class SettingRule:
    setting: str
    wanted: bool
    features: frozenset[str]  # empty: always relevant
    why: str
    severity: Status = Status.FAIL


SETTING_RULES: tuple[SettingRule, ...] = (
    SettingRule(
        "Message_AllowDeleting",
        True,
        frozenset({"blocklists", "purge"}),
        "chat.delete is refused for everyone without force-delete-message when it is off (C.1)",
    ),
    SettingRule(
        "Message_AllowEditing",
        True,
        frozenset({"blocklists"}),
        "censoring a message edits it (chat.update, C.1); deleting still works",
        Status.WARN,
    ),
    SettingRule(
        "Message_AllowPinning",
        True,
        frozenset({"policies"}),
        "pinning policies fails with 'Message pinning not allowed' when it is off (F.1)",
    ),
)
SLASH_SETTING = "Message_AllowUnrecognizedSlashCommand"
APPROVAL_SETTING = "Accounts_ManuallyApproveNewUsers"
SETTING_IDS = (*(r.setting for r in SETTING_RULES), SLASH_SETTING, APPROVAL_SETTING)


def setting_checks(
    values: Mapping[str, object],
    features: Iterable[str],
    *,
    commands: str,
    required: Iterable[str] | None = None,
) -> list[Check]:
    """Each workspace setting the enabled features depend on, as the public settings show it.

    ``commands`` is how commands arrive (``commands.via``): only ``room`` needs the setting that
    lets an unknown slash command through as a message; DMs to the bot and the app do not.
    ``required``: the features that must work (None: every enabled one, as doctor checks a
    configuration in use). A setting only other features need is optional: off, it warns."""
    enabled = set(features)
    must = enabled if required is None else set(required)
    checks = []
    for rule in SETTING_RULES:
        if rule.features and not (rule.features & enabled):
            continue
        needed = not rule.features or bool(rule.features & must)
        severity = rule.severity if needed else Status.WARN
        checks.append(_setting_check(values, rule.setting, rule.wanted, rule.why, severity))
    if commands == "room":
        checks.append(
            _setting_check(
                values,
                SLASH_SETTING,
                True,
                "commands.via is room, but /report and /mod typed in a room never reach the bot (D.1)",
                Status.FAIL,
                ", or use commands.via = dm (direct messages to the bot need no setting)",
            )
        )
    else:
        why = (
            "the companion app registers the commands"
            if commands == "app"
            else "commands arrive as direct messages to the bot"
        )
        checks.append(
            Check(f"setting {SLASH_SETTING}", Status.OK, f"not needed: {why} (commands.via = {commands})")
        )
    approval = values.get(APPROVAL_SETTING)
    detail = (
        "on: moderators are alerted about accounts awaiting approval"
        if approval is True
        else "off: new accounts are active at once, so there are no approval alerts"
    )
    checks.append(Check(f"setting {APPROVAL_SETTING}", Status.OK, detail))
    return checks


def _setting_check(
    values: Mapping[str, object], setting: str, wanted: bool, why: str, bad: Status, also: str = ""
) -> Check:
    name = f"setting {setting}"
    if setting not in values:
        return Check(
            name, bad, "not among the public settings", f"check it by hand: it must be {_on(wanted)}"
        )
    if values[setting] is wanted:
        return Check(name, Status.OK, _on(wanted))
    return Check(
        name,
        bad,
        f"{_on(not wanted)}; {why}",
        f"Administration > Workspace > Settings: turn {setting} {_on(wanted)}{also}",
    )


def _on(value: bool) -> str:
    return "on" if value else "off"


def parse_version(version: str) -> tuple[int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split("-")[0].split(".")[:2]]
    major_minor = [*parts, 0, 0][:2]
    return major_minor[0], major_minor[1]


# Endpoints by the version that introduced them, and the feature that needs each.
_FEATURE_SINCE: dict[str, tuple[tuple[int, int], str]] = {
    "reports": ((6, 2), "moderation.* (the moderation console)"),
}


def version_checks(version: str, features: Iterable[str]) -> list[Check]:
    have = parse_version(version)
    checks = []
    if have < MIN_VERSION:
        checks.append(
            Check(
                "server version",
                Status.FAIL,
                f"{version} is older than {MIN_VERSION[0]}.{MIN_VERSION[1]}, the oldest rcmod supports",
                "upgrade Rocket.Chat",
            )
        )
    else:
        checks.append(Check("server version", Status.OK, version))
    if "sanctions" in set(features):
        # Not a failure either way: without server bans the bot keeps them itself.
        how = (
            "Rocket.Chat's own (rooms.banUser)"
            if have >= BANS_SINCE
            else f"kept by the bot: {version} has no bans (added in {BANS_SINCE[0]}.{BANS_SINCE[1]}), so "
            "a banned user is removed again whenever they rejoin"
        )
        checks.append(Check("room bans", Status.OK, how))
    for feature in sorted(set(features)):
        if feature in _FEATURE_SINCE:
            since, endpoint = _FEATURE_SINCE[feature]
            if have < since:
                checks.append(
                    Check(
                        f"feature {feature}",
                        Status.FAIL,
                        f"needs {endpoint}, added in {since[0]}.{since[1]}; the server is {version}",
                        f"upgrade Rocket.Chat, or leave {feature} out with --features",
                    )
                )
    return checks


def render(check: Check) -> str:
    """One line per check; the fix follows the detail after ' -> '."""
    line = f"[{check.status.value:^4}] {check.name}"
    if check.detail:
        line += f": {check.detail}"
    if check.fix and check.status in (Status.FAIL, Status.WARN):
        line += f" -> {check.fix}"
    return line


def exit_code(checks: Iterable[Check]) -> int:
    return 1 if any(c.failed for c in checks) else 0
