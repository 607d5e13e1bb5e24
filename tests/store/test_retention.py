"""Retention rules of the store: what grows is deleted once finished and past its window, and
nothing unfinished, held or still referred to goes."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.models import Room, UserRef
from bot.moderation.alerts import Alert
from bot.moderation.names import NameField, Subject
from bot.store import Store
from bot.store.db import _statements
from bot.store.jobs import PurgeItem, PurgeRoom
from bot.store.migrations import MIGRATIONS
from tests.backends import Backend
from tests.helpers import Clock, chat_message

DAY = 86400.0
WINDOW = 90  # days: storage.retention_days


def assert_no_dangling_references(backend: Backend, store: Store) -> None:
    """SQLite checks foreign keys only when asked; PostgreSQL refuses a dangling one as it is written."""
    if backend.name == "sqlite":
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []


def _raise(store: Store, name: str, *, author: str = "u1", recipients: tuple[str, ...] = ("mod1",)) -> int:
    ids = itertools.count()
    raised = store.alerts.raise_alert(
        Alert(
            kind="notify",
            key=f"{author}|r|{name}",
            list=name,
            term="t",
            mid=f"m-{name}",
            room=Room("r", "general", "c"),
            author=UserRef(author, author),
            excerpt="` ⟦t⟧ `",
            severity="low",
        ),
        recipients=recipients,
        window=600,
        new_dm_id=lambda: f"DM-{name}-{next(ids)}",
    )
    assert raised is not None
    return raised.alert_id


def _deliver(store: Store, alert_id: int, recipient: str | None = None) -> None:
    for d in store.alerts.due_deliveries(limit=1000):
        if d.alert_id == alert_id and recipient in (None, d.recipient):
            store.alerts.delivery_done(d.id, d.version, "dm-room")


def _delivery_ids(store: Store, alert_id: int) -> list[int]:
    return [
        int(r[0]) for r in store.db.execute("SELECT id FROM alert_delivery WHERE alert_id = ?", (alert_id,))
    ]


def _alerts(store: Store) -> set[int]:
    return {int(r[0]) for r in store.db.execute("SELECT id FROM alert")}


def test_finished_alerts_past_the_window_go_with_their_incidents_and_deliveries(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    delivered = _raise(store, "delivered")
    _deliver(store, delivered)
    refused = _raise(store, "refused")
    [d] = _delivery_ids(store, refused)
    store.alerts.delivery_failed(d, "error-invalid-user")
    retrying = _raise(store, "retrying")
    [d] = _delivery_ids(store, retrying)
    store.alerts.delivery_retry(d, 60)
    partly = _raise(store, "partly", recipients=("mod1", "mod2"))  # one copy sent, one never
    _deliver(store, partly, "mod1")
    waiting = _raise(store, "waiting-digest")
    [d] = _delivery_ids(store, waiting)
    store.alerts.hold_delivery(d)
    digested = _raise(store, "digested", recipients=("mod9",))
    [d] = _delivery_ids(store, digested)
    store.alerts.hold_delivery(d)
    clock.now += 2 * 3600
    digest = store.alerts.open_digest("mod9", min_gap=3600, new_dm_id=lambda: "DM-digest")
    assert digest is not None
    store.alerts.digest_sent(digest.id)
    reported = _raise(store, "reported")
    _deliver(store, reported)
    store.db.execute(
        "INSERT INTO report (target_kind, target_key, author_id, author_username, category, source, "
        "alert_id, opened_at) VALUES ('user', 'user:u1', 'u1', 'u1', 'spam', 'command', ?, ?)",
        (reported, clock.now),
    )
    held_author = _raise(store, "held-author", author="u-held")
    _deliver(store, held_author)
    store.evidence.place_hold("user", "u-held", actor="admin")
    held_case = _raise(store, "held-case")
    _deliver(store, held_case)
    case = store.db.execute(
        "INSERT INTO moderation_case (kind, ref, opened_at) VALUES ('message', 'm-held-case', '2026')"
    ).lastrowid
    store.evidence.place_hold("case", int(case or 0), actor="admin")

    clock.now += (WINDOW - 1) * DAY
    fresh = _raise(store, "fresh")
    _deliver(store, fresh)
    assert store.alerts.delete_finished_alerts(WINDOW) == 0  # nothing is past the window yet

    clock.now += 2 * DAY
    # The window's end first redacts the excerpts: the edit of each delivered copy is due, so a
    # delivered alert does not go before its DMs lost the quoted text. A refused copy has no DM
    # and a digest quotes no excerpt: those two go at once.
    store.alerts.expire_alert_excerpts(WINDOW)
    assert store.alerts.delete_finished_alerts(WINDOW) == 2
    assert delivered in _alerts(store)
    for alert_id in (delivered, reported, held_case, fresh):
        _deliver(store, alert_id)
    _deliver(store, partly, "mod1")  # mod2's copy was never sent

    assert store.alerts.delete_finished_alerts(WINDOW, batch=1) == 1  # in batches, too
    kept = {retrying, partly, waiting, reported, held_author, held_case, fresh}
    assert _alerts(store) == kept
    gone = (delivered, refused, digested)
    for table in ("alert_incident", "alert_delivery"):
        rows = store.db.execute(f"SELECT alert_id FROM {table}").fetchall()
        assert {int(r[0]) for r in rows} == kept, table
    assert not store.db.execute("SELECT 1 FROM alert_digest").fetchall()  # its only item went
    assert_no_dangling_references(backend, store)
    assert all(store.alerts.alert_kind(a) is None for a in gone)
    assert store.alerts.delete_finished_alerts(WINDOW) == 0


def test_the_journal_of_purges_ended_before_the_window_goes_and_the_job_stays(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    purges = store.purges
    room = Room("r1", "general", "c")

    def job(state: str) -> int:
        job_id = purges.create_purge_job("user", {"user": "u1"}, actor="admin", token="t")
        purges.add_purge_room(job_id, PurgeRoom(room, "each"))
        purges.add_purge_items(
            job_id, [PurgeItem(f"m{job_id}", "r1", "u1", "alice", 1, "selected", None, None)]
        )
        if state != "collecting":
            purges.set_purge_state(job_id, state)
        return job_id

    done, cancelled, dry_run, running, collecting = (
        job(s) for s in ("done", "cancelled", "dry_run", "running", "collecting")
    )
    clock.now += (WINDOW - 1) * DAY
    recent = job("done")
    assert purges.forget_finished_purges(WINDOW) == 0
    clock.now += 2 * DAY
    assert purges.forget_finished_purges(WINDOW) == 3
    for job_id in (done, cancelled, dry_run):
        assert purges.purge_items(job_id) == [] and purges.purge_rooms(job_id) == []
        assert purges.purge_job(job_id) is not None  # audit records and the case name it
    for job_id in (running, collecting, recent):
        assert len(purges.purge_items(job_id)) == 1 and len(purges.purge_rooms(job_id)) == 1
    assert_no_dangling_references(backend, store)


def test_a_cursor_goes_only_when_its_room_was_missing_and_idle_that_long(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    messages = store.messages
    start = datetime.fromtimestamp(clock.now, UTC)
    for rid in ("listed", "left", "busy"):
        messages.advance_room_cursor(rid, start)
    messages.note_subscriptions({"listed"})
    clock.now += 20 * DAY
    messages.advance_room_cursor("busy", start + timedelta(days=20))  # a message handled there
    messages.note_subscriptions({"listed"})  # a later list keeps the first date missing
    cutoff = datetime.fromtimestamp(clock.now - 30 * DAY, UTC)
    assert messages.forget_rooms_missing(missing_before=cutoff.timestamp(), idle_before=cutoff) == 0
    clock.now += 11 * DAY
    cutoff = datetime.fromtimestamp(clock.now - 30 * DAY, UTC)
    assert messages.forget_rooms_missing(missing_before=cutoff.timestamp(), idle_before=cutoff) == 1
    assert set(messages.room_cursors()) == {"listed", "busy"}


def test_migration_12_keeps_existing_cursors_as_present(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, sql in MIGRATIONS:
        if version <= 11:
            for statement in _statements(sql):
                conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version) VALUES (11)")
    conn.execute("INSERT INTO room_cursor (rid, updated_ms) VALUES ('r1', 1000)")
    conn.close()
    clock = Clock()
    store = Store.open(path, clock=clock)
    assert store.db.schema_version() >= 12
    assert store.db.execute("SELECT rid, missing_since FROM room_cursor").fetchall() == [("r1", None)]
    clock.now += 365 * DAY
    cutoff = datetime.fromtimestamp(clock.now, UTC)
    assert store.messages.forget_rooms_missing(missing_before=clock.now, idle_before=cutoff) == 0


def test_alerts_about_a_standing_name_or_pending_account_are_kept(backend: Backend) -> None:
    """A sweep reads every name again: only the kept incident stops a second alert about it."""
    clock = Clock()
    store = backend.open(clock=clock)
    name = NameField(Subject("user", "U1", "badname"), "username", "badname")
    room_text = NameField(Subject("room", "R1", "general"), "topic", "bad topic")

    def notice(mid: str) -> Alert:
        return Alert("notice", f"k|{mid}", "names", "bad", mid, Room(""), UserRef("U1", "badname"), "text")

    for occurrence in ("M0000000000000001", name.pseudo_id, room_text.pseudo_id, "user:U1:pending"):
        raised = store.alerts.raise_alert(
            notice(occurrence), recipients=["mod1"], window=0, new_dm_id=lambda: "DM"
        )
        assert raised is not None
        [d] = _delivery_ids(store, raised.alert_id)
        store.alerts.delivery_failed(d, "error-invalid-user")
    clock.now += (WINDOW + 1) * DAY
    assert store.alerts.delete_finished_alerts(WINDOW) == 1  # the message's
    for occurrence in (name.pseudo_id, room_text.pseudo_id, "user:U1:pending"):
        again = store.alerts.raise_alert(
            notice(occurrence), recipients=["mod1"], window=0, new_dm_id=lambda: "DM"
        )
        assert again is None, occurrence


def test_the_newest_alert_is_kept_so_its_number_is_never_given_again(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    first, last = _raise(store, "first"), _raise(store, "last")
    for alert_id in (first, last):
        [d] = _delivery_ids(store, alert_id)
        store.alerts.delivery_failed(d, "error-invalid-user")
    clock.now += (WINDOW + 1) * DAY
    assert store.alerts.delete_finished_alerts(WINDOW) == 1
    assert _alerts(store) == {last}
    assert _raise(store, "next") > last  # "/mod dismiss <last>" in an old DM names no new alert


def test_holds_that_can_no_longer_be_restored_go_after_the_window(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    sanctions = store.sanctions

    def hold(mid: str, author: str = "u1") -> int:
        store.evidence.store_evidence(chat_message(mid, author, "a link"), retention_days=WINDOW)
        held = sanctions.hold_message(mid=mid, rid="r1", user_id=author, username=author, evidence_id=None)
        assert held is not None
        return held

    restored, erased, under_hold = hold("m1"), hold("m2"), hold("m3", "u-held")
    sanctions.mark_restored(restored, restored_mid="m1-repost", by="mod")
    store.evidence.place_hold("user", "u-held", actor="admin")
    clock.now += (WINDOW - 1) * DAY
    recent = hold("m4")
    sanctions.mark_restored(recent, restored_mid="m4-repost", by="mod")
    newest = hold("m5")
    assert sanctions.forget_held_messages(WINDOW) == 0
    clock.now += 2 * DAY
    assert store.evidence.erase_expired_evidence() == 2  # m1's and m2's text; m3's is under the hold
    assert sanctions.forget_held_messages(WINDOW) == 2
    assert sanctions.held_message(restored) is None and sanctions.held_message(erased) is None
    for kept in (under_hold, recent, newest):
        assert sanctions.held_message(kept) is not None
    clock.now += (WINDOW + 1) * DAY
    store.evidence.erase_expired_evidence()
    assert sanctions.forget_held_messages(WINDOW) == 1  # m4; m5 is the newest, its number stays
    assert sanctions.held_message(newest) is not None


def test_image_checks_go_after_the_window_unless_unfinished_or_an_allowed_pictures_source(
    backend: Backend,
) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    images = store.images

    def check(mid: str, *, done: bool = True) -> int:
        return images.record_check(
            mid=mid, file_id=f"f-{mid}", rid="r1", finding=None, verdict="clean", done=done
        ).id

    old, unfinished, allowed_source = check("m1"), check("m2", done=False), check("m3")
    images.allow_image("ab" * 32, actor="mod1", check_id=allowed_source)
    clock.now += (WINDOW - 1) * DAY
    recent = check("m4")
    assert images.forget_checks(WINDOW) == 0  # nothing is past the window yet
    clock.now += 2 * DAY
    assert images.forget_checks(WINDOW) == 1
    assert images.image_check_by_id(old) is None
    for kept in (unfinished, allowed_source, recent):
        assert images.image_check_by_id(kept) is not None
    # A short window never drops a check a catch-up could still re-read (the dedup horizon).
    clock.now += 40 * DAY
    assert images.forget_checks(1) == 1 and images.image_check_by_id(recent) is None
    newer = check("m5")
    clock.now += 29 * DAY
    assert images.forget_checks(1) == 0 and images.image_check_by_id(newer) is not None
