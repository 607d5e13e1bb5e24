"""Keyword alerts and the outbox against the sandbox: right moderators, inert excerpts, one DM per
burst, exactly once across a crash, edits that do not re-alert, unreachable moderators, E2E
counted, delivered in a dry run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import load_wordlists
from bot.metrics import Metrics
from bot.models import Message, UserRef
from bot.realtime.events import EncryptedMessage, NewMessage, RoomHint
from bot.sandbox import Sandbox
from bot.store import Store
from tests.conftest import bot_settings, handled, start_bot, until
from tests.helpers import ask, dms_from_bot, queued_alerts, write_lists

if TYPE_CHECKING:
    from bot.config import ModerationSettings
    from bot.rest import RestClient
    from bot.services.alerts import KeywordAlerts
    from bot.services.outbox import Outbox

MENTION = re.compile(r"(^|\s|>)@([\w.-]+)")


def outbox(
    store: Store, rest: RestClient, moderation: ModerationSettings, *, site_url: str, **kw: Any
) -> Outbox:
    """An outbox as the composition root builds one: its own executor, which never runs dry."""
    from bot.services.executor import Executor
    from bot.services.outbox import Outbox

    executor = Executor(rest=rest, audit=store.audit, retention_days=90)
    return Outbox(
        alerts=store.alerts,
        audit=store.audit,
        rest=rest,
        executor=executor,
        moderation=moderation,
        site_url=lambda: site_url,
        metrics=Metrics(),
        **kw,
    )


def keyword_alerts(
    store: Store, rest: RestClient, box: Outbox, matcher: Any, moderation: ModerationSettings
) -> KeywordAlerts:
    from bot.services.alerts import KeywordAlerts
    from bot.services.lookups import Lookups

    return KeywordAlerts(
        alerts=store.alerts,
        outbox=box,
        matcher=matcher,
        moderation=moderation,
        metrics=Metrics(),
        lookups=Lookups(rest),
    )


def settings_for(sb: Sandbox, tmp_path: Path, **lists_kw: Any) -> Any:
    lists = write_lists(tmp_path, **lists_kw)
    return bot_settings(sb, tmp_path / "data", moderation={"wordlists": [str(lists)]})


async def test_alert_reaches_the_listed_moderator_with_an_inert_excerpt(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path))
    msg = sandbox.post_as(
        "alice", "general", "@all @here hey @mod2 this is a b.a.d.w.o.r.d [x](https://evil.example)"
    )
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    # A later clean message handled: whatever the first one caused has been sent by now.
    later = sandbox.post_as("alice", "general", "nothing to see")
    assert await until(lambda: handled(bot.app.store, msg["_id"], later["_id"]))
    await bot.stop()
    [dm] = dms_from_bot(sandbox, "mod1")
    text = dm["msg"]
    assert "watch" in text and "badword" in text and "high" in text and "harassment" in text
    assert f"/channel/general?msg={msg['_id']}" in text  # permalink to the offending message
    assert f"/mod delete {msg['_id']}" in text
    assert "alice" in text
    assert not MENTION.search(text)  # no @all, @here or @mod2 can ping from the moderator's DM
    assert dm.get("mentions", []) == []
    assert "https://evil" not in text
    # Only the mention-spam protection's own alert (about the @all) reaches anyone else.
    others = [m for u in ("mod2", "admin") for m in dms_from_bot(sandbox, u)]
    assert all(str(m["msg"]).startswith("*rcmod protection — mentions*") for m in others), others


async def test_a_burst_becomes_one_updated_dm(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path))
    ids = [sandbox.post_as("bob", "random", f"badword number {i}")["_id"] for i in range(100)]
    store = bot.app.store
    assert store is not None
    assert await until(lambda: set(ids) <= set(bot.recorder.message_ids()), within=20)
    assert await until(lambda: store.alerts.pending_deliveries() == 0, within=20)
    await bot.stop()
    dms = dms_from_bot(sandbox, "mod1")
    assert len(dms) == 1
    assert "*100 matching messages*" in dms[0]["msg"]
    assert dms[0].get("editedAt")  # the one DM was updated in place


async def test_edit_that_still_matches_does_not_alert_again(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path))
    msg = sandbox.post_as("carol", "general", "badword")
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    sandbox.edit_as("carol", msg["_id"], "still badword, edited")
    sandbox.edit_as("carol", msg["_id"], "badword and now a scam link")  # a new term: a new incident
    assert await until(lambda: bot.app.metrics.alerts.labels("coalesced")._value.get() == 1)
    later = sandbox.post_as("carol", "general", "nothing to see")  # handled after both edits
    assert await until(lambda: handled(bot.app.store, later["_id"]))
    await bot.stop()
    assert bot.app.metrics.alerts.labels("raised")._value.get() == 1
    [dm] = dms_from_bot(sandbox, "mod1")
    assert "matching messages" not in dm["msg"]  # still one message: messages are counted, not terms


async def test_unreachable_moderator_does_not_stop_the_others(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path, notify_users=["ghost.user", "mod2"]))
    sandbox.post_as("alice", "general", "badword")
    assert await until(lambda: len(dms_from_bot(sandbox, "mod2")) == 1)
    store = bot.app.store
    assert store is not None
    assert await until(lambda: store.alerts.failed_deliveries() != [])
    assert [r for r, _ in store.alerts.failed_deliveries()] == ["ghost.user"]
    await bot.stop()


async def decide_then_crash(sandbox: Sandbox, settings: Any, text: str, *, send_first: bool) -> None:
    """Run the keyword alert's decision for one message and stop dead before the outbox records a send.

    With ``send_first`` the DM does go out (with the outbox's pre-chosen id) but the crash comes
    before the store hears of it — the nastiest window.
    """
    from bot.rest import RestClient

    matcher = await load_wordlists(settings)
    store = Store.open(settings.storage.data_dir / "rcmod.sqlite3")
    rest = RestClient(sandbox.url, settings.credentials())
    box = outbox(store, rest, settings.moderation, site_url=sandbox.url)
    notifier = keyword_alerts(store, rest, box, lambda: matcher, settings.moderation)
    sent = sandbox.post_as("alice", "general", text)
    await notifier.on_event(NewMessage(Message.from_wire(sent), RoomHint(True, "c", "general")))
    if send_first:
        [delivery] = store.alerts.due_deliveries()
        await rest.send_message(await rest.dm_room("mod1"), "first copy", mid=delivery.dm_mid)
    await rest.close()
    store.close()  # no graceful shutdown: nothing else is written


async def test_crash_between_send_and_bookkeeping_yields_exactly_one_alert(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    await decide_then_crash(sandbox, settings, "one badword", send_first=True)
    assert len(dms_from_bot(sandbox, "mod1")) == 1

    bot = await start_bot(settings)
    store2 = bot.app.store
    assert store2 is not None
    assert await until(lambda: store2.alerts.pending_deliveries() == 0)
    later = sandbox.post_as("alice", "general", "nothing to see")  # handled after the catch-up
    assert await until(lambda: handled(store2, later["_id"]))
    await bot.stop()
    assert len(dms_from_bot(sandbox, "mod1")) == 1  # the resend was recognised, not duplicated


async def test_decided_but_unsent_alert_is_sent_after_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    await decide_then_crash(sandbox, settings, "another badword", send_first=False)
    assert dms_from_bot(sandbox, "mod1") == []

    bot = await start_bot(settings)
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    # The restart's catch-up re-delivers the message: no second alert once a later one is handled.
    later = sandbox.post_as("alice", "general", "nothing to see")
    assert await until(lambda: handled(bot.app.store, later["_id"]))
    await bot.stop()
    assert len(dms_from_bot(sandbox, "mod1")) == 1


async def test_encrypted_messages_are_counted_not_scanned(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    metrics = Metrics()
    notifier = queued_alerts(store, lambda: None, bot_settings_stub(), metrics)
    e2e = Message(
        id="m1", rid="SECRET", text="", ts=datetime.now(UTC), author=UserRef("u", "alice"), type="e2e"
    )
    for _ in range(3):
        await notifier.on_event(EncryptedMessage(e2e))
    assert store.alerts.unscannable_rooms() == {"SECRET": 3}
    assert metrics.unscannable._value.get() == 3


def bot_settings_stub() -> Any:
    from bot.config import ModerationSettings

    return ModerationSettings()


@pytest.mark.parametrize("severity", ["low", "critical"])
async def test_severity_is_shown(sandbox: Sandbox, tmp_path: Path, severity: str) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path, severity=severity))
    sandbox.post_as("alice", "general", "badword")
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    await bot.stop()
    assert f"severity *{severity}*" in dms_from_bot(sandbox, "mod1")[0]["msg"]


async def test_erasure_edits_the_quoted_text_out_of_delivered_alerts(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path))
    sandbox.post_as("alice", "general", "my secret phone number and a badword")
    assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
    assert "secret phone" in dms_from_bot(sandbox, "mod1")[0]["msg"]
    store = bot.app.store
    assert store is not None
    alice = sandbox.workspace.user_by_username("alice")
    assert alice is not None
    result = store.evidence.erase_user_evidence(alice.id, actor="operator")
    assert result.audit_seq > 0
    assert await until(lambda: "excerpt removed" in dms_from_bot(sandbox, "mod1")[0]["msg"])
    await bot.stop()
    [dm] = dms_from_bot(sandbox, "mod1")
    assert "secret phone" not in dm["msg"]
    assert "/channel/general?msg=" in dm["msg"]  # the reference stays


async def test_the_hourly_cap_turns_the_excess_into_one_digest(sandbox: Sandbox, tmp_path: Path) -> None:
    from bot.config import ModerationSettings
    from bot.moderation import load_matcher
    from bot.rest import RestClient

    matcher = load_matcher([write_lists(tmp_path)])
    store = Store.open(tmp_path / "s.sqlite3")
    rest = RestClient(sandbox.url, settings_for(sandbox, tmp_path).credentials())
    moderation = ModerationSettings(alert_cap_per_hour=2, exempt_roles=[])
    notifier = outbox(store, rest, moderation, site_url=sandbox.url, digest_interval=0.0)
    alerts = keyword_alerts(store, rest, notifier, lambda: matcher, moderation)

    async def post(user: str, room: str, text: str = "badword") -> None:
        sent = sandbox.post_as(user, room, text)
        await alerts.on_event(NewMessage(Message.from_wire(sent), RoomHint(True, "c", room)))

    try:
        # five separate alerts (author and room differ, so none coalesces into another)
        for user, room in [
            ("alice", "general"),
            ("bob", "general"),
            ("carol", "general"),
            ("alice", "random"),
            ("bob", "random"),
        ]:
            await post(user, room)
        await notifier.deliver_due()
        assert len(dms_from_bot(sandbox, "mod1")) == 2  # the cap
        assert await notifier.deliver_digests() == 1
        dms = dms_from_bot(sandbox, "mod1")
        assert len(dms) == 3
        digest = dms[-1]["msg"]
        assert "3 alert(s) held back" in digest and digest.count("\n- alert ") == 3
        assert not MENTION.search(digest)
        assert await notifier.deliver_digests() == 0  # nothing new held
        # an alert already delivered is still edited when its burst grows: edits are not capped
        await post("alice", "general", "badword again")
        await notifier.deliver_due()
        assert any("*2 matching messages*" in m["msg"] for m in dms_from_bot(sandbox, "mod1"))
        assert len(dms_from_bot(sandbox, "mod1")) == 3
    finally:
        await rest.close()
        store.close()


async def test_alerts_are_audited_and_counted_in_metrics(sandbox: Sandbox, tmp_path: Path) -> None:
    bot = await start_bot(settings_for(sandbox, tmp_path))
    sandbox.post_as("alice", "general", "badword")
    store = bot.app.store
    assert store is not None
    assert await until(lambda: any(r.action == "alert.sent" for r in store.audit.audit_records()))
    [record] = [r for r in store.audit.audit_records() if r.action == "alert.sent"]
    assert record.targets["recipient"] == "mod1" and record.reason["list"] == "watch"
    assert "badword" not in str(record.targets)  # ids and names, never the message text
    metrics = bot.app.metrics.render().decode()
    assert 'rcmod_actions_total{action="alert.sent",outcome="ok"} 1.0' in metrics
    await bot.stop()


async def test_alert_buttons_act_in_one_click(sandbox: Sandbox, tmp_path: Path) -> None:
    """The alert's buttons send the same commands its text shows, as the moderator's own DM to
    the bot (no companion app needed): Delete removes the message, evidence first."""
    config = settings_for(sandbox, tmp_path)
    config = config.model_copy(
        update={"moderation": config.moderation.model_copy(update={"moderators": ["mod1"]})}
    )
    bot = await start_bot(config)
    try:
        msg = sandbox.post_as("alice", "general", "this is a badword")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
        [dm] = dms_from_bot(sandbox, "mod1")
        actions = dm["attachments"][0]["actions"]
        assert [a["text"] for a in actions] == ["Delete message", "Dismiss", "Allow term (false positive)"]
        assert actions[0]["msg"] == f"mod delete {msg['_id']}"
        assert actions[2]["msg"] == "mod allow badword"
        sandbox.dm_as("mod1", "rcmod.bot", actions[0]["msg"])  # the click
        assert await until(lambda: msg["_id"] not in sandbox.workspace.messages)
        store = bot.app.store
        assert store is not None and len(store.evidence.evidence_for_message(msg["_id"])) == 1
    finally:
        await bot.stop()


async def test_alerts_are_delivered_in_a_dry_run(sandbox: Sandbox, tmp_path: Path) -> None:
    """A dry run is watched through the moderators' alerts: they still go out, buttons and all,
    and a dismissal still edits them; only the moderation actions are recorded, not carried out."""

    config = settings_for(sandbox, tmp_path)
    config = config.model_copy(
        update={"moderation": config.moderation.model_copy(update={"moderators": ["mod1"]})}
    )
    bot = await start_bot(config)
    try:
        assert "Dry run is on" in await ask(sandbox, "admin", "mod dryrun on")
        assert bot.app.executor is not None and bot.app.executor.dry_run()
        msg = sandbox.post_as("alice", "general", "a badword while nothing is enforced")
        assert await until(lambda: len(dms_from_bot(sandbox, "mod1")) == 1)
        [dm] = dms_from_bot(sandbox, "mod1")
        assert dm["attachments"][0]["actions"]
        found = re.search(r"rcmod alert (\d+)", str(dm["msg"]))
        assert found
        assert "dismissed" in await ask(sandbox, "mod1", f"mod dismiss {found.group(1)}")
        assert await until(lambda: "dismissed by mod1" in str(dms_from_bot(sandbox, "mod1")[0]["msg"]))
        assert msg["_id"] in sandbox.workspace.messages
    finally:
        await bot.stop()


async def test_a_private_notice_reads_as_its_text_in_a_process_that_registered_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A member's notice queued by one process and sent by the next (a crash between) goes out
    as the text it was queued with, without buttons: no feature has to be built first to say so."""
    from bot.models import Room
    from bot.services.outbox import Notice
    from tests.helpers import bot_rest

    store = Store.open(tmp_path / "s.sqlite3")
    rest = bot_rest(sandbox)
    try:
        moderation = bot_settings(sandbox, tmp_path).moderation
        bob = sandbox.workspace.user_by_username("bob")
        assert bob is not None
        queued = outbox(store, rest, moderation, site_url=sandbox.url)
        notice = Notice.direct(
            "any-feature-notice",
            incident="m1",
            recipient="bob",
            text="Your message was removed.",
            room=Room("GENERAL", "general", "c"),
            subject=UserRef(bob.id, "bob"),
        )
        assert await queued.notify(notice) is not None
        await outbox(store, rest, moderation, site_url=sandbox.url).deliver_due()  # the next process
        [dm] = dms_from_bot(sandbox, "bob")
        assert dm["msg"] == "Your message was removed." and not dm.get("attachments")
    finally:
        await rest.close()
        store.close()
