"""The hourly housekeeping runs every retention rule and says, one line per rule, what went."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.config import Settings
from bot.metrics import Metrics
from bot.models import Room, UserRef
from bot.moderation.alerts import Alert
from bot.services.ingest import Ingest
from bot.services.router import Router
from bot.store import Store
from bot.store.jobs import PurgeItem
from tests.conftest import until
from tests.helpers import Clock
from tests.services.test_ingest import BOT, FakeRest

DAY = 86400.0


async def test_housekeeping_deletes_what_each_rule_covers_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.model_validate(
        {
            "server": {"url": "http://127.0.0.1:9", "user_id": BOT, "auth_token": "token"},
            "storage": {"data_dir": str(tmp_path), "retention_days": 90},
        }
    )
    clock = Clock(datetime(2026, 1, 5, tzinfo=UTC).timestamp())
    store = Store.open(tmp_path / "s.sqlite3", clock=clock)
    metrics = Metrics()
    ingest = Ingest(
        messages=store.messages,
        rest=FakeRest(),
        router=Router(metrics),
        metrics=metrics,
        bot_user_id=lambda: BOT,
        clock=clock,
    )
    raised = store.alerts.raise_alert(
        Alert("notify", "k", "l", "t", "m1", Room("r1"), UserRef("u1", "alice"), "text"),
        recipients=["mod1"],
        window=600,
        new_dm_id=lambda: "DM1",
    )
    assert raised is not None
    [delivery] = store.alerts.due_deliveries()
    store.alerts.delivery_failed(delivery.id, "error-invalid-user")
    store.messages.mark_handled("m1", "", "r1")
    store.messages.advance_room_cursor("r-left", datetime.fromtimestamp(clock.now, UTC))
    store.messages.note_subscriptions({"r1"})
    job = store.purges.create_purge_job("user", {"user": "u1"}, actor="admin", token="t")
    store.purges.add_purge_items(job, [PurgeItem("m1", "r1", "u1", "alice", 1, "selected", None)])
    store.purges.set_purge_state(job, "done")
    held = store.sanctions.hold_message(mid="m3", rid="r1", user_id="u1", username="alice", evidence_id=None)
    assert held is not None
    store.sanctions.mark_restored(held, restored_mid="m3-repost", by="mod")
    clock.now += 91 * DAY
    store.sanctions.hold_message(mid="m4", rid="r1", user_id="u1", username="alice", evidence_id=None)
    newest = store.alerts.raise_alert(
        Alert("notify", "k", "l", "t", "m2", Room("r1"), UserRef("u1", "alice"), "text"),
        recipients=["mod1"],
        window=600,
        new_dm_id=lambda: "DM2",
    )
    assert newest is not None

    caplog.set_level(logging.INFO, logger="rcmod")
    task = asyncio.create_task(BotApp(settings)._housekeeping(store, ingest))
    try:
        assert await until(lambda: sum("retention: deleted" in r.getMessage() for r in caplog.records) == 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    lines = sorted(r.getMessage() for r in caplog.records if "retention: deleted" in r.getMessage())
    assert lines == [
        "retention: deleted 1 cursor(s) of rooms left 30 days ago",
        "retention: deleted 1 dedup record(s) past 30 days",
        "retention: deleted 1 finished alert(s) past the window",
        "retention: deleted 1 held message(s) that can no longer be restored",
        "retention: deleted 1 journal item(s) of purges ended before the window",
    ]
    assert [r[0] for r in store.db.execute("SELECT id FROM alert")] == [newest.alert_id]
    assert store.messages.room_cursors().keys() == set()
    store.close()
