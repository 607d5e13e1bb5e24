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
    # --- bans
    Entry(
        kind="rest",
        name="POST rooms.banUser",
        server=(
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/lib/banUserFromRoom.ts",
            "apps/meteor/app/lib/server/functions/banUserFromRoom.ts",
            "apps/meteor/app/api/server/helpers/getUserFromParams.ts",
            "apps/meteor/tests/end-to-end/api/rooms-ban.ts (the [Rooms Ban] suite; named rooms.ban there)",
            "apps/meteor/tests/end-to-end/api/invites.ts (POST [/useInviteToken] - banned user)",
        ),
        permissions=(
            "ban-user in the room (default roles admin, owner, moderator; the permission is in every "
            "release's table, used only from 8.3); a channel or private group (allowMemberAction BAN); "
            "the caller must be able to access the room"
        ),
        fields=(
            "body {roomId, userId} or {roomId, username}; answers {success: true}. Effect: the target's "
            "subscription is kept with status BANNED (out of every member and subscription listing), its "
            "moderator/owner/leader roles dropped, usersCount - 1, a user-banned system message "
            "(msg = target username, u = the banning user), subscriptions-changed 'updated' to the target "
            "and rooms-changed to the members. The banned user cannot join (channels.join 400), read the "
            "room (rooms.info 400), be invited (error-user-is-banned) or use an invite link."
        ),
        errors=(
            "400 invalid-params (neither userId nor username); 400 error-invalid-user (unknown userId or "
            "username: getUserFromParams runs first); 400 error-not-allowed 'Not allowed' (no ban-user, "
            "unknown room, a direct room); 400 error-room-not-found (caller cannot access the room); "
            "400 error-user-not-found (method-level lookup); 400 error-user-not-in-room; "
            "400 error-user-already-banned; 400 error-you-are-last-owner; 401 without a login"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "added in 8.3 (server PR 'feat: Ban user', merged 2026-03-04; a 'regression:' fix of "
            "2026-03-30 shows it was unreleased then; the 8.3.x line exists — the release is inferred, "
            "no changelog line was found); older servers answer 404. Early copies threw plain Error "
            "texts instead of Meteor errors; the e2e suite expects the error types above."
        ),
        tests=(
            "tests/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/test_sandbox_bans.py::test_banning_twice_and_unbanning_nobody_are_refused",
            "tests/test_sandbox_bans.py::test_refused_bans_change_nothing",
            "tests/test_sandbox_bans.py::test_servers_before_8_3_have_no_ban_routes",
            "tests/test_bans.py::test_a_ban_keeps_the_user_out_until_unbanned",
            "tests/test_bans.py::test_without_server_bans_the_bot_kicks_and_watches_across_a_restart",
            "tests/test_bans.py::test_bad_bans_get_a_clear_answer_and_change_nothing",
        ),
    ),
    Entry(
        kind="rest",
        name="POST rooms.unbanUser",
        server=(
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/server/lib/unbanUserFromRoom.ts",
            "apps/meteor/app/lib/server/functions/executeUnbanUserFromRoom.ts",
            "apps/meteor/tests/end-to-end/api/rooms-ban.ts (the [Rooms Ban] suite; named rooms.unban there)",
        ),
        permissions="ban-user in the room; a channel or private group; the caller must access the room",
        fields=(
            "body {roomId, userId} or {roomId, username}; answers {success: true}. The BANNED "
            "subscription is deleted: the user is no longer banned and not a member either (they may "
            "join or be invited again); a user-unbanned system message (u = the unbanning user); "
            "subscriptions-changed 'removed' to the target"
        ),
        errors=(
            "400 invalid-params; 400 error-invalid-user; 400 error-not-allowed; 400 error-room-not-found; "
            "400 error-user-not-banned (not banned); 401 without a login"
        ),
        rate_limit="REST default 10/min per route and user",
        releases=(
            "added in 8.3 with rooms.banUser; 404 before. An early copy restored the membership on unban "
            "(and the e2e suite of that time expects the room back in subscriptions.get); the copy read "
            "(executeUnbanUserFromRoom) deletes the subscription instead, which the sandbox follows. "
            "One intermediate copy allowed unbans in federated rooms only (reverted before release)."
        ),
        tests=(
            "tests/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/test_sandbox_bans.py::test_banning_twice_and_unbanning_nobody_are_refused",
            "tests/test_bans.py::test_a_ban_keeps_the_user_out_until_unbanned",
        ),
    ),
    Entry(
        kind="rest",
        name="GET rooms.bannedUsers",
        server=(
            "apps/meteor/app/api/server/v1/rooms.ts",
            "apps/meteor/client/views/room/contextualBar/BannedUsers/ (useRoomBannedUsers)",
        ),
        permissions="access to the room (canAccessRoomIdAsync); no ban-user check",
        fields=(
            "query {roomId, offset, count}; answers {bannedUsers: [{_id, username, name}], count, offset, "
            "total}, earliest ban first (subscriptions sorted by ts)"
        ),
        errors="no access: API.v1.unauthorized() (sandbox: 403, see releases); 401 without a login",
        rate_limit="REST default 10/min per route and user",
        releases=(
            "added in 8.3; 404 before. The first releases answered 401 for no access and ignored "
            "offset/count; later changesets made it 403 and paginated (the sandbox paginates and "
            "answers 403)."
        ),
        tests=(
            "tests/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/test_sandbox_bans.py::test_servers_before_8_3_have_no_ban_routes",
        ),
    ),
    Entry(
        kind="rest",
        name="POST channels.join",
        server=("apps/meteor/app/api/server/v1/channels.ts", "apps/meteor/server/lib/banUserFromRoom.ts"),
        permissions="ban facts only (the route's other checks belong to its own entry)",
        fields="a banned user's join is refused: canAccessRoom denies a banned user even a public room",
        errors="400 error-not-allowed for a banned user (8.3+)",
        rate_limit="REST default 10/min per route and user",
        releases="the ban refusal from 8.3",
        tests=(
            "tests/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",
            "tests/test_sandbox_bans.py::test_an_unban_lets_the_user_join_again",
            "tests/test_bans.py::test_without_server_bans_the_bot_kicks_and_watches_across_a_restart",
        ),
    ),
    Entry(
        kind="rest",
        name="POST channels.invite",
        server=(
            "apps/meteor/app/api/server/v1/channels.ts",
            "apps/meteor/client/views/room/contextualBar/RoomMembers/AddUsers (error-user-is-banned)",
        ),
        permissions="ban facts only (the route's other checks belong to its own entry)",
        fields="inviting a banned user does not lift the ban: the inviter must unban first",
        errors="400 error-user-is-banned 'User is banned from this room' (8.3+)",
        rate_limit="REST default 10/min per route and user",
        releases=(
            "from 8.3. An early copy of addUserToRoom unbanned on re-invite instead; the current client "
            "catches error-user-is-banned and offers an unban, which the sandbox follows"
        ),
        tests=("tests/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",),
    ),
    Entry(
        kind="rest",
        name="GET rooms.info",
        server=("apps/meteor/app/api/server/v1/rooms.ts", "apps/meteor/server/lib/banUserFromRoom.ts"),
        permissions="ban facts only (the route's other checks belong to its own entry)",
        fields="a banned user cannot read the room's info, public or not",
        errors="400 for a banned user (8.3+)",
        rate_limit="REST default 10/min per route and user",
        releases="the ban refusal from 8.3",
        tests=("tests/test_sandbox_bans.py::test_a_ban_takes_the_user_out_and_keeps_them_out",),
    ),
)


def entry_for(kind: Kind, name: str) -> Entry | None:
    return next((e for e in LEDGER if e.kind == kind and e.name == name), None)
