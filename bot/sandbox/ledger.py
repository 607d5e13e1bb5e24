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


_SETUP_2FA_FILES = (
    "apps/meteor/app/2fa/server/code/index.ts",
    "apps/meteor/app/2fa/server/code/EmailCheck.ts",
    "apps/meteor/app/2fa/server/loginHandler.ts",
    "apps/meteor/server/settings/accounts.ts",
)
_SETUP_CAN_SEND = "apps/meteor/app/authorization/server/functions/canSendMessage.ts"
_SETUP_EMAIL_2FA = (
    "totp-required 'TOTP Required' (no code), totp-invalid 'TOTP Invalid' (wrong, used or expired "
    "code), totp-max-attempts 'TOTP Maximun Failed Attempts Reached' (5 wrong codes, "
    "Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts); details {method: 'email', "
    "emailOrUsername, codeGenerated, codeExpires (only when no new code was sent), availableMethods: "
    "['email']}. A code is mailed unless one is still live (EmailCheck.processInvalidCode), lives "
    "Accounts_TwoFactorAuthentication_By_Email_Code_Expiration (3600 s), works once, non-digits "
    "are ignored (123-456). E-mail 2FA applies only with Accounts_TwoFactorAuthentication_Enabled "
    "and _By_Email_Enabled on, services.email2fa.enabled and a verified address (EmailCheck.isEnabled)"
)

LEDGER: tuple[Entry, ...] = (
    # --- setup, 2FA, read-only
    Entry(
        kind="rest",
        name="POST login",
        server=(
            "apps/meteor/app/api/server/api.ts",
            "apps/meteor/app/api/server/ApiClass.ts",
            *_SETUP_2FA_FILES,
        ),
        permissions="no auth; body user|username|email + password, optional code (or header x-2fa-code)",
        fields="200 {status: 'success', data: {userId, authToken, me}}; no `success` key",
        errors=(
            "401 unauthorized() {success: false, error} overlaid with {status: 'error', error: <Meteor "
            "error>, details, message: reason}; unknown user -> error/message 'Unauthorized'; wrong "
            "password -> error 403 'Incorrect password'; with Accounts_EmailVerification on, a non-admin "
            "without a verified address -> error-invalid-email. Second factor (onValidateLogin, password "
            "fallback disabled, so only users with e-mail or TOTP 2FA are asked): " + _SETUP_EMAIL_2FA
        ),
        rate_limit=(
            "REST default limiter (10/min per route and client unless api-bypass-rate-limit); failed "
            "logins also count toward Block_Multiple_Failed_Logins (10 per user, 50 per IP, 5 min): "
            "not modelled"
        ),
        releases=(
            "the error/details overlay is dropped once applyBreakingChanges holds "
            "(shouldBreakInVersion('8.0.0') in 7.x sources, '9.0.0' in newer ones): then a 2FA login "
            "is a bare 401 and only DDP login still says totp-required"
        ),
        tests=(
            "tests/test_sandbox_rest.py::test_login_with_password_and_resume",
            "tests/test_two_factor.py::test_a_verified_user_gets_an_emailed_code_and_logs_in_with_it",
            "tests/test_two_factor.py::test_an_unverified_address_means_no_email_2fa",
            "tests/test_two_factor.py::test_an_admin_with_email_2fa_is_told_what_to_do_then_passes_the_code",
            "tests/test_two_factor.py::test_the_bots_password_mode_on_an_account_with_email_2fa_ends_in_one_line",
            "tests/test_rest_errors.py::test_two_factor_answers_say_what_a_person_must_do",
        ),
    ),
    Entry(
        kind="ddp",
        name="login",
        server=("apps/meteor/app/authentication/server/startup/index.js", *_SETUP_2FA_FILES),
        permissions="none; params [{user, password: {digest, algorithm: 'sha-256'}}] or [{resume}], "
        "or [{totp: {login: <either>, code}}] (the `totp` login handler)",
        fields="result {id, token, tokenExpires: {$date}, type: 'password'|'resume'}",
        errors=(
            "Meteor.Error objects {isClientSafe, error, reason, details, message: 'reason [error]', "
            "errorType: 'Meteor.Error'}; resume logins skip 2FA; details dates are EJSON {$date}. "
            + _SETUP_EMAIL_2FA
        ),
        rate_limit="DDP_Rate_Limit_Connection_By_Method; Block_Multiple_Failed_Logins not modelled",
        releases="",
        tests=(
            "tests/test_two_factor.py::test_ddp_login_asks_for_the_code_and_takes_it",
            "tests/test_sandbox_ddp.py::test_login_failures_match_reference",
        ),
    ),
    Entry(
        kind="rest",
        name="POST users.create",
        server=(
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/saveUser/saveNewUser.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserData.ts",
            "apps/meteor/app/authentication/server/startup/index.js",
        ),
        permissions="create-user (admin); assign-admin-role to create an admin",
        fields=(
            "user {_id, username, name, emails: [{address as given, verified: the body's boolean "
            "`verified`, else false}], roles, active, ...}. Accounts.insertUserDoc sets "
            "services.email2fa.enabled while Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In is "
            "on (default on, not public): with verified: true the new user gets e-mail 2FA"
        ),
        errors="400 error-field-unavailable '<username|email> is already in use :(', invalid-params (ajv)",
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_two_factor.py::test_a_verified_user_gets_an_emailed_code_and_logs_in_with_it",
            "tests/test_two_factor.py::test_setup_works_on_a_default_server",
            "tests/test_sandbox_openapi.py::test_openapi_workspace_setup",
        ),
    ),
    Entry(
        kind="rest",
        name="POST users.generatePersonalAccessToken",
        server=("apps/meteor/app/api/server/v1/users.ts", *_SETUP_2FA_FILES),
        permissions="create-personal-access-tokens; twoFactorRequired (x-2fa-code / x-2fa-method)",
        fields="{token}",
        errors=(
            "400 errorType totp-required/totp-invalid with details; skipped within "
            "Accounts_TwoFactorAuthentication_RememberFor (1800 s) of the user's creation. The method "
            "is the user's first enabled one (e-mail before the password fallback, whatever "
            "x-2fa-method says, since 'password' is not a check method by name)"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=("tests/test_setup.py::test_setup_then_doctor_is_green",),
    ),
    Entry(
        kind="rest",
        name="POST chat.delete",
        server=(
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/authorization/server/functions/canDeleteMessage.ts",
        ),
        permissions=(
            "force-delete-message, else Message_AllowDeleting and delete-message (or own message and "
            "delete-own-message), the BlockDeleteInMinutes window unless bypass-time-limit-edit-and-"
            "delete, then in a read-only room post-readonly or an explicit unmute of the deleting user"
        ),
        fields="{_id, ts, message}",
        errors=(
            "400 error-action-not-allowed 'Not allowed'; read-only: a plain Error -> 400 {success: "
            'false, error: "You can\'t delete messages because the room is readonly."} (no errorType)'
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "older canDeleteMessage checked room.unmuted against the message author's username, newer "
            "against the deleting user's (modelled)"
        ),
        tests=(
            "tests/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
        ),
    ),
    Entry(
        kind="rest",
        name="POST chat.update",
        server=("apps/meteor/app/lib/server/methods/updateMessage.ts", _SETUP_CAN_SEND),
        permissions=(
            "edit-message, or own message with Message_AllowEditing; then canSendMessage for the "
            "editor: in a read-only room post-readonly or an unmute, and not muted"
        ),
        fields="{message}",
        errors=(
            "400 error-action-not-allowed 'Message editing not allowed'; read-only: plain Error "
            "\"You can't send messages because the room is readonly.\"; muted: 'You_have_been_muted'"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
        ),
    ),
    Entry(
        kind="rest",
        name="POST chat.sendMessage",
        server=("apps/meteor/app/lib/server/methods/sendMessage.ts", _SETUP_CAN_SEND),
        permissions="room access; read-only room: post-readonly or an explicit unmute; not muted",
        fields="{message}",
        errors=(
            "read-only: plain Error -> 400 {success: false, error: \"You can't send messages because the "
            'room is readonly."}, and the sender gets it as an ephemeral message; muted: '
            "'You_have_been_muted'"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
            "tests/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
        ),
    ),
    Entry(
        kind="rest",
        name="POST chat.postMessage",
        server=("apps/meteor/app/api/server/v1/chat.ts", _SETUP_CAN_SEND),
        permissions="as chat.sendMessage (the same canSendMessage checks)",
        fields="{ts, channel, message}",
        errors="as chat.sendMessage",
        rate_limit="REST default 10/min per route and user",
        releases="",
        tests=(
            "tests/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
        ),
    ),
    Entry(
        kind="ddp",
        name="sendMessage",
        server=("apps/meteor/app/lib/server/methods/sendMessage.ts", _SETUP_CAN_SEND),
        permissions="as chat.sendMessage",
        fields="result: the message",
        errors="the read-only and muted plain Errors become error 500 'Internal server error' over DDP",
        rate_limit="DDP_Rate_Limit_Connection_By_Method",
        releases="",
        tests=(
            "tests/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
        ),
    ),
    Entry(
        kind="ddp",
        name="updateMessage",
        server=("apps/meteor/app/lib/server/methods/updateMessage.ts", _SETUP_CAN_SEND),
        permissions="as chat.update",
        fields="no result",
        errors="as chat.update; plain Errors become 500 'Internal server error'",
        rate_limit="DDP_Rate_Limit_Connection_By_Method",
        releases="",
        tests=(
            "tests/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
        ),
    ),
    Entry(
        kind="ddp",
        name="deleteMessage",
        server=("apps/meteor/app/authorization/server/functions/canDeleteMessage.ts",),
        permissions="as chat.delete",
        fields="no result",
        errors="as chat.delete; the read-only plain Error becomes 500 'Internal server error'",
        rate_limit="DDP_Rate_Limit_Connection_By_Method",
        releases="as chat.delete",
        tests=(
            "tests/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
        ),
    ),
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
