"""One database connection, its clock and its transactions: what every repository of the store shares.

:class:`Database` is the interface every repository writes through; it speaks SQLite's dialect
(``?`` placeholders, ``INSERT OR IGNORE``, ``json_each``). Two implementations: SQLite (this
module, the embedded default: a file in ``storage.data_dir``) and PostgreSQL
(:mod:`bot.store.postgres`, ``storage.url``), which translates each statement once.

SQLite: WAL mode lets the web endpoints read while the bot writes; ``synchronous=NORMAL`` keeps a commit
cheap (ingest commits its handled marks once per batch of messages) while a crash loses at most
the last transactions, never consistency.
Errors are translated here, where sqlite3 is touched: SQLITE_FULL becomes ``DiskFull`` (the bot
stops with one clear line) and, where a verb asks for it, any other database error becomes
``StoreError`` naming what failed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

import psycopg

from bot.errors import DiskFull, RcmodError
from bot.models import to_iso
from bot.store import migrations

__all__ = ["Cursor", "Database", "SqliteDatabase", "StoreError", "all_of", "translated", "translates"]


class StoreError(RcmodError):
    """The store cannot be used (corrupt, newer schema, not writable)."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Report the database's errors (a damaged file, above all) as StoreError, naming what failed."""
    try:
        yield
    except (sqlite3.DatabaseError, psycopg.DatabaseError) as exc:
        raise StoreError(f"store: {what} failed: {exc}") from exc


def translates(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """:func:`translated` around a whole verb."""

    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def inner(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with translated(what):
                return fn(*args, **kwargs)

        return inner

    return wrap


def all_of(clauses: Sequence[str], params: Sequence[Any], **equal: Any) -> tuple[str, list[Any]]:
    """A WHERE condition: ``clauses`` (with ``params``) and ``column = ?`` for each keyword whose
    value is not None, in order, joined by AND; the condition and its parameters. The keywords
    are column names written in code, never input."""
    where, args = list(clauses), list(params)
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return " AND ".join(where), args


class _Connection(sqlite3.Connection):
    """sqlite3's connection, with the two things a full disk needs.

    SQLITE_FULL becomes ``DiskFull`` (one clear message naming the folder to free space in), and a
    ROLLBACK after SQLite has already ended the transaction itself (it does on a full disk or an
    I/O error) is skipped: a second rollback raises "cannot rollback - no transaction is active",
    which would hide the real error behind a misleading one.
    """

    folder = "."

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql == "ROLLBACK" and not self.in_transaction:
            return self.cursor()
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or _is_enospc(exc):
                raise DiskFull(self.folder) from exc
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or _is_enospc(exc):
                raise DiskFull(self.folder) from exc
            raise


class Cursor(Protocol):
    """What a repository reads from a statement: sqlite3's cursor, or one shaped like it."""

    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database:
    """The connection every repository writes through, the clock they stamp rows with, and the
    hook told of every audit record.

    A repository takes a ``Database`` and nothing else it does not use, so a service can be given
    only the repositories it needs, and a test can build one repository over a fresh database.
    Statements are written in SQLite's dialect; an implementation for another database translates
    them (see :mod:`bot.store.postgres`).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # Told of every audit record (action, outcome): the bot feeds its metrics from it, so every
        # action it takes is counted where it is recorded, not at a second set of call sites.
        self.on_audit: Callable[[str, str], None] | None = None

    @classmethod
    def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> Database:
        """Open (creating it private to the bot's account) and migrate the SQLite store at ``path``."""
        return SqliteDatabase.open_file(path, clock=clock)

    @classmethod
    def in_memory(cls, *, clock: Callable[[], float] = time.time) -> Database:
        """A migrated SQLite database that lives only as long as this object: for tests and dry checks."""
        return SqliteDatabase.open_memory(clock=clock)

    @classmethod
    def connect(cls, url: str, *, clock: Callable[[], float] = time.time) -> Database:
        """Connect to and migrate the PostgreSQL store at ``url`` (``postgresql://…``)."""
        from bot.store.postgres import PostgresDatabase

        return PostgresDatabase.connect_url(url, clock=clock)

    def close(self) -> None:
        raise NotImplementedError

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Cursor:
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def data_version(self) -> int:
        """Changes when another connection (another process) has committed to the store since
        the last call; this connection's own commits leave it as it is. It costs about what a
        small SELECT does: ask it per batch or per second, not per message."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction, one writer at a time: committed when the block ends, rolled back
        when it raises. Inside another transaction it joins that one, so a repository can write its
        rows and another's (an audit record, above all) all-or-nothing."""
        raise NotImplementedError

    def check_integrity(self) -> list[str]:
        """Problems the database finds in its own storage; an empty list means it is sound."""
        raise NotImplementedError

    def fence(self, epoch: int) -> None:
        """Refuse every write transaction once the leader's fencing token is no longer ``epoch``
        (replicas: bot.store.leadership). Only PostgreSQL stores are shared by replicas."""
        raise StoreError("store: replicas need a PostgreSQL store (storage.url)")

    def now_iso(self) -> str:
        return to_iso(datetime.fromtimestamp(self.clock(), tz=UTC))

    def schema_version(self) -> int:
        row = self.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0


class SqliteDatabase(Database):
    """The embedded store: one SQLite file (or memory), one connection."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self._conn = conn

    @classmethod
    def open_file(cls, path: Path, *, clock: Callable[[], float] = time.time) -> SqliteDatabase:
        try:
            _make_private(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=_Connection)
            conn.folder = str(path.parent)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path}: not a usable SQLite database: {exc}") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(str(path.parent)) from exc
            raise StoreError(f"store {path}: cannot open: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: cannot open: {exc}") from exc
        db = cls(conn, clock=clock)
        db._migrate(str(path))
        return db

    @classmethod
    def open_memory(cls, *, clock: Callable[[], float] = time.time) -> SqliteDatabase:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, factory=_Connection)
        conn.execute("PRAGMA foreign_keys=ON")
        db = cls(conn, clock=clock)
        db._migrate(":memory:")
        return db

    def close(self) -> None:
        self._conn.close()

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self._conn.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Cursor:
        return self._conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front: one writer at a time.
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def check_integrity(self) -> list[str]:
        # SQLite's own page-level check.
        try:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"the database file is damaged: {exc}"]
        problems = [str(r[0]) for r in rows]
        return [] if problems == ["ok"] else problems

    def _migrate(self, path: str) -> None:
        try:
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self.schema_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path}: not a usable SQLite database: {exc}") from exc
        refuse_newer(path, current)
        for version, sql in migrations.MIGRATIONS:
            if version <= current:
                continue
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for statement in _statements(sql):
                    self._conn.execute(statement)
                self._conn.execute("DELETE FROM schema_version")
                self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise StoreError(f"store {path}: migration {version} failed: {exc}") from exc


def refuse_newer(where: str, current: int) -> None:
    """An old rcmod must not write into a store a newer one has migrated: it would not know the
    new tables' rules."""
    latest = migrations.LATEST_VERSION
    if current > latest:
        raise StoreError(
            f"store {where}: schema version {current} is newer than this rcmod understands "
            f"({latest}); upgrade rcmod instead of running an older one against this data"
        )


def _make_private(path: Path) -> None:
    """The store holds evidence (message copies) and the audit log: only the bot's account may
    read it. The folder is 0700 and the file 0600 (SQLite gives its -wal and -shm files the
    database file's mode), tightened when they already exist with wider modes."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists() and part.stat().st_mode & 0o077:
            part.chmod(0o600)


def _is_enospc(exc: BaseException) -> bool:
    return "disk is full" in str(exc) or "No space left" in str(exc)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; trigger bodies keep their inner semicolons."""
    out, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if stripped.endswith(";") and sqlite3.complete_statement(joined):
            out.append(joined)
            buf = []
    if buf:
        out.append("\n".join(buf))
    return out
