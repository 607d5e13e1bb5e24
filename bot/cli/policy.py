"""``rcmod policy sync [--dry-run]``: reconcile pinned policies now, or print the plan.

Exit status: 0 in sync (or the plan printed), 1 when a room could not be reconciled or a policy
file is bad (each named on its own line), 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.config import Settings

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_FAILED = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="policy_command", required=True, parser_class=type(parser))
    sync = sub.add_parser("sync", help="reconcile pinned policies and banners with the server now")
    sync.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    sync.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")


def run(args: argparse.Namespace, settings: Callable[[], Settings], out: TextIO) -> int:
    return asyncio.run(_sync(settings(), out, dry_run=bool(args.dry_run)))


async def _sync(settings: Settings, out: TextIO, *, dry_run: bool) -> int:
    # Imported here: the rest of the CLI (match, demo) must not pay for the REST stack.
    from bot.app import build_executor, command_session
    from bot.services.policies import PolicyKeeper

    settings.credentials()  # ConfigError (exit 2) before any connection opens
    if settings.policy.dir is None:
        print(
            "note: no policy folder configured (policy.dir / RCMOD_POLICY_DIR); stored policies only",
            file=out,
        )
    async with command_session(settings) as session:
        rest = session.rest
        # With nothing to keep, a sync asks the server nothing, and a server that is down would
        # pass for "in sync": ask it who we are first, so an unreachable server fails the command.
        await rest.me()
        # No notifier here: who unpinned what is printed below instead of DMed. A dry run
        # only plans (the executor, in dry-run mode as well, could not act if it were asked).
        keeper = PolicyKeeper(
            audit=session.store.audit,
            policies=session.store.policies,
            rest=rest,
            executor=build_executor(settings, session.store, rest, dry_run=lambda: dry_run),
            policy_dir=settings.policy.dir,
            bot_user_id=lambda: rest.user_id,
        )
        report = await keeper.sync(dry_run=dry_run)
    for line in report.lines():
        print(line, file=out)
    if report.ok:
        return EXIT_OK
    count = len(report.problems)
    # The verdict once, on stderr; the problems themselves are in the report above.
    print(f"rcmod policy sync: {count} problem{'' if count == 1 else 's'} (listed above)", file=sys.stderr)
    return EXIT_FAILED
