"""Moving a store from SQLite to PostgreSQL (``rcmod store migrate``): the schema, every row with its
id, the identity sequences, and a check of the copy, all in one transaction on the target.

Why one transaction: a copy that fails half-way (a lost connection, a full disk, a row PostgreSQL
refuses) must not leave a target that looks like a store, or the bot pointed at it would start on
half its history. Everything happens between one BEGIN and one COMMIT: the migrations (the same
numbered ones, translated as :mod:`bot.store.postgres` translates them), the rows, the sequences,
the checks; a failure rolls it all back and leaves the target as it was. The migrations are
applied here rather than by :meth:`PostgresDatabase.connect_url`, which commits each migration
on its own.

The source holds still while it is read: the copy runs inside SQLite's ``BEGIN IMMEDIATE`` (no
other writer until it ends), after the caller has taken the source's lease, so no bot can start
on it meanwhile. The lease table is not copied: its rows are claims of running processes on the
SQLite file, and a stale claim copied over would keep the first bot on PostgreSQL waiting for
it to expire.

The audit log's append-only triggers refuse UPDATE, DELETE and TRUNCATE, not INSERT: the copy
only inserts (``COPY … FROM STDIN``), so the triggers stay as they are, enforced throughout.

Rows go table by table in foreign-key order (a referenced table before the tables that refer to
it; PostgreSQL checks each reference as the row arrives), each with its ids; an identity column's
sequence is then set past the largest copied id, so the next row the bot writes does not collide.
Binary columns (an upload kept with evidence) are bytes on both sides.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bot.store import migrations
from bot.store.db import Database, StoreError, _statements, refuse_newer
from bot.store.postgres import CHANNEL, MIGRATION_LOCK, WRITER_LOCK, PostgresDatabase, to_postgres_ddl
from bot.store.sqlite import Store

__all__ = ["MigrationRefused", "Transfer", "copy_to_postgres", "live_leases"]

# Not copied: the schema's version is the target's own (written by its migrations), and a lease
# is a running process's claim on the SQLite file (see the module docstring).
NOT_COPIED = frozenset({"schema_version", "lease"})


class MigrationRefused(StoreError):
    """The target or the source is not in a state to migrate (nothing was written)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """What was copied: rows per table (equal on both sides, or the copy was rolled back)."""

    rows: dict[str, int]
    schema_version: int

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def live_leases(db: Database, is_dead: Callable[[str], bool], ignore: str) -> list[tuple[str, str, float]]:
    """Leases other than ``ignore``'s that are still live: (name, holder, seconds left)."""
    now = db.clock()
    rows = db.execute("SELECT name, holder, expires_at FROM lease WHERE expires_at > ?", (now,)).fetchall()
    return [
        (str(name), str(holder), float(expires) - now)
        for name, holder, expires in rows
        if holder != ignore and not is_dead(str(holder))
    ]


def copy_to_postgres(
    source: Database,
    conn: psycopg.Connection[Any],
    where: str,
    *,
    verify: Callable[[Store], list[str]],
) -> Transfer:
    """Copy every table of ``source`` (a migrated SQLite store) into the empty PostgreSQL database
    on ``conn`` (autocommit, as :func:`psycopg.connect` gives it), in one transaction.

    ``verify`` is handed a Store over the target, inside that transaction, once the rows are in;
    the problems it finds (the audit chain, the evidence) roll the copy back. Raises
    :class:`MigrationRefused` when the target already holds rcmod data (or a newer schema), and
    StoreError when the copy fails; either way the target is left as it was.
    """
    with source.transaction():  # BEGIN IMMEDIATE: nothing else writes the source meanwhile
        tables = _source_tables(source)
        with _one_transaction(conn):
            # The locks the bot takes to migrate and to write: an instance started against the
            # target meanwhile waits for this transaction, then finds its schema and rows.
            conn.execute(
                f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK}), pg_advisory_xact_lock({WRITER_LOCK})"
            )
            version = _prepare_schema(conn, where, set(tables))
            rows = {}
            for table in tables:
                rows[table] = _copy_table(source, conn, table, tables[table])
            _move_sequences(conn)
            _check_counts(conn, where, rows)
            target = Store.over(PostgresDatabase(conn, where, clock=source.clock))
            problems = verify(target)
            if problems:
                raise StoreError(f"the copy in {where} does not verify, rolled back: {problems[0]}")
            conn.execute(f"NOTIFY {CHANNEL}")
    return Transfer(rows, version)


@contextmanager
def _one_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if not conn.closed:
            conn.execute("ROLLBACK")
        raise


def _source_tables(source: Database) -> dict[str, list[str]]:
    """The source's tables in foreign-key order (referenced first), each with its columns."""
    names = [
        str(r[0])
        for r in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    ]
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in names:
        # Table names come from sqlite_master, not from input; PRAGMA takes no parameters.
        refs = {str(r[2]) for r in source.execute(f"PRAGMA foreign_key_list({name})").fetchall()}
        order.add(name, *(refs - {name}))
    dangling = source.execute("PRAGMA foreign_key_check").fetchall()
    if dangling:
        table, rowid, parent = dangling[0][0], dangling[0][1], dangling[0][2]
        raise MigrationRefused(
            f"the SQLite store has {len(dangling)} rows referring to rows that are gone "
            f"(the first: {table} row {rowid} refers to a missing {parent} row); PostgreSQL would "
            "refuse them"
        )
    return {
        name: [str(c[1]) for c in source.execute(f"PRAGMA table_info({name})").fetchall()]
        for name in order.static_order()
        if name not in NOT_COPIED
    }


def _target_tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _prepare_schema(conn: psycopg.Connection[Any], where: str, copied: set[str]) -> int:
    """Refuse a target holding rcmod data; bring an empty one to the latest schema. Its version."""
    existing = _target_tables(conn)
    ours = sorted((copied | NOT_COPIED) & existing)
    if "schema_version" not in existing:
        if ours:
            raise MigrationRefused(
                f"{where} already has tables named like rcmod's ({', '.join(ours[:3])}) but no "
                "schema_version: not an rcmod store; migrate into an empty database"
            )
        conn.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        current = 0
    else:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        refuse_newer(where, current)
    for table in ours:
        if table == "schema_version":
            continue
        if conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table))).fetchone():
            raise MigrationRefused(
                f"{where} already holds rcmod data (table {table} has rows); "
                "migrate into an empty database, or one whose rcmod tables are empty"
            )
    for version, script in migrations.MIGRATIONS:
        if version > current:
            for statement in _statements(script):
                conn.execute(to_postgres_ddl(statement))
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    missing = copied - _target_tables(conn)
    if missing:
        raise StoreError(f"{where}: the migrations made no table {sorted(missing)[0]} (the source has it)")
    return max(current, migrations.LATEST_VERSION)


def _copy_table(source: Database, conn: psycopg.Connection[Any], table: str, columns: list[str]) -> int:
    """Stream one table's rows, ids and all, into the target with COPY; how many."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
    listed = ", ".join(f'"{c}"' for c in columns)  # names from PRAGMA table_info, not input
    count = 0
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in source.execute(f"SELECT {listed} FROM {table}"):
            copy.write_row(row)
            count += 1
    return count


def _move_sequences(conn: psycopg.Connection[Any]) -> None:
    """Each identity column's sequence past the largest id copied (an empty table's stays at 1)."""
    identities = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in identities:
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, %s), max({col})) FROM {table} HAVING count(*) > 0"
            ).format(col=sql.Identifier(column), table=sql.Identifier(table)),
            (table, column),
        )


def _check_counts(conn: psycopg.Connection[Any], where: str, rows: dict[str, int]) -> None:
    for table, expected in rows.items():
        got = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        found = int(got[0]) if got else -1
        if found != expected:
            raise StoreError(
                f"the copy in {where} does not verify, rolled back: {table} has {found} rows, "
                f"the source {expected}"
            )
