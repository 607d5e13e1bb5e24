"""``rcmod scan-history`` and ``rcmod purge`` (contracts in PRODUCT.md).

    rcmod scan-history [--since DURATION|DATE] [--room NAME ...] [--json]
    rcmod purge user USERNAME (--room NAME ... | --everywhere) [--since ...] [--until DATE]
                [--include-pinned] [--threads keep|purge] [--dry-run] [--yes]
    rcmod purge term TEXT (...the same options)

A purge prints its preview, then asks (``--yes`` stands in for the confirmation token); with
``--dry-run`` it deletes nothing. Run again with the same arguments after a crash, it resumes the
interrupted job instead of starting another. Exit status: 0 done, 1 declined or some messages
could not be deleted, 2 usage or configuration error (nothing deleted).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from bot.config import Settings
from bot.errors import ConfigError
from bot.moderation.purge import PurgeRequest, parse_when

__all__ = ["add_purge_arguments", "add_scan_arguments", "run_purge", "run_scan_history"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="30d", help="DURATION (30d, 12h) or DATE (default: 30d)")
    parser.add_argument(
        "--room", nargs="+", action="extend", default=[], metavar="NAME", help="rooms to scan"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def add_purge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("user", "term"), help="purge a user's messages, or a term's")
    parser.add_argument("target", metavar="USERNAME|TEXT")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--room", nargs="+", action="extend", metavar="NAME", help="rooms to purge")
    where.add_argument("--everywhere", action="store_true", help="every room the bot can see")
    parser.add_argument("--since", help="DURATION (30d, 12h) or DATE")
    parser.add_argument("--until", help="DATE")
    parser.add_argument("--include-pinned", action="store_true", help="purge pinned messages too")
    parser.add_argument("--threads", choices=("keep", "purge"), default="keep", help="thread messages")
    parser.add_argument("--dry-run", action="store_true", help="show the preview, delete nothing")
    parser.add_argument("--yes", action="store_true", help="confirm without asking")


def run_scan_history(args: argparse.Namespace, settings: Callable[[], Settings], out: TextIO) -> int:
    import asyncio

    return asyncio.run(_scan_history(args, settings(), out))


async def _scan_history(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import json

    from bot.app import logged_in
    from bot.moderation import load_matcher
    from bot.moderation.history_report import HistoryReport
    from bot.rest.history import resolve_rooms, walk_room

    if not settings.moderation.wordlists:
        raise ConfigError("moderation.wordlists: none configured, so there is nothing to scan for")
    matcher = load_matcher(settings.moderation.wordlists)
    since = parse_when(args.since, datetime.now(UTC))
    async with logged_in(settings) as rest:
        rooms = await resolve_rooms(rest, args.room, everywhere=not args.room)
        report = HistoryReport()
        bot_id = rest.user_id
        for room in rooms:
            async for message in walk_room(rest, room, oldest=since, latest=None):
                if message.author.id == bot_id or (message.is_system and not message.is_encrypted):
                    continue
                name = room.name or room.id
                matches = [m for t in message.scannable_texts() for m in matcher.scan(t, room=name)]
                report.add(name, message, matches)
    out.write((json.dumps(report.to_json()) if args.json else report.render()) + "\n")
    return EXIT_OK


def run_purge(
    args: argparse.Namespace,
    settings: Callable[[], Settings],
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    import asyncio

    now = datetime.now(UTC)
    request = PurgeRequest(
        kind=args.kind,
        target=args.target.lstrip("@") if args.kind == "user" else args.target,
        rooms=tuple(args.room or ()),
        everywhere=args.everywhere,
        since=parse_when(args.since, now) if args.since else None,
        until=parse_when(args.until, now) if args.until else None,
        include_pinned=args.include_pinned,
        threads=args.threads,
    ).validate()  # bad input stops here, before any connection opens
    return asyncio.run(_purge(args, request, settings(), stdin, out, err))


async def _purge(
    args: argparse.Namespace,
    request: PurgeRequest,
    settings: Settings,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    from bot.app import build_purger, command_session
    from bot.models import Actor
    from bot.services.purge import PurgeResult

    async with command_session(settings) as session:
        purger = build_purger(session)
        # A bar redraws itself with "\r" and an erase-line escape: only a terminal shows it;
        # in a pipe or a log file it would be noise (the result line below says what was done).
        bar = _ProgressBar(err) if _is_terminal(err) else None
        result: PurgeResult
        interrupted = purger.open_job_for(request)
        if interrupted is not None and not args.dry_run:
            out.write(f"resuming purge job {interrupted.id}, interrupted before it finished\n")
            result = await purger.resume_job(interrupted.id, progress=bar)
        else:
            plan = await purger.prepare(request, actor=Actor("operator", "operator", operator=True))
            out.write(
                plan.preview.render(
                    request, token=plan.token if plan.needs_token else None, dry_run=args.dry_run
                )
            )
            out.write("\n")
            if args.dry_run:
                purger.decline(plan.job_id, dry_run=True)
                return EXIT_OK
            if plan.preview.total == 0:
                purger.decline(plan.job_id)
                out.write("nothing to delete\n")
                return EXIT_OK
            token: str | None = plan.token
            if not args.yes:
                token = _ask(plan.preview.total, plan.needs_token, stdin, out)
                if token is None or (not plan.needs_token and token != "yes"):
                    purger.decline(plan.job_id)
                    out.write("declined: nothing deleted\n")
                    return EXIT_FAILED
                if not plan.needs_token:
                    token = plan.token
            result = await purger.run(plan.job_id, token=token, progress=bar)
        if bar is not None:
            bar.finish()
        out.write(
            f"purge job {result.job_id}: {result.deleted} deleted, {result.failed} failed of {result.total}\n"
        )
        return EXIT_OK if result.ok else EXIT_FAILED


def _ask(total: int, needs_token: bool, stdin: TextIO, out: TextIO) -> str | None:
    if needs_token:
        out.write(f"Type the confirmation token to delete {total} message(s): ")
    else:
        out.write(f"Delete {total} message(s)? Type yes: ")
    out.flush()
    line = stdin.readline()
    return line.strip() or None


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _ProgressBar:
    """One line on stderr, redrawn in place: ``[#####.....] 120/300 deleted  #general``."""

    def __init__(self, err: TextIO, width: int = 30) -> None:
        self._err = err
        self._width = width
        self._drawn = False

    def __call__(self, p: object) -> None:
        from bot.services.purge import PurgeProgress

        assert isinstance(p, PurgeProgress)
        filled = self._width * p.done // p.total if p.total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._err.write(f"\r[{bar}] {p.done}/{p.total} deleted  #{p.room or ''}\x1b[K")
        self._err.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self._err.write("\n")
            self._err.flush()
