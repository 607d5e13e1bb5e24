"""``rcmod audit ...``: verify, export, verify-export, hold, release, erase, key.

Each subcommand is declared once in :func:`add_arguments`; :func:`run` does the work. Exit
status: 0 success, 1 a check failed (a broken chain, a damaged database, an export that does not
verify, a release with no hold), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.audit.selection import Selection
from bot.config import Settings
from bot.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bot.store import HoldKind, Store

__all__ = ["STORE_FILE", "add_arguments", "run"]

EXIT_OK, EXIT_FAILED = 0, 1
STORE_FILE = "rcmod.sqlite3"


def _case(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a case is a positive whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("a case is a positive whole number")
    return number


def _date(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date like 2026-01-31 or 2026-01-31T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def add_arguments(audit: argparse.ArgumentParser) -> None:
    sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=type(audit))

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help)
        parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
        return parser

    command("verify", "check the database file and the hash chain of the audit log")

    export = command("export", "write a signed export of what is kept about a user, a case or a period")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", metavar="@NAME|ID", help="records and evidence about this user")
    which.add_argument("--case", metavar="N", type=_case, help="records and evidence of this case")
    which.add_argument("--since", metavar="DATE", type=_date, help="everything from this date (UTC) on")
    export.add_argument("--out", metavar="DIR", type=Path, required=True, help="a new or empty folder")

    check = command("verify-export", "check an export offline: signature, file hashes, records, evidence")
    check.add_argument("dir", metavar="DIR", type=Path)
    check.add_argument(
        "--public-key",
        metavar="FILE",
        type=Path,
        help="the operator's published public key (PEM or OpenSSH); default: the export's own",
    )

    for name, help in (
        ("hold", "place a legal hold: keep a user's or a case's evidence past its window"),
        ("release", "release a legal hold; expired content then goes at the next retention run"),
    ):
        parser = command(name, help)
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--user", metavar="@NAME|ID")
        target.add_argument("--case", metavar="N", type=_case)

    erase = command("erase", "erase a user's stored message content, except what is under legal hold")
    erase.add_argument("--user", metavar="@NAME|ID", required=True)

    command("key", "print the export signing key's public half and fingerprint (generated on first use)")


def run(args: argparse.Namespace, load_settings: Callable[[], Settings], out: TextIO) -> int:
    command: str = args.audit_command
    if command == "verify-export":
        return _verify_export(args, out)  # offline: needs no configuration, only the files
    settings = load_settings()
    if command == "key":
        return _key(settings, out)
    from bot.store import Store

    data_dir = settings.storage.data_dir
    path = data_dir / STORE_FILE
    if settings.storage.url is not None:
        store = Store.connect(settings.storage.url.get_secret_value())
    else:
        if command == "verify" and (not path.exists() or path.stat().st_size == 0):
            return _verify_missing(path, data_dir, out)
        if command != "hold" and not path.exists():
            raise ConfigError(f"storage.data_dir: no store at {path}")
        store = Store.open(path)
    try:
        if command == "verify":
            return _verify(store, data_dir, out)
        refusal = _resolve_target(args, settings, store, release=command == "release")
        if refusal is not None:
            print(refusal, file=out)
            return EXIT_FAILED
        head = store.audit.audit_head()
        if command == "export":
            code = _export(args, settings, store, out)
        elif command in ("hold", "release"):
            code = _hold(args, store, out, place=command == "hold")
        elif command == "erase":
            code = _erase(args, store, out)
        else:
            raise ConfigError(f"unknown audit command {command}")
        if store.audit.audit_head() != head:
            _checkpoint(settings, store, out)
        return code
    finally:
        store.close()


def _resolve_target(
    args: argparse.Namespace, settings: Settings, store: Store, *, release: bool
) -> str | None:
    """Turn ``--user @NAME|ID`` into a user id (``args.user``, with ``args.username`` for the
    output) and check that ``--case N`` exists; the refusal line when nothing matches."""
    args.username = None
    case = getattr(args, "case", None)
    if case is not None and not store.audit.case_known(case):
        if release:
            return None  # "no active legal hold" says it better
        return f"no case {case}: no report, purge or enforcement action has that case number"
    given = getattr(args, "user", None)
    if given is None:
        return None
    if release and any(h.kind == "user" and h.ref == given for h in store.evidence.active_holds()):
        return None  # release exactly what was held
    from bot.cli.who import resolve_user

    found = resolve_user(settings, store, given)
    if isinstance(found, str):
        return found
    args.user, args.username = found
    return None


def _actor() -> str:
    """Who ran the command, as the audit log records it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _verify_missing(path: Path, data_dir: Path, out: TextIO) -> int:
    """No database, or a zero-byte one: never opened (opening would turn it into an empty store)."""
    from bot.audit.integrity import checkpoints_in

    checkpoints, problems = checkpoints_in(data_dir)
    newest = max(checkpoints, key=lambda c: c.seq, default=None)
    if not path.exists() and newest is None and not problems:
        raise ConfigError(f"storage.data_dir: no store at {path}")
    what = f"{path} is missing" if not path.exists() else f"{path} is empty (0 bytes)"
    if newest is not None:
        what += f", but a signed checkpoint says the log had {newest.seq} records at {newest.at}"
    for problem in problems:
        print(f"  - {problem}", file=out)
    print(f"audit log FAILED verification: {what}", file=out)
    return EXIT_FAILED


def _verify(store: Store, data_dir: Path, out: TextIO) -> int:
    from bot.audit.integrity import verify_store

    check = verify_store(store, data_dir)
    if check.damage:
        print(f"database file DAMAGED ({len(check.damage)} problems):", file=out)
        for problem in check.damage[:20]:
            print(f"  - {problem}", file=out)
        return EXIT_FAILED
    chain = check.chain
    assert chain is not None
    if not chain.ok:
        print(
            f"audit log BROKEN at record {chain.bad_seq}: {chain.problem} "
            f"({chain.checked} verified before it)",
            file=out,
        )
    if check.checkpoint_problems:
        print(
            f"audit log CONTRADICTS its signed checkpoints ({len(check.checkpoint_problems)} problems):",
            file=out,
        )
        for problem in check.checkpoint_problems[:20]:
            print(f"  - {problem}", file=out)
    if check.evidence_problems:
        print(f"evidence TAMPERED ({len(check.evidence_problems)} problems):", file=out)
        for problem in check.evidence_problems[:20]:
            print(f"  - {problem}", file=out)
    if not check.ok:
        print(f"audit verify FAILED: the log holds {check.records} verifiable records", file=out)
        return EXIT_FAILED
    if check.checkpoints:
        newest = max(check.checkpoints, key=lambda c: c.seq)
        anchor = (
            f"checked against {len(check.checkpoints)} signed checkpoint(s), "
            f"the newest at record {newest.seq} ({newest.at})"
        )
    else:
        anchor = "no signed checkpoint yet, so a rewrite of the whole log would not show"
    print(f"audit log intact: {check.records} records; {anchor}", file=out)
    print(
        f"evidence intact: {check.evidence} items ({check.erased} erased) match their hashes and the records "
        "citing them",
        file=out,
    )
    return EXIT_OK


def _checkpoint(settings: Settings, store: Store, out: TextIO) -> None:
    """Sign the head after a command appended records (see bot.audit.checkpoints)."""
    from bot.audit.checkpoints import checkpoint_head

    checkpoint_head(store, settings.storage.data_dir, _signing_key(settings, out))


def _signing_key(settings: Settings, out: TextIO) -> Ed25519PrivateKey:
    from bot.audit.signing import PRIVATE_KEY_FILE, load_or_create_signing_key

    key, created = load_or_create_signing_key(settings.storage.data_dir)
    if created:
        where = settings.storage.data_dir / PRIVATE_KEY_FILE
        print(f"generated a new signing key: {where} (mode 0600, keep it secret)", file=out)
    return key


def _key(settings: Settings, out: TextIO) -> int:
    from bot.audit.signing import fingerprint, public_key_pem

    key = _signing_key(settings, out)
    print(f"public key fingerprint: {fingerprint(key.public_key())}", file=out)
    print(public_key_pem(key.public_key()).decode("ascii"), end="", file=out)
    return EXIT_OK


def _export(args: argparse.Namespace, settings: Settings, store: Store, out: TextIO) -> int:
    from bot.audit.export import write_export

    selection = Selection(user=args.user, case=args.case, since=args.since)
    damage = store.db.check_integrity()
    if damage:
        print(f"database file DAMAGED, nothing exported: {damage[0]}", file=out)
        return EXIT_FAILED
    key = _signing_key(settings, out)
    result = write_export(
        store,
        selection,
        args.out,
        key,
        now=datetime.now(UTC),
        actor=_actor(),
        data_dir=settings.storage.data_dir,
    )
    print(
        f"exported {result.records} audit records and {result.evidence} evidence items to {result.path}",
        file=out,
    )
    print(f"signed with Ed25519 public key {result.fingerprint}", file=out)
    print(result.public_key_pem, end="", file=out)
    if not result.chain_ok:
        print(f"WARNING: the audit log is BROKEN ({result.chain_problem}); the manifest records it", file=out)
        return EXIT_FAILED
    return EXIT_OK


def _verify_export(args: argparse.Namespace, out: TextIO) -> int:
    from bot.audit.export import load_public_key_file, verify_export

    key = load_public_key_file(args.public_key) if args.public_key is not None else None
    check = verify_export(args.dir, key)
    if check.fingerprint:
        print(
            f"public key: {check.fingerprint} (from {check.key_source}); "
            "compare it with the operator's published fingerprint",
            file=out,
        )
    if check.ok:
        print(
            f"export OK: {check.records} audit records and {check.evidence} evidence items, "
            f"signature and every file hash verified (selection: {dict(check.selection)})",
            file=out,
        )
        return EXIT_OK
    for problem in check.problems:
        print(f"  - {problem}", file=out)
    # The verdict once, on stderr; the problems above are the report.
    print(
        f"rcmod audit verify-export: export FAILED verification ({len(check.problems)} problems)",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _hold(args: argparse.Namespace, store: Store, out: TextIO, *, place: bool) -> int:
    kind: HoldKind = "user" if args.user is not None else "case"
    ref = str(args.user) if args.user is not None else str(args.case)
    shown = f"{ref} (@{args.username})" if args.username else ref
    if place:
        changed = store.evidence.place_hold(kind, ref, actor=_actor())
        print(
            f"legal hold placed on {kind} {shown}"
            if changed
            else f"{kind} {shown} is already under legal hold",
            file=out,
        )
        return EXIT_OK
    if store.evidence.release_hold(kind, ref, actor=_actor()):
        print(
            f"legal hold on {kind} {shown} released; expired content goes at the next retention run",
            file=out,
        )
        return EXIT_OK
    print(f"no active legal hold on {kind} {shown}", file=out)
    return EXIT_FAILED


def _erase(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    result = store.evidence.erase_user_evidence(args.user, actor=_actor())
    print(
        f"erased {len(result.erased)} evidence items of user {args.user}"
        + (f" (@{args.username})" if args.username else "")
        + f" (audit record {result.audit_seq})",
        file=out,
    )
    if result.kept_held:
        print(f"kept {len(result.kept_held)} under legal hold: release the hold, then erase again", file=out)
    return EXIT_OK
