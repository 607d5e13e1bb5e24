"""The store's two backends for the contract suite: SQLite in a temporary folder, and PostgreSQL 15
started for the test session in a temporary folder, on a unix socket only (no TCP port).

Where the PostgreSQL binaries are missing, the PostgreSQL half of the suite is skipped with the
reason shown; under CI (``CI=true``) it fails instead, loudly: CI must run both backends.
PostgreSQL refuses to run as root, so as root the server runs as ``nobody``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import queue
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.store import Database, Store

PG_BIN = Path(os.environ.get("RCMOD_PG_BIN", "/usr/lib/postgresql/15/bin"))
TEMPLATE = "rcmod_template"


class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb, start on a unix socket, one database per test."""

    def __init__(self, folder: Path, *, durable: bool = False) -> None:
        self.folder = folder
        self.durable = durable
        self._names = itertools.count(1)
        self._prefix: list[str] = []
        # CREATE DATABASE costs a few hundred milliseconds here; a thread keeps a few migrated
        # copies ready so a test that opens a store mostly does not wait for one.
        self._ready: queue.Queue[str] = queue.Queue(maxsize=3)
        self._stopping = threading.Event()
        self._filler: threading.Thread | None = None
        if os.geteuid() == 0:
            # initdb and postgres refuse root; the folder becomes nobody's, who runs them.
            user = pwd.getpwnam("nobody")
            os.chown(folder, user.pw_uid, user.pw_gid)
            self._prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            log = self.folder / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        data = self.folder / "data"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")  # fmt: skip
        # Durability is the server's business, not the tests': fsync off keeps a test database cheap
        # (a benchmark asks for the server's defaults).
        options = f"-k {self.folder} -h ''"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = str(self.folder / "log")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        Database.connect(self.url(TEMPLATE)).close()  # migrated once; each test copies it
        if not self.durable:  # a benchmark's server does no work it did not ask for
            self._filler = threading.Thread(target=self._fill, name="pg-databases", daemon=True)
            self._filler.start()

    def _fill(self) -> None:
        while not self._stopping.is_set():
            try:
                url = self._create(migrated=True)
            except psycopg.Error:
                return  # the server is going away; new_database creates its own from now on
            while not self._stopping.is_set():
                with suppress(queue.Full):
                    self._ready.put(url, timeout=0.2)
                    break

    def stop(self) -> None:
        self._stopping.set()
        if self._filler is not None:
            self._filler.join(timeout=30)
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.folder}"

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            yield conn

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database (a copy of the migrated template, or empty); its URL."""
        if migrated and self._filler is not None and self._filler.is_alive():
            with suppress(queue.Empty):
                return self._ready.get(timeout=60)
        return self._create(migrated=migrated)

    def _create(self, *, migrated: bool) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            template = f" TEMPLATE {TEMPLATE}" if migrated else ""
            conn.execute(f"CREATE DATABASE {name}{template}")
        return self.url(name)


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    if not (PG_BIN / "postgres").exists():
        why = f"PostgreSQL binaries not found in {PG_BIN} (install postgresql-15, or set RCMOD_PG_BIN)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the store contract suite on PostgreSQL too: {why}")
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="rcmod-pg-"))
    server = PostgresServer(folder, durable=durable)
    try:
        server.start()
        yield server
    finally:
        with suppress(RuntimeError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Backend:
    """One store database for a test: open it (again: a restart, another process) as a Store or
    a bare Database, and reach it raw (an attacker with SQL access)."""

    name: str
    _open: Callable[[Callable[[], float] | None], Database]
    _raw: Callable[[], Any]
    _opened: list[Database] = field(default_factory=list)

    def database(self, clock: Callable[[], float] | None = None) -> Database:
        db = self._open(clock)
        self._opened.append(db)
        return db

    def close_all(self) -> None:
        for db in self._opened:
            db.close()

    def open(self, clock: Callable[[], float] | None = None) -> Store:
        return Store.over(self.database(clock))

    def raw(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run ``sql`` (``?`` placeholders) on a connection of its own, committed."""
        conn = self._raw()
        try:
            if self.name == "postgresql":
                conn.execute(sql.replace("?", "%s"), params)
            else:
                conn.execute(sql, params)
                conn.commit()
        finally:
            conn.close()

    def drop_trigger(self, name: str, table: str) -> None:
        self.raw(f"DROP TRIGGER {name} ON {table}" if self.name == "postgresql" else f"DROP TRIGGER {name}")

    def raw_error(self) -> type[Exception]:
        return psycopg.DatabaseError if self.name == "postgresql" else sqlite3.DatabaseError


def sqlite_backend(folder: Path) -> Backend:
    path = folder / "rcmod.sqlite3"

    def open_(clock: Callable[[], float] | None) -> Database:
        return Database.open(path, clock=clock) if clock else Database.open(path)

    return Backend("sqlite", open_, lambda: sqlite3.connect(path))


def postgres_backend(server: PostgresServer) -> Backend:
    url = server.new_database()

    def open_(clock: Callable[[], float] | None) -> Database:
        return Database.connect(url, clock=clock) if clock else Database.connect(url)

    return Backend("postgresql", open_, lambda: psycopg.connect(url, autocommit=True))


# Why a test is ``sqlite_only`` (tests/conftest.py): said once, the same way everywhere.
TAMPERS_WITH_THE_FILE = (
    "tampers with the SQLite file itself (tests/store/test_store.py tampers on both backends)"
)
CLI_FINDS_THE_FILE = (
    "the CLI finds the store as data_dir/rcmod.sqlite3; on PostgreSQL it takes storage.url, "
    "which the switch does not set"
)
OLD_SQLITE_SCHEMA = "builds a store at an old schema version with SQLite's migrations"
