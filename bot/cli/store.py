"""``rcmod store migrate --to postgresql://…``: move the SQLite store in ``storage.data_dir`` into an
empty PostgreSQL database (see :mod:`bot.store.transfer` for how the copy is made and checked).

The target: ``--to URL``, else ``storage.url`` (``RCMOD_STORAGE_URL``). Its password comes from the
URL or from libpq (``PGPASSWORD``, ``~/.pgpass``); it is never printed: every line names the
database without it, and a server's error is shown with the password masked.

Exit status: 0 copied and verified; 1 refused or failed (a bot holds the source's lease, the
target holds rcmod data, the server is unreachable, the copy does not verify) with the target
left as it was; 2 a usage or configuration error (no target, not a PostgreSQL URL, no store).
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

import psycopg

from bot.config import Settings
from bot.errors import ConfigError

__all__ = ["add_arguments", "masker", "run"]

EXIT_OK = 0
STORE_FILE = "rcmod.sqlite3"
# The migration's claim on the SQLite store. Longer than a bot's (30 s, renewed): nothing renews
# it while the copy runs; it is released at the end, and on this host a crashed migration's
# claim is recognised as dead at once (bot.services.purge.holder_is_dead).
MIGRATION_LEASE_TTL = 900.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="store_command", required=True, parser_class=type(parser))
    what = (
        "copy the SQLite store (storage.data_dir) into an empty PostgreSQL database, in one "
        "transaction, and verify the copy (row counts, the audit chain and evidence)"
    )
    migrate = sub.add_parser("migrate", help=what, description=what)
    migrate.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    migrate.add_argument(
        "--to",
        metavar="postgresql://USER@HOST[:PORT]/DBNAME",
        help="the target (default: storage.url / RCMOD_STORAGE_URL); keep the password out of it: "
        "PGPASSWORD or ~/.pgpass, or RCMOD_STORAGE_URL",
    )


def masker(url: str) -> Callable[[str], str]:
    """A function that hides ``url``'s password (as written, and decoded) in a text."""
    secrets: set[str] = set()
    try:
        raw = urlsplit(url).password
    except ValueError:
        raw = None
    if raw:
        secrets |= {raw, unquote(raw)}
    try:
        given = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        given = None
    if given:
        secrets.add(str(given))
    ordered = sorted((s for s in secrets if s), key=len, reverse=True)

    def mask(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return mask


def _target(args: argparse.Namespace, settings: Settings) -> str:
    url: str | None = args.to
    if url is None:
        if settings.storage.url is None:
            raise ConfigError(
                "store migrate: no target; give --to postgresql://USER@HOST/DBNAME or set RCMOD_STORAGE_URL"
            )
        url = settings.storage.url.get_secret_value()
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("store migrate: --to must be a postgresql:// URL")
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        # psycopg's message quotes the URL, password and all.
        raise ConfigError("store migrate: --to is not a PostgreSQL URL libpq can read") from None
    return url


def run(args: argparse.Namespace, load_settings: Callable[[], Settings], out: TextIO) -> int:
    settings = load_settings()
    url = _target(args, settings)
    from bot.store.postgres import describe_url

    where = describe_url(url)
    mask = masker(url)
    path = settings.storage.data_dir / STORE_FILE
    if not path.exists() or path.stat().st_size == 0:
        raise ConfigError(f"storage.data_dir: no SQLite store at {path} to migrate")
    try:
        return _migrate(settings, path, url, where, out)
    except psycopg.Error as exc:
        from bot.store.db import StoreError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"store migrate: {where}: {mask(first)}; nothing was migrated") from None


def _migrate(settings: Settings, path: Path, url: str, where: str, out: TextIO) -> int:
    from bot.audit.integrity import verify_store
    from bot.services.purge import holder_is_dead
    from bot.store import LeaseHeld, Store
    from bot.store.db import StoreError
    from bot.store.lists import read_file_lists
    from bot.store.transfer import MigrationRefused, copy_to_postgres, live_leases

    holder = f"{socket.gethostname()}:{os.getpid()}:migrate"
    source = Store.open(path)
    try:
        try:
            source.lease.acquire_lease(holder, MIGRATION_LEASE_TTL, is_dead=holder_is_dead)
        except LeaseHeld as exc:
            raise MigrationRefused(f"store migrate: nothing migrated: {exc}") from None
        try:
            others = live_leases(source.db, holder_is_dead, ignore=holder)
            if others:
                name, other, left = others[0]
                raise MigrationRefused(
                    f"store migrate: nothing migrated: {other} holds the lease {name!r} on {path} "
                    f"(a purge still running?); let it finish or stop it first ({left:.0f} s left)"
                )
            # The chat-edited lists an earlier version kept as files move with the store: the
            # target's pods may not have this data folder.
            if not source.lists.imported():
                source.lists.import_once(read_file_lists(settings.storage.data_dir / "lists"))
            try:
                conn = psycopg.connect(url, autocommit=True, application_name="rcmod-migrate")
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StoreError(
                    f"store migrate: cannot connect to {where}: {masker(url)(first)}; nothing was migrated"
                ) from None
            checks: list[str] = []

            def verify(target: Store) -> list[str]:
                check = verify_store(target, settings.storage.data_dir)
                problems = check.damage + check.checkpoint_problems + check.evidence_problems
                if check.chain is None or not check.chain.ok:
                    chain = check.chain
                    problems.insert(0, f"audit log broken: {chain.problem}" if chain else "audit log unread")
                checks.append(
                    f"audit log intact: {check.records} records; evidence intact: {check.evidence} items "
                    f"({check.erased} erased); {len(check.checkpoints)} signed checkpoint(s) hold"
                )
                return problems

            try:
                copied = copy_to_postgres(source.db, conn, where, verify=verify)
            finally:
                conn.close()
        finally:
            source.lease.release_lease(holder)
    finally:
        source.close()
    filled = [f"{table} {n}" for table, n in copied.rows.items() if n]
    print(
        f"copied {copied.total} rows in {len(copied.rows)} tables from {path} to {where} "
        f"(schema version {copied.schema_version})",
        file=out,
    )
    if filled:
        print(f"  {', '.join(filled)}", file=out)
    print("verified on the target: row counts equal in every table; " + "; ".join(checks), file=out)
    print(
        "next: point storage.url (RCMOD_STORAGE_URL) at it and start the bot; keep the SQLite file as "
        "a backup, and start no bot on it again",
        file=out,
    )
    return EXIT_OK
