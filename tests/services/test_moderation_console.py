"""The moderation console's REST routes in the sandbox, as the server answers them.

Facts from the server's routes (apps/meteor/app/api/server/v1/moderation.ts), its model
(packages/models/src/models/ModerationReports.ts), the routes' ajv schemas
(packages/rest-typings/src/v1/moderation/*) and its end-to-end tests
(apps/meteor/tests/end-to-end/api/moderation.ts): reads need ``view-moderation-console``,
dismissals ``manage-moderation-actions``; reportsByUsers groups with ``$first`` and no sort, so it
names the user's first-filed report, not the newest; user.reportedMessages pages over reports and
deduplicates messages within a page; missing or empty ids are ``invalid-params``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.config import Credentials
from bot.rest import RestClient
from bot.sandbox import Sandbox
from tests.sandbox.test_sandbox_rest import Api
from tests.sandbox.test_sandbox_support import FakeClock, running


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Api, FakeClock]]:
    clock = FakeClock()
    async with running(clock) as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, Api(session, seed), clock


async def report(api: Api, who: str, mid: str, description: str) -> None:
    status, body = await api.post("chat.reportMessage", who, messageId=mid, description=description)
    assert (status, body) == (200, {"success": True})


async def three_reports_of_bob(
    sb: Sandbox, api: Api, clock: FakeClock
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """bob's three messages, reported at three times by three reporters, the first one first."""
    first = sb.post_as("bob", "general", "first bad thing")
    second = sb.post_as("bob", "random", "second bad thing")
    third = sb.post_as("bob", "general", "third bad thing")
    for who, message in (("alice", first), ("carol", second), ("admin", third)):
        clock.advance(60)
        await report(api, who, message["_id"], f"reported by {who}")
    return first, second, third


async def test_reports_by_users_names_the_first_report_not_the_newest(
    env: tuple[Sandbox, Api, FakeClock],
) -> None:
    sb, api, clock = env
    first, _second, third = await three_reports_of_bob(sb, api, clock)
    clock.advance(60)
    carols = sb.post_as("carol", "general", "carol misbehaves")
    await report(api, "alice", carols["_id"], "carol too")

    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot")
    assert status == 200 and body["count"] == 2 and body["total"] == 2 and body["offset"] == 0
    by_user = {g["userId"]: g for g in body["reports"]}
    bob = by_user[api.seed.uid("bob")]
    # $first over the natural order: the report filed first, though two came after it.
    assert (
        bob["msgId"] == first["_id"] and bob["message"] == "first bad thing" and bob["msgId"] != third["_id"]
    )
    assert bob["count"] == 3 and bob["username"] == "bob" and bob["isUserDeleted"] is False
    assert {r["_id"] for r in bob["rooms"]} == {api.seed.rid("general"), api.seed.rid("random")}
    assert set(bob) == {
        "message",
        "msgId",
        "ts",
        "username",
        "name",
        "userId",
        "isUserDeleted",
        "count",
        "rooms",
    }
    # Sorted by that first report's ts, newest first: carol's group (filed last) leads.
    assert [g["userId"] for g in body["reports"]] == [api.seed.uid("carol"), api.seed.uid("bob")]
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot", sort='{"reports.ts": 1}')
    assert [g["userId"] for g in body["reports"]] == [api.seed.uid("bob"), api.seed.uid("carol")]
    # The range is exclusive and applies to each report before grouping.
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot", oldest=bob["ts"])
    bob_later = next(g for g in body["reports"] if g["userId"] == api.seed.uid("bob"))
    assert bob_later["count"] == 2 and bob_later["msgId"] != first["_id"]
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot", selector="CAROL MIS")
    assert [g["userId"] for g in body["reports"]] == [api.seed.uid("carol")]
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot", count=1, offset=1)
    assert body["count"] == 1 and body["total"] == 2 and body["offset"] == 1
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot", oldest="yesterday")
    assert status == 400 and body["errorType"] == "invalid-params"
    status, body = await api.get("moderation.reportsByUsers", "alice")
    assert status == 403 and "error-unauthorized" in body["error"]


async def test_reported_messages_page_over_reports_and_deduplicate_messages(
    env: tuple[Sandbox, Api, FakeClock],
) -> None:
    sb, api, clock = env
    first, second, third = await three_reports_of_bob(sb, api, clock)
    clock.advance(60)
    await report(api, "carol", third["_id"], "again")  # a second report of the newest message
    bob = api.seed.uid("bob")

    status, body = await api.get("moderation.user.reportedMessages", "rcmod.bot", userId=bob)
    assert status == 200 and body["user"] == {
        "_id": bob,
        "username": "bob",
        "name": sb.workspace.users[bob].name,
    }
    assert [m["message"]["_id"] for m in body["messages"]] == [third["_id"], second["_id"], first["_id"]]
    assert body["count"] == 4 and body["total"] == 4 and body["offset"] == 0  # reports, not messages
    assert set(body["messages"][0]) == {"_id", "message", "ts", "room"}
    # Two reports of one message on one page are one entry; on two pages, one entry each.
    status, body = await api.get("moderation.user.reportedMessages", "rcmod.bot", userId=bob, count=1)
    assert [m["message"]["_id"] for m in body["messages"]] == [third["_id"]] and body["count"] == 1
    status, body = await api.get(
        "moderation.user.reportedMessages", "rcmod.bot", userId=bob, count=1, offset=1
    )
    assert [m["message"]["_id"] for m in body["messages"]] == [third["_id"]]
    status, body = await api.get(
        "moderation.user.reportedMessages", "rcmod.bot", userId=bob, selector="SECOND"
    )
    assert [m["message"]["_id"] for m in body["messages"]] == [second["_id"]] and body["total"] == 1
    # A user nobody reported, or no user at all: an empty page, and `user` says which.
    status, body = await api.get("moderation.user.reportedMessages", "rcmod.bot", userId="nobody-here")
    assert status == 200 and body["user"] is None and body["messages"] == [] and body["total"] == 0
    status, body = await api.get("moderation.user.reportedMessages", "rcmod.bot", userId="")
    assert status == 400 and body["success"] is False and body["errorType"] == "invalid-params"
    status, body = await api.get("moderation.user.reportedMessages", "rcmod.bot")
    assert status == 400 and "must have required property 'userId'" in body["error"]
    status, body = await api.get("moderation.user.reportedMessages", "mod1", userId=bob)
    assert status == 403


async def test_reports_of_one_message(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sb, api, clock = env
    message = sb.post_as("bob", "general", "messageId")
    await report(api, "alice", message["_id"], "sample report")
    clock.advance(1)
    await report(api, "carol", message["_id"], "me too")
    status, body = await api.get("moderation.reports", "rcmod.bot", msgId=message["_id"])
    assert status == 200 and body["total"] == 2 and body["count"] == 2
    assert [r["reportedBy"]["username"] for r in body["reports"]] == ["carol", "alice"]  # newest first
    assert set(body["reports"][0]) == {"_id", "description", "reportedBy", "ts", "room"}
    status, body = await api.get("moderation.reports", "rcmod.bot", msgId=message["_id"], selector="me too")
    assert [r["description"] for r in body["reports"]] == ["me too"]
    status, body = await api.get("moderation.reports", "rcmod.bot", msgId="")
    assert status == 400 and isinstance(body["error"], str) and body["errorType"] == "invalid-params"


async def test_dismissing_message_reports(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sb, api, clock = env
    first, second, _third = await three_reports_of_bob(sb, api, clock)
    bob = api.seed.uid("bob")
    status, body = await api.post("moderation.dismissReports", "rcmod.bot", msgId=first["_id"])
    assert (status, body) == (200, {"success": True})
    hidden = next(r for r in sb.workspace.reports if r["message"]["_id"] == first["_id"])
    assert hidden["_hidden"] and hidden["moderationInfo"]["reason"] == "No reason provided"
    assert hidden["moderationInfo"]["action"] == "None"
    # With the first report hidden, the group names the next one filed.
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot")
    assert body["reports"][0]["msgId"] == second["_id"] and body["reports"][0]["count"] == 2
    status, body = await api.post("moderation.dismissReports", "rcmod.bot", msgId=first["_id"])
    assert (status, body) == (400, {"success": False, "error": "no-reports-found"})
    status, body = await api.post(
        "moderation.dismissReports", "rcmod.bot", userId=bob, reason="  ", action="warn"
    )
    assert status == 200 and all(r["_hidden"] for r in sb.workspace.reports)
    assert all(r["moderationInfo"]["action"] == "warn" for r in sb.workspace.reports)  # no _hidden filter
    status, body = await api.get("moderation.reportsByUsers", "rcmod.bot")
    assert (body["reports"], body["total"]) == ([], 0)
    for bad in ({"userId": "", "msgId": ""}, {}, {"userId": bob, "extra": 1}):
        status, body = await api.post("moderation.dismissReports", "rcmod.bot", **bad)
        assert status == 400 and body["errorType"] == "invalid-params" and isinstance(body["error"], str)
    status, body = await api.post("moderation.dismissReports", "mod1", userId=bob)
    assert status == 403


async def test_user_reports_list_read_and_dismiss(env: tuple[Sandbox, Api, FakeClock]) -> None:
    sb, api, clock = env
    bob, carol = api.seed.uid("bob"), api.seed.uid("carol")
    for who, target, why in (("alice", bob, "spammer"), ("carol", bob, "rude"), ("alice", carol, "odd")):
        clock.advance(60)
        status, body = await api.post("moderation.reportUser", who, userId=target, description=why)
        assert (status, body) == (200, {"success": True})
    status, body = await api.get("moderation.userReports", "rcmod.bot")
    assert status == 200 and body["total"] == 2 and body["count"] == 2
    groups = {g["reportedUser"]["_id"]: g for g in body["reports"]}
    assert groups[bob]["count"] == 2 and set(groups[bob]) == {"reportedUser", "ts", "count"}
    # Sorted newest first before grouping: bob's group carries his newest report's time.
    newest_of_bob = max(r["ts"] for r in sb.workspace.user_reports if r["reportedUser"]["_id"] == bob)
    assert groups[bob]["ts"] == newest_of_bob.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status, body = await api.get("moderation.userReports", "rcmod.bot", selector="caro")
    assert [g["reportedUser"]["_id"] for g in body["reports"]] == [carol]

    status, body = await api.get(
        "moderation.user.reportsByUserId", "rcmod.bot", userId=bob, count=5, offset=0
    )
    assert status == 200 and len(body["reports"]) == 2 and body["total"] == 2
    assert [r["description"] for r in body["reports"]] == ["rude", "spammer"]
    assert set(body["reports"][0]) == {"_id", "description", "ts", "reportedBy", "reportedUser"}
    assert body["user"]["_id"] == bob and [e["address"] for e in body["user"]["emails"]] == [
        sb.workspace.users[bob].email()
    ]
    status, body = await api.get("moderation.user.reportsByUserId", "rcmod.bot", userId="", count=5, offset=0)
    assert (status, body["success"], body["errorType"]) == (400, False, "invalid-params")

    status, body = await api.post("moderation.dismissUserReports", "rcmod.bot", userId=bob)
    assert (status, body) == (200, {"success": True})
    status, body = await api.get("moderation.user.reportsByUserId", "rcmod.bot", userId=bob)
    assert body["reports"] == []
    hidden = [r for r in sb.workspace.user_reports if r["reportedUser"]["_id"] == bob]
    assert all(r["moderationInfo"]["reason"] == "No reason provided" for r in hidden)
    status, body = await api.post("moderation.dismissUserReports", "rcmod.bot", userId="")
    assert (status, body) == (400, {"success": False, "error": "error-user-id-param-not-provided"})
    status, body = await api.post("moderation.dismissUserReports", "rcmod.bot", msgId="x")
    assert (status, body) == (400, {"success": False, "error": "error-user-id-param-not-provided"})
    status, body = await api.post("moderation.dismissUserReports", "mod1", userId=carol)
    assert status == 403
    status, body = await api.get("moderation.userReports", "alice")
    assert status == 403


async def test_user_report_routes_are_absent_before_6_5() -> None:
    async with running(FakeClock(), version="6.4.2") as (_sb, seed), aiohttp.ClientSession() as session:
        api = Api(session, seed)
        for route in ("moderation.userReports", "moderation.user.reportsByUserId"):
            status, _body = await api.get(route, "rcmod.bot", userId=seed.uid("bob"))
            assert status == 404
        status, body = await api.get("moderation.reportsByUsers", "rcmod.bot")
        assert status == 200 and body["reports"] == []


async def test_the_bots_client_reads_every_reported_message_across_pages(
    env: tuple[Sandbox, Api, FakeClock],
) -> None:
    """Pages hold reports, deduplicated per page: the client moves on by ``count`` and keeps each
    message once (its newest report)."""
    sb, api, clock = env
    first, second, third = await three_reports_of_bob(sb, api, clock)
    for who in ("carol", "mod1"):
        clock.advance(60)
        await report(api, who, first["_id"], f"{who} again")
    rest = RestClient(
        api.seed.url,
        Credentials(user_id=api.seed.uid("rcmod.bot"), token=api.seed.users["rcmod.bot"]["token"]),
    )
    try:
        entries = await rest.user_reported_messages(api.seed.uid("bob"), page=2)
        assert [e["message"]["_id"] for e in entries] == [first["_id"], third["_id"], second["_id"]]
        assert entries[0]["_id"] == sb.workspace.reports[-1]["_id"]  # the newest report of it
        assert await rest.user_reported_messages(api.seed.uid("carol")) == []
    finally:
        await rest.close()
