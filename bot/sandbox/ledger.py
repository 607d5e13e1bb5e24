"""The fidelity ledger: for every REST route, DDP method and stream the sandbox serves (and so every
one the bot calls), which Rocket.Chat server source it follows, what it checks, what it returns to
whom, how it fails, how it is rate-limited, which releases differ, and which tests hold the sandbox
to it.

The server is the reference, not this sandbox: a line here is a claim about
``RocketChat/Rocket.Chat`` (paths are relative to that repository), and ``tests/sandbox/test_ledger.py``
checks that every route, method and stream served or called is listed and that every test named
here exists. When a line and the server disagree, the server wins and the sandbox is the defect.
"unconfirmed" marks what was not seen in the server's source.

Entries are grouped by kind (REST, then DDP, then streams); lines added later go in blocks at the
end of the tuple. Each line is one row in Entry's field order: kind, name, server files,
permissions, fields, errors, rate limit, releases, tests.

Data only: nothing here runs on a request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    # Rate limit: REST_RATE, DDP_RATE or STREAM_RATE below, or the route's own rule.
    rate_limit: str
    # Releases that differ ("added in 6.8", "401 instead of 403 from 7.0", ...); "" = none known.
    releases: str
    # Tests that hold the sandbox (and the bot) to this line: "tests/<package>/test_x.py::test_name".
    tests: tuple[str, ...]


# Shared by many lines below; "AJV: <validator>" or "CHANNEL_LOOKUP" in a line refers to these.
REST_RATE = (
    "REST default: API_Enable_Rate_Limiter_Limit_Calls_Default (10) calls per "
    "API_Enable_Rate_Limiter_Limit_Time_Default (60000 ms) per route and method, keyed by client IP "
    "(rule {IPAddr, route} in ApiClass.ts); skipped when API_Enable_Rate_Limiter is false or the caller "
    "has api-bypass-rate-limit; headers X-RateLimit-Limit/-Remaining/-Reset (epoch ms); over the limit "
    "429 error-too-many-requests 'Error, too many requests. Please slow down. You must wait N seconds "
    "before trying this endpoint again.'. The sandbox counts per user id (per IP only without a user)."
)
DDP_RATE = (
    "DDPRateLimiter rules from apps/meteor/app/lib/server/startup/rateLimiter.ts with the defaults of "
    "apps/meteor/server/settings/rate.ts (re-read): DDP_Rate_Limit_Connection_By_Method 10 calls / "
    "10000 ms per connection and method, DDP_Rate_Limit_User_By_Method 20 / 10000 ms per user and "
    "method (both on by default; names starting with 'stream-' x4), plus per-IP (120000 / 60 s, not "
    "127.0.0.1), per-user (1200 / 60 s) and per-connection (600 / 60 s) totals. The rules' only "
    "exemption is broadcastAuth (server instances talking to each other): api-bypass-rate-limit is a "
    "REST matter (ApiClass.ts shouldVerifyRateLimit) and does not touch DDP, bot role or not. A method "
    "with its own rule (RateLimiter.limitMethod) is left out of the per-method defaults. Meteor's "
    "ddp-server checks every method call (livedata_server.js, protocol_handlers.method) and the REST "
    "method.call/:method route applies the same limiter. Over a limit the result carries error "
    "too-many-requests with details.timeToReset (ms). The sandbox models the per-connection-per-method "
    "rule."
)
STREAM_RATE = (
    "Subscriptions count against the DDPRateLimiter rules too; names starting with 'stream-' get both "
    "numbers x4 (40 subscriptions / 40 s per connection; reference A.8, not re-read); refused with "
    "nosub carrying too-many-requests."
)
NOT_LOGGED_IN = (
    "401 {status:'error', message:'You must be logged in to do this.'} without a valid "
    "X-User-Id/X-Auth-Token; the newer ApiClass.ts merges that into unauthorized()'s {success:false, "
    "error:'unauthorized'} (release unconfirmed; the sandbox sends the older body)."
)
AJV = (
    "A body or query the route's ajv validator rejects: 400 {success:false, error:'<ajv messages joined "
    "by newline+space> [invalid-params]', errorType:'invalid-params'} (ApiClass.ts), checked after the "
    "rate limit and before permissions."
)
CHANNEL_LOOKUP = (
    "channels.* find the room with channels.ts's findChannelByIdOrName: t 'c' (or 'l') else "
    'error-room-not-found \'The required "roomId" or "roomName" param provided does not match any '
    "channel'; archived rooms error-room-archived 'The channel, <name>, is archived' unless the route "
    "allows them. Neither roomId nor roomName: ajv invalid-params in the newer channels.ts; the older "
    "channels.js threw error-roomid-param-not-provided; the sandbox answers "
    "error-room-param-not-provided (groups.ts's code)."
)
FORBIDDEN = (
    "permissionsRequired failing: 403 {success:false, error:'User does not have the permissions "
    "required for this action [error-unauthorized]'} (middlewares/permissions.ts; the server's own e2e "
    "tests assert it)."
)

# The short form most REST lines give (REST_RATE above spells the rule out).
_REST_DEFAULT = "REST default 10/min per route and user"
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

# Files, and tests, that several lines below share.
_STREAMER = (
    "apps/meteor/server/modules/notifications/notifications.module.ts",
    "apps/meteor/server/modules/streamer/streamer.module.ts",
)
_ROOM_ADMIN_TESTS = (
    "tests/sandbox/test_sandbox_rest.py::test_room_administration",
    "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
)
_MODERATION_USER_REPORTS = (
    "apps/meteor/app/api/server/v1/moderation.ts",
    "packages/models/src/models/ModerationReports.ts",
    "packages/rest-typings/src/v1/moderation/GetUserReportsParams.ts",
    "apps/meteor/tests/end-to-end/api/moderation.ts",
)
_USER_REPORTS_TESTS = (
    "tests/services/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
    "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
)
_MODERATION_DISMISS = (
    "apps/meteor/app/api/server/v1/moderation.ts",
    "packages/models/src/models/ModerationReports.ts",
    "packages/rest-typings/src/v1/moderation/ArchiveReportProps.ts",
    "apps/meteor/tests/end-to-end/api/moderation.ts",
)


# Routes registered under two names with one handler (im.ts: dm.* and im.*): one line each,
# the alias differing only in its tests.
_DM_CREATE = Entry(
    "rest",
    "POST dm.create",
    ("apps/meteor/app/api/server/v1/im.ts", "apps/meteor/server/methods/createDirectMessage.ts"),
    "create-d",
    "room: the direct room with rid; excludeSelf drops the caller from the members (no "
    "subscription for the caller), so an admin can open a DM between others",
    "400 error-invalid-params without username/usernames; error-invalid-user for an unknown "
    "username; invalid-params 'must be boolean' for a non-boolean excludeSelf; excludeSelf with "
    "nobody else answers error-invalid-user here (UNCONFIRMED)",
    f"{_REST_DEFAULT}; the method's own 10/min without send-many-messages",
    "",
    (
        "tests/sandbox/test_sandbox_fidelity_small.py::test_im_create_with_exclude_self_leaves_the_caller_out",
        "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
    ),
)


_DM_LIST = Entry(
    "rest",
    "GET dm.list",
    ("apps/meteor/app/api/server/v1/im.ts",),
    "",
    "ims (the caller's direct rooms, with lastMessage), count, offset, total; default sort by name",
    "",
    _REST_DEFAULT,
    "",
    (
        "tests/sandbox/test_sandbox_admin.py::test_dm_list_shows_the_callers_direct_rooms",
        "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
    ),
)


# The two DDP methods for muting share one handler shape (muteUserInRoom.ts / unmuteUserInRoom.ts).
_MUTE_IN_ROOM = Entry(
    "ddp",
    "muteUserInRoom",
    ("apps/meteor/server/methods/muteUserInRoom.ts",),
    "mute-user in the room; the target must be subscribed.",
    "true; posts user-muted / user-unmuted and notifies the room change.",
    "check(data, ObjectIncluding {rid: String, username: String}): 400 'Match failed'; "
    "error-invalid-user; error-not-allowed 'Not allowed' {method}; error-invalid-room; "
    "error-invalid-room-type '<t> is not a valid room type'; error-user-not-in-room 'User is "
    "not in this room'.",
    DDP_RATE,
    "What servers before 6.8 offer instead of rooms.muteUser/unmuteUser; deprecated for 8.0.0.",
    ("tests/sandbox/test_sandbox_fidelity.py::test_ddp_mute_and_unmute_user_in_room",),
)


# Uploads: a member's file, the message it posts, and the route the bot downloads it from.
_ROOMS_TS = "apps/meteor/app/api/server/v1/rooms.ts"
_FORM = "apps/meteor/app/api/server/lib/getUploadFormData.ts"
_FILE_UPLOAD = "apps/meteor/app/file-upload/server/lib/FileUpload.ts"
_SEND_FILE = "apps/meteor/app/file-upload/server/methods/sendFileMessage.ts"
_UPLOAD_SETTINGS = "apps/meteor/app/file-upload/server/startup/settings.ts"
_RESTRICTIONS = "apps/meteor/app/utils/lib/restrictions.ts"
_UPLOAD_E2E = "apps/meteor/tests/end-to-end/api/rooms.ts"
_UPLOAD_FORM_RULES = (
    "the route's canAccessRoomIdAsync(rid) first: 403 forbidden() ({success:false, "
    "error:'unauthorized'} before 9.0), before the form is read; then getUploadFormData (busboy, "
    "limits files:1 and fileSize:FileUpload_MaxFileSize when > -1): a file part not named 'file' "
    "400 '[invalid-field]' errorType invalid-field; over the size 400 '[error-file-too-large]'; a "
    "second file refused (400; 7.x busboy 'Just 1 file is allowed', the 8.x tests say errorType "
    "error-too-many-files: the sandbox answers the 7.x text, unconfirmed how ApiClass words a "
    "string rejection); no file 400 '[No file uploaded]'; then validateFileUpload (the Uploads "
    "store's filter): FileUpload_Enabled off error-file-upload-disabled, a DM with "
    "FileUpload_Enabled_Direct off error-direct-message-file-upload-not-allowed, size over "
    "FileUpload_MaxFileSize error-file-too-large, type refused by FileUpload_MediaTypeBlackList "
    "(default image/svg+xml; 'type/*' wildcards) or not on a non-empty FileUpload_MediaTypeWhiteList "
    "error-invalid-file-type (an end-to-end file, content {algorithm, ciphertext}, is typed "
    "application/octet-stream, refused with E2E_Enable_Encrypt_Files off). The type is the part's "
    "own unless empty or octet-stream, else looked up from the name (.lst is text/plain). The "
    "i18n reasons are from memory (unconfirmed); the errorTypes are the server's."
)
_UPLOAD_MESSAGE = (
    "sendFileMessage/parseFileIntoMessageAttachments: msg (default ''), groupable false, file = "
    "files[0], files = [{_id, name, type, size, format}] plus, for an image not smaller than "
    "Message_Attachments_Thumbnails_Width x _Height (480x360) in both sides, a thumbnail upload "
    "{name 'thumb-<name>', typeGroup 'thumb'}; one attachment {title: name, type 'file', "
    "description?, title_link '/file-upload/<id>/<encodeURI(name)>' (server-relative), "
    "title_link_download true, fileId} with image_url/image_type/image_size/image_dimensions "
    "(image_url and image_type the thumbnail's when there is one: the original is at title_link), "
    "audio_*/video_* likewise, else format (extension, upper case) and size. Sandbox: dimensions "
    "are read from PNG/GIF/JPEG headers (the server's sharp reads more formats); the thumbnail is a "
    "separate upload holding the original's bytes with the fitted size stated (no resizing); "
    "image_preview (a 32px blurred JPEG) is not produced. Delivered like any message: "
    "stream-room-messages, chat.syncMessages, history."
)
_UPLOAD_TESTS = "tests/sandbox/test_sandbox_uploads.py::"

_UPLOAD_LINES: tuple[Entry, ...] = (
    Entry(
        "rest",
        "POST rooms.media/:rid",
        (_ROOMS_TS, _FORM, _FILE_UPLOAD, _UPLOAD_SETTINGS, _RESTRICTIONS, _UPLOAD_E2E),
        "logged in; canAccessRoom(rid) (public channels with view-c-room, else a subscription); "
        "no upload permission of its own; FileUpload_Enabled (and _Direct for DMs)",
        "multipart, file in field 'file', other parts are text fields (content: an end-to-end "
        "file's JSON, else 400 invalid-field-content). 200 {file: {_id, url: "
        "'/file-upload/<id>/<encodeURI(name)>'}}; stores a temporary upload (expiresAt now + 24 h) "
        "and posts nothing. Sandbox: files are held in memory, at most FileUpload_MaxFileSize each "
        "(default 104857600) and UPLOAD_STORE_BYTES (256 MiB) in all; the body is streamed and "
        "refused past the cap, never held whole",
        NOT_LOGGED_IN + " " + _UPLOAD_FORM_RULES,
        REST_RATE + " The rule is per route as declared (rooms.media/:rid), not per room's path "
        "(the route pattern as the rate-limit key: read from ApiClass.ts's rule shape, unconfirmed).",
        "",
        (
            _UPLOAD_TESTS + "test_media_stores_a_file_and_confirm_posts_it_with_a_thumbnail",
            _UPLOAD_TESTS + "test_form_and_file_refusals_answer_as_the_server",
            _UPLOAD_TESTS + "test_who_may_upload",
            _UPLOAD_TESTS + "test_upload_routes_share_the_rest_rate_limit_per_route",
            _UPLOAD_TESTS + "test_the_store_is_bounded",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.mediaConfirm/:rid/:fileId",
        (_ROOMS_TS, _SEND_FILE, _UPLOAD_E2E),  # OpenAPI: rooms.yaml rooms.mediaConfirm
        "logged in; canAccessRoom(rid); the file must be the caller's and sent to rid "
        "(Uploads.findOneByIdAndUserIdAndRoomId in the current rooms.ts and the OpenAPI text; an "
        "older 7.x rooms.ts looked it up by id alone: which release changed it is unconfirmed, the "
        "sandbox checks for every release); then sendMessage's checks (read-only, muted, "
        "impersonation)",
        "JSON body: description (the attachment's), fileName (renames the file), and the message's "
        "msg, tmid, alias, emoji, "
        "avatar, groupable, customFields, t, content (any other key fails sendFileMessage's Match). "
        "200 {message} (Messages.getMessageByFileIdAndUsername: null where sendFileMessage answered "
        "false). The file stops being temporary. " + _UPLOAD_MESSAGE,
        NOT_LOGGED_IN + " No access to rid: 403 forbidden(). Unknown file, or another user's, or "
        "one sent to another room: 400 '[invalid-file]'; "
        "description longer than Message_MaxAllowedSize: 400 '[error-message-size-exceeded]'; "
        "sendMessage's refusals as chat.sendMessage.",
        REST_RATE,
        "",
        (
            _UPLOAD_TESTS + "test_media_stores_a_file_and_confirm_posts_it_with_a_thumbnail",
            _UPLOAD_TESTS + "test_a_picture_inside_the_thumbnail_box_is_shown_itself",
            _UPLOAD_TESTS + "test_other_files_get_a_plain_file_attachment",
            _UPLOAD_TESTS + "test_form_and_file_refusals_answer_as_the_server",
            _UPLOAD_TESTS + "test_confirm_takes_only_the_callers_own_file_for_that_room",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_uploads",
            "tests/realtime/test_file_messages.py::test_a_members_upload_reaches_the_bot_and_downloads_whole",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.upload/:rid",
        (_ROOMS_TS, _FORM, _FILE_UPLOAD, _SEND_FILE),
        "as rooms.media",
        "rooms.media and rooms.mediaConfirm in one call: the form's other fields are the message's "
        "(description the attachment's); the upload is not temporary. 200 {message}",
        "as rooms.media; a description over Message_MaxAllowedSize is refused after the file was "
        "stored (400 '[error-message-size-exceeded]')",
        REST_RATE,
        "deprecated for 8.0.0 (deprecation.version in the 7.x rooms.ts) and gone from the 8.x "
        "source: 404 from 8.0 (bot.sandbox.releases.ROUTES_UNTIL)",
        (_UPLOAD_TESTS + "test_rooms_upload_posts_in_one_call_until_8_0",),
    ),
    Entry(
        "rest",
        "GET file-upload/:fileId/:name",
        (
            "apps/meteor/app/file-upload/server/lib/requests.ts",
            _FILE_UPLOAD,
            "apps/meteor/app/file-upload/server/config/GridFS.ts",
            _UPLOAD_SETTINGS,
            _UPLOAD_E2E,
        ),
        "requestCanAccessFiles: anyone with FileUpload_ProtectFiles off; else a user named by the "
        "rc_uid/rc_token query, else the rc_uid/rc_token cookies, else the X-User-Id/X-Auth-Token "
        "headers (a login token or a personal access token; the bot sends the headers: no token in "
        "URLs or a cookie jar). Then FileUpload_Restrict_to_room_members (default false): a "
        "subscription to the file's room; FileUpload_Restrict_to_users_who_can_access_room: "
        "canAccessRoom; both on: nobody. Not modelled: the rc_room_type grants and JSON web tokens "
        "(FileUpload_Enable_json_web_token_for_files), replyWithRedirectUrl, Range requests",
        "the file by id (the name segment is not read; /file-upload/<id> without a name is 404), "
        "answered by the default GridFS store: Content-Type (the upload's type, else "
        'application/octet-stream), Content-Length, Content-Disposition "inline; '
        "filename*=UTF-8''<encodeURIComponent(name)>\", Last-Modified, Content-Security-Policy "
        "\"default-src 'none'\", Cache-Control max-age=31536000; with Accept-Encoding gzip (or "
        "deflate) the body is compressed and Content-Length dropped (the bot asks for identity). S3 "
        "and Google storage without their proxy settings answer a 302 to the bucket's signed URL "
        "instead (FileUpload.redirectToFile in FileUpload.ts, called by config/AmazonS3.ts and "
        "config/GoogleStorage.ts after the access check; not modelled here: the bot follows that "
        "one redirect without its headers, tested against a stand-in bucket)",
        "403 with an empty body where access is refused (no credentials included: not 401); 404 "
        "with an empty body for an unknown id",
        "none: a WebApp handler outside the REST API's limiter",
        "",
        (
            _UPLOAD_TESTS + "test_the_file_route_answers_with_the_bytes_and_the_stores_headers",
            _UPLOAD_TESTS + "test_the_file_routes_access_rules",
            "tests/rest/test_rest_download.py::test_the_bot_downloads_what_a_member_uploaded",
            "tests/rest/test_rest_download.py::test_a_file_the_bot_may_not_read_is_permission_denied",
            "tests/rest/test_rest_download.py::test_the_bot_sends_its_headers_and_asks_for_no_coding",
            "tests/rest/test_rest_download.py::test_links_that_could_reach_elsewhere_are_refused",
            "tests/rest/test_rest_download.py::test_a_crafted_link_never_reaches_another_host",
            "tests/rest/test_rest_download.py::test_caps_and_limits",
            "tests/rest/test_rest_download.py::test_server_faults_and_redirects",
        ),
    ),
)


LEDGER: tuple[Entry, ...] = (
    Entry(
        "rest",
        "GET info",
        (
            "apps/meteor/app/api/server/default/info.ts",
            "apps/meteor/app/api/server/lib/getServerInfo.ts",
        ),
        "none: /api/info (not /api/v1) is served with authRequired false.",
        "{version, minimumClientVersions, supportedVersions?, success}; getServerInfo trims version "
        "to major.minor unless the caller has view-statistics, who also gets info (the full build "
        "Info) and the full version. The sandbox answers {version (full), success} to everyone.",
        "none specific.",
        REST_RATE,
        "The trimmed version and minimumClientVersions come with the supported-versions work "
        "(release unconfirmed); older servers answer the full version to anyone.",
        ("tests/sandbox/test_sandbox_rest.py::test_info_is_public_and_versioned",),
    ),
    Entry(
        "rest",
        "POST logout",
        ("apps/meteor/app/api/server/ApiClass.ts",),
        "logged in (authRequired true). GET is also accepted, deprecated.",
        "{status:'success', data:{message:\"You've been logged out!\"}}; pulls the request's "
        "hashed token from services.resume.loginTokens (a personal access token used as the request "
        "token is removed too: unconfirmed whether PATs are exempt; the sandbox keeps them).",
        NOT_LOGGED_IN,
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_authentication",),
    ),
    Entry(
        "rest",
        "GET chat.getMessage",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/lib/server/methods/getSingleMessage.ts",
        ),
        "getSingleMessage: the caller must be able to access the message's room.",
        "{message} (normalizeMessagesForUser) + success.",
        "400 'The \"msgId\" query parameter must be provided.'; unknown message or no access: a "
        "failure with no text (400 {success:false}; exact shape unconfirmed, the sandbox answers "
        "'Invalid message'/'Not allowed' errors). AJV: isChatGetMessageProps.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_rest.py::test_restart_keeps_state",
        ),
    ),
    Entry(
        "rest",
        "GET chat.syncMessages",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/server/publications/messages.ts",
        ),
        "getMessageHistory: the caller must be able to access the room (unconfirmed in detail).",
        "{result:{updated, deleted, cursor?}} + success; updated messages normalized for the caller. "
        "With lastUpdate alone (handleWithoutPagination): every non-hidden message of the room whose "
        "_updatedAt is after lastUpdate, unpaged, new messages and thread replies included, newest "
        "first; deleted: the trash's since lastUpdate. The bot's catch-up relies on this: an empty "
        "answer means nothing new in the room, so its history is not read.",
        'error-param-required \'The required "roomId" query param is missing\' / \'The "type" or '
        "\"lastUpdate\" parameters must be provided'; error-lastUpdate-param-invalid 'The "
        '"lastUpdate" query parameter must be a valid date\'. AJV: isChatSyncMessagesProps.',
        REST_RATE
        + " The same read over DDP, method messages/get(rid, {lastUpdate}) (publications/messages.ts, "
        "no rule of its own, no this.unblock(), so one connection's calls run one after another), "
        "falls under the DDP per-method defaults (see DDP_RATE: 10 / 10 s per connection, 20 / 10 s "
        "per user, no api-bypass-rate-limit exemption), so a catch-up sweep of many rooms asks it "
        "over REST, where the bot role's api-bypass-rate-limit (permissions.ts: admin, bot, app) "
        "lifts the limit.",
        "The cursor form (next/previous/type) is newer (release unconfirmed) and not modelled by "
        "the sandbox. Older chat.ts (lastUpdate only) threw error-roomId-param-not-provided 'The "
        'required "roomId" query param is missing.\', error-lastUpdate-param-not-provided and '
        "error-roomId-param-invalid for a bad date.",
        (
            "tests/sandbox/test_sandbox_rest.py::test_sync_messages_shape",
            "tests/sandbox/test_sandbox_rest.py::test_required_params_are_enforced",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
        ),
    ),
    Entry(
        "rest",
        "POST chat.pinMessage",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/message-pin/server/pinMessage.ts",
        ),
        "Message_AllowPinning; pin-message in the room; can access the room.",
        "{message}: the new message_pinned (message_pinned_e2e) system message quoting the "
        "original; an already pinned message returns the original unchanged.",
        "Body schema {messageId: string, minLength 1}, additionalProperties false; "
        "error-message-not-found 'The provided \"messageId\" does not match any existing message.'; "
        "error-action-not-allowed 'Message pinning not allowed'; not-authorized 'Not Authorized'.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_client.py::test_post_edit_pin_report_delete_as_bot",
        ),
    ),
    Entry(
        "rest",
        "POST chat.unPinMessage",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/message-pin/server/pinMessage.ts",
        ),
        "Message_AllowPinning; the caller must be subscribed to the room; pin-message in the room.",
        "{success:true} only (response schema additionalProperties false).",
        "error-message-not-found (route); error-action-not-allowed 'Message pinning not allowed'; "
        "error-invalid-message 'Message you are unpinning was not found' (also when not "
        "subscribed); not-authorized 'Not Authorized'.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",),
    ),
    Entry(
        "rest",
        "POST chat.react",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/reactions/server/setReaction.ts",
        ),
        "can access the room; not muted; read-only rooms need reactWhenReadOnly or post-readonly.",
        "{success:true}.",
        'error-message-not-found; error-emoji-param-not-provided \'The required "emoji" param is '
        "missing.'; error-not-allowed 'Invalid emoji provided.' (unknown emoji; not modelled by the "
        "sandbox); not-authorized 'Not Authorized'; muted: error-not-allowed with the "
        "You_have_been_muted text. AJV: isChatReactProps.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",),
    ),
    Entry(
        "rest",
        "POST chat.reportMessage",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/server/lib/moderation/reportMessage.ts",
        ),
        "reportMessage(): the reporter must be able to access the message's room (details unconfirmed).",
        "{success:true}.",
        '400 bare \'The required "messageId" param is missing.\' / \'The required "description" '
        "param is missing.'. AJV: isChatReportMessageProps.",
        REST_RATE,
        "Files a moderation-console report from 6.2 (reference C.1).",
        (
            "tests/sandbox/test_sandbox_rest.py::test_moderation_endpoints",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
        ),
    ),
    Entry(
        "rest",
        "GET rooms.info",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/lib/banUserFromRoom.ts",
        ),
        "canAccessRoom on the room found by roomId or roomName.",
        ("{room (projection from fields, default all), team?, parent?} + success.")
        + " Bans: a banned user cannot read the room's info, public or not",
        (
            'error-roomid-param-not-provided \'The parameter "roomId" or "roomName" is required\'; '
            'error-room-not-found \'The required "roomId" or "roomName" param provided does not match '
            "any channel'; error-room-archived 'The channel, <name>, is archived'; no access: 400 "
            "{success:false, error:'not-allowed', errorType:'Not Allowed'} (failure() with the code as "
            "text)."
        )
        + " Bans: 400 for a banned user (8.3+)",
        REST_RATE,
        (
            "The archived check comes from findRoomByIdOrName's default (unconfirmed for older "
            "releases; the sandbox does not refuse archived rooms)."
        )
        + " Bans: the ban refusal from 8.3",
        (
            "tests/sandbox/test_sandbox_rest.py::test_private_group_history_needs_membership",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_fidelity.py::test_rooms_info_without_a_room_param",
            "tests/sandbox/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
        ),
    ),
    Entry(
        "rest",
        "GET rooms.get",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/publications/room/index.ts",
            "apps/meteor/app/lib/server/lib/notifyUsersOnMessage.ts",
            "apps/meteor/app/lib/server/lib/afterSaveMessage.ts",
            "apps/meteor/app/lib/server/functions/deleteMessage.ts",
            "packages/models/src/models/BaseRaw.ts",
        ),
        "logged in; rooms of the caller's subscriptions.",
        "{update, remove} + success (each room composed with its lastMessage). With updatedSince: "
        "the rooms whose _updatedAt is after it (findBySubscriptionUserIdUpdatedAfter, $gt). "
        "BaseRaw.updateOne sets _updatedAt on every write, and the server writes the room on every "
        "new message (notifyUsersOnMessage: msgs, and lm/lastMessage unless a reply only in its "
        "thread; through afterSaveMessage's room updater, a moment after the message is saved), on "
        "an edit only of the room's lastMessage, and on every deletion (deleteMessage: "
        "decreaseMessageCountById). Catch-up relies on the new-message write: rooms written since "
        "their cursor are caught up before ready, the others swept behind.",
        "error-updatedSince-param-invalid 'The \"updatedSince\" query parameter must be a valid date.'.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_rest.py::test_rest_rate_limit_uses_injected_clock",
            "tests/sandbox/test_sandbox_workspace.py::test_a_room_is_written_by_new_messages_deletions_and_edits_of_its_last_message_only",
            "tests/services/test_catch_up_tiers.py::test_rooms_with_new_messages_are_caught_up_before_ready_and_quiet_ones_behind",
        ),
    ),
    Entry(
        "rest",
        "GET subscriptions.get",
        (
            "apps/meteor/app/api/server/v1/subscriptions.ts",
            "apps/meteor/server/publications/subscription/index.ts",
        ),
        "logged in; the caller's own subscriptions.",
        "{update, remove} + success (remove: {_id, _deletedAt} of deleted subscriptions when "
        "updatedSince given).",
        'A bad updatedSince: Meteor.Error error-roomId-param-invalid \'The "lastUpdate" query '
        "parameter must be a valid date.' (sic). AJV: isSubscriptionsGetProps.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_fidelity.py::test_subscriptions_get_with_a_bad_date",
        ),
    ),
    Entry(
        "rest",
        "POST channels.join",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/server/lib/banUserFromRoom.ts",
        ),
        "Room.join: public channel the caller can join; joinCode when the room requires one (unless "
        "join-without-join-code).",
        ("{channel} (found again after the join) + success.")
        + " Bans: a banned user's join is refused: canAccessRoom denies a banned user even a public room",
        (
            "CHANNEL_LOOKUP; join refusals from Room.join (error-code-invalid 'Invalid Room Password', "
            "error-not-allowed). AJV: isChannelsJoinProps."
        )
        + " Bans: 400 error-not-allowed for a banned user (8.3+)",
        REST_RATE,
        ("") + " Bans: the ban refusal from 8.3",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_new_accounts_and_joining",
            "tests/sandbox/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/sandbox/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/services/test_bans.py::test_without_server_bans_the_bot_kicks_and_watches_across_a_restart",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.saveRoomSettings",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/app/channel-settings/server/methods/saveRoomSettings.ts",
        ),
        "saveRoomSettings: edit-room in the room (encrypted alone allowed on DMs), plus per-setting "
        "validators (roomType needs create-c/create-p, default needs view-room-administration...).",
        "{rid} + success.",
        "error-invalid-room 'Invalid room'; error-invalid-settings 'Invalid settings provided'; "
        "error-action-not-allowed 'Editing room is not allowed' details {method:'saveRoomSettings', "
        "action:'Editing_room'}; broadcast rooms: 'Editing readOnly/reactWhenReadOnly are not "
        "allowed for broadcast rooms'.",
        REST_RATE,
        "Route added in 3.13 (reference C.4).",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_client.py::test_history_announcements_moderators_and_dm",
            "tests/services/test_policies.py::test_a_new_version_replaces_the_old_pin",
        ),
    ),
    Entry(
        "rest",
        "POST channels.setAnnouncement",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/channel-settings/server/methods/saveRoomSettings.ts",
        ),
        "as saveRoomSettings roomAnnouncement (edit-room).",
        "{announcement} (as sent) + success.",
        "CHANNEL_LOOKUP; saveRoomSettings errors. AJV: isChannelsSetAnnouncementProps.",
        REST_RATE,
        "",
        _ROOM_ADMIN_TESTS,
    ),
    Entry(
        "rest",
        "POST groups.setAnnouncement",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/channel-settings/server/methods/saveRoomSettings.ts",
        ),
        "findPrivateGroupByIdOrName (member/access) and saveRoomSettings roomAnnouncement (edit-room).",
        "{announcement: announcement || ''} + success.",
        "400 'The bodyParam \"announcement\" is required' when missing; "
        "error-room-param-not-provided; error-room-not-found '... does not match any group'; "
        "saveRoomSettings errors.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",),
    ),
    Entry(
        "rest",
        "POST rooms.cleanHistory",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/app/lib/server/methods/cleanRoomHistory.ts",
        ),
        "canAccessRoom, then the cleanRoomHistory method: clean-channel-history in the room.",
        "{_id, count} + success.",
        "Access refused: 400 {success:false, error:'User does not have access to the room "
        "[error-not-allowed]', errorType:'error-not-allowed'}; 400 'Body parameter \"latest\" is "
        "required.' / '\"oldest\"'; findRoomByIdOrName errors; error-not-allowed from "
        "cleanRoomHistory. AJV: isRoomsCleanHistoryProps.",
        REST_RATE,
        "This rooms.ts defaults ignoreThreads and ignoreDiscussion to false and passes users as "
        "fromUsers (usernames); older releases answered {success:true} without _id/count (reference "
        "C.3).",
        (
            "tests/sandbox/test_sandbox_rest.py::test_required_params_are_enforced",
            "tests/sandbox/test_sandbox_ddp.py::test_delete_via_ddp_method_and_bulk_notification",
            "tests/sandbox/test_sandbox_client.py::test_clean_history_and_moderation_console",
        ),
    ),
    Entry(
        "rest",
        "POST channels.addModerator",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/server/methods/addRoomModerator.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "addRoomModerator: set-moderator in the room; the user must be a member.",
        "{success:true}.",
        "CHANNEL_LOOKUP; getUserFromParams errors (error-user-param-not-provided, "
        "error-invalid-user); error-not-allowed with details.method 'addRoomModerator'.",
        REST_RATE,
        "",
        _ROOM_ADMIN_TESTS,
    ),
    Entry(
        "rest",
        "POST groups.addModerator",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/server/methods/addRoomModerator.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "member of the group (findPrivateGroupByIdOrName) and set-moderator in it.",
        "{success:true}.",
        "error-room-param-not-provided; error-room-not-found '... does not match any group'; "
        "getUserFromParams and addRoomModerator errors.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",),
    ),
    Entry(
        "rest",
        "GET channels.roles",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/getRoomRoles.ts",
        ),
        "getRoomRoles method: the caller must be able to access the room.",
        "{roles: [{_id, rid, u:{_id, username, name}, roles}]} + success, only subscriptions "
        "holding room roles.",
        "CHANNEL_LOOKUP; error-not-allowed 'Not allowed' details {method:'getRoomRoles'}. AJV: "
        "isChannelsRolesProps.",
        REST_RATE,
        "",
        _ROOM_ADMIN_TESTS,
    ),
    Entry(
        "rest",
        "GET groups.roles",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/getRoomRoles.ts",
        ),
        "findPrivateGroupByIdOrName (access) then getRoomRoles.",
        "{roles} as channels.roles.",
        "error-room-param-not-provided; error-room-not-found '... does not match any group'.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",),
    ),
    Entry(
        "rest",
        "POST users.updateOwnBasicInfo",
        ("apps/meteor/app/api/server/v1/users.ts",),
        "logged in; saveUserProfile (e-mail or password changes need the current password as 2FA).",
        "{user: the caller with defaultFieldsToExclude} + success.",
        "saveUserProfile errors (error-could-not-change-username, ...; not all modelled). AJV: "
        "isUsersUpdateOwnBasicInfoParamsPOST.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_registration_awaiting_approval_and_renames",),
    ),
    Entry(
        "rest",
        "POST users.delete",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "delete-user (checked in the handler).",
        "{success:true} (deletedRooms: unconfirmed; the sandbox adds deletedRooms: []).",
        "Without delete-user: unauthorized(); getUserFromParams errors; deleteUser errors "
        "(confirmRelinquish).",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",
            "tests/ops/test_setup.py::test_a_failed_rollback_says_exactly_what_is_left",
        ),
    ),
    Entry(
        "rest",
        "POST channels.invite",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/addUsersToRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
            "apps/meteor/client/views/room/contextualBar/RoomMembers/AddUsers/BannedUsersUnbanModal.tsx",
        ),
        "addUsersToRoom: add-user-to-joined-room (member) or add-user-to-any-c-room.",
        ("{channel} + success.")
        + " Bans: inviting a banned user does not lift the ban: the inviter must unban first",
        (
            "CHANNEL_LOOKUP; 400 ('invalid-user-invite-list', 'Cannot invite if no users are provided') "
            "i.e. error 'invalid-user-invite-list' with that errorType text; addUsersToRoom errors."
        )
        + " Bans: 400 error-user-is-banned 'User is banned from this room' (8.3+)",
        REST_RATE,
        "Bans: from 8.3. An early copy of addUserToRoom unbanned on re-invite instead; the current "
        "client catches error-user-is-banned and offers an unban, which the sandbox follows",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",
            "tests/sandbox/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
        ),
    ),
    Entry(
        "rest",
        "POST groups.invite",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/addUsersToRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "addUsersToRoom: add-user-to-joined-room / add-user-to-any-p-room.",
        "{group} + success.",
        "error-room-param-not-provided; error-room-not-found '... does not match any group' (room "
        "looked up by id or name, type 'p', no membership check in the 6.x file read); "
        "error-empty-invite-list 'Cannot invite if no valid users are provided'.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",),
    ),
    Entry(
        "rest",
        "POST channels.kick",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/server/methods/removeUserFromRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "removeUserFromRoom: remove-user in the room; target must be a member.",
        "{channel} (found again after the kick) + success.",
        "CHANNEL_LOOKUP; 400 'Invalid user'; removeUserFromRoom errors (error-not-allowed, "
        "error-user-not-in-room). AJV: isChannelsKickProps ({roomId|roomName, userId}).",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_channels_kick_answers_with_the_channel_and_groups_kick_with_nothing",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_kick_refusals",
        ),
    ),
    Entry(
        "rest",
        "POST groups.kick",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/server/methods/removeUserFromRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "member of the group (findPrivateGroupByIdOrName) and removeUserFromRoom (remove-user).",
        "{success:true} only.",
        "error-room-param-not-provided; error-room-not-found '... does not match any group'; "
        "getUserFromParams and removeUserFromRoom errors.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_channels_kick_answers_with_the_channel_and_groups_kick_with_nothing",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_kick_from_a_channel_and_a_group",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.unmuteUser",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/methods/unmuteUserInRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
        ),
        "unmuteUserInRoom: mute-user in the room; the target must be subscribed.",
        "{success:true}.",
        "AJV isRoomsMuteUnmuteUserProps ({userId, roomId} or {username, roomId}); getUserFromParams "
        "errors; 400 'Invalid user'; unmuteUserInRoom errors: error-not-allowed 'Not allowed', "
        "error-invalid-room, error-invalid-room-type, error-user-not-in-room 'User is not in this "
        "room'.",
        REST_RATE,
        "Added in 6.8 (the sandbox answers 404 before).",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_mute_request_body_is_validated_like_the_server",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_actions",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_unmuting_someone_who_is_not_muted_succeeds_with_a_notice",
        ),
    ),
    Entry(
        "rest",
        "GET settings.public",
        ("apps/meteor/app/api/server/v1/settings.ts",),
        "none (authRequired false).",
        "{settings: [{_id, value, enterprise?, invalidValue?, modules?}], count, offset, total} + "
        "success; only public, non-hidden settings, sorted by _id.",
        "none specific.",
        REST_RATE
        + " authRequired is false, so the limiter sees no user: the api-bypass-rate-limit of the caller's"
        " headers does not apply and every caller, the bot included, gets 10 calls a minute per"
        " address (the bot reads every setting it needs in one call, at most once a minute).",
        "The comma-separated _id filter exists on recent servers (reference C.6; release "
        "unconfirmed); the 6.x file read filters through the deprecated query parameter only.",
        (
            "tests/sandbox/test_sandbox_client.py::test_history_announcements_moderators_and_dm",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
            "tests/rest/test_rest_client.py::test_public_settings_are_read_once_a_minute_whatever_the_callers",
        ),
    ),
    Entry(
        "rest",
        "GET permissions.listAll",
        (
            "apps/meteor/app/api/server/v1/permissions.ts",
            "apps/meteor/app/authorization/server/streamer/permissions/index.ts",
        ),
        "logged in.",
        "{update, remove} + success (an array result becomes {update, remove: []}).",
        'A bad updatedSince: Meteor.Error error-roomId-param-invalid \'The "updatedSince" query '
        "parameter must be a valid date.' (sic); query schema {updatedSince?}, additionalProperties "
        "false.",
        REST_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
            "tests/sandbox/test_sandbox_fidelity.py::test_permissions_list_all_with_a_bad_date",
        ),
    ),
    Entry(
        "rest",
        "GET roles.list",
        ("apps/meteor/app/api/server/v1/roles.ts",),
        "logged in.",
        "{roles} + success; every role without _updatedAt.",
        "none specific.",
        REST_RATE,
        "",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",),
    ),
    Entry(
        "rest",
        "GET commands.list",
        ("apps/meteor/app/api/server/v1/commands.ts",),
        "logged in.",
        "{commands, appsLoaded: true, offset, count, total} + success, sorted by name; while apps "
        "are not loaded 202 {success:true, commands:[], appsLoaded:false, offset:0, count:0, "
        "total:0}.",
        "Query schema {count?, offset?, sort?, query?, fields?}, additionalProperties false.",
        REST_RATE,
        "appsLoaded and the 202 answer are newer (release unconfirmed); the sandbox answers without "
        "appsLoaded.",
        ("tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",),
    ),
    Entry(
        "ddp",
        "logout",
        ("apps/meteor/server/methods/logoutCleanUp.ts",),
        "any connection; Meteor accounts-base removes the connection's login (logoutCleanUp is what "
        "the web client calls after it).",
        "no result.",
        "none.",
        DDP_RATE,
        "The logout method itself is Meteor accounts-base's (unconfirmed in detail: whether the "
        "token is destroyed; the sandbox only forgets the session's user and subscriptions).",
        ("tests/sandbox/test_sandbox_fidelity.py::test_ddp_logout_forgets_the_user",),
    ),
    Entry(
        "ddp",
        "pinMessage",
        ("apps/meteor/app/message-pin/server/pinMessage.ts",),
        "Message_AllowPinning; pin-message in the room; can access the room.",
        "The message_pinned system message (the original unchanged when already pinned).",
        "check(message._id, String); error-invalid-message 'Message you are pinning was not found'; "
        "error-action-not-allowed 'Message pinning not allowed'; not-authorized 'Not Authorized'.",
        DDP_RATE,
        "",
        ("tests/sandbox/test_sandbox_ddp.py::test_reaction_and_pin_re_emit_without_touching_edited_at",),
    ),
    Entry(
        "ddp",
        "unpinMessage",
        ("apps/meteor/app/message-pin/server/pinMessage.ts",),
        "Message_AllowPinning; subscribed to the room; pin-message in it.",
        "true.",
        "error-action-not-allowed 'Message pinning not allowed' (checked first); "
        "error-invalid-message 'Message you are unpinning was not found' (also when not "
        "subscribed); not-authorized 'Not Authorized'.",
        DDP_RATE,
        "",
        ("tests/sandbox/test_sandbox_fidelity.py::test_ddp_unpin_message_answers_true",),
    ),
    Entry(
        "ddp",
        "setReaction",
        ("apps/meteor/app/reactions/server/setReaction.ts",),
        "can access the room; not muted; read-only rooms need reactWhenReadOnly or post-readonly.",
        "no result on success; false (plus an ephemeral notice) when the caller is muted.",
        "Params (reaction, messageId, shouldReact?). error-not-allowed 'Invalid emoji provided.' "
        "(not modelled); unknown message: error-not-allowed 'Not allowed' {method:'setReaction'}; "
        "not-authorized 'Not Authorized'.",
        DDP_RATE,
        "Deprecated for 8.0.0 in favour of chat.react.",
        (
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_set_reaction_toggles_and_an_unknown_message_is_not_allowed",
        ),
    ),
    Entry(
        "ddp",
        "saveRoomSettings",
        ("apps/meteor/app/channel-settings/server/methods/saveRoomSettings.ts",),
        "edit-room in the room (encrypted alone allowed on DMs); per-setting validators.",
        "{result: true, rid}.",
        "error-invalid-user; error-invalid-room 'Invalid room' {method:'saveRoomSettings'}; "
        "error-invalid-settings 'Invalid settings provided'; error-action-not-allowed 'Editing room "
        "is not allowed' {method, action:'Editing_room'}.",
        DDP_RATE,
        "Params (rid, setting, value) or (rid, {settings}).",
        ("tests/sandbox/test_sandbox_fidelity.py::test_ddp_save_room_settings_answers_result_and_rid",),
    ),
    Entry(
        "ddp",
        "subscriptions/get",
        ("apps/meteor/server/publications/subscription/index.ts",),
        "none: without a user it answers [] rather than an error.",
        "The caller's subscriptions (projection subscriptionFields); with a Date {update, "
        "remove:[{_id, _deletedAt}]}.",
        "none.",
        DDP_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_subscriptions_get_since_a_date",
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_room_and_subscription_lists_before_login_are_empty",
        ),
    ),
    Entry(
        "ddp",
        "rooms/get",
        ("apps/meteor/server/publications/room/index.ts",),
        "none: without a user it answers [] (default public rooms with Accounts_AllowAnonymousRead).",
        "Rooms of the caller's subscriptions (projection roomFields); with a Date {update, remove}.",
        "none.",
        DDP_RATE,
        "Some versions take (updatedAt, limit = 500, skip = 0).",
        (
            "tests/sandbox/test_sandbox_ddp.py::test_ddp_method_rate_limit",
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_room_and_subscription_lists_before_login_are_empty",
        ),
    ),
    Entry(
        "ddp",
        "joinRoom",
        ("apps/meteor/app/lib/server/methods/joinRoom.ts",),
        "room type allows JOIN and canAccessRoom (public channels); joinCode unless join-without-join-code.",
        "addUserToRoom's answer (true for a new member in the file read; unconfirmed for an "
        "existing member).",
        "check(rid, String); error-invalid-user; error-invalid-room 'Invalid room' "
        "{method:'joinRoom'}; error-not-allowed 'Not allowed' {method:'joinRoom'}; "
        "error-code-invalid 'Invalid Room Password'.",
        DDP_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_join_room_joins_a_channel_and_refuses_a_private_group",
        ),
    ),
    _MUTE_IN_ROOM,
    replace(
        _MUTE_IN_ROOM, name="unmuteUserInRoom", server=("apps/meteor/server/methods/unmuteUserInRoom.ts",)
    ),
    Entry(
        "stream",
        "stream-room-messages",
        _STREAMER,
        "eventName <rid>: the room exists and canAccessRoom, or it is a public channel and the "
        "caller has preview-c-room; '__my_messages__': any logged-in user, filtered per message by "
        "allowEmit (canAccessRoom).",
        "changed frames, id 'id', fields {eventName, args}: per room [message]; __my_messages__ "
        "[message, {roomParticipant, roomType, roomName}].",
        "nosub with not-allowed (refused read) or invalid-event-name (empty event name) from "
        "streamer.module.ts _publish; removal from a room stops that room's subscription "
        "server-side.",
        STREAM_RATE,
        "Older servers sent __my_messages__ args as [[message], {...}] (reference B.1; versions "
        "unconfirmed).",
        (
            "tests/sandbox/test_sandbox_ddp.py::test_my_messages_with_participant_hint_and_edit",
            "tests/sandbox/test_sandbox_ddp.py::test_subscription_permissions",
            "tests/sandbox/test_sandbox_ddp.py::test_removed_from_room_stops_per_room_stream",
        ),
    ),
    Entry(
        "stream",
        "stream-notify-user",
        _STREAMER,
        "eventName '<uid>/<event>' with uid the caller's own id ('<uid>/webrtc' is open).",
        "changed frames for subscriptions-changed, rooms-changed (wired to the subscribed rooms at "
        "subscribe time and re-sent 'inserted' on a new subscription), message (ephemeral notices), "
        "notification, force_logout...",
        "nosub not-allowed for another user's events; invalid-event-name.",
        STREAM_RATE,
        "",
        (
            "tests/sandbox/test_sandbox_ddp.py::test_subscription_permissions",
            "tests/sandbox/test_sandbox_ddp.py::test_added_to_room_emits_subscription_inserted_and_au",
            "tests/sandbox/test_sandbox_ddp.py::test_ddp_subscription_rate_limit_is_nosub_and_streams_get_times_four",
        ),
    ),
    Entry(
        "stream",
        "stream-notify-room",
        _STREAMER,
        "eventName '<rid>/<event>': in the 6.x module read, the caller must hold a subscription to "
        "the room ('<rid>/webrtc' open; livechat token); later releases use canAccessRoomId (public "
        "rooms allowed; reference A.6, release unconfirmed). The sandbox follows the later rule and "
        "only serves deleteMessage, deleteMessageBulk, user-activity, typing, messagesRead, "
        "videoconf and e2e.keyRequest.",
        "changed frames: deleteMessage [{_id}], deleteMessageBulk [{rid, ts, users, ids?, "
        "excludePinned, ignoreDiscussion, filesOnly, ...}], typing/user-activity ...",
        "nosub not-allowed; invalid-event-name. Writes only for typing/user-activity.",
        STREAM_RATE,
        "Member-only reads in early 6.x, canAccessRoomId later (public channels without membership).",
        (
            "tests/sandbox/test_sandbox_ddp.py::test_per_room_stream_and_delete_notification",
            "tests/sandbox/test_sandbox_ddp.py::test_delete_via_ddp_method_and_bulk_notification",
            "tests/sandbox/test_sandbox_ddp.py::test_subscription_permissions",
        ),
    ),
    Entry(
        "stream",
        "stream-notify-logged",
        _STREAMER,
        "allowRead('logged'): any logged-in user, any event name; writes none.",
        "changed frames for user-status, Users:NameChanged, Users:Deleted, roles-change, "
        "permissions-changed, updateAvatar... (the sandbox accepts the subscription and emits "
        "nothing on it).",
        "nosub not-allowed before login; invalid-event-name.",
        STREAM_RATE,
        "",
        ("tests/sandbox/test_sandbox_fidelity.py::test_open_streams_need_a_login_and_take_any_event",),
    ),
    Entry(
        "stream",
        "stream-notify-all",
        _STREAMER,
        "allowRead('all') (even without login in the module read); 'private-settings-changed' needs "
        "view-privileged-setting, edit-privileged-setting or manage-selected-settings.",
        "changed frames for public-settings-changed, deleteCustomSound, updateCustomSound... (the "
        "sandbox emits nothing on it).",
        "nosub not-allowed for private-settings-changed without those permissions; invalid-event-name.",
        STREAM_RATE,
        "",
        ("tests/sandbox/test_sandbox_fidelity.py::test_open_streams_need_a_login_and_take_any_event",),
    ),
    # --- roles, refusals, pagination
    Entry(
        "rest",
        "GET users.info",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/getFullUserData.ts",
            _API,
        ),
        "any logged-in user; the full fields need view-full-other-user-info (admin) unless "
        "the caller asks about themselves",
        "getFullUserData: defaultFields (_id, name, username, nickname, status, utcOffset, type, "
        "active, bio, reason, statusText, avatarETag, extension, federated, statusLivechat, "
        "freeSwitchExtension) for everyone; fullFields (emails, phone, statusConnection, createdAt, "
        "lastLogin, requirePasswordChange(Reason), roles, importIds) only with canViewAllInfo; "
        "canViewAllInfo itself is always set; _updatedAt is in neither projection; fields={userRooms:1} "
        "adds rooms for oneself or with view-other-user-channels (not modelled)",
        "400 failure('Invalid search query.') without userId/username/importId (the sandbox answers "
        "error-user-param-not-provided first); 400 failure('User not found.'); " + _NOT_LOGGED_IN,
        "REST default 10/min per route and user (bot bypasses: api-bypass-rate-limit)",
        "importId search added in 7.x (not modelled)",
        (
            "tests/services/test_roles.py::test_users_info_hides_another_users_roles_without_the_permission",
            "tests/services/test_roles.py::test_a_bot_moderator_cannot_mute_or_warn_the_admin",
            "tests/services/test_protections_live.py::test_links_from_accounts_on_probation_are_held",
            "tests/services/test_protections_live.py::test_without_the_permission_no_account_is_on_probation",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_registration_awaiting_approval_and_renames",
        ),
    ),
    Entry(
        "rest",
        "GET users.list",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/api/server/lib/users.ts",
            _PAGES,
            _API,
            _PERMS,
        ),
        "view-d-room (the bot role has it; permissionsRequired in newer users.ts, a "
        "hasPermission check answering unauthorized() in older ones); with the setting "
        "API_Apply_permission_view-outside-room_on_users-list also view-outside-room, else "
        "forbidden() (not modelled)",
        "getNonEmptyFields defaults: _id, name, username, emails, roles, status, active, "
        "avatarETag, lastLogin, type; roles for everyone who may call the route, which is why the bot "
        "reads roles here (no createdAt, no reason); query/fields are ignored since 7.0 unless "
        "ALLOW_UNSAFE_QUERY_AND_FIELDS_API_PARAMS; sorted by username; " + _PAGINATION,
        "403 permissionsRequired (see releases); " + _NOT_LOGGED_IN,
        f"{_REST_DEFAULT} (bot bypasses)",
        _RELEASES_REFUSALS,
        (
            "tests/services/test_roles.py::test_the_role_directory_reads_roles_from_users_list",
            "tests/services/test_roles.py::test_a_user_made_admin_later_is_seen_on_a_fresh_lookup",
            "tests/rest/test_pagination.py::test_the_sandbox_clamps_count_as_get_pagination_items",
            "tests/rest/test_pagination.py::test_users_and_roles_are_complete",
            "tests/sandbox/test_releases.py::test_a_401_refusal_neither_logs_in_again_nor_reads_as_a_bad_token",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
        ),
    ),
    Entry(
        "rest",
        "GET channels.list",
        ("apps/meteor/app/api/server/v1/channels.ts", _PAGES),
        "view-c-room",
        "channels sorted by name; " + _PAGINATION,
        "403 permissionsRequired (see releases); " + _NOT_LOGGED_IN,
        f"{_REST_DEFAULT} (bot bypasses)",
        _RELEASES_REFUSALS,
        (
            "tests/rest/test_pagination.py::test_channels_are_complete",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
        ),
    ),
    Entry(
        "rest",
        "GET chat.getPinnedMessages",
        ("apps/meteor/app/api/server/v1/chat.ts", _PAGES),
        "the caller can access the room",
        "pinned messages newest first; " + _PAGINATION,
        "400 error-roomId-param-not-provided; 400 error-not-allowed; " + _NOT_LOGGED_IN,
        f"{_REST_DEFAULT} (bot bypasses)",
        "",
        (
            "tests/rest/test_pagination.py::test_reports_and_pins_are_complete",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
        ),
    ),
    Entry(
        "rest",
        "POST users.setActiveStatus",
        ("apps/meteor/app/api/server/v1/users.ts", _API),
        "edit-other-user-active-status, or manage-moderation-actions in newer users.ts "
        "(the sandbox checks the first only)",
        "{user: {_id, active}}",
        "403 the route's own refusal: {success:false, error:'unauthorized'} (unauthorized() was "
        "403 until it was renamed forbidden(); unauthorized() answers 401 since), {error:'forbidden'} "
        "from 9.0; " + _NOT_LOGGED_IN,
        f"{_REST_DEFAULT} (bot bypasses)",
        _RELEASES_REFUSALS,
        (
            "tests/sandbox/test_releases.py::test_refusals_by_release",
            "tests/sandbox/test_sandbox_rest.py::test_room_administration",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
        ),
    ),
    Entry(
        "rest",
        "GET me",
        (_API, "apps/meteor/app/api/server/middlewares/authenticationHono.ts"),
        "any logged-in user",
        "the caller's own user document",
        _NOT_LOGGED_IN + "; every authRequired route answers the same",
        f"{_REST_DEFAULT} (bot bypasses)",
        "not-logged-in body by release in bot/sandbox/releases.py",
        (
            "tests/sandbox/test_releases.py::test_refusals_by_release",
            "tests/sandbox/test_releases.py::test_a_bad_token_is_still_an_auth_error",
            "tests/sandbox/test_sandbox_rest.py::test_missing_or_wrong_token_is_401",
            "tests/sandbox/test_sandbox_client.py::test_password_login_and_me",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_authentication",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.muteUser",
        ("apps/meteor/app/api/server/v1/rooms.ts",),
        "mute-user in the room",
        "{success:true}",
        "404 'Resource not found' on a release before 6.8 (route unknown)",
        f"{_REST_DEFAULT} (bot bypasses)",
        "added in 6.8 (ROUTES_SINCE in bot/sandbox/releases.py)",
        (
            "tests/sandbox/test_releases.py::test_routes_a_release_does_not_have_answer_404",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_mute_request_body_is_validated_like_the_server",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_actions",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_mute_refusals",
        ),
    ),
    # --- bans
    Entry(
        "rest",
        "POST rooms.banUser",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/lib/banUserFromRoom.ts",
            "apps/meteor/app/lib/server/functions/banUserFromRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
            "apps/meteor/tests/end-to-end/api/rooms-ban.ts",
            "apps/meteor/tests/end-to-end/api/invites.ts",
        ),
        "ban-user in the room (default roles admin, owner, moderator; the permission is in every "
        "release's table, used only from 8.3); a channel or private group (allowMemberAction BAN); "
        "the caller must be able to access the room",
        "body {roomId, userId} or {roomId, username}; answers {success: true}. Effect: the target's "
        "subscription is kept with status BANNED (out of every member and subscription listing), its "
        "moderator/owner/leader roles dropped, usersCount - 1, a user-banned system message "
        "(msg = target username, u = the banning user), subscriptions-changed 'updated' to the target "
        "and rooms-changed to the members. The banned user cannot join (channels.join 400), read the "
        "room (rooms.info 400), be invited (error-user-is-banned) or use an invite link.",
        "400 invalid-params (neither userId nor username); 400 error-invalid-user (unknown userId or "
        "username: getUserFromParams runs first); 400 error-not-allowed 'Not allowed' (no ban-user, "
        "unknown room, a direct room); 400 error-room-not-found (caller cannot access the room); "
        "400 error-user-not-found (method-level lookup); 400 error-user-not-in-room; "
        "400 error-user-already-banned; 400 error-you-are-last-owner; 401 without a login",
        _REST_DEFAULT,
        "added in 8.3 (server PR 'feat: Ban user', merged 2026-03-04; a 'regression:' fix of "
        "2026-03-30 shows it was unreleased then; the 8.3.x line exists — the release is inferred, "
        "no changelog line was found); older servers answer 404. Early copies threw plain Error "
        "texts instead of Meteor errors; the e2e suite expects the error types above.",
        (
            "tests/sandbox/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/sandbox/test_sandbox_bans.py::test_banning_twice_and_unbanning_nobody_are_refused",
            "tests/sandbox/test_sandbox_bans.py::test_refused_bans_change_nothing",
            "tests/sandbox/test_sandbox_bans.py::test_servers_before_8_3_have_no_ban_routes",
            "tests/services/test_bans.py::test_a_ban_keeps_the_user_out_until_unbanned",
            "tests/services/test_bans.py::test_without_server_bans_the_bot_kicks_and_watches_across_a_restart",
            "tests/services/test_bans.py::test_bad_bans_get_a_clear_answer_and_change_nothing",
        ),
    ),
    Entry(
        "rest",
        "POST rooms.unbanUser",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/lib/unbanUserFromRoom.ts",
            "apps/meteor/app/lib/server/functions/executeUnbanUserFromRoom.ts",
            "apps/meteor/tests/end-to-end/api/rooms-ban.ts",
        ),
        "ban-user in the room; a channel or private group; the caller must access the room",
        "body {roomId, userId} or {roomId, username}; answers {success: true}. The BANNED "
        "subscription is deleted: the user is no longer banned and not a member either (they may "
        "join or be invited again); a user-unbanned system message (u = the unbanning user); "
        "subscriptions-changed 'removed' to the target",
        "400 invalid-params; 400 error-invalid-user; 400 error-not-allowed; 400 error-room-not-found; "
        "400 error-user-not-banned (not banned); 401 without a login",
        _REST_DEFAULT,
        "added in 8.3 with rooms.banUser; 404 before. An early copy restored the membership on unban "
        "(and the e2e suite of that time expects the room back in subscriptions.get); the copy read "
        "(executeUnbanUserFromRoom) deletes the subscription instead, which the sandbox follows. "
        "One intermediate copy allowed unbans in federated rooms only (reverted before release).",
        (
            "tests/sandbox/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/sandbox/test_sandbox_bans.py::test_banning_twice_and_unbanning_nobody_are_refused",
            "tests/services/test_bans.py::test_a_ban_keeps_the_user_out_until_unbanned",
        ),
    ),
    Entry(
        "rest",
        "GET rooms.bannedUsers",
        (
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/client/views/room/contextualBar/BannedUsers/BannedUsersWithData.tsx",
        ),
        "access to the room (canAccessRoomIdAsync); no ban-user check",
        "query {roomId, offset, count}; answers {bannedUsers: [{_id, username, name}], count, offset, "
        "total}, earliest ban first (subscriptions sorted by ts)",
        "no access: API.v1.unauthorized() (sandbox: 403, see releases); 401 without a login",
        _REST_DEFAULT,
        "added in 8.3; 404 before. The first releases answered 401 for no access and ignored "
        "offset/count; later changesets made it 403 and paginated (the sandbox paginates and "
        "answers 403).",
        (
            "tests/sandbox/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/sandbox/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/sandbox/test_sandbox_bans.py::test_servers_before_8_3_have_no_ban_routes",
        ),
    ),
    # --- history and moderation console
    Entry(
        "rest",
        "GET channels.history",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
            "packages/models/src/models/Messages.ts",
        ),
        "any logged-in user who can read the channel (canReadRoom)",
        "{messages: [...newest first], success}; roomId or roomName; latest (default now), oldest, "
        "inclusive, offset, count (through getPaginationItems: the route's own 20 never applies; the "
        "answer has no count/offset/total, so a walker stops at the first empty page), unreads, "
        "showThreadMessages. The route passes "
        "`showThreadMessages === 'true'` (likewise inclusive, unreads), so thread replies (tmid) are "
        "left out unless the query says exactly 'true'; a reply also sent to the room (tshow) is kept. "
        "The getChannelHistory method's own default is true; groups.history reads the flag the "
        "other way (see its line).",
        "400 error-room-not-found (not a public channel, or none); 400 "
        "error-room-param-not-provided; getChannelHistory false -> 403 (newer: forbidden, older: "
        "unauthorized)",
        "REST default 10/min per route and user (the bot bypasses with api-bypass-rate-limit)",
        "channels.history 0.47; showThreadMessages present on every TS version read (5.x-8.x) and "
        "absent from the pre-1.0 rocketchat-api package; the release that added it is not confirmed",
        (
            "tests/services/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/services/test_history_threads.py::test_a_term_purge_finds_a_thread_reply_and_keeps_its_evidence_first",
            "tests/services/test_history_threads.py::test_a_user_purge_keeps_evidence_of_the_users_thread_replies",
            "tests/services/test_history_threads.py::test_rcmod_purge_user_keeps_evidence_of_thread_replies",
            "tests/services/test_history_threads.py::test_scan_history_reports_a_thread_reply",
            "tests/services/test_history_threads.py::test_catch_up_reads_include_thread_replies",
            "tests/sandbox/test_sandbox_rest.py::test_history_pages_backwards",
            "tests/rest/test_pagination.py::test_the_sandbox_clamps_count_as_get_pagination_items",
            "tests/rest/test_pagination.py::test_history_walks_are_complete",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
            "tests/sandbox/test_sandbox_client.py::test_unencoded_query_strings_reach_the_server_as_sent",
        ),
    ),
    Entry(
        "rest",
        "GET groups.history",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
        ),
        "a member of the private group (findPrivateGroupByIdOrName)",
        "as channels.history, except that the route passes `showThreadMessages !== 'false'`: thread "
        "replies are INCLUDED unless the query says exactly 'false' (unlike channels and DMs); "
        "inclusive: `=== 'true'` in the newest groups.ts, `inclusive || false` before (any "
        "non-empty string, even 'false', was on)",
        "400 error-room-not-found for a group the caller is not in (it looks like no group)",
        _REST_DEFAULT,
        "groups.history 0.48; `!== 'false'` in every groups.ts version read (6.x JS and TS to the "
        "newest API.v1.get form); inclusive became `=== 'true'` in the newest",
        (
            "tests/services/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/sandbox/test_sandbox_rest.py::test_private_group_history_needs_membership",
            "tests/rest/test_pagination.py::test_history_walks_are_complete",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_rooms",
        ),
    ),
    Entry(
        "rest",
        "GET dm.history",
        (
            "apps/meteor/app/api/server/v1/im.ts",
            "apps/meteor/app/lib/server/methods/getChannelHistory.ts",
        ),
        "a member of the direct message (findDirectMessageRoom)",
        "as channels.history; the newest im.ts validates the query (isDmHistoryProps: roomId "
        "required, inclusive/unreads/showThreadMessages enum 'true'|'false', no other keys) - not "
        "modelled; the sandbox accepts other values and treats them as false",
        "400 error-room-param-not-provided 'Query param \"roomId\" is required'; 400 "
        "error-room-not-found; getChannelHistory false -> 403",
        _REST_DEFAULT,
        "im.history 0.48, dm.* aliases later; showThreadMessages as for channels.history",
        (
            "tests/services/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/rest/test_pagination.py::test_history_walks_are_complete",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_rest.py::test_post_message_by_channel_name_and_dm",
        ),
    ),
    Entry(
        "rest",
        "GET im.history",
        ("apps/meteor/app/api/server/v1/im.ts",),
        "as dm.history (one handler for both names)",
        "as dm.history",
        "as dm.history",
        _REST_DEFAULT,
        "as dm.history; the OpenAPI files document only the dm.* names",
        (
            "tests/services/test_history_threads.py::test_history_routes_read_thread_replies_as_each_route_does",
            "tests/sandbox/test_sandbox_rest.py::test_post_message_by_channel_name_and_dm",
        ),
    ),
    Entry(
        "rest",
        "GET moderation.reportsByUsers",
        (
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportHistoryProps.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        "view-moderation-console (admin by default)",
        "{reports: [{message, msgId, ts, username, name, userId, isUserDeleted, count, rooms}], count, "
        "offset, total}. findMessageReportsGroupedByUser: $match open message reports with "
        "oldest < ts < latest (defaults epoch and now) and the selector (message text, description, "
        "author username or name; escaped, case-insensitive) -> $group by message.u._id with "
        "reports: $first and NO sort before it, so message/msgId/ts are the user's first-filed "
        "report in natural order, not the newest; count = reports; rooms = $addToSet of the "
        "reports' room -> $sort (default reports.ts -1) -> skip/limit. total: number of reported "
        "users (getTotalUniqueReportedUsers), 0 on an empty page. Newer response schemas also "
        "require roomIds, which no model version read projects: not modelled",
        "403 error-unauthorized without the permission; 400 invalid-params for a latest/oldest "
        "that is not a date-time or an unknown query key; 400 error-invalid-sort",
        _REST_DEFAULT,
        "moderation console 6.2 (an earlier naming, moderation.getReports, existed while it was "
        "built); older total = number of reports (countMessageReportsInRange), newer = number "
        "of users",
        (
            "tests/services/test_moderation_console.py::test_reports_by_users_names_the_first_report_not_the_newest",
            "tests/services/test_moderation_console.py::test_dismissing_message_reports",
            "tests/services/test_report_native.py::test_each_reported_message_of_one_user_reaches_the_moderators_once",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
            "tests/sandbox/test_sandbox_rest.py::test_moderation_endpoints",
            "tests/rest/test_pagination.py::test_reports_and_pins_are_complete",
            "tests/sandbox/test_releases.py::test_refusals_by_release",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
        ),
    ),
    Entry(
        "rest",
        "GET moderation.user.reportedMessages",
        _MODERATION_USER_REPORTS,
        "view-moderation-console",
        "{user: {_id, username, name} | null, messages: [{_id, message, ts, room}], count, total, "
        "offset}. findReportedMessagesByReportedUserId: open reports whose message.u._id is userId "
        "(selector on the message text only), sort ts -1, paged over REPORTS; the route then keeps "
        "the first report of each message within the page, so count = reports on the page (not "
        "entries) and total = open reports; the same message can appear on two pages. Page by "
        "count. An unknown user is an empty page with user null",
        "400 invalid-params: userId missing or empty (minLength 1), unknown query key; 403 "
        "error-unauthorized",
        _REST_DEFAULT,
        "6.2-era as moderation.user.getMessageHistory (no dedupe, 'error-invalid-user' for an unknown "
        "user); the current name and shape: not confirmed which release; `user` added later",
        (
            "tests/services/test_moderation_console.py::test_reported_messages_page_over_reports_and_deduplicate_messages",
            "tests/services/test_moderation_console.py::test_the_bots_client_reads_every_reported_message_across_pages",
            "tests/services/test_report_native.py::test_each_reported_message_of_one_user_reaches_the_moderators_once",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        "rest",
        "GET moderation.reports",
        (
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportsByMsgIdParams.ts",
            "apps/meteor/tests/end-to-end/api/moderation.ts",
        ),
        "view-moderation-console",
        "{reports: [{_id, description, reportedBy, ts, room}], count, offset, total}: the open "
        "reports of msgId, newest first (findReportsByMessageId), selector as reportsByUsers",
        "400 invalid-params: msgId missing or empty (minLength 1); 403 error-unauthorized",
        _REST_DEFAULT,
        "6.2-era name moderation.reportsByMessage; msgId minLength added later",
        (
            "tests/services/test_moderation_console.py::test_reports_of_one_message",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        "rest",
        "POST moderation.dismissReports",
        _MODERATION_DISMISS,
        "manage-moderation-actions (admin by default)",
        "{success: true}. Body oneOf userId | msgId (by presence), plus reason, action; no other "
        "keys. A given id with no open message report -> no-reports-found. Then "
        "hideMessageReportsByUserId / ByMessageId: updateMany with no _hidden filter, so reports "
        "hidden before get their moderationInfo overwritten; reason 'No reason provided' when blank "
        "(trimmed), action 'None' when absent",
        "400 invalid-params (neither or both ids, extra keys: the ajv oneOf text); 400 "
        "{error: 'no-reports-found'} (plain failure); 403 error-unauthorized. Not modelled: an empty "
        "userId alone passes and hides by an undefined message id (the server may then match user "
        "reports)",
        _REST_DEFAULT,
        "6.2-era name moderation.markChecked (reasonForHiding, actionTaken)",
        (
            "tests/services/test_moderation_console.py::test_dismissing_message_reports",
            "tests/sandbox/test_sandbox_rest.py::test_moderation_endpoints",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
            "tests/services/test_report.py::test_native_reports_reach_the_moderators_and_console_dismissals_close_them",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
        ),
    ),
    Entry(
        "rest",
        "GET moderation.userReports",
        (
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
            "packages/rest-typings/src/v1/moderation/ReportHistoryProps.ts",
        ),
        "view-moderation-console",
        "{reports: [{reportedUser, ts, count}], count, offset, total}: findUserReports sorts ts -1 "
        "BEFORE grouping by reportedUser._id, so each group carries the newest report; selector on "
        "reportedUser username or name; total = number of reported users",
        "403 error-unauthorized; 400 invalid-params (dates, unknown keys)",
        _REST_DEFAULT,
        "the reported-users tab of the console, merged Oct 2023: probably 6.5 (not confirmed)",
        (
            "tests/services/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/services/test_moderation_console.py::test_user_report_routes_are_absent_before_6_5",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_moderation_console",
        ),
    ),
    Entry(
        "rest",
        "GET moderation.user.reportsByUserId",
        _MODERATION_USER_REPORTS,
        "view-moderation-console",
        "{user | null, reports: [{_id, description, ts, reportedBy, reportedUser}], count, total, "
        "offset}: open reports about userId, newest first; user.emails is replaced by the distinct "
        "first e-mails the page's reports recorded (reportUser stores the reported user's emails)",
        "400 invalid-params: userId missing or empty; 403 error-unauthorized",
        _REST_DEFAULT,
        "as moderation.userReports (probably 6.5)",
        _USER_REPORTS_TESTS,
    ),
    Entry(
        "rest",
        "POST moderation.dismissUserReports",
        _MODERATION_DISMISS,
        "manage-moderation-actions",
        "{success: true}. Same body schema as dismissReports (oneOf userId | msgId); then no userId "
        "-> failure. hideUserReportsByUserId hides every report about the user (no check that any "
        "is open: success either way); reason `?? 'No reason provided'` (an empty reason is kept), "
        "action 'None'",
        "400 invalid-params (the oneOf text); 400 {error: 'error-user-id-param-not-provided'} for an "
        "empty or absent userId; 403 error-unauthorized",
        _REST_DEFAULT,
        "as moderation.userReports (probably 6.5)",
        _USER_REPORTS_TESTS,
    ),
    Entry(
        "rest",
        "POST moderation.reportUser",
        (
            "apps/meteor/app/api/server/v1/moderation.ts",
            "packages/models/src/models/ModerationReports.ts",
        ),
        "any logged-in user",
        "{success: true}; stores reportedUser {_id, name, username, emails, createdAt} and "
        "reportedBy {_id, name, username, createdAt} (older releases answered with the insert result)",
        "400 'Invalid user id provided.' (plain failure); 400 invalid-params without userId or description",
        _REST_DEFAULT,
        "6.4",
        (
            "tests/services/test_moderation_console.py::test_user_reports_list_read_and_dismiss",
            "tests/services/test_report.py::test_reporting_a_user_and_bad_targets",
            "tests/sandbox/test_sandbox_rest.py::test_moderation_endpoints",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_users_settings_moderation_commands",
        ),
    ),
    # --- admin routes
    # Read for all of them: apps/meteor/app/api/server/ApiClass.ts (019378e3: success/failure/
    # forbidden bodies, permissionsRequired -> 403 "... [error-unauthorized]", auth read only on
    # authRequired routes) and packages/http-router/src/Router.ts (05360738: every answer
    # "Content-Type: application/json" exactly) with parseQueryParams.ts (2c8fc26f: qs.parse,
    # arrayLimit 500, throwOnLimitExceeded -> 400 "Invalid query parameters").
    Entry(
        "rest",
        "POST channels.create",
        (
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/app/lib/server/methods/createChannel.ts",
            "apps/meteor/app/lib/server/functions/createRoom.ts",
        ),
        "create-c (create-team-channel in the team's room with extraData.teamId)",
        "channel: the room (fname, name, t 'c', msgs 0, usersCount, u {_id, username, name}, ts, ro, "
        "customFields {}, extraData spread in), without joinCode/members/importIds/e2e; the creator's "
        "subscription has roles ['owner'] unless excludeSelf; members are usernames, unknown ones "
        "skipped; broadcast forces ro; no system message is posted",
        "403 {success:false, error:'unauthorized'} without create-c; 400 'Param \"name\" is required'; "
        "400 'Param \"members\" must be an array if provided'; 400 error-team-not-found (teams are not "
        "modelled: every teamId); 400 error-invalid-room-name / error-duplicate-channel-name "
        "(getValidRoomName); 400 'Match failed [400]' for non-string members",
        _REST_DEFAULT,
        "newest servers validate the body with ajv isChannelsCreateProps (extraData closed); not modelled",
        (
            "tests/sandbox/test_sandbox_admin.py::test_channels_create_makes_a_public_room_owned_by_the_caller",
            "tests/sandbox/test_sandbox_admin.py::test_channels_create_options_and_refusals",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "GET channels.info",
        ("apps/meteor/app/api/server/v1/channels.ts",),
        "any logged-in user: findChannelByIdOrName has no access check",
        "channel: the room without joinCode/members/importIds/e2e; roomId wins over roomName",
        '400 error-room-not-found \'The required "roomId" or "roomName" param provided does not '
        "match any channel' for a private room, an unknown one, or neither parameter",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_admin.py::test_channels_info_shows_any_public_channel_and_nothing_else",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "POST groups.create",
        (
            "apps/meteor/app/api/server/v1/groups.ts",
            "apps/meteor/app/lib/server/methods/createPrivateGroup.ts",
            "apps/meteor/app/lib/server/functions/createRoom.ts",
        ),
        "create-p (checked by createPrivateGroupMethod)",
        "group: the room as channels.create builds it, t 'p'; excludeSelf honoured",
        "400 'Body param \"name\" is required' / '\"members\" must be an array if provided' / "
        '\'"customFields" must be an object if provided\' / \'"extraData" must be an object if '
        "provided'; without create-p 400 'Not allowed [error-not-allowed]' details {method: "
        "'createPrivateGroup'}: the route maps to 401 only an error whose reason is "
        "'error-not-allowed', and the method's reason is 'Not allowed'; name errors as channels.create",
        _REST_DEFAULT,
        "6.x: the route checked create-p itself and answered unauthorized (UNCONFIRMED "
        "which release changed it)",
        (
            "tests/sandbox/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/sandbox/test_sandbox_admin.py::test_groups_create_refusals",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "GET groups.info",
        ("apps/meteor/app/api/server/v1/groups.ts",),
        "canAccessRoom: a member of the group",
        "group: the room without joinCode/members/importIds/e2e",
        "400 error-room-param-not-provided without roomId/roomName; 400 error-room-not-found '... does "
        "not match any group' for a group the caller cannot access (indistinguishable from none)",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "GET groups.list",
        ("apps/meteor/app/api/server/v1/groups.ts",),
        "",
        "groups (the caller's private groups, by name), count, offset, total",
        "",
        _REST_DEFAULT,
        "6.x answered 404 notFound() when the caller had no group; 7.x an empty page",
        (
            "tests/sandbox/test_sandbox_admin.py::test_groups_create_info_and_list",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    _DM_LIST,
    replace(_DM_LIST, name="GET im.list"),
    Entry(
        "rest",
        "GET settings/:_id",
        ("apps/meteor/app/api/server/v1/settings.ts",),
        "permissionsRequired view-privileged-setting; private settings included, hidden ones not",
        "_id and value only (_.pick)",
        "403 'User does not have the permissions required for this action [error-unauthorized]'; an "
        "unknown id 400 {success:false} (API.v1.failure() with nothing in it); settings/a/b "
        "is no route (404)",
        _REST_DEFAULT,
        "older servers checked the permission inline and answered unauthorized()",
        (
            "tests/sandbox/test_sandbox_admin.py::test_settings_by_id_read_and_write",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "POST settings/:_id",
        ("apps/meteor/app/api/server/v1/settings.ts",),
        "permissionsRequired edit-privileged-setting, then twoFactorRequired (password fallback)",
        "{success:true}; {value} is stored as sent (no type check: Settings.updateValueNotHiddenById); "
        "action ({execute}) and color ({editor}) settings and the cloud-trial Custom_Script_ refusal "
        "are not modelled; the settings-changed stream notice is not emitted",
        "403 as GET; 400 totp-required / totp-invalid from the 2FA check; an unknown id or a body "
        "without value 400 {success:false}",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_admin.py::test_settings_by_id_read_and_write",
            "tests/sandbox/test_sandbox_admin.py::test_a_trial_admin_switches_on_what_doctor_asks_for",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "POST users.update",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/saveUser/saveUser.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserData.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserEditing.ts",
            "packages/rest-typings/src/v1/users/UsersUpdateParamsPOST.ts",
        ),
        "twoFactorRequired; edit-other-user-info to edit someone else; assign-roles to change roles, "
        "assign-admin-role to give admin; edit-other-user-active-status for data.active "
        "(setUserActiveStatus)",
        "user: the account as users.info shows it to an admin (emails, roles, active, name, username); "
        "name/username via saveUserIdentity (a new username is written into messages and "
        "subscriptions), email via setEmail, roles replaced; password, bio, nickname, statusText, "
        "customFields accepted and not modelled",
        "400 invalid-params (missing userId/data, a data key outside the schema); 400 "
        "error-action-not-allowed 'Editing user is not allowed' / 'The field Roles consist invalid role "
        "id' / 'Assigning admin is not allowed' / 'Assign roles is not allowed' / 'Edit username|user "
        "real name|user email is not allowed' (details {method: insertOrUpdateUser, action}); "
        "error-input-is-not-a-valid-field; error-could-not-save-identity {method: saveUser}; "
        "error-invalid-email; error-field-unavailable; totp-required; an unknown userId answers "
        "error-invalid-user here (the server's saveUser falls into saveNewUser: UNCONFIRMED)",
        _REST_DEFAULT,
        "7.0.0 removed the upsert behaviour and the joinDefaultChannels param (OpenAPI changelog)",
        (
            "tests/sandbox/test_sandbox_admin.py::test_users_update_by_an_admin",
            "tests/sandbox/test_sandbox_admin.py::test_users_update_refusals",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    Entry(
        "rest",
        "GET subscriptions.getOne",
        ("apps/meteor/app/api/server/v1/subscriptions.ts",),
        "",
        "subscription: the caller's subscription to roomId, or null",
        "400 invalid-params \"must have required property 'roomId'\" (isSubscriptionsGetOneProps)",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_admin.py::test_subscriptions_get_one",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_administration",
        ),
    ),
    _DM_CREATE,
    replace(
        _DM_CREATE,
        name="POST im.create",
        tests=(
            "tests/sandbox/test_sandbox_fidelity_small.py::test_im_create_with_exclude_self_leaves_the_caller_out",
            "tests/sandbox/test_sandbox_fidelity.py::test_im_create_answers_like_dm_create",
        ),
    ),
    Entry(
        "rest",
        "POST users.register",
        ("apps/meteor/app/api/server/v1/users.ts", "apps/meteor/app/api/server/ApiClass.ts"),
        "anonymous: without authRequired the server never reads X-User-Id/X-Auth-Token, so the "
        "route's 'Logged in users can not register again.' never fires and a logged-in caller "
        "registers like anyone",
        "user (as before)",
        "as before; no 401 for a dead token in the headers",
        "its own limiter: Rate_Limiter_Limit_RegisterUser (default 1) per "
        "API_Enable_Rate_Limiter_Limit_Time_Default, not modelled (the sandbox applies the REST default)",
        "",
        (
            "tests/sandbox/test_sandbox_fidelity_small.py::test_users_register_ignores_auth_headers",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_registration_awaiting_approval_and_renames",
        ),
    ),
    Entry(
        "rest",
        "POST permissions.update",
        (
            "apps/meteor/app/api/server/v1/permissions.ts",
            "apps/meteor/app/authorization/server/constant/permissions.ts",
        ),
        "permissionsRequired access-permissions",
        "permissions: the whole table after the update; the table holds all 174 default permissions "
        "(bot/sandbox/permissions.py), so any of them can be granted",
        "400 'Invalid permission' errorType error-invalid-permission when an id is not in the table; "
        "400 'Invalid role' error-invalid-role",
        _REST_DEFAULT,
        "the default table grows with releases (federated-external, mark-message-as-important are recent)",
        (
            "tests/sandbox/test_sandbox_fidelity_small.py::test_the_permission_table_is_the_servers",
            "tests/sandbox/test_sandbox_fidelity_small.py::test_permissions_update_knows_every_default_permission",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",
        ),
    ),
    Entry(
        "rest",
        "GET users.listByStatus",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "packages/rest-typings/src/v1/users/UsersListStatusParamsGET.ts",
            "packages/http-router/src/parseQueryParams.ts",
        ),
        "view-d-room (and view-outside-room with API_Apply_permission_view-outside-room_on_users-list)",
        "roles is an array in the query string (roles[]=admin&roles[]=bot): users holding any of them",
        "400 invalid-params 'must be array' for roles=admin; 400 'Invalid query parameters' past 500 items",
        _REST_DEFAULT,
        "added in 6.8; the roles filter's $in semantics are UNCONFIRMED",
        (
            "tests/sandbox/test_sandbox_fidelity_small.py::test_array_query_parameters_reach_the_route",
            "tests/sandbox/test_sandbox_fidelity_small.py::test_an_oversized_bracket_array_is_refused",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_registration_awaiting_approval_and_renames",
            "tests/services/test_namewatch.py::test_status_says_when_pending_accounts_cannot_be_checked",
        ),
    ),
    # --- setup, 2FA, read-only
    Entry(
        "rest",
        "POST login",
        (
            "apps/meteor/app/api/server/api.ts",
            "apps/meteor/app/api/server/ApiClass.ts",
            *_SETUP_2FA_FILES,
        ),
        "no auth; body user|username|email + password, optional code (or header x-2fa-code)",
        "200 {status: 'success', data: {userId, authToken, me}}; no `success` key",
        "401 unauthorized() {success: false, error} overlaid with {status: 'error', error: <Meteor "
        "error>, details, message: reason}; unknown user -> error/message 'Unauthorized'; wrong "
        "password -> error 403 'Incorrect password'; with Accounts_EmailVerification on, a non-admin "
        "without a verified address -> error-invalid-email. Second factor (onValidateLogin, password "
        "fallback disabled, so only users with e-mail or TOTP 2FA are asked): " + _SETUP_EMAIL_2FA,
        "REST default limiter (10/min per route and client unless api-bypass-rate-limit); failed "
        "logins also count toward Block_Multiple_Failed_Logins (10 per user, 50 per IP, 5 min): "
        "not modelled",
        "the error/details overlay is dropped once applyBreakingChanges holds "
        "(shouldBreakInVersion('8.0.0') in 7.x sources, '9.0.0' in newer ones): then a 2FA login "
        "is a bare 401 and only DDP login still says totp-required",
        (
            "tests/sandbox/test_sandbox_rest.py::test_login_with_password_and_resume",
            "tests/ops/test_two_factor.py::test_a_verified_user_gets_an_emailed_code_and_logs_in_with_it",
            "tests/ops/test_two_factor.py::test_an_unverified_address_means_no_email_2fa",
            "tests/ops/test_two_factor.py::test_an_admin_with_email_2fa_is_told_what_to_do_then_passes_the_code",
            "tests/ops/test_two_factor.py::test_the_bots_password_mode_on_an_account_with_email_2fa_ends_in_one_line",
            "tests/rest/test_rest_errors.py::test_two_factor_answers_say_what_a_person_must_do",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_authentication",
        ),
    ),
    Entry(
        "ddp",
        "login",
        ("apps/meteor/app/authentication/server/startup/index.js", *_SETUP_2FA_FILES),
        "none; params [{user, password: {digest, algorithm: 'sha-256'}}] or [{resume}], "
        "or [{totp: {login: <either>, code}}] (the `totp` login handler)",
        "result {id, token, tokenExpires: {$date}, type: 'password'|'resume'}",
        "Meteor.Error objects {isClientSafe, error, reason, details, message: 'reason [error]', "
        "errorType: 'Meteor.Error'}; resume logins skip 2FA; details dates are EJSON {$date}. "
        + _SETUP_EMAIL_2FA,
        "DDP_Rate_Limit_Connection_By_Method; Block_Multiple_Failed_Logins not modelled",
        "",
        (
            "tests/ops/test_two_factor.py::test_ddp_login_asks_for_the_code_and_takes_it",
            "tests/sandbox/test_sandbox_ddp.py::test_login_failures_match_reference",
            "tests/sandbox/test_sandbox_ddp.py::test_handshake_login_with_pat_and_password",
            "tests/realtime/test_realtime_client.py::test_token_login_subscriptions_and_events",
        ),
    ),
    Entry(
        "rest",
        "POST users.create",
        (
            "apps/meteor/app/api/server/v1/users.ts",
            "apps/meteor/app/lib/server/functions/saveUser/saveNewUser.ts",
            "apps/meteor/app/lib/server/functions/saveUser/validateUserData.ts",
            "apps/meteor/app/authentication/server/startup/index.js",
        ),
        "create-user (admin); assign-admin-role to create an admin",
        "user {_id, username, name, emails: [{address as given, verified: the body's boolean "
        "`verified`, else false}], roles, active, ...}. Accounts.insertUserDoc sets "
        "services.email2fa.enabled while Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In is "
        "on (default on, not public): with verified: true the new user gets e-mail 2FA",
        "400 error-field-unavailable '<username|email> is already in use :(', invalid-params (ajv)",
        _REST_DEFAULT,
        "",
        (
            "tests/ops/test_two_factor.py::test_a_verified_user_gets_an_emailed_code_and_logs_in_with_it",
            "tests/ops/test_two_factor.py::test_setup_works_on_a_default_server",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",
        ),
    ),
    Entry(
        "rest",
        "POST users.generatePersonalAccessToken",
        ("apps/meteor/app/api/server/v1/users.ts", *_SETUP_2FA_FILES),
        "create-personal-access-tokens; twoFactorRequired (x-2fa-code / x-2fa-method)",
        "{token}",
        "400 errorType totp-required/totp-invalid with details; skipped within "
        "Accounts_TwoFactorAuthentication_RememberFor (1800 s) of the user's creation. The method "
        "is the user's first enabled one (e-mail before the password fallback, whatever "
        "x-2fa-method says, since 'password' is not a check method by name)",
        _REST_DEFAULT,
        "",
        (
            "tests/ops/test_setup.py::test_setup_then_doctor_is_green",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_workspace_setup",
            "tests/ops/test_setup.py::test_an_endpoint_missing_midway_rolls_back",
        ),
    ),
    Entry(
        "rest",
        "POST chat.delete",
        (
            "apps/meteor/app/api/server/v1/chat.ts",
            "apps/meteor/app/authorization/server/functions/canDeleteMessage.ts",
        ),
        "force-delete-message, else Message_AllowDeleting and delete-message (or own message and "
        "delete-own-message), the BlockDeleteInMinutes window unless bypass-time-limit-edit-and-"
        "delete, then in a read-only room post-readonly or an explicit unmute of the deleting user",
        "{_id, ts, message}",
        "400 error-action-not-allowed 'Not allowed'; read-only: a plain Error -> 400 {success: "
        'false, error: "You can\'t delete messages because the room is readonly."} (no errorType)',
        _REST_DEFAULT,
        "older canDeleteMessage checked room.unmuted against the message author's username, newer "
        "against the deleting user's (modelled)",
        (
            "tests/services/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/services/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_rest.py::test_permission_failure_is_400_with_error_type",
            "tests/services/test_purge.py::test_rate_limits_and_server_faults_slow_a_purge_never_fail_it",
        ),
    ),
    Entry(
        "rest",
        "POST chat.update",
        ("apps/meteor/app/lib/server/methods/updateMessage.ts", _SETUP_CAN_SEND),
        "edit-message, or own message with Message_AllowEditing; then canSendMessage for the "
        "editor: in a read-only room post-readonly or an unmute, and not muted",
        "{message}",
        "400 error-action-not-allowed 'Message editing not allowed'; read-only: plain Error "
        "\"You can't send messages because the room is readonly.\"; muted: 'You_have_been_muted'",
        _REST_DEFAULT,
        "",
        (
            "tests/services/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/services/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_rest.py::test_required_params_are_enforced",
            "tests/sandbox/test_sandbox_client.py::test_post_edit_pin_report_delete_as_bot",
            "tests/services/test_catch_up_many_rooms.py::test_quiet_rooms_cost_one_call",
        ),
    ),
    Entry(
        "rest",
        "POST chat.sendMessage",
        ("apps/meteor/app/lib/server/methods/sendMessage.ts", _SETUP_CAN_SEND),
        "room access; read-only room: post-readonly or an explicit unmute; not muted",
        "{message}",
        "read-only: plain Error -> 400 {success: false, error: \"You can't send messages because the "
        'room is readonly."}, and the sender gets it as an ephemeral message; muted: '
        "'You_have_been_muted'",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
            "tests/services/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/rest/test_rest_client.py::test_send_is_idempotent_when_the_answer_is_lost",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
        ),
    ),
    Entry(
        "rest",
        "POST chat.postMessage",
        ("apps/meteor/app/api/server/v1/chat.ts", _SETUP_CAN_SEND),
        "as chat.sendMessage (the same canSendMessage checks)",
        "{ts, channel, message}",
        "as chat.sendMessage",
        _REST_DEFAULT,
        "",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
            "tests/sandbox/test_sandbox_rest.py::test_post_message_by_channel_name_and_dm",
            "tests/sandbox/test_sandbox_openapi.py::test_openapi_messaging",
            "tests/sandbox/test_sandbox_moderation_actions.py::test_a_muted_member_cannot_post_until_unmuted",
        ),
    ),
    Entry(
        "ddp",
        "sendMessage",
        ("apps/meteor/app/lib/server/methods/sendMessage.ts", _SETUP_CAN_SEND),
        "as chat.sendMessage",
        "result: the message",
        "the read-only and muted plain Errors become error 500 'Internal server error' over DDP; a "
        "client-set ts more than 60 s off the server's clock: error-message-ts-out-of-sync 'Message "
        "timestamp is out of sync', 10-60 s off: replaced by the server's time (the bot's dedup "
        "horizon, when a store has no newest handled time yet, relies on this bound; the sandbox "
        "always stamps its own time, which is within it)",
        "DDP_Rate_Limit_Connection_By_Method",
        "",
        (
            "tests/sandbox/test_sandbox_moderation_actions.py::test_read_only_room_lets_only_privileged_and_unmuted_members_post",
            "tests/sandbox/test_sandbox_ddp.py::test_send_message_limit_per_user_without_send_many_messages",
            "tests/sandbox/test_sandbox_ddp.py::test_send_message_failures_resolve_empty_with_an_ephemeral_notice",
            "tests/sandbox/test_sandbox_ddp.py::test_methods_need_login_and_unknown_method_is_404",
            "tests/services/test_ingest_dedup.py::test_a_store_written_by_an_older_rcmod_still_drops_what_it_handled",
        ),
    ),
    Entry(
        "ddp",
        "updateMessage",
        ("apps/meteor/app/lib/server/methods/updateMessage.ts", _SETUP_CAN_SEND),
        "as chat.update",
        "no result; the message's tshow, alias, attachments, avatar, emoji and msg may change "
        "(attachments replaced whole, [] removes them); the same text is no edit (nothing changes)",
        "as chat.update; another key that differs from the stored message: error-invalid-update-key "
        "'Cannot update the message KEY'; plain Errors become 500 'Internal server error'",
        "DDP_Rate_Limit_Connection_By_Method",
        "",
        (
            "tests/services/test_read_only_rooms.py::test_in_a_read_only_room_the_bot_still_deletes_censors_and_posts",
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_update_message_edits_and_refuses_strangers",
            "tests/sandbox/test_sandbox_fidelity.py::test_ddp_update_message_replaces_attachments_and_only_those",
        ),
    ),
    Entry(
        "ddp",
        "deleteMessage",
        ("apps/meteor/app/authorization/server/functions/canDeleteMessage.ts",),
        "as chat.delete",
        "no result",
        "as chat.delete; the read-only plain Error becomes 500 'Internal server error'",
        "DDP_Rate_Limit_Connection_By_Method",
        "as chat.delete",
        (
            "tests/services/test_read_only_rooms.py::test_without_post_readonly_delete_edit_and_post_are_refused_with_the_servers_texts",
            "tests/sandbox/test_sandbox_ddp.py::test_delete_via_ddp_method_and_bulk_notification",
            "tests/sandbox/test_sandbox_rest.py::test_permission_failure_is_400_with_error_type",
        ),
    ),
    *_UPLOAD_LINES,
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
