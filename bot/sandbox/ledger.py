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


LEDGER: tuple[Entry, ...] = (
    # --- admin routes
    # Read for all of them: apps/meteor/app/api/server/ApiClass.ts (019378e3: success/failure/
    # forbidden bodies, permissionsRequired -> 403 "... [error-unauthorized]", auth read only on
    # authRequired routes) and packages/http-router/src/Router.ts (05360738: every answer
    # "Content-Type: application/json" exactly) with parseQueryParams.ts (2c8fc26f: qs.parse,
    # arrayLimit 500, throwOnLimitExceeded -> 400 "Invalid query parameters").
    Entry(
        kind="rest",
        name="POST channels.create",
        server=(
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/createChannel.ts",
            "apps/meteor/app/lib/server/functions/createRoom.ts",
        ),
        permissions="create-c (create-team-channel in the team's room with extraData.teamId)",
        fields=(
            "channel: the room (fname, name, t 'c', msgs 0, usersCount, u {_id, username, name}, ts, ro, "
            "customFields {}, extraData spread in), without joinCode/members/importIds/e2e; the creator's "
            "subscription has roles ['owner'] unless excludeSelf; members are usernames, unknown ones "
            "skipped; broadcast forces ro; no system message is posted"
        ),
        errors=(
            "403 {success:false, error:'unauthorized'} without create-c; 400 'Param \"name\" is required'; "
            "400 'Param \"members\" must be an array if provided'; 400 error-team-not-found (teams are not "
            "modelled: every teamId); 400 error-invalid-room-name / error-duplicate-channel-name "
            "(getValidRoomName); 400 'Match failed [400]' for non-string members"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "newest servers validate the body with ajv isChannelsCreateProps (extraData closed); not modelled"
        ),
        tests=(
            "tests/test_sandbox_admin.py::test_channels_create_makes_a_public_room_owned_by_the_caller",
            "tests/test_sandbox_admin.py::test_channels_create_options_and_refusals",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET channels.info",
        server=("apps/meteor/app/api/server/v1/channels.ts",),
        permissions="any logged-in user: findChannelByIdOrName has no access check",
        fields="channel: the room without joinCode/members/importIds/e2e; roomId wins over roomName",
        errors=(
            '400 error-room-not-found \'The required "roomId" or "roomName" param provided does not '
            "match any channel' for a private room, an unknown one, or neither parameter"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_channels_info_shows_any_public_channel_and_nothing_else",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="POST groups.create",
        server=(
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/createPrivateGroup.ts",
            "apps/meteor/app/lib/server/functions/createRoom.ts",
        ),
        permissions="create-p (checked by createPrivateGroupMethod)",
        fields="group: the room as channels.create builds it, t 'p'; excludeSelf honoured",
        errors=(
            "400 'Body param \"name\" is required' / '\"members\" must be an array if provided' / "
            '\'"customFields" must be an object if provided\' / \'"extraData" must be an object if '
            "provided'; without create-p 400 'Not allowed [error-not-allowed]' details {method: "
            "'createPrivateGroup'}: the route maps to 401 only an error whose reason is "
            "'error-not-allowed', and the method's reason is 'Not allowed'; name errors as channels.create"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "6.x: the route checked create-p itself and answered unauthorized (UNCONFIRMED "
            "which release changed it)"
        ),
        tests=(
            "tests/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/test_sandbox_admin.py::test_groups_create_refusals",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET groups.info",
        server=("apps/meteor/app/api/server/v1/groups.ts",),
        permissions="canAccessRoom: a member of the group",
        fields="group: the room without joinCode/members/importIds/e2e",
        errors=(
            "400 error-room-param-not-provided without roomId/roomName; 400 error-room-not-found '... does "
            "not match any group' for a group the caller cannot access (indistinguishable from none)"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET groups.list",
        server=("apps/meteor/app/api/server/v1/groups.ts",),
        permissions="",
        fields="groups (the caller's private groups, by name), count, offset, total",
        errors="",
        rate_limit="REST default 10/min per route and user",
        releases="6.x answered 404 notFound() when the caller had no group; 7.x an empty page",
        tests=(
            "tests/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET dm.list",
        server=("apps/meteor/app/api/server/v1/im.ts",),
        permissions="",
        fields=(
            "ims (the caller's direct rooms, with lastMessage), count, offset, total; default sort by name"
        ),
        errors="",
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_dm_list_shows_the_callers_direct_rooms",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET im.list",
        server=("apps/meteor/app/api/server/v1/im.ts",),
        permissions="",
        fields=(
            "ims (the caller's direct rooms, with lastMessage), count, offset, total; default sort by name"
        ),
        errors="",
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_dm_list_shows_the_callers_direct_rooms",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET settings/:_id",
        server=("apps/meteor/app/api/server/v1/settings.ts",),
        permissions="permissionsRequired view-privileged-setting; private settings included, hidden ones not",
        fields="_id and value only (_.pick)",
        errors=(
            "403 'User does not have the permissions required for this action [error-unauthorized]'; an "
            "unknown id 400 {success:false} (API.v1.failure() with nothing in it); settings/a/b "
            "is no route (404)"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="older servers checked the permission inline and answered unauthorized()",
        tests=(
            "tests/test_sandbox_admin.py::test_settings_by_id_read_and_write",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="POST settings/:_id",
        server=("apps/meteor/app/api/server/v1/settings.ts",),
        permissions="permissionsRequired edit-privileged-setting, then twoFactorRequired (password fallback)",
        fields=(
            "{success:true}; {value} is stored as sent (no type check: Settings.updateValueNotHiddenById); "
            "action ({execute}) and color ({editor}) settings and the cloud-trial Custom_Script_ refusal "
            "are not modelled; the settings-changed stream notice is not emitted"
        ),
        errors=(
            "403 as GET; 400 totp-required / totp-invalid from the 2FA check; an unknown id or a body "
            "without value 400 {success:false}"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_settings_by_id_read_and_write",
            "tests/test_sandbox_admin.py::test_a_trial_admin_switches_on_what_doctor_asks_for",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="POST users.update",
        server=(
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/saveUser/saveUser.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserData.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserEditing.ts",
            "packages/rest-typings/src/v1/users/UsersUpdateParamsPOST.ts",
        ),
        permissions=(
            "twoFactorRequired; edit-other-user-info to edit someone else; assign-roles to change roles, "
            "assign-admin-role to give admin; edit-other-user-active-status for data.active "
            "(setUserActiveStatus)"
        ),
        fields=(
            "user: the account as users.info shows it to an admin (emails, roles, active, name, username); "
            "name/username via saveUserIdentity (a new username is written into messages and "
            "subscriptions), email via setEmail, roles replaced; password, bio, nickname, statusText, "
            "customFields accepted and not modelled"
        ),
        errors=(
            "400 invalid-params (missing userId/data, a data key outside the schema); 400 "
            "error-action-not-allowed 'Editing user is not allowed' / 'The field Roles consist invalid role "
            "id' / 'Assigning admin is not allowed' / 'Assign roles is not allowed' / 'Edit username|user "
            "real name|user email is not allowed' (details {method: insertOrUpdateUser, action}); "
            "error-input-is-not-a-valid-field; error-could-not-save-identity {method: saveUser}; "
            "error-invalid-email; error-field-unavailable; totp-required; an unknown userId answers "
            "error-invalid-user here (the server's saveUser falls into saveNewUser: UNCONFIRMED)"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="7.0.0 removed the upsert behaviour and the joinDefaultChannels param (OpenAPI changelog)",
        tests=(
            "tests/test_sandbox_admin.py::test_users_update_by_an_admin",
            "tests/test_sandbox_admin.py::test_users_update_refusals",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="GET subscriptions.getOne",
        server=("apps/meteor/app/api/server/v1/subscriptions.ts",),
        permissions="",
        fields="subscription: the caller's subscription to roomId, or null",
        errors="400 invalid-params \"must have required property 'roomId'\" (isSubscriptionsGetOneProps)",
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_admin.py::test_subscriptions_get_one",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        kind="rest",
        name="POST dm.create",
        server=("apps/meteor/app/api/server/v1/im.ts", "apps/meteor/server/methods/createDirectMessage.ts"),
        permissions="create-d",
        fields=(
            "room: the direct room with rid; excludeSelf drops the caller from the members (no "
            "subscription for the caller), so an admin can open a DM between others"
        ),
        errors=(
            "400 error-invalid-params without username/usernames; error-invalid-user for an unknown "
            "username; invalid-params 'must be boolean' for a non-boolean excludeSelf; excludeSelf with "
            "nobody else answers error-invalid-user here (UNCONFIRMED)"
        ),
        rate_limit=(
            "REST default 10/min per route and user; the method's own 10/min without send-many-messages"
        ),
        releases="",
        tests=(
            "tests/test_sandbox_fidelity_small.py::test_im_create_with_exclude_self_leaves_the_caller_out",
        ),
    ),
    Entry(
        kind="rest",
        name="POST im.create",
        server=("apps/meteor/app/api/server/v1/im.ts", "apps/meteor/server/methods/createDirectMessage.ts"),
        permissions="create-d",
        fields=(
            "room: the direct room with rid; excludeSelf drops the caller from the members (no "
            "subscription for the caller), so an admin can open a DM between others"
        ),
        errors=(
            "400 error-invalid-params without username/usernames; error-invalid-user for an unknown "
            "username; invalid-params 'must be boolean' for a non-boolean excludeSelf; excludeSelf with "
            "nobody else answers error-invalid-user here (UNCONFIRMED)"
        ),
        rate_limit=(
            "REST default 10/min per route and user; the method's own 10/min without send-many-messages"
        ),
        releases="",
        tests=(
            "tests/test_sandbox_fidelity_small.py::test_im_create_with_exclude_self_leaves_the_caller_out",
        ),
    ),
    Entry(
        kind="rest",
        name="POST users.register",
        server=("apps/meteor/app/api/server/v1/users.ts", "apps/meteor/app/api/server/ApiClass.ts"),
        permissions=(
            "anonymous: without authRequired the server never reads X-User-Id/X-Auth-Token, so the "
            "route's 'Logged in users can not register again.' never fires and a logged-in caller "
            "registers like anyone"
        ),
        fields="user (as before)",
        errors="as before; no 401 for a dead token in the headers",
        rate_limit=(
            "its own limiter: Rate_Limiter_Limit_RegisterUser (default 1) per "
            "API_Enable_Rate_Limiter_Limit_Time_Default, not modelled (the sandbox applies the REST default)"
        ),
        releases="",
        tests=("tests/test_sandbox_fidelity_small.py::test_users_register_ignores_auth_headers",),
    ),
    Entry(
        kind="rest",
        name="POST permissions.update",
        server=(
            "apps/meteor/app/api/server/v1/permissions.ts",
            "apps/meteor/app/authorization/server/constant/permissions.ts",
        ),
        permissions="permissionsRequired access-permissions",
        fields=(
            "permissions: the whole table after the update; the table holds all 174 default permissions "
            "(bot/sandbox/permissions.py), so any of them can be granted"
        ),
        errors=(
            "400 'Invalid permission' errorType error-invalid-permission when an id is not in the table; "
            "400 'Invalid role' error-invalid-role"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "the default table grows with releases (federated-external, mark-message-as-important are recent)"
        ),
        tests=(
            "tests/test_sandbox_fidelity_small.py::test_the_permission_table_is_the_servers",
            "tests/test_sandbox_fidelity_small.py::test_permissions_update_knows_every_default_permission",
        ),
    ),
    Entry(
        kind="rest",
        name="GET users.listByStatus",
        server=(
            "apps/meteor/app/api/server/v1/users.ts",
            "packages/rest-typings/src/v1/users/UsersListStatusParamsGET.ts",
            "packages/http-router/src/parseQueryParams.ts",
        ),
        permissions=(
            "view-d-room (and view-outside-room with API_Apply_permission_view-outside-room_on_users-list)"
        ),
        fields="roles is an array in the query string (roles[]=admin&roles[]=bot): users holding any of them",
        errors=(
            "400 invalid-params 'must be array' for roles=admin; 400 'Invalid query "
            "parameters' past 500 items"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="added in 6.8; the roles filter's $in semantics are UNCONFIRMED",
        tests=(
            "tests/test_sandbox_fidelity_small.py::test_array_query_parameters_reach_the_route",
            "tests/test_sandbox_fidelity_small.py::test_an_oversized_bracket_array_is_refused",
        ),
    ),
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
