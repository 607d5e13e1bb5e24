"""Thread replies in history reads.

channels.history and dm.history / im.history leave thread replies out unless the caller passes
``showThreadMessages=true``: each hands ``showThreadMessages === 'true'`` to getChannelHistory,
whose Messages query then keeps only ``tmid``-less messages and replies also sent to the room
(``tshow``). groups.history passes ``!== 'false'`` instead, so it keeps them unless refused. The
sandbox must answer as each route does, and every history read of the bot must ask for the
replies, or purges, previews, the evidence journal and ``rcmod scan-history`` miss them while
``rooms.cleanHistory`` still deletes them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.models import Actor
from bot.moderation.purge import PurgeRequest
from bot.sandbox import Sandbox
from bot.services.purge import Purger
from bot.store import Store
from tests.cli.test_purge_cli import env_for, evidence, finish, rcmod
from tests.helpers import block_lists, bot_rest, purger_for, write_lists
from tests.sandbox.test_sandbox_rest import Api
from tests.sandbox.test_sandbox_support import FakeClock, running

OPERATOR = Actor("operator", "operator", operator=True)


def uid(sb: Sandbox, username: str) -> str:
    user = sb.workspace.user_by_username(username)
    assert user is not None
    return user.id


def rid(sb: Sandbox, name: str) -> str:
    room = sb.workspace.room_by_id_or_name(name=name)
    assert room is not None
    return str(room["_id"])


def thread(sb: Sandbox, room: str, *, replier: str = "bob", text: str = "a reply") -> tuple[str, str, str]:
    """A parent, a reply kept in the thread, and a reply also sent to the room (tshow)."""
    parent = sb.post_as("alice", room, "a thread starts")["_id"]
    reply = sb.post_as(replier, room, text, tmid=parent)["_id"]
    shown = sb.workspace.send_message(
        uid(sb, replier), rid(sb, room), f"{text}, shown", tmid=parent, tshow=True
    )
    return parent, reply, str(shown["_id"])


def keeps_only_true(value: str | None) -> bool:
    return value == "true"  # channels.history, dm.history: `showThreadMessages === 'true'`


def keeps_unless_false(value: str | None) -> bool:
    return value != "false"  # groups.history: `showThreadMessages !== 'false'`


# -- the sandbox answers as the server does -------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[tuple[Sandbox, Api]]:
    async with running(FakeClock()) as (sandbox, seed), aiohttp.ClientSession() as session:
        yield sandbox, Api(session, seed)


async def test_history_routes_read_thread_replies_as_each_route_does(api: tuple[Sandbox, Api]) -> None:
    """channels.history and dm/im.history leave replies out unless showThreadMessages is exactly
    'true'; groups.history keeps them unless it is exactly 'false'. Replies also sent to the
    room (tshow) are always there."""
    sb, client = api
    parent, reply, shown = thread(sb, "general")
    dm = sb.dm_as("alice", "bob", "hello bob")
    dm_reply = sb.dm_as("bob", "alice", "hello back, in the thread", tmid=dm["_id"])
    sb.post_as("mod1", "staff", "staff thread")
    staff_parent = next(m for m in sb.workspace.messages.values() if m["msg"] == "staff thread")
    staff_reply = sb.post_as("mod2", "staff", "staff reply", tmid=staff_parent["_id"])

    # route, caller, query, always there, replies, and whether a value of showThreadMessages
    # brings the replies
    general, staff = rid(sb, "general"), rid(sb, "staff")
    cases: list[tuple[str, str, dict[str, Any], set[str], set[str], Callable[[str | None], bool]]] = [
        ("channels.history", "alice", {"roomId": general}, {parent, shown}, {reply}, keeps_only_true),
        (
            "groups.history",
            "mod1",
            {"roomId": staff},
            {staff_parent["_id"]},
            {staff_reply["_id"]},
            keeps_unless_false,
        ),
        ("im.history", "alice", {"roomId": dm["rid"]}, {dm["_id"]}, {dm_reply["_id"]}, keeps_only_true),
        ("dm.history", "bob", {"roomId": dm["rid"]}, {dm["_id"]}, {dm_reply["_id"]}, keeps_only_true),
    ]
    for route, who, params, visible, replies, keeps in cases:
        # Newer dm.history schemas refuse any value but 'true' and 'false': only those are tried.
        tried = [None, "false", "true"] + ([] if route.endswith("m.history") else ["1", "TRUE", "no"])
        for value in tried:
            query = {**params, **({"showThreadMessages": value} if value is not None else {})}
            status, body = await client.get(route, who, **query)
            ids = {m["_id"] for m in body["messages"]} if status == 200 else set()
            assert status == 200 and visible <= ids, (route, value)
            assert bool(replies & ids) is keeps(value), (route, value)
    status, body = await client.get("im.history", "alice")
    assert (
        status == 400 and body["error"] == 'Query param "roomId" is required [error-room-param-not-provided]'
    )


async def test_sync_messages_carries_thread_replies(api: tuple[Sandbox, Api]) -> None:
    """chat.syncMessages reads Messages.findForUpdates, which has no thread filter."""
    sb, client = api
    _parent, reply, _shown = thread(sb, "general")
    since = "2000-01-01T00:00:00.000Z"
    status, body = await client.get("chat.syncMessages", "alice", roomId=rid(sb, "general"), lastUpdate=since)
    assert status == 200 and reply in {m["_id"] for m in body["result"]["updated"]}


# -- the bot asks for them --------------------------------------------------------------------------


@pytest.fixture
async def env(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Purger, Store]]:
    rest = bot_rest(sandbox)
    store = Store.open(tmp_path / "rcmod.sqlite3")
    try:
        yield sandbox, purger_for(store, rest, rest.user_id or ""), store
    finally:
        await rest.close()
        store.close()


def evidence_at_deletion(sb: Sandbox, store: Store) -> dict[str, bool]:
    """For each message the server deletes: whether its evidence was already stored then."""
    seen: dict[str, bool] = {}

    def on_event(_event: object) -> None:
        # Every deletion is announced (deleteMessage, deleteMessageBulk, or a tombstone), and
        # the deleted message is in the trash by then.
        fresh = [mid for mid in sb.workspace.trash if mid not in seen]
        if fresh:
            stored = {row.mid for row in store.evidence.all_evidence_rows()}
            seen.update((mid, mid in stored) for mid in fresh)

    sb.workspace.listeners.append(on_event)
    return seen


async def test_a_term_purge_finds_a_thread_reply_and_keeps_its_evidence_first(
    env: tuple[Sandbox, Purger, Store],
) -> None:
    sb, purger, store = env
    parent, reply, shown = thread(sb, "general", replier="bob", text="buy CHEAPPILLS now")
    plain = sb.post_as("carol", "general", "cheappills for everyone")["_id"]
    deleted = evidence_at_deletion(sb, store)

    request = PurgeRequest("term", "cheappills", rooms=("general",), threads="purge")
    plan = await purger.prepare(request, actor=OPERATOR)
    assert plan.preview.total == 3  # the reply kept in its thread is counted too
    assert dict(plan.preview.per_user) == {"bob": 2, "carol": 1}
    result = await purger.run(plan.job_id, token=plan.token)

    assert result.ok and result.deleted == 3
    assert not {reply, shown, plain} & set(sb.workspace.messages) and parent in sb.workspace.messages
    assert deleted[reply] is True and deleted == dict.fromkeys((reply, shown, plain), True)
    rows = Counter(r.mid for r in store.evidence.all_evidence_rows())
    assert rows[reply] == 1 and rows[shown] == 1 and rows[plain] == 1


async def test_a_user_purge_keeps_evidence_of_the_users_thread_replies(
    env: tuple[Sandbox, Purger, Store],
) -> None:
    sb, purger, store = env
    own = sb.post_as("bob", "general", "bob in the room")["_id"]
    _parent, reply, shown = thread(sb, "general", replier="bob")
    deleted = evidence_at_deletion(sb, store)

    plan = await purger.prepare(
        PurgeRequest("user", "bob", rooms=("general",), threads="purge"), actor=OPERATOR
    )
    assert plan.preview.total == 3
    result = await purger.run(plan.job_id, token=plan.token)

    assert result.ok and not {own, reply, shown} & set(sb.workspace.messages)
    assert {reply, shown, own} <= set(deleted) and all(deleted[m] for m in (reply, shown, own))
    rows = Counter(r.mid for r in store.evidence.all_evidence_rows())
    assert rows[reply] == 1 and rows[shown] == 1 and rows[own] == 1


async def test_rcmod_purge_user_keeps_evidence_of_thread_replies(sandbox: Sandbox, tmp_path: Path) -> None:
    """The command line: `rcmod purge user bob --room general --threads purge --yes`."""
    own = sandbox.post_as("bob", "general", "bob in the room")["_id"]
    _parent, reply, shown = thread(sandbox, "general", replier="bob")
    data = tmp_path / "data"
    code, out, err = await finish(
        await rcmod(
            env_for(sandbox, data), "purge", "user", "bob", "--room", "general", "--threads", "purge", "--yes"
        )
    )
    assert code == 0, err
    assert "3 deleted, 0 failed of 3" in out
    assert not {own, reply, shown} & set(sandbox.workspace.messages)
    assert evidence(data) == Counter({own: 1, reply: 1, shown: 1})


async def test_scan_history_reports_a_thread_reply(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    notify = write_lists(tmp_path / "n")
    block = block_lists(tmp_path / "b", action="censor")
    parent = sandbox.post_as("alice", "random", "a harmless thread")["_id"]
    reply = sandbox.post_as("bob", "random", "this badword in a thread", tmid=parent)["_id"]
    env = {**env_for(sandbox, tmp_path / "data"), "RCMOD_WORDLISTS": f"{notify}:{block}"}

    code, out, err = await finish(await rcmod(env, "scan-history", "--room", "random", "--json"))
    assert code == 0, err
    report = json.loads(out)
    [room] = report["rooms"]
    assert room["scanned"] == 2 and room["caught"] == 1
    lists = {(e["list"], e["action"]): e for e in report["lists"]}
    assert reply in lists[("banned", "censor")]["examples"]


async def test_catch_up_reads_include_thread_replies(sandbox: Sandbox) -> None:
    """After an outage the bot reads chat.syncMessages and the room's history since its cursor."""
    rest = bot_rest(sandbox)
    try:
        since = datetime.now(UTC) - timedelta(minutes=1)
        _parent, reply, shown = thread(sandbox, "general")
        walked = {m.id async for m in rest.history(rid(sandbox, "general"), "c", oldest=since)}
        updated, _deleted = await rest.sync_messages(rid(sandbox, "general"), since)
        assert {reply, shown} <= walked
        assert {reply, shown} <= {m.id for m in updated}
    finally:
        await rest.close()
