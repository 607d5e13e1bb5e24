"""``rcmod store migrate --to postgresql://…``: a populated SQLite store moved into a real PostgreSQL
15 (tests/backends.py), row for row, then verified there by ``rcmod audit verify``; and the
refusals, each one line with its exit status, leaving the target as it was."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest

from bot.audit.checkpoints import checkpoint_head
from bot.audit.signing import load_or_create_signing_key
from bot.cli import main
from bot.models import ImageFinding, Room, UserRef
from bot.moderation.actions import EvidenceFile
from bot.moderation.alerts import Alert
from bot.sandbox import Sandbox
from bot.store import Store
from bot.store.transfer import NOT_COPIED
from tests.backends import PG_BIN, PostgresServer
from tests.conftest import bot_settings, handled, start_bot, until
from tests.helpers import Clock, chat_message, post, write_lists

PICTURE = bytes(range(256)) * 40 + b"\x00\xff\x00"  # every byte value, NULs included
PICTURE_SHA = hashlib.sha256(PICTURE).hexdigest()


def populate(store: Store) -> None:
    """A store as a bot leaves it, written with the store's own verbs."""
    ids = iter(f"DM{n:016d}" for n in range(100))
    for n in range(3):
        raised = store.alerts.raise_alert(
            Alert(
                kind="notify",
                key=f"u{n}|r1|watch",
                list="watch",
                term="badword",
                mid=f"m{n}",
                room=Room("r1", "general", "c"),
                author=UserRef(f"u{n}", f"user{n}"),
                excerpt="` ⟦badword⟧ `",
                severity="high",
            ),
            recipients=["mod1", "mod2"],
            window=600,
            new_dm_id=lambda: next(ids),
        )
        assert raised is not None
    first = store.alerts.due_deliveries()[0]
    store.alerts.delivery_done(first.id, first.version, "DMROOM")  # one sent, the rest queued
    store.messages.record(
        [(f"m{n}", "", "r1", 1_700_000_000.0 + n) for n in range(5)],
        {"r1": datetime(2026, 1, 1, tzinfo=UTC), "r2": datetime(2026, 1, 2, tzinfo=UTC)},
    )
    for n in range(3):
        store.audit.append_audit(
            actor="rcmod.bot",
            action="message.deleted",
            targets={"mid": f"m{n}", "rid": "r1"},
            reason={"list": "block"},
            evidence=[chat_message(f"m{n}", f"u{n}", "offending text ‹ünïcode›")],
            files=[EvidenceFile(f"m{n}", f"F{n}", PICTURE_SHA, "ab" * 32, PICTURE)] if n == 0 else [],
        )
    store.images.record_check(
        mid="m0",
        file_id="F0",
        rid="r1",
        finding=ImageFinding(PICTURE_SHA, "ab" * 32, 90, 64, 64, None, 0.97),
        verdict="alert",
    )
    store.images.record_check(
        mid="m1", file_id="F1", rid="r1", finding=None, verdict="none", refused="corrupt"
    )
    store.images.allow_image(PICTURE_SHA, actor="mod1")
    store.evidence.place_hold("user", "u1", actor="cli:admin")
    store.state.state_set("dry_run", "1")


def tables_and_counts(conn: Any, names: list[str]) -> dict[str, int]:
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in names}


def sqlite_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return sorted(str(r[0]) for r in rows if r[0] not in NOT_COPIED)


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A populated SQLite store in a data folder the environment names (and no target in it)."""
    data = tmp_path / "data"
    store = Store.open(data / "rcmod.sqlite3", clock=Clock())
    populate(store)
    # The head signed into the data folder, as the bot does hourly: the target must match it too.
    checkpoint_head(store, data, load_or_create_signing_key(data)[0])
    store.close()
    for var in list(os.environ):
        if var.startswith("RCMOD_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data))
    return data


def migrate(*args: str) -> int:
    return main(["store", "migrate", *args])


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_populated_store_is_copied_row_for_row_and_verifies_there(
    source: Path,
    postgres: PostgresServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres.new_database(migrated=False)
    assert migrate("--to", url) == 0
    out = capsys.readouterr().out
    assert "verified on the target" in out and "audit log intact: 5 records" in out
    assert "1 signed checkpoint(s) hold" in out

    names = sqlite_tables(source / "rcmod.sqlite3")
    with sqlite3.connect(source / "rcmod.sqlite3") as lite, psycopg.connect(url) as pg:
        expected = tables_and_counts(lite, names)
        assert tables_and_counts(pg, names) == expected
        assert expected["audit_log"] == 5 and expected["alert_delivery"] == 6 and expected["image_check"] == 2
        assert expected["room_cursor"] == 2 and expected["handled_message"] == 5
        # Ids and values as they were, the bytes of a kept upload included.
        for table, key in (("audit_log", "seq"), ("evidence", "id"), ("alert_delivery", "id")):
            assert [tuple(r) for r in pg.execute(f"SELECT * FROM {table} ORDER BY {key}")] == [
                tuple(r) for r in lite.execute(f"SELECT * FROM {table} ORDER BY {key}")
            ]
        [(data,)] = pg.execute("SELECT data FROM evidence_file").fetchall()
        assert bytes(data) == PICTURE
        assert pg.execute("SELECT count(*) FROM lease").fetchone() == (0,)

    # `rcmod audit verify` on the target passes, against the data folder's checkpoints too.
    monkeypatch.setenv("RCMOD_STORAGE_URL", url)
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 5 records" in capsys.readouterr().out

    # The bot's next rows follow the copied ids: nothing collides, the chain goes on.
    store = Store.connect(url)
    try:
        record = store.audit.append_audit(actor="rcmod.bot", action="message.deleted", targets={"mid": "m9"})
        assert record.seq == 6
        evidence_id = store.evidence.store_evidence(chat_message("m9"), retention_days=90)
        assert evidence_id == 4
        assert store.messages.is_handled("m3", "") and store.messages.room_cursor("r2") is not None
        assert store.alerts.pending_deliveries() == 5
        assert store.audit.verify_audit().ok
    finally:
        store.close()


def test_an_empty_migrated_target_is_accepted(source: Path, postgres: PostgresServer) -> None:
    """A bot that started once against the database and stopped left empty tables: no data."""
    url = postgres.new_database(migrated=True)
    assert migrate("--to", url) == 0
    with psycopg.connect(url) as pg:
        assert pg.execute("SELECT count(*) FROM audit_log").fetchone() == (5,)


def test_the_target_may_come_from_rcmod_storage_url_with_its_password_never_shown(
    source: Path,
    postgres: PostgresServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres.new_database(migrated=False)
    with postgres.admin() as conn:
        conn.execute("CREATE ROLE migrator LOGIN PASSWORD 'pw-s3cret-9' SUPERUSER")
    with_password = url.replace("postgres@", "migrator:pw-s3cret-9@")
    monkeypatch.setenv("RCMOD_STORAGE_URL", with_password)
    assert migrate() == 0
    captured = capsys.readouterr()
    assert "pw-s3cret-9" not in captured.out + captured.err
    # A second run is refused (the target holds data): the line names it, not the password.
    assert migrate() == 1
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert "already holds rcmod data" in line and "pw-s3cret-9" not in captured.out + line


def test_a_target_holding_rcmod_data_is_refused_and_left_as_it_was(
    source: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.new_database()
    store = Store.connect(url)
    store.audit.append_audit(actor="other", action="message.deleted", targets={"mid": "x"})
    store.close()
    assert migrate("--to", url) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("rcmod: ") and "already holds rcmod data" in line and "empty database" in line
    with psycopg.connect(url) as pg:
        assert pg.execute("SELECT actor FROM audit_log").fetchall() == [("other",)]
        assert pg.execute("SELECT count(*) FROM alert").fetchone() == (0,)


def test_a_running_bot_holding_the_lease_is_refused(
    source: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(source / "rcmod.sqlite3")
    # A live holder: this host, and a process that exists (this one).
    store.lease.acquire_lease(f"{socket.gethostname()}:{os.getpid()}:bot", 30)
    url = postgres.new_database(migrated=False)
    try:
        assert migrate("--to", url) == 1
    finally:
        store.close()
    line = one_line(capsys.readouterr().err)
    assert "another rcmod instance" in line and "stop it first" in line and "nothing migrated" in line
    with psycopg.connect(url) as pg:
        assert pg.execute("SELECT to_regclass('audit_log')").fetchone() == (None,)


def test_a_dead_holder_does_not_block_and_the_migration_leaves_no_lease(
    source: Path, postgres: PostgresServer
) -> None:
    store = Store.open(source / "rcmod.sqlite3")
    store.lease.acquire_lease(f"{socket.gethostname()}:999999999:bot", 30)  # no such process: crashed
    store.close()
    assert migrate("--to", postgres.new_database(migrated=False)) == 0
    with sqlite3.connect(source / "rcmod.sqlite3") as lite:
        # The crashed bot's claim was taken over, and the migration's own released.
        assert lite.execute("SELECT holder FROM lease").fetchall() == []


@pytest.mark.parametrize(
    ("target", "status", "says"),
    [
        ("mysql://u:pw-s3cret-9@db/rcmod", 2, "must be a postgresql:// URL"),
        ("postgresql://u:pw-s3cret-9@db/rcmod?no_such_option=1", 2, "libpq can read"),
        ("postgresql://u:pw-s3cret-9@/rcmod?host=/nonexistent/socket", 1, "cannot connect"),
    ],
)
def test_a_bad_url_is_one_line_without_the_password(
    source: Path, capsys: pytest.CaptureFixture[str], target: str, status: int, says: str
) -> None:
    assert migrate("--to", target) == status
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert says in line and "pw-s3cret-9" not in captured.out + captured.err


def test_no_target_and_no_store_are_usage_errors(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate() == 2
    assert "no target" in one_line(capsys.readouterr().err)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path / "nothing-here"))
    assert migrate("--to", "postgresql://u@/db?host=/nowhere") == 2
    assert "no SQLite store" in one_line(capsys.readouterr().err)


def test_a_row_postgresql_refuses_rolls_the_whole_copy_back(
    source: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite keeps a NUL character in text; PostgreSQL refuses it. The copy fails half-way (an
    incident comes after its alert, which went in first), and the target is left as it was:
    no tables at all."""
    with sqlite3.connect(source / "rcmod.sqlite3") as lite:
        lite.execute(
            "INSERT INTO alert_incident (mid, list, term, alert_id) VALUES (?, 'watch', 'x', 1)", ("m\x00",)
        )
    url = postgres.new_database(migrated=False)
    assert migrate("--to", url) == 1
    line = one_line(capsys.readouterr().err)
    assert "nothing was migrated" in line
    with psycopg.connect(url) as pg:
        assert pg.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone() == (0,)


async def test_the_bot_on_the_migrated_store_handles_nothing_twice(
    sandbox: Sandbox, tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot ran on SQLite and was stopped; messages came in while it was down; the store moved to
    PostgreSQL. The bot started on the target catches up from the copied cursors: what the first
    run handled stays handled, what came in meanwhile and after is handled once."""
    data = tmp_path / "data"
    lists = write_lists(tmp_path / "lists")
    on_sqlite = bot_settings(sandbox, data, moderation={"wordlists": [str(lists)]})
    first = await start_bot(on_sqlite)
    try:
        before = [await post(first, sandbox, "alice", "general", f"badword number {n}") for n in range(3)]
        assert await until(lambda: handled(first.app.store, *before))
    finally:
        await first.stop()
    while_down = str(sandbox.post_as("bob", "general", "a badword while the bot was away")["_id"])

    for var in list(os.environ):
        if var.startswith("RCMOD_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data))
    url = postgres.new_database(migrated=False)
    assert main(["store", "migrate", "--to", url]) == 0

    on_postgres = bot_settings(sandbox, data, moderation={"wordlists": [str(lists)]}, storage={"url": url})
    second = await start_bot(on_postgres)
    try:
        assert await until(lambda: handled(second.app.store, while_down), within=20)
        after = await post(second, sandbox, "carol", "general", "one more badword")
        assert await until(lambda: handled(second.app.store, after))
        seen = second.recorder.message_ids()
        assert all(seen[mid] == 0 for mid in before), seen
        assert seen[while_down] == 1 and seen[after] == 1
        store = second.app.store
        assert store is not None
        incidents = {r[0] for r in store.db.execute("SELECT mid FROM alert_incident").fetchall()}
        assert incidents == {*before, while_down, after}
        assert store.audit.verify_audit().ok
    finally:
        await second.stop()


def test_the_runbooks_pg_dump_and_pg_restore_round_trip_verifies(
    source: Path, postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/RUNBOOK.md's backup and restore of the PostgreSQL store, as written there: a custom-
    format pg_dump restored into an empty database keeps the chain, the ids and the append-only
    triggers, and the sequences continue past the restored rows."""
    url = postgres.new_database(migrated=False)
    assert migrate("--to", url) == 0
    dump = tmp_path / "rcmod.dump"
    subprocess.run(
        [str(PG_BIN / "pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={url}"],
        check=True,
        timeout=60,
    )
    restored = postgres.new_database(migrated=False)
    subprocess.run(
        [str(PG_BIN / "pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={restored}", str(dump)],
        check=True,
        timeout=60,
    )
    monkeypatch.setenv("RCMOD_STORAGE_URL", restored)
    assert main(["audit", "verify"]) == 0
    store = Store.connect(restored)
    try:
        assert store.audit.append_audit(actor="rcmod.bot", action="message.deleted", targets={}).seq == 6
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"), store.db.transaction():
            store.db.execute("DELETE FROM audit_log WHERE seq = 1")
    finally:
        store.close()
