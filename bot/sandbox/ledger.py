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
    # --- history and moderation console
    Entry(
        kind="rest",
        name="GET channels.history",
        server=(
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
            "packages/models/src/models/Messages.ts",
        ),
        permissions="any logged-in user who can read the channel (canReadRoom)",
        fields=(
            "{messages: [...newest first], success}; roomId or roomName; latest (default now), oldest, "
            "inclusive, offset, count (default 20), unreads, showThreadMessages. The route passes "
            "`showThreadMessages === 'true'` (likewise inclusive, unreads), so thread replies (tmid) are "
            "left out unless the query says exactly 'true'; a reply also sent to the room (tshow) is kept. "
            "The getChannelHistory method's own default is true; groups.history reads the flag the "
            "other way (see its line)."
        ),
        errors=(
            "400 error-room-not-found (not a public channel, or none); 400 "
            "error-room-param-not-provided; getChannelHistory false -> 403 (newer: forbidden, older: "
            "unauthorized)"
        ),
        rate_limit="REST default 10/min per route and user (the bot bypasses with api-bypass-rate-limit)",
        releases=(
            "channels.history 0.47; showThreadMessages present on every TS version read (5.x-8.x) and "
            "absent from the pre-1.0 rocketchat-api package; the release that added it is not confirmed"
        ),
        tests=(
            "tests/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/test_history_threads.py::test_a_term_purge_finds_a_thread_reply_and_keeps_its_evidence_first",
            "tests/test_history_threads.py::test_a_user_purge_keeps_evidence_of_the_users_thread_replies",
            "tests/test_history_threads.py::test_rcmod_purge_user_keeps_evidence_of_thread_replies",
            "tests/test_history_threads.py::test_scan_history_reports_a_thread_reply",
            "tests/test_history_threads.py::test_catch_up_reads_include_thread_replies",
            "tests/test_sandbox_rest.py::test_history_pages_backwards",
        ),
    ),
    Entry(
        kind="rest",
        name="GET groups.history",
        server=(
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
        ),
        permissions="a member of the private group (findPrivateGroupByIdOrName)",
        fields=(
            "as channels.history, except that the route passes `showThreadMessages !== 'false'`: thread "
            "replies are INCLUDED unless the query says exactly 'false' (unlike channels and DMs); "
            "inclusive: `=== 'true'` in the newest groups.ts, `inclusive || false` before (any "
            "non-empty string, even 'false', was on)"
        ),
        errors="400 error-room-not-found for a group the caller is not in (it looks like no group)",
        rate_limit="REST default 10/min per route and user",
        releases=(
            "groups.history 0.48; `!== 'false'` in every groups.ts version read (6.x JS and TS to the "
            "newest API.v1.get form); inclusive became `=== 'true'` in the newest"
        ),
        tests=(
            "tests/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/test_sandbox_rest.py::test_private_group_history_needs_membership",
        ),
    ),
    Entry(
        kind="rest",
        name="GET dm.history",
        server=(
            "apps/meteor/app/api/server/v1/im.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
        ),
        permissions="a member of the direct message (findDirectMessageRoom)",
        fields=(
            "as channels.history; the newest im.ts validates the query (isDmHistoryProps: roomId "
            "required, inclusive/unreads/showThreadMessages enum 'true'|'false', no other keys) - not "
            "modelled; the sandbox accepts other values and treats them as false"
        ),
        errors=(
            "400 error-room-param-not-provided 'Query param \"roomId\" is required'; 400 "
            "error-room-not-found; getChannelHistory false -> 403"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="im.history 0.48, dm.* aliases later; showThreadMessages as for channels.history",
        tests=("tests/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",),
    ),
    Entry(
        kind="rest",
        name="GET im.history",
        server=("apps/meteor/app/api/server/v1/im.ts",),
        permissions="as dm.history (one handler for both names)",
        fields="as dm.history",
        errors="as dm.history",
        rate_limit="REST default 10/min per route and user",
        releases="as dm.history; the OpenAPI files document only the dm.* names",
        tests=(
            "tests/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/test_sandbox_rest.py::test_post_message_by_channel_name_and_dm",
        ),
    ),
    Entry(
        kind="rest",
        name="GET moderation.reportsByUsers",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportHistoryProps.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="view-moderation-console (admin by default)",
        fields=(
            "{reports: [{message, msgId, ts, username, name, userId, isUserDeleted, count, rooms}], count, "
            "offset, total}. findMessageReportsGroupedByUser: $match open message reports with "
            "oldest < ts < latest (defaults epoch and now) and the selector (message text, description, "
            "author username or name; escaped, case-insensitive) -> $group by message.u._id with "
            "reports: $first and NO sort before it, so message/msgId/ts are the user's first-filed "
            "report in natural order, not the newest; count = reports; rooms = $addToSet of the "
            "reports' room -> $sort (default reports.ts -1) -> skip/limit. total: number of reported "
            "users (getTotalUniqueReportedUsers), 0 on an empty page. Newer response schemas also "
            "require roomIds, which no model version read projects: not modelled"
        ),
        errors=(
            "403 error-unauthorized without the permission; 400 invalid-params for a latest/oldest "
            "that is not a date-time or an unknown query key; 400 error-invalid-sort"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "moderation console 6.2 (an earlier naming, moderation.getReports, existed while it was "
            "built); older total = number of reports (countMessageReportsInRange), newer = number "
            "of users"
        ),
        tests=(
            "tests/test_moderation_console.py::test_reports_by_users_names_the_first_report_not_the_newest",
            "tests/test_moderation_console.py::test_dismissing_message_reports",
            "tests/test_report_native.py::test_each_reported_message_of_one_user_reaches_the_moderators_once",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
            "tests/test_sandbox_rest.py::test_moderation_endpoints",
        ),
    ),
    Entry(
        kind="rest",
        name="GET moderation.user.reportedMessages",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/GetUserReportsParams.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="view-moderation-console",
        fields=(
            "{user: {_id, username, name} | null, messages: [{_id, message, ts, room}], count, total, "
            "offset}. findReportedMessagesByReportedUserId: open reports whose message.u._id is userId "
            "(selector on the message text only), sort ts -1, paged over REPORTS; the route then keeps "
            "the first report of each message within the page, so count = reports on the page (not "
            "entries) and total = open reports; the same message can appear on two pages. Page by "
            "count. An unknown user is an empty page with user null"
        ),
        errors=(
            "400 invalid-params: userId missing or empty (minLength 1), unknown query key; 403 "
            "error-unauthorized"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "6.2-era as moderation.user.getMessageHistory (no dedupe, 'error-invalid-user' for an unknown "
            "user); the current name and shape: not confirmed which release; `user` added later"
        ),
        tests=(
            "tests/test_moderation_console.py::test_reported_messages_page_over_reports_and_deduplicate_messages",
            "tests/test_moderation_console.py::test_the_bots_client_reads_every_reported_message_across_pages",
            "tests/test_report_native.py::test_each_reported_message_of_one_user_reaches_the_moderators_once",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        kind="rest",
        name="GET moderation.reports",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportsByMsgIdParams.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="view-moderation-console",
        fields=(
            "{reports: [{_id, description, reportedBy, ts, room}], count, offset, total}: the open "
            "reports of msgId, newest first (findReportsByMessageId), selector as reportsByUsers"
        ),
        errors="400 invalid-params: msgId missing or empty (minLength 1); 403 error-unauthorized",
        rate_limit="REST default 10/min per route and user",
        releases="6.2-era name moderation.reportsByMessage; msgId minLength added later",
        tests=(
            "tests/test_moderation_console.py::test_reports_of_one_message",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        kind="rest",
        name="POST moderation.dismissReports",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ArchiveReportProps.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="manage-moderation-actions (admin by default)",
        fields=(
            "{success: true}. Body oneOf userId | msgId (by presence), plus reason, action; no other "
            "keys. A given id with no open message report -> no-reports-found. Then "
            "hideMessageReportsByUserId / ByMessageId: updateMany with no _hidden filter, so reports "
            "hidden before get their moderationInfo overwritten; reason 'No reason provided' when blank "
            "(trimmed), action 'None' when absent"
        ),
        errors=(
            "400 invalid-params (neither or both ids, extra keys: the ajv oneOf text); 400 "
            "{error: 'no-reports-found'} (plain failure); 403 error-unauthorized. Not modelled: an empty "
            "userId alone passes and hides by an undefined message id (the server may then match user "
            "reports)"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="6.2-era name moderation.markChecked (reasonForHiding, actionTaken)",
        tests=(
            "tests/test_moderation_console.py::test_dismissing_message_reports",
            "tests/test_sandbox_rest.py::test_moderation_endpoints",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
            "tests/test_report.py::test_native_reports_reach_the_moderators_and_console_dismissals_close_them",
        ),
    ),
    Entry(
        kind="rest",
        name="GET moderation.userReports",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportHistoryProps.ts",
        ),
        permissions="view-moderation-console",
        fields=(
            "{reports: [{reportedUser, ts, count}], count, offset, total}: findUserReports sorts ts -1 "
            "BEFORE grouping by reportedUser._id, so each group carries the newest report; selector on "
            "reportedUser username or name; total = number of reported users"
        ),
        errors="403 error-unauthorized; 400 invalid-params (dates, unknown keys)",
        rate_limit="REST default 10/min per route and user",
        releases="the reported-users tab of the console, merged Oct 2023: probably 6.5 (not confirmed)",
        tests=(
            "tests/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/test_moderation_console.py::test_user_report_routes_are_absent_before_6_5",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        kind="rest",
        name="GET moderation.user.reportsByUserId",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/GetUserReportsParams.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="view-moderation-console",
        fields=(
            "{user | null, reports: [{_id, description, ts, reportedBy, reportedUser}], count, total, "
            "offset}: open reports about userId, newest first; user.emails is replaced by the distinct "
            "first e-mails the page's reports recorded (reportUser stores the reported user's emails)"
        ),
        errors="400 invalid-params: userId missing or empty; 403 error-unauthorized",
        rate_limit="REST default 10/min per route and user",
        releases="as moderation.userReports (probably 6.5)",
        tests=(
            "tests/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        kind="rest",
        name="POST moderation.dismissUserReports",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ArchiveReportProps.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        permissions="manage-moderation-actions",
        fields=(
            "{success: true}. Same body schema as dismissReports (oneOf userId | msgId); then no userId "
            "-> failure. hideUserReportsByUserId hides every report about the user (no check that any "
            "is open: success either way); reason `?? 'No reason provided'` (an empty reason is kept), "
            "action 'None'"
        ),
        errors=(
            "400 invalid-params (the oneOf text); 400 {error: 'error-user-id-param-not-provided'} for an "
            "empty or absent userId; 403 error-unauthorized"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="as moderation.userReports (probably 6.5)",
        tests=(
            "tests/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        kind="rest",
        name="POST moderation.reportUser",
        server=(
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
        ),
        permissions="any logged-in user",
        fields=(
            "{success: true}; stores reportedUser {_id, name, username, emails, createdAt} and "
            "reportedBy {_id, name, username, createdAt} (older releases answered with the insert result)"
        ),
        errors=(
            "400 'Invalid user id provided.' (plain failure); 400 invalid-params without userId or "
            "description"
        ),
        rate_limit="REST default 10/min per route and user",
        releases="6.4",
        tests=(
            "tests/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/test_report.py::test_reporting_a_user_and_bad_targets",
        ),
    ),
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
