"""Purges against the sandbox: by user across rooms keeping pins and threads, by term with preview,
confirmation token and dry run, evidence before deletion (one record per message), privilege per
room, bad input refused with nothing deleted."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Credentials
from bot.models import Actor
from bot.moderation.purge import PurgeRequest, PurgeUsageError, confirmation_token, parse_when, summarize
from bot.rest import RestClient
from bot.sandbox import Sandbox
from bot.sandbox.workspace import RoomNotify
from bot.services.executor import Executor
from bot.services.purge import DmProgress, Purger, PurgeRefused
from bot.store import Store
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import bot_rest, purger_for, seed_user

OPERATOR = Actor("operator", "operator", operator=True)


@pytest.fixture
async def env(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Purger, Store]]:
    rest = bot_rest(sandbox)
    store = Store.open(tmp_path / "rcmod.sqlite3")
    try:
        yield sandbox, purger_for(store, rest, seed_user(sandbox, "rcmod.bot")["id"]), store
    finally:
        await rest.close()
        store.close()


def uid(sb: Sandbox, username: str) -> str:
    user = sb.workspace.user_by_username(username)
    assert user is not None
    return user.id


def evidence_per_message(store: Store, mids: set[str]) -> Counter[str]:
    return Counter(row.mid for row in store.evidence.all_evidence_rows() if row.mid in mids)


# -- the pure parts ----------------------------------------------------------------------------


def test_parse_when_and_the_token() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_when("30d", now) == now - timedelta(days=30)
    assert parse_when("12h", now) == now - timedelta(hours=12)
    assert parse_when("2026-01-31", now) == datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(PurgeUsageError):
        parse_when("last tuesday", now)
    req = PurgeRequest("term", "badword", everywhere=True)
    assert confirmation_token(1, req, 10) == confirmation_token(1, req, 10)
    assert confirmation_token(1, req, 10) != confirmation_token(1, req, 11)  # another selection
    assert confirmation_token(1, req, 10) != confirmation_token(2, req, 10)  # another job
    p = summarize(
        [("general", "bob", "m1", "hi @all"), ("general", "bob", "m2", "x"), ("random", "eve", "m3", "y")]
    )
    assert p.total == 3 and p.per_room[0] == ("general", 2) and p.per_user == (("bob", 2), ("eve", 1))
    assert "@all" not in p.examples[0].excerpt  # examples are inert


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (PurgeRequest("user", "bob"), "everywhere"),
        (PurgeRequest("user", "bob", rooms=("general",), everywhere=True), "not both"),
        (PurgeRequest("term", "!!!", everywhere=True), "cannot be matched"),
        (PurgeRequest("term", "   ", everywhere=True), "give the term"),
        (
            PurgeRequest(
                "user",
                "bob",
                everywhere=True,
                since=datetime(2026, 2, 1, tzinfo=UTC),
                until=datetime(2026, 1, 1, tzinfo=UTC),
            ),
            "reversed",
        ),
    ],
)
def test_bad_requests_are_usage_errors(request_: PurgeRequest, why: str) -> None:
    with pytest.raises(PurgeUsageError, match=why):
        request_.validate()


# -- against the sandbox -----------------------------------------------------------------------


async def test_bad_targets_delete_nothing(env: tuple[Sandbox, Purger, Store]) -> None:
    sb, purger, _store = env
    sb.post_as("bob", "general", "hello")
    before = len(sb.workspace.messages)
    with pytest.raises(PurgeUsageError, match="no user"):
        await purger.prepare(PurgeRequest("user", "nobody", everywhere=True), actor=OPERATOR)
    with pytest.raises(PurgeUsageError, match="no room #nowhere"):
        await purger.prepare(PurgeRequest("user", "bob", rooms=("nowhere",)), actor=OPERATOR)
    ws = sb.workspace
    hidden = ws.create_room("p", "secret", ws.user_by_username("admin"), [uid(sb, "admin")])
    assert hidden["_id"]
    with pytest.raises(PurgeUsageError, match="#secret"):  # a room the bot cannot see
        await purger.prepare(PurgeRequest("user", "bob", rooms=("secret",)), actor=OPERATOR)
    assert len(sb.workspace.messages) == before


async def test_user_purge_across_rooms_keeps_pins_and_threads(env: tuple[Sandbox, Purger, Store]) -> None:
    sb, purger, store = env
    bulk: list[dict[str, Any]] = []
    sb.workspace.listeners.append(
        lambda e: (
            bulk.append(e.args[0]) if isinstance(e, RoomNotify) and e.event == "deleteMessageBulk" else None
        )
    )
    doomed = {
        sb.post_as("bob", room, f"bob says {i}")["_id"] for room in ("general", "random") for i in range(4)
    }
    pinned = sb.post_as("bob", "general", "bob's pinned rule")["_id"]
    sb.workspace.pin_message(uid(sb, "admin"), pinned)
    parent = sb.post_as("alice", "general", "alice starts a thread")["_id"]
    reply = sb.post_as("bob", "general", "bob replies in the thread", tmid=parent)["_id"]
    others = {sb.post_as("alice", "random", "alice stays")["_id"], parent}

    plan = await purger.prepare(PurgeRequest("user", "bob", everywhere=True), actor=OPERATOR)
    assert plan.preview.total == len(doomed) and not plan.needs_token
    assert dict(plan.preview.per_room) == {"general": 4, "random": 4}
    assert dict(plan.preview.per_user) == {"bob": 8}
    result = await purger.run(plan.job_id, token=None)

    assert result.ok and result.deleted == len(doomed)
    msgs = sb.workspace.messages
    assert not doomed & set(msgs)
    assert pinned in msgs and reply in msgs and others <= set(msgs)  # pins and threads kept
    assert {b["rid"] for b in bulk} == {
        sb.workspace.room_by_id_or_name(name=n)["_id"] for n in ("general", "random")
    }  # type: ignore[index]
    assert all(b["excludePinned"] is True for b in bulk)  # sent explicitly
    assert evidence_per_message(store, doomed | {pinned, reply}) == Counter(dict.fromkeys(doomed, 1))
    actions = [r.action for r in store.audit.audit_records()]
    assert actions[0] == "purge.started" and actions[-1] == "purge.finished"
    assert "bob says" not in str([r.targets for r in store.audit.audit_records()])  # no content in the log
    # The job's lease is released when it ends: one row per running purge, none left behind.
    assert store.db.execute("SELECT name FROM lease WHERE name LIKE 'purge:%'").fetchall() == []


async def test_user_purge_without_bulk_permission_deletes_one_by_one(
    env: tuple[Sandbox, Purger, Store],
) -> None:
    sb, purger, store = env
    sb.workspace.set_permission_roles("clean-channel-history", ["admin"])  # as Rocket.Chat ships it
    doomed = {sb.post_as("carol", "general", f"carol {i}")["_id"] for i in range(5)}
    pinned = sb.post_as("carol", "general", "carol pinned")["_id"]
    sb.workspace.pin_message(uid(sb, "admin"), pinned)
    plan = await purger.prepare(
        PurgeRequest("user", "carol", rooms=("general",), include_pinned=True), actor=OPERATOR
    )
    result = await purger.run(plan.job_id, token=None)
    assert result.ok and result.deleted == 6
    assert not (doomed | {pinned}) & set(sb.workspace.messages)  # --include-pinned takes pins too
    assert [r.method for r in store.purges.purge_rooms(plan.job_id)] == ["each"]


async def test_term_purge_preview_token_and_dry_run(env: tuple[Sandbox, Purger, Store]) -> None:
    sb, purger, store = env
    hits = {
        sb.post_as(u, room, f"that is a B4DW0RD no {i}")["_id"]
        for i in range(60)
        for u, room in (("alice", "general"), ("bob", "random"))
    }
    clean = sb.post_as("alice", "general", "a perfectly nice message")["_id"]
    request = PurgeRequest("term", "badword", everywhere=True)

    dry = await purger.prepare(request, actor=OPERATOR)
    assert dry.preview.total == 120 and dry.needs_token  # above the default threshold of 100
    rendered = dry.preview.render(request, token=dry.token, dry_run=True)
    assert "#general 60" in rendered and "#random 60" in rendered and "dry run" in rendered
    purger.decline(dry.job_id, dry_run=True)
    assert all(i.message is None for i in store.purges.purge_items(dry.job_id))  # no copy kept
    assert hits <= set(sb.workspace.messages)  # a dry run deletes nothing

    plan = await purger.prepare(request, actor=OPERATOR)
    assert plan.token != dry.token
    for wrong in (None, dry.token):
        with pytest.raises(PurgeUsageError, match="token"):
            await purger.run(plan.job_id, token=wrong)
    assert hits <= set(sb.workspace.messages)
    seen: list[int] = []
    result = await purger.run(plan.job_id, token=plan.token, progress=lambda p: seen.append(p.done))
    assert result.ok and result.deleted == 120
    assert not hits & set(sb.workspace.messages) and clean in sb.workspace.messages
    assert seen and seen == sorted(seen) and seen[-1] == 120
    assert evidence_per_message(store, hits) == Counter(dict.fromkeys(hits, 1))


async def test_room_moderator_is_refused_outside_their_rooms(env: tuple[Sandbox, Purger, Store]) -> None:
    sb, purger, store = env
    ws = sb.workspace
    members = [uid(sb, n) for n in ("admin", "alice", "bob", "mod1", "rcmod.bot")]
    ws.create_room("c", "side", ws.user_by_username("admin"), members)
    side = sb.post_as("bob", "side", "bob in side")["_id"]
    general = sb.post_as("bob", "general", "bob in general")["_id"]

    with pytest.raises(PurgeRefused, match="#side"):
        await purger.prepare(
            PurgeRequest("user", "bob", rooms=("general", "side")), actor=Actor("mod1", "mod1")
        )
    assert side in ws.messages and general in ws.messages
    refused = [r for r in store.audit.audit_records() if r.action == "command.refused"]
    assert len(refused) == 1 and refused[0].actor == "mod1"

    plan = await purger.prepare(PurgeRequest("user", "bob", rooms=("general",)), actor=Actor("mod1", "mod1"))
    assert (await purger.run(plan.job_id, token=None)).ok
    assert general not in ws.messages and side in ws.messages
    admin_plan = await purger.prepare(
        PurgeRequest("user", "bob", rooms=("side",)), actor=Actor("admin", "admin")
    )
    assert admin_plan.preview.total == 1  # a workspace admin may purge anywhere


async def test_progress_goes_to_the_moderators_dm_as_one_edited_message(
    env: tuple[Sandbox, Purger, Store],
) -> None:
    sb, purger, store = env
    for i in range(45):
        sb.post_as("bob", "general", f"badword {i}")
    plan = await purger.prepare(
        PurgeRequest("term", "badword", rooms=("general",)), actor=Actor("mod1", "mod1")
    )
    bot = seed_user(sb, "rcmod.bot")
    rest = bot_rest(sb)
    try:
        assert (
            await purger.run(
                plan.job_id,
                token=None,
                progress=DmProgress(
                    Executor(rest=rest, audit=store.audit, retention_days=90), rest, "mod1", interval=0
                ),
            )
        ).ok
    finally:
        await rest.close()
    dm_rid = "".join(sorted({bot["id"], uid(sb, "mod1")}))
    [dm] = [m for m in sb.workspace.messages.values() if m["rid"] == dm_rid]
    assert f"Purge {plan.job_id} finished: 45/45" in dm["msg"] and dm.get("editedAt")


async def test_resume_after_a_crash_between_evidence_and_deletion(env: tuple[Sandbox, Purger, Store]) -> None:
    """The crash windows, staged: evidence committed but not yet marked in the journal, and a
    message deleted on the server but not yet marked. Resuming stores nothing twice and counts
    every message once."""
    sb, purger, store = env
    hits = {sb.post_as("alice", "random", f"badword {i}")["_id"] for i in range(30)}
    plan = await purger.prepare(PurgeRequest("term", "badword", rooms=("random",)), actor=OPERATOR)
    store.purges.set_purge_state(plan.job_id, "running")  # confirmed, then the process died
    first = store.purges.purge_items(plan.job_id, limit=10)
    from bot.models import Message

    store.audit.append_audit(  # what _purge_room commits just before a crash
        actor="operator",
        action="purge.progressed",
        targets={"purge": plan.job_id, "room": first[0].rid},
        evidence=[Message.from_wire(i.message) for i in first],
    )
    sb.delete_as("admin", first[0].mid)  # deleted on the server, the journal never heard
    [result] = await purger.resume()
    assert result.ok and result.deleted == 30 and result.total == 30
    assert not hits & set(sb.workspace.messages)
    assert evidence_per_message(store, hits) == Counter(dict.fromkeys(hits, 1))
    assert await purger.resume() == []  # nothing left open


async def test_the_bot_resumes_an_interrupted_purge_when_it_starts(
    env: tuple[Sandbox, Purger, Store], tmp_path: Path
) -> None:
    sb, purger, store = env
    hits = {sb.post_as("bob", "general", f"badword {i}")["_id"] for i in range(12)}
    plan = await purger.prepare(PurgeRequest("term", "badword", rooms=("general",)), actor=OPERATOR)
    store.purges.set_purge_state(plan.job_id, "running")  # confirmed; then the process running it died
    bot = await start_bot(bot_settings(sb, tmp_path))  # the same data folder
    try:
        assert await until(lambda: not hits & set(sb.workspace.messages), within=30)
        assert await until(lambda: store.purges.purge_job(plan.job_id).state == "done", within=30)  # type: ignore[union-attr]
    finally:
        await bot.stop()
    assert store.purges.purge_counts(plan.job_id) == {"deleted": 12}


async def test_since_and_until_bound_the_purge_and_the_bots_messages_stay(tmp_path: Path) -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC).timestamp()]
    sb = Sandbox(clock=lambda: now[0])
    await sb.start()
    bot = seed_user(sb, "rcmod.bot")
    rest = bot_rest(sb)
    store = Store.open(tmp_path / "rcmod.sqlite3")
    purger = purger_for(store, rest, bot["id"], clock=lambda: now[0])
    try:
        by_day = {}
        for day in range(10):  # one message a day, 1 to 10 March
            by_day[day] = sb.post_as("bob", "general", f"badword on day {day}")["_id"]
            now[0] += 86400
        policy = sb.post_as("rcmod.bot", "general", "Policy: no badword here")["_id"]
        request = PurgeRequest(
            "term",
            "badword",
            rooms=("general",),
            since=datetime(2026, 3, 3, tzinfo=UTC),
            until=datetime(2026, 3, 6, 12, tzinfo=UTC),
        )
        plan = await purger.prepare(request, actor=OPERATOR)
        assert plan.preview.total == 4  # 3, 4, 5 and 6 March
        assert (await purger.run(plan.job_id, token=None)).ok
        left = set(sb.workspace.messages)
        assert {by_day[d] for d in (2, 3, 4, 5)}.isdisjoint(left)
        assert {by_day[d] for d in (0, 1, 6, 7, 8, 9)} <= left
        everything = await purger.prepare(PurgeRequest("term", "badword", everywhere=True), actor=OPERATOR)
        assert everything.preview.total == 6 and policy in set(sb.workspace.messages)
        assert (await purger.run(everything.job_id, token=None)).ok
        assert policy in sb.workspace.messages  # the bot's own announcements are never purged
    finally:
        await rest.close()
        store.close()
        await sb.stop()


async def test_rate_limits_and_server_faults_slow_a_purge_never_fail_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from bot.rest.client import RetryPolicy

    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    rest = RestClient(
        sandbox.url,
        Credentials(user_id=bot["id"], token=bot["token"]),
        retry=RetryPolicy(initial_delay=0.01, max_delay=0.02),
    )
    store = Store.open(tmp_path / "rcmod.sqlite3")
    purger = purger_for(store, rest, bot["id"])
    try:
        hits = {sandbox.post_as("bob", "general", f"badword {i}")["_id"] for i in range(10)}
        plan = await purger.prepare(PurgeRequest("term", "badword", rooms=("general",)), actor=OPERATOR)
        # More 429s in a row than the REST client's own patience (it gives up after 20), then
        # a few server faults: the purge waits them out.
        sandbox.fail_next("chat.delete", 429, times=21, retry_after=0.001)
        sandbox.fail_next("chat.delete", 503, times=2)
        result = await purger.run(plan.job_id, token=None)
        assert result.ok and result.deleted == 10
        assert not hits & set(sandbox.workspace.messages)
    finally:
        await rest.close()
        store.close()


async def test_a_confirmed_purge_in_dry_run_mode_deletes_and_keeps_nothing(
    env: tuple[Sandbox, Purger, Store],
) -> None:
    """Dry-run mode switched on between the preview and the confirmation: the real executor acts
    on nothing, no evidence is stored, and the job stops without a copy of anyone's messages."""
    sb, _purger, store = env
    hits = {sb.post_as("bob", "general", f"badword {i}")["_id"] for i in range(5)}
    rest = bot_rest(sb)
    try:
        purger = purger_for(store, rest, seed_user(sb, "rcmod.bot")["id"], dry_run=True)
        plan = await purger.prepare(PurgeRequest("term", "badword", rooms=("general",)), actor=OPERATOR)
        result = await purger.run(plan.job_id, token=None)
    finally:
        await rest.close()
    assert result.dry_run and result.deleted == 0 and not result.ok
    assert hits <= set(sb.workspace.messages)
    assert evidence_per_message(store, hits) == Counter()
    assert store.purges.purge_job(plan.job_id).state == "dry_run"  # type: ignore[union-attr]
    assert all(i.message is None for i in store.purges.purge_items(plan.job_id))  # no copy kept
    assert "dry-run" in {r.outcome for r in store.audit.audit_records() if r.action == "purge.progressed"}
