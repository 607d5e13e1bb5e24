"""The fidelity ledger: for every REST route, DDP method and stream the sandbox serves (and so every
one the bot calls), which Rocket.Chat server source it follows, what it checks, what it returns to
whom, how it fails, how it is rate-limited, which releases differ, and which tests hold the sandbox
to it.

The server is the reference, not this sandbox: a line here is a claim about
``RocketChat/Rocket.Chat`` (paths are relative to that repository), and ``tests/test_ledger.py``
checks that every route, method and stream served or called is listed and that every test named
here exists. When a line and the server disagree, the server wins and the sandbox is the defect.

Data only: nothing here runs on a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LEDGER", "Entry", "entry_for"]

Kind = Literal["rest", "ddp", "stream"]


@dataclass(frozen=True)
class Entry:
    # "rest": "GET chat.getMessage" (method and route, as in the route table); "ddp": the method
    # name ("sendMessage"); "stream": the publication ("stream-room-messages").
    kind: Kind
    name: str
    # Server files the behaviour is read from (repository-relative paths).
    server: tuple[str, ...]
    # Who may call it: permissions, membership, settings it depends on ("" = any logged-in user).
    permissions: str
    # What the answer carries, and what it leaves out for whom.
    fields: str
    # How it fails: status, error / errorType strings.
    errors: str
    # Rate limit: "REST default 10/min per route and user" or the route's own.
    rate_limit: str
    # Releases that differ ("added in 6.8", "401 instead of 403 from 7.0", ...); "" = none known.
    releases: str
    # Tests that hold the sandbox (and the bot) to this line: "tests/test_x.py::test_name".
    tests: tuple[str, ...]


_API = "apps/meteor/app/api/server/ApiClass.ts"
_PAGES = "apps/meteor/app/api/server/helpers/getPaginationItems.ts"
_PERMS = "apps/meteor/app/api/server/middlewares/permissions.ts"
_PAGINATION = (
    "offset/count through getPaginationItems: count defaults to API_Default_Count (50), is clamped "
    "silently to API_Upper_Count_Limit (100; an admin may lower it), and 0 means everything only "
    "with API_Allow_Infinite_Count (else the default, unclamped); the answer's count/offset/total "
    "say what was cut"
)
_NOT_LOGGED_IN = (
    "401 not logged in: {success:false, error:'You must be logged in to do this.'} plus legacy "
    "status:'error'/message before 9.0 (only status/message before 7.0)"
)
_RELEASES_REFUSALS = (
    "refusal answers by release in bot/sandbox/releases.py: applyBreakingChanges "
    "(shouldBreakInVersion, 9.0.0 in the 8.x source, 8.0.0 in the 7.x source) turns the "
    "permissionsRequired and forbidden() bodies into error:'forbidden' and a thrown "
    "error-unauthorized into 401"
)

LEDGER: tuple[Entry, ...] = (
    # --- roles, refusals, pagination
    Entry(
        kind="rest",
        name="GET users.info",
        server=(
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/getFullUserData.ts",
            _API,
        ),
        permissions="any logged-in user; the full fields need view-full-other-user-info (admin) unless "
        "the caller asks about themselves",
        fields="getFullUserData: defaultFields (_id, name, username, nickname, status, utcOffset, type, "
        "active, bio, reason, statusText, avatarETag, extension, federated, statusLivechat, "
        "freeSwitchExtension) for everyone; fullFields (emails, phone, statusConnection, createdAt, "
        "lastLogin, requirePasswordChange(Reason), roles, importIds) only with canViewAllInfo; "
        "canViewAllInfo itself is always set; _updatedAt is in neither projection; fields={userRooms:1} "
        "adds rooms for oneself or with view-other-user-channels (not modelled)",
        errors="400 failure('Invalid search query.') without userId/username/importId (the sandbox answers "
        "error-user-param-not-provided first); 400 failure('User not found.'); " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses: api-bypass-rate-limit)",
        releases="importId search added in 7.x (not modelled)",
        tests=(
            "tests/test_roles.py::test_users_info_hides_another_users_roles_without_the_permission",
            "tests/test_roles.py::test_a_bot_moderator_cannot_mute_or_warn_the_admin",
            "tests/test_protections_live.py::test_links_from_accounts_on_probation_are_held",
            "tests/test_protections_live.py::test_without_the_permission_no_account_is_on_probation",
        ),
    ),
    Entry(
        kind="rest",
        name="GET users.list",
        server=(
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/api/server/lib/users.ts",
            _PAGES,
            _API,
            _PERMS,
        ),
        permissions="view-d-room (the bot role has it; permissionsRequired in newer users.ts, a "
        "hasPermission check answering unauthorized() in older ones); with the setting "
        "API_Apply_permission_view-outside-room_on_users-list also view-outside-room, else "
        "forbidden() (not modelled)",
        fields="getNonEmptyFields defaults: _id, name, username, emails, roles, status, active, "
        "avatarETag, lastLogin, type; roles for everyone who may call the route, which is why the bot "
        "reads roles here (no createdAt, no reason); query/fields are ignored since 7.0 unless "
        "ALLOW_UNSAFE_QUERY_AND_FIELDS_API_PARAMS; sorted by username; " + _PAGINATION,
        errors="403 permissionsRequired (see releases); " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases=_RELEASES_REFUSALS,
        tests=(
            "tests/test_roles.py::test_the_role_directory_reads_roles_from_users_list",
            "tests/test_roles.py::test_a_user_made_admin_later_is_seen_on_a_fresh_lookup",
            "tests/test_pagination.py::test_the_sandbox_clamps_count_as_get_pagination_items",
            "tests/test_pagination.py::test_users_and_roles_are_complete",
            "tests/test_releases.py::test_a_401_refusal_neither_logs_in_again_nor_reads_as_a_bad_token",
        ),
    ),
    Entry(
        kind="rest",
        name="GET channels.list",
        server=("apps/meteor/app/api/server/v1/channels.ts", _PAGES),
        permissions="view-c-room",
        fields="channels sorted by name; " + _PAGINATION,
        errors="403 permissionsRequired (see releases); " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases=_RELEASES_REFUSALS,
        tests=("tests/test_pagination.py::test_channels_are_complete",),
    ),
    Entry(
        kind="rest",
        name="GET channels.history",
        server=("apps/meteor/app/api/server/v1/channels.ts", _PAGES),
        permissions="the caller can access the channel (getChannelHistory)",
        fields="{messages, firstUnread?, unreadNotLoaded?}: no count/offset/total, so a walker cannot "
        "tell a clamped page from the last one and stops at the first empty page; count goes through "
        "getPaginationItems (the route's `count = 20` default never applies); latest/oldest/inclusive",
        errors="400 error-room-not-found; 403 forbidden() when getChannelHistory answers nothing; "
        + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases=_RELEASES_REFUSALS,
        tests=(
            "tests/test_pagination.py::test_the_sandbox_clamps_count_as_get_pagination_items",
            "tests/test_pagination.py::test_history_walks_are_complete",
        ),
    ),
    Entry(
        kind="rest",
        name="GET groups.history",
        server=("apps/meteor/app/api/server/v1/groups.ts", _PAGES),
        permissions="a member of the group",
        fields="as channels.history: no total; count through getPaginationItems",
        errors="400 error-room-not-found for a group the caller is not in; " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="",
        tests=("tests/test_pagination.py::test_history_walks_are_complete",),
    ),
    Entry(
        kind="rest",
        name="GET dm.history",
        server=("apps/meteor/app/api/server/v1/im.ts", _PAGES),
        permissions="a member of the direct message",
        fields="as channels.history: no total; count through getPaginationItems (im.history is the "
        "same route)",
        errors="400 error-room-not-found; 400 error-not-allowed; " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="",
        tests=("tests/test_pagination.py::test_history_walks_are_complete",),
    ),
    Entry(
        kind="rest",
        name="GET chat.getPinnedMessages",
        server=("apps/meteor/app/api/server/v1/chat.ts", _PAGES),
        permissions="the caller can access the room",
        fields="pinned messages newest first; " + _PAGINATION,
        errors="400 error-roomId-param-not-provided; 400 error-not-allowed; " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="",
        tests=("tests/test_pagination.py::test_reports_and_pins_are_complete",),
    ),
    Entry(
        kind="rest",
        name="GET moderation.reportsByUsers",
        server=("apps/meteor/app/api/server/v1/moderation.ts", _PAGES, _API, _PERMS),
        permissions="view-moderation-console (permissionsRequired)",
        fields="reports grouped by reported user; " + _PAGINATION,
        errors="403 'User does not have the permissions required for this action [error-unauthorized]' "
        "before 9.0, {error:'forbidden'} from 9.0; " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="added in 6.2; " + _RELEASES_REFUSALS,
        tests=(
            "tests/test_pagination.py::test_reports_and_pins_are_complete",
            "tests/test_releases.py::test_refusals_by_release",
        ),
    ),
    Entry(
        kind="rest",
        name="POST users.setActiveStatus",
        server=("apps/meteor/app/api/server/v1/users.ts", _API),
        permissions="edit-other-user-active-status, or manage-moderation-actions in newer users.ts "
        "(the sandbox checks the first only)",
        fields="{user: {_id, active}}",
        errors="403 the route's own refusal: {success:false, error:'unauthorized'} (unauthorized() was "
        "403 until it was renamed forbidden(); unauthorized() answers 401 since), {error:'forbidden'} "
        "from 9.0; " + _NOT_LOGGED_IN,
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases=_RELEASES_REFUSALS,
        tests=("tests/test_releases.py::test_refusals_by_release",),
    ),
    Entry(
        kind="rest",
        name="GET me",
        server=(_API, "apps/meteor/app/api/server/middlewares/authenticationHono.ts"),
        permissions="any logged-in user",
        fields="the caller's own user document",
        errors=_NOT_LOGGED_IN + "; every authRequired route answers the same",
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="not-logged-in body by release in bot/sandbox/releases.py",
        tests=(
            "tests/test_releases.py::test_refusals_by_release",
            "tests/test_releases.py::test_a_bad_token_is_still_an_auth_error",
        ),
    ),
    Entry(
        kind="rest",
        name="POST rooms.muteUser",
        server=("apps/meteor/app/api/server/v1/rooms.ts",),
        permissions="mute-user in the room",
        fields="{success:true}",
        errors="404 'Resource not found' on a release before 6.8 (route unknown)",
        rate_limit="REST default 10/min per route and user (bot bypasses)",
        releases="added in 6.8 (ROUTES_SINCE in bot/sandbox/releases.py)",
        tests=("tests/test_releases.py::test_routes_a_release_does_not_have_answer_404",),
    ),
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
