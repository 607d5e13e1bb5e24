"""The store on PostgreSQL (``storage.url = "postgresql://…"``): the same repositories, migrations
and verbs as the embedded SQLite store, for an operator who keeps state beyond one machine.

Driver: psycopg 3, its synchronous API. The store is called synchronously today, from the event
loop, exactly as it calls sqlite3: a handled-marks batch, an audit append, a cursor move are each
one short blocking call. asyncpg would make every repository verb a coroutine and every caller
await it, rewriting the store and all its callers for a second backend; psycopg keeps one
``Database`` interface with two implementations. Over a unix socket or a local network a
statement costs a round trip of tens of microseconds, about what an SQLite commit costs, so the
loop is held no longer than it is today (``benchmarks/bench_store.py`` measures both).

Dialect. Repositories write SQLite's SQL; :func:`to_postgres` translates each statement string
once (cached), in this one place:

- ``?`` placeholders become ``%s`` (and a literal ``%`` is doubled);
- ``INSERT OR IGNORE`` becomes ``INSERT … ON CONFLICT DO NOTHING``;
- ``x IN (SELECT value FROM json_each(?))`` becomes ``x = ANY(%s)``, its JSON list parameter
  decoded into an array (``NOT IN`` becomes ``<> ALL``);
- ``json_extract(col, '$.a.b')`` becomes ``col::jsonb #>> '{a,b}'`` (text), and what it is
  compared with is compared as text;
- ``CASE WHEN ? THEN`` tests its parameter as a number (a bool is passed as 0 or 1);
- a negative ``LIMIT ?`` (SQLite: no limit) becomes NULL (PostgreSQL's no limit);
- two-argument ``min``/``max`` become ``LEAST``/``GREATEST``; ``AS REAL`` (a float4 in
  PostgreSQL) becomes ``AS DOUBLE PRECISION``; ``LIMIT -1`` becomes ``LIMIT ALL``;
- an ``ON CONFLICT … DO UPDATE`` names the target table's columns it reads (PostgreSQL calls
  a bare one ambiguous with ``excluded``);
- an INSERT into a table whose key is a generated ``id`` gets ``RETURNING id``, which the
  cursor answers as ``lastrowid``.

A construct it does not know (``INSERT OR REPLACE``, a ``json_each`` used otherwise) raises at
the first use, which the contract suite (tests/store, run on both backends) would catch.

Schema. The same numbered migrations, translated: INTEGER becomes BIGINT (SQLite's integers are
64-bit), REAL becomes DOUBLE PRECISION, BLOB becomes BYTEA, ``id INTEGER PRIMARY KEY`` an
identity column, ``WITHOUT ROWID`` goes; the audit log's append-only triggers are written for
PostgreSQL here (:data:`_STATEMENTS`). A migration runs in one transaction under an advisory lock,
so two instances starting together migrate once, and a schema newer than this rcmod is refused.

Transactions. :meth:`PostgresDatabase.transaction` is BEGIN and a transaction-level advisory
lock, the same "one writer at a time" as SQLite's BEGIN IMMEDIATE: the audit chain (read the
head, append, move the head) stays serial under concurrency, and so does every read-then-write
a repository does. Nested use joins the outer transaction, as on SQLite. A write outside any
transaction is run in one of its own, for the same lock and for the change notice below.

``data_version``: SQLite's ``PRAGMA data_version`` changes when another connection commits. Here
every write transaction ends with ``NOTIFY rcmod_store`` (delivered only on commit); the connection
LISTENs, and counts the notices sent by other backends (its own carry its own pid).

``check_integrity``: PostgreSQL has no ``PRAGMA integrity_check``; page damage is the server's
to detect (data checksums, amcheck), so this answers that the store is reachable and reports
nothing else.

Errors: SQLSTATE 53100 (disk full) becomes :class:`~bot.errors.DiskFull`; the rest are psycopg's
``DatabaseError`` family, which :func:`bot.store.db.translated` reports as ``StoreError``.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus

from bot.errors import Deposed, DiskFull
from bot.store import migrations
from bot.store.db import Cursor, Database, StoreError, _statements, refuse_newer

__all__ = ["PostgresDatabase", "describe_url", "to_postgres", "to_postgres_ddl"]

# Key of the advisory lock every write transaction takes (one writer at a time), and of the one
# migrations take. Arbitrary constants, chosen once: "rcmod" and "rcmo" in ASCII.
WRITER_LOCK = 0x72636D6F64
MIGRATION_LOCK = 0x72636D6F
CHANNEL = "rcmod_store"


# -- the dialect ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement translated for PostgreSQL, and what running it needs to know."""

    sql: str
    json_lists: tuple[int, ...]  # parameter positions holding a JSON list, passed as an array
    returns_id: bool  # RETURNING id was added: the cursor's lastrowid
    writes: bool


def _identity_tables() -> frozenset[str]:
    """Tables whose key is ``id INTEGER PRIMARY KEY`` (SQLite's rowid; an identity here)."""
    found = set()
    for _, sql in migrations.MIGRATIONS:
        found.update(re.findall(r"CREATE TABLE (\w+) \(\s*id INTEGER PRIMARY KEY", sql))
    renamed = {}
    for _, sql in migrations.MIGRATIONS:
        renamed.update(dict(re.findall(r"ALTER TABLE (\w+) RENAME TO (\w+)", sql)))
    return frozenset(found | {new for old, new in renamed.items() if old in found})


_IDENTITY_TABLES = _identity_tables()
_STRING = re.compile(r"'(?:[^']|'')*'")
_JSON_EACH_IN = re.compile(r"\b(NOT\s+)?IN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\?\)\s*\)", re.I)
_JSON_EXTRACT = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)", re.I)
_JSON_EXTRACT_EQ = re.compile(r"(\(\(?[\w.]+\)?::jsonb #>> '\{[\w,]+\}'\))\s*=\s*(\?|[A-Za-z_][\w.]*)")
_INSERT_INTO = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)\s*(\(([^)]*)\))?", re.I)


def _outside_strings(sql: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the parts of ``sql`` outside single-quoted literals."""
    out, pos = [], 0
    for m in _STRING.finditer(sql):
        out.append(fn(sql[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fn(sql[pos:]))
    return "".join(out)


def _two_argument(sql: str, name: str, replacement: str) -> str:
    """``min(a, b)`` (SQLite's scalar form) becomes ``LEAST(a, b)``; ``min(a)`` stays an aggregate."""
    pattern = re.compile(rf"\b{name}\(", re.I)
    pos = 0
    while (m := pattern.search(sql, pos)) is not None:
        depth, commas, i = 1, 0, m.end()
        while i < len(sql) and depth:
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                commas += 1
            i += 1
        if commas == 1:
            sql = sql[: m.start()] + replacement + "(" + sql[m.end() :]
        pos = m.start() + 1
    return sql


def _qualify_conflict_update(sql: str, table: str, columns: list[str]) -> str:
    """In ``ON CONFLICT … DO UPDATE SET``, PostgreSQL calls a bare column ambiguous (the table's
    or ``excluded``'s); SQLite reads it as the table's. Qualify the inserted columns there."""
    m = re.search(r"\bDO\s+UPDATE\s+SET\b", sql, re.I)
    if m is None or not columns:
        return sql
    head, tail = sql[: m.end()], sql[m.end() :]
    names = "|".join(re.escape(c) for c in columns)
    bare = re.compile(rf"(?<![\w.])({names})\b(?!\s*\()")
    tail = _outside_strings(tail, lambda part: bare.sub(rf"{table}.\1", part))
    # The assigned columns themselves cannot be qualified.
    tail = re.sub(rf"(^\s*|,\s*){table}\.(\w+)(\s*=)", r"\1\2\3", tail)
    return head + tail


@functools.lru_cache(maxsize=2048)
def to_postgres(sql: str) -> Statement:
    """Translate one statement from SQLite's dialect (see the module docstring). Cached: the
    repositories pass the same few hundred literal strings again and again."""
    if re.search(r"\bINSERT\s+OR\s+REPLACE\b", sql, re.I):
        raise StoreError("store: INSERT OR REPLACE has no translation for PostgreSQL; use ON CONFLICT")
    text = sql
    ignore = False
    table: str | None = None
    m = _INSERT_INTO.match(text)
    if m is not None:
        ignore = m.group(1) is not None
        table = m.group(2)
        if ignore:
            text = text[: m.start(1)] + text[m.end(1) :]
    columns = [c.strip() for c in m.group(4).split(",")] if m is not None and m.group(4) else []

    def rewrite(part: str) -> str:
        part = _JSON_EACH_IN.sub(lambda j: "<> ALL(\x00)" if j.group(1) else "= ANY(\x00)", part)
        part = re.sub(r"\bAS\s+REAL\b", "AS DOUBLE PRECISION", part, flags=re.I)
        part = re.sub(r"\bLIMIT\s+-1\b", "LIMIT ALL", part, flags=re.I)
        # SQLite takes any value as a condition; PostgreSQL only a boolean (a Python bool is
        # passed as 0 or 1, as SQLite stores it).
        part = re.sub(r"\bWHEN\s+\?\s+THEN\b", "WHEN CAST(? AS BIGINT) <> 0 THEN", part, flags=re.I)
        # SQLite reads a negative LIMIT as none; PostgreSQL refuses it, and reads NULL as none.
        part = re.sub(r"\bLIMIT\s+\?", "LIMIT NULLIF(GREATEST(CAST(? AS BIGINT), -1), -1)", part, flags=re.I)
        if "json_each" in part.lower():
            raise StoreError(f"store: no PostgreSQL translation for this use of json_each: {sql!r}")
        return part

    # The jsonpath is a literal, so this one is matched over the whole text.
    text = _JSON_EXTRACT.sub(
        lambda j: f"(({j.group(1)})::jsonb #>> '{{{j.group(2).replace('.', ',')}}}')", text
    )
    text = _outside_strings(text, rewrite)
    # After the rewrite the jsonpath is a literal; its comparison is made as text.
    text = _JSON_EXTRACT_EQ.sub(lambda j: f"{j.group(1)} = CAST({j.group(2)} AS TEXT)", text)
    text = _two_argument(text, "min", "LEAST")
    text = _two_argument(text, "max", "GREATEST")
    if table is not None:
        text = _qualify_conflict_update(text, table, columns)
    text = text.rstrip().rstrip(";")
    returning = re.search(r"\bRETURNING\b", text, re.I)
    if ignore:
        clause = " ON CONFLICT DO NOTHING"
        text = (
            text[: returning.start()] + clause + " " + text[returning.start() :]
            if returning
            else text + clause
        )
    returns_id = table is not None and table in _IDENTITY_TABLES and returning is None
    if returns_id:
        text += " RETURNING id"

    # Placeholders last: a literal % is doubled, each ? (outside literals) becomes %s, and the
    # positions of the json_each lists are noted.
    json_lists: list[int] = []
    counter = [0]

    def placeholders(part: str) -> str:
        out = []
        for ch in part:
            if ch == "?":
                out.append("%s")
                counter[0] += 1
            elif ch == "\x00":
                json_lists.append(counter[0])
                out.append("%s")
                counter[0] += 1
            elif ch == "%":
                out.append("%%")
            else:
                out.append(ch)
        return "".join(out)

    def literal_percent(part: str) -> str:
        return part.replace("%", "%%")

    pieces, pos = [], 0
    for lit in _STRING.finditer(text):
        pieces.append(placeholders(text[pos : lit.start()]))
        pieces.append(literal_percent(lit.group(0)))
        pos = lit.end()
    pieces.append(placeholders(text[pos:]))
    writes = re.match(r"\s*(INSERT|UPDATE|DELETE|WITH)\b", sql, re.I) is not None
    return Statement("".join(pieces), tuple(json_lists), returns_id, writes)


def to_postgres_ddl(statement: str) -> str:
    """One migration statement, SQLite's DDL made PostgreSQL's (types; rowid keys; WITHOUT ROWID)."""
    if (override := _STATEMENTS.get(_statement_key(statement))) is not None:
        return override
    if re.match(r"\s*CREATE\s+TRIGGER\b", statement, re.I):
        raise StoreError(f"store: migration statement needs a PostgreSQL form: {statement.strip()[:60]!r}")

    def rewrite(part: str) -> str:
        part = re.sub(
            r"\bINTEGER\s+PRIMARY\s+KEY\b",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            part,
            flags=re.I,
        )
        part = re.sub(r"\bINTEGER\b", "BIGINT", part, flags=re.I)
        part = re.sub(r"\bREAL\b", "DOUBLE PRECISION", part, flags=re.I)
        part = re.sub(r"\bBLOB\b", "BYTEA", part, flags=re.I)
        return re.sub(r"\)\s*WITHOUT\s+ROWID", ")", part, flags=re.I)

    return _outside_strings(statement, rewrite)


def _statement_key(statement: str) -> str:
    return " ".join(statement.split())[:80]


# Statements of the SQLite migrations that PostgreSQL says differently, by their first 80
# characters (whitespace folded). Triggers: PostgreSQL runs a function, and refuses TRUNCATE too.
_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;\n"
)
_STATEMENTS: dict[str, str] = {
    # SQLite keeps any value in any column: `held` is declared INTEGER and holds the (float) time
    # a delivery was held. Here its type says so.
    _statement_key(
        "ALTER TABLE alert_delivery ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
    ): "ALTER TABLE alert_delivery ADD COLUMN held DOUBLE PRECISION NOT NULL DEFAULT 0",
    _statement_key(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log\n"
        "            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    ): _APPEND_ONLY + "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    _statement_key(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log\n"
        "            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    ): _APPEND_ONLY + "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();\n"
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
}


# -- the connection ---------------------------------------------------------------------------------


class _BoolAsInteger(Dumper):
    """SQLite stores a Python bool as 0 or 1 in an INTEGER column; so does this store."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _Cursor:
    """psycopg's cursor, shaped like sqlite3's: rows are tuples; ``lastrowid`` is the id an
    INSERT generated (``RETURNING id``), else None."""

    def __init__(self, cur: psycopg.Cursor[Any], returns_id: bool) -> None:
        self._cur = cur
        self.lastrowid: int | None = None
        self.rowcount = cur.rowcount
        if returns_id:
            row = cur.fetchone()
            self.lastrowid = int(row[0]) if row is not None else None

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description is not None else None

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall() if self._cur.description is not None else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def describe_url(url: str) -> str:
    """The store named without its password (for messages and logs)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql (an unreadable storage.url)"
    host = info.get("host") or "localhost"
    return f"postgresql {info.get('dbname') or info.get('user') or ''}@{host}"


class PostgresDatabase(Database):
    """The store in a PostgreSQL database: one connection, autocommit between explicit transactions."""

    def __init__(
        self, conn: psycopg.Connection[Any], where: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock=clock)
        self._conn = conn
        self._where = where
        self._pid = conn.info.backend_pid
        self._others = 0
        self._epoch: int | None = None  # the fencing token every write checks (fence())
        conn.adapters.register_dumper(bool, _BoolAsInteger)
        conn.add_notify_handler(self._notice)
        conn.execute(f"LISTEN {CHANNEL}", None)

    @classmethod
    def connect_url(cls, url: str, *, clock: Callable[[], float] = time.time) -> PostgresDatabase:
        where = describe_url(url)
        try:
            conn = psycopg.connect(url, autocommit=True, application_name="rcmod")
        except psycopg.Error as exc:
            raise StoreError(f"store {where}: cannot connect: {_first_line(exc)}") from exc
        db = cls(conn, where, clock=clock)
        db._migrate()
        return db

    def close(self) -> None:
        self._conn.close()

    def _notice(self, notify: psycopg.Notify) -> None:
        if notify.pid != self._pid:
            self._others += 1

    def _run(self, statement: Statement, params: Any) -> _Cursor:
        args = list(params) if params else []
        for i in statement.json_lists:
            args[i] = json.loads(args[i])
        with _disk_full(self._where):
            cur = self._conn.execute(statement.sql, args)
        return _Cursor(cur, statement.returns_id)

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        statement = to_postgres(sql)
        if statement.writes and not self.in_transaction:
            with self.transaction():
                return self._run(statement, parameters)
        return self._run(statement, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Cursor:
        statement = to_postgres(sql)
        if statement.returns_id:
            statement = Statement(
                statement.sql.removesuffix(" RETURNING id"), statement.json_lists, False, True
            )
        batch = [list(r) for r in rows]
        for args in batch:
            for i in statement.json_lists:
                args[i] = json.loads(args[i])
        with self.transaction(), _disk_full(self._where), self._conn.cursor() as cur:
            cur.executemany(statement.sql, batch)
            return _Cursor(cur, False)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def data_version(self) -> int:
        # Notices arrive with any result; this small query collects those waiting.
        self._conn.execute("SELECT 1", None)
        return self._others

    def fence(self, epoch: int) -> None:
        """From now on, every write transaction checks that the fencing token is still ``epoch``
        and is refused (``Deposed``) once another instance has raised it (bot.store.leadership).
        A transaction left open by a paused process is ended by the server after a while, so it
        cannot hold the token row, and the writer lock, from the next leader for long."""
        self._conn.execute("SET idle_in_transaction_session_timeout = '10s'", None)
        self._epoch = epoch

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.in_transaction:
            yield
            return
        with _disk_full(self._where):
            if self._epoch is None:
                # One round trip: BEGIN and the writer lock (released by COMMIT or ROLLBACK).
                self._conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})", None)
            else:
                # Still one round trip: and the token, read under a share lock that a new
                # leader's UPDATE of it waits for (see bot.store.leadership).
                cur = self._conn.execute(
                    f"BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK}); "
                    "SELECT epoch FROM leader_epoch WHERE id = 1 FOR SHARE",
                    None,
                )
                cur.nextset()
                cur.nextset()
                row = cur.fetchone()
                token = int(row[0]) if row is not None else None
                if token != self._epoch:
                    self._conn.execute("ROLLBACK", None)
                    raise Deposed(f"leadership lost: the fencing token is {token}, not {self._epoch}")
        try:
            yield
            with _disk_full(self._where):
                self._conn.execute(f"NOTIFY {CHANNEL}; COMMIT", None)
        except BaseException:
            if self._conn.info.transaction_status != TransactionStatus.IDLE and not self._conn.closed:
                self._conn.execute("ROLLBACK", None)
            raise

    def check_integrity(self) -> list[str]:
        try:
            self._conn.execute("SELECT 1", None)
        except psycopg.Error as exc:
            return [f"the database cannot be read: {_first_line(exc)}"]
        return []

    def _migrate(self) -> None:
        conn = self._conn
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)", None)
        except psycopg.Error as exc:
            raise StoreError(f"store {self._where}: not usable: {_first_line(exc)}") from exc
        refuse_newer(self._where, self.schema_version())
        for version, sql in migrations.MIGRATIONS:
            try:
                conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})", None)
                # Under the lock: another instance may have migrated meanwhile.
                current = self.schema_version()
                refuse_newer(self._where, current)
                if version > current:
                    for statement in _statements(sql):
                        conn.execute(to_postgres_ddl(statement), None)
                    conn.execute("DELETE FROM schema_version", None)
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                conn.execute("COMMIT", None)
            except psycopg.Error as exc:
                conn.execute("ROLLBACK", None)
                raise StoreError(
                    f"store {self._where}: migration {version} failed: {_first_line(exc)}"
                ) from exc
            except BaseException:
                if self.in_transaction:
                    conn.execute("ROLLBACK", None)
                raise


@contextmanager
def _disk_full(where: str) -> Iterator[None]:
    try:
        yield
    except pg_errors.DiskFull as exc:  # SQLSTATE 53100
        raise DiskFull(f"the PostgreSQL server's data directory ({where})") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
