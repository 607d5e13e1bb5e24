"""Small points where the sandbox answered differently from a Rocket.Chat server.

Each test states the server's behaviour (the source read is named in the ledger entries) and
checks the sandbox over real HTTP, or through the pure function that implements it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox
from bot.sandbox.permissions import SERVER_PERMISSIONS
from bot.sandbox.rest import parse_query
from bot.sandbox.workspace import DEFAULT_PERMISSIONS
from tests.sandbox.test_sandbox_support import FakeClock, Seed, running


class Client:
    def __init__(self, session: aiohttp.ClientSession, seed: Seed) -> None:
        self.session = session
        self.seed = seed

    async def call(
        self,
        method: str,
        path: str,
        who: str | None = None,
        *,
        query: str = "",
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, Any]:
        """Status, the raw Content-Type header and the JSON body of one request."""
        send = {**(self.seed.headers(who) if who else {}), **(headers or {})}
        url = f"{self.seed.url}{path}" + (f"?{query}" if query else "")
        async with self.session.request(method, url, json=body, headers=send) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.json(content_type=None)


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sandbox, Client]]:
    async with running(FakeClock()) as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, Client(session, seed)


# ---------------------------------------------------------------- Content-Type


async def test_json_answers_are_application_json_exactly(env: tuple[Sandbox, Client]) -> None:
    """The server's router sets ``Content-Type: application/json`` on every answer, success or
    failure, with no charset parameter."""
    sandbox, client = env
    general = client.seed.rid("general")
    answers = [
        await client.call("GET", "/api/info"),
        await client.call("GET", "/api/v1/me", "alice"),
        await client.call("GET", "/api/v1/me"),  # 401
        await client.call("GET", "/api/v1/no.such.route", "alice"),  # 404
        await client.call("POST", "/api/v1/chat.postMessage", "alice", body={"text": "x"}),  # 400
        await client.call("POST", "/api/v1/users.create", "alice", body={}),  # 403
        await client.call("GET", "/api/v1/rooms.info", "alice", query=f"roomId={general}"),
    ]
    sandbox.fail_next("rooms.info", 500)
    answers.append(await client.call("GET", "/api/v1/rooms.info", "alice", query=f"roomId={general}"))
    assert [status for status, _type, _body in answers] == [200, 200, 401, 404, 400, 403, 200, 500]
    assert {content_type for _status, content_type, _body in answers} == {"application/json"}


# ---------------------------------------------------------------- GENERAL


async def test_the_general_channel_has_the_id_general(env: tuple[Sandbox, Client]) -> None:
    """A server creates its first channel as ``{_id: "GENERAL", name: "general"}`` at startup;
    the ``rcmod sandbox`` seed still lists every room with its id."""
    sandbox, client = env
    assert {"name": "general", "id": "GENERAL", "type": "c"} in sandbox.seed_info()["rooms"]
    status, _type, body = await client.call("GET", "/api/v1/rooms.info", "alice", query="roomName=general")
    assert status == 200 and body["room"]["_id"] == "GENERAL" and body["room"]["default"] is True
    posted = sandbox.post_as("alice", "general", "hello")
    assert posted["rid"] == "GENERAL"


# ---------------------------------------------------------------- qs query parsing


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        ("roles[]=admin&roles[]=bot", {"roles": ["admin", "bot"]}),
        ("roles[]=admin", {"roles": ["admin"]}),
        ("ids=a&ids=b", {"ids": ["a", "b"]}),
        ("a[0]=x&a[1]=y", {"a": ["x", "y"]}),
        ("a[1]=only", {"a": ["only"]}),
        ("a[b]=c&a[d]=e", {"a": {"b": "c", "d": "e"}}),
        ("q=a%20b+c&empty=", {"q": "a b c", "empty": ""}),
        ("roomId=GENERAL&count=10", {"roomId": "GENERAL", "count": "10"}),
    ],
)
def test_query_strings_parse_as_qs_does(query: str, parsed: dict[str, Any]) -> None:
    assert parse_query(query) == parsed


async def test_array_query_parameters_reach_the_route(env: tuple[Sandbox, Client]) -> None:
    """users.listByStatus reads ``roles`` as an array (``roles[]=admin&roles[]=bot``); the
    sandbox used to see a key literally named ``roles[]`` and ignore it."""
    _sandbox, client = env
    status, _type, body = await client.call(
        "GET", "/api/v1/users.listByStatus", "admin", query="roles[]=admin&roles[]=bot"
    )
    assert status == 200
    assert sorted(u["username"] for u in body["users"]) == ["admin", "rcmod.bot"]
    status, _type, body = await client.call("GET", "/api/v1/users.listByStatus", "admin", query="roles[]=bot")
    assert [u["username"] for u in body["users"]] == ["rcmod.bot"]


async def test_an_oversized_bracket_array_is_refused(env: tuple[Sandbox, Client]) -> None:
    """qs runs with ``arrayLimit: 500, throwOnLimitExceeded: true``: the router answers 400."""
    _sandbox, client = env
    query = "&".join("roles[]=x" for _ in range(501))
    status, _type, body = await client.call("GET", "/api/v1/users.listByStatus", "admin", query=query)
    assert (status, body) == (400, {"success": False, "error": "Invalid query parameters"})


# ---------------------------------------------------------------- excludeSelf


async def test_im_create_with_exclude_self_leaves_the_caller_out(env: tuple[Sandbox, Client]) -> None:
    """createDirectMessage(usernames, uid, excludeSelf): the caller is dropped from the members,
    so an admin can open a DM between two other users without joining it."""
    sandbox, client = env
    ws = sandbox.workspace
    alice, bob, admin = client.seed.uid("alice"), client.seed.uid("bob"), client.seed.uid("admin")
    status, _type, body = await client.call(
        "POST", "/api/v1/im.create", "admin", body={"usernames": "alice,bob", "excludeSelf": True}
    )
    assert status == 200
    room = body["room"]
    assert sorted(room["uids"]) == sorted([alice, bob]) and room["rid"] == "".join(sorted([alice, bob]))
    assert (room["rid"], admin) not in ws.subscriptions
    assert (room["rid"], alice) in ws.subscriptions and (room["rid"], bob) in ws.subscriptions
    # Without it the caller is a member, as before.
    status, _type, body = await client.call(
        "POST", "/api/v1/dm.create", "admin", body={"usernames": "alice,bob"}
    )
    assert status == 200 and admin in body["room"]["uids"] and len(body["room"]["uids"]) == 3
    status, _type, body = await client.call(
        "POST", "/api/v1/im.create", "admin", body={"username": "carol", "excludeSelf": "yes"}
    )
    assert status == 400 and body["errorType"] == "invalid-params"


# ---------------------------------------------------------------- users.register


async def test_users_register_ignores_auth_headers(env: tuple[Sandbox, Client]) -> None:
    """users.register has no ``authRequired``: the server never reads the caller's headers there,
    so a logged-in client (or one with a dead token) registers like anyone else, without a 401."""
    sandbox, client = env
    form = {"username": "dave", "email": "dave@x.invalid", "pass": "pw-dave-1", "name": "Dave"}
    status, _type, body = await client.call("POST", "/api/v1/users.register", "alice", body=form)
    assert status == 200 and body["user"]["username"] == "dave"
    stale = {"X-User-Id": client.seed.uid("bob"), "X-Auth-Token": "not-a-token"}
    form = {"username": "erin", "email": "erin@x.invalid", "pass": "pw-erin-1", "name": "Erin"}
    status, _type, body = await client.call("POST", "/api/v1/users.register", headers=stale, body=form)
    assert status == 200 and body["user"]["username"] == "erin"
    assert sandbox.workspace.user_by_username("erin") is not None


# ---------------------------------------------------------------- permissions.update


def test_the_permission_table_is_the_servers() -> None:
    """Every default permission a server creates exists, with the server's roles."""
    assert len(SERVER_PERMISSIONS) == len(DEFAULT_PERMISSIONS) == 174
    assert DEFAULT_PERMISSIONS["create-team"] == ["admin", "user"]
    assert DEFAULT_PERMISSIONS["view-joined-room"] == ["guest", "bot", "app", "anonymous"]
    assert DEFAULT_PERMISSIONS["add-user-to-any-p-room"] == []


async def test_permissions_update_knows_every_default_permission(env: tuple[Sandbox, Client]) -> None:
    """permissions.update refuses only ids the server has no permission for
    (``error-invalid-permission``); any default permission can be granted."""
    sandbox, client = env
    grants = [
        {"_id": "view-statistics", "roles": ["admin", "bot"]},
        {"_id": "create-team", "roles": ["admin"]},
        {"_id": "manage-emoji", "roles": ["admin", "user"]},
    ]
    status, _type, body = await client.call(
        "POST", "/api/v1/permissions.update", "admin", body={"permissions": grants}
    )
    assert status == 200
    after = {p["_id"]: p["roles"] for p in body["permissions"]}
    assert (
        len(after) == 174
        and after["view-statistics"] == ["admin", "bot"]
        and after["create-team"] == ["admin"]
    )
    assert sandbox.workspace.has_permission(client.seed.uid("rcmod.bot"), "view-statistics")
    status, _type, body = await client.call(
        "POST",
        "/api/v1/permissions.update",
        "admin",
        body={"permissions": [{"_id": "no-such-thing", "roles": []}]},
    )
    assert (status, body["errorType"]) == (400, "error-invalid-permission")
    status, _type, body = await client.call("GET", "/api/v1/permissions.listAll", "alice")
    assert len(body["update"]) == 174
