"""The ``rcmod`` command line (``python -m bot`` is the same). Contracts in PRODUCT.md.

Exit codes of every command: 0 success, 1 a check or action failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot import __version__
from bot.cli import audit as audit_command
from bot.cli import logformat
from bot.cli import match as match_command
from bot.cli import ops as ops_command
from bot.cli import policy as policy_command
from bot.cli import purge as purge_command
from bot.cli import store as store_command
from bot.config import Settings, load_settings
from bot.errors import AuthError, ConfigError, Fatal, RcmodError, RetryableError, TwoFactorRequired

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line (every problem is one line; the usage is one --help away).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    run.add_argument(
        "--env-file",
        type=Path,
        help="KEY=VALUE file with secrets, as `rcmod setup` writes it (its values win over the environment)",
    )


def _add_demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--quiet", action="store_true", help="print only the summary")


def _add_sandbox_arguments(sandbox: argparse.ArgumentParser) -> None:
    sandbox.add_argument(
        "--port", type=port_number, default=0, help="port on 127.0.0.1 (default: any free port)"
    )
    sandbox.add_argument(
        "--version",
        dest="server_version",
        default=None,
        metavar="X.Y.Z",
        help="the Rocket.Chat release to answer as (default: 7.10.0; see bot/sandbox/releases.py)",
    )


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env_file = getattr(args, "env_file", None)
    if env_file is not None:
        # Given explicitly, so it wins; its values go into the settings, never to a log.
        environ = {**environ, **ops_command.read_env_file(env_file)}
    settings = load_settings(args.config, environ)
    _setup_logging(settings)
    return _run_bot(settings)


def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from bot.cli.demo import run_demo

    logformat.install(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_demo(sys.stdout, quiet=getattr(args, "quiet", False)))


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Callable[[], Settings]:
    """Settings are loaded only by the commands that need them (audit verify-export works offline)."""
    return lambda: load_settings(args.config, environ)


@dataclass(frozen=True)
class Command:
    """One subcommand, declared once: its name and help line, its arguments, what runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Mapping[str, str]], int]
    # run and demo set up logging themselves; the others speak through what they print.
    logs: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("run", "run the bot against the configured workspace", _add_run_arguments, _run, logs=True),
    Command(
        "demo", "sandbox + bot + a scripted conversation, narrated", _add_demo_arguments, _demo, logs=True
    ),
    Command(
        "sandbox",
        "serve a local simulated Rocket.Chat workspace",
        _add_sandbox_arguments,
        lambda args, env: _run_sandbox(args.port, sys.stdout, args.server_version, sys.stderr),
    ),
    Command(
        "match",
        "scan text from stdin against wordlists",
        match_command.add_arguments,
        lambda args, env: match_command.run(args, sys.stdin, sys.stdout, sys.stderr, env),
    ),
    Command(
        "audit",
        "the audit log and evidence archive: verify, export, holds, erasure",
        audit_command.add_arguments,
        lambda args, env: audit_command.run(args, _settings(args, env), sys.stdout),
    ),
    Command(
        "store",
        "the store itself: migrate SQLite to PostgreSQL",
        store_command.add_arguments,
        lambda args, env: store_command.run(args, _settings(args, env), sys.stdout),
    ),
    Command(
        "setup",
        "create the bot's account on a workspace and write its config",
        ops_command.add_setup_arguments,
        lambda args, env: ops_command.run_setup_command(args, sys.stdin, sys.stdout, sys.stderr, env),
    ),
    Command(
        "doctor",
        "check a configuration against the live server",
        ops_command.add_doctor_arguments,
        lambda args, env: ops_command.run_doctor_command(args, sys.stdout, env),
    ),
    # Policy announcements.
    Command(
        "policy",
        "pinned policy announcements: sync [--dry-run]",
        policy_command.add_arguments,
        lambda args, env: policy_command.run(args, _settings(args, env), sys.stdout),
    ),
    # Block lists and purges: read-only history scan, and purges as resumable jobs.
    Command(
        "scan-history",
        "report what the current lists would have caught",
        purge_command.add_scan_arguments,
        lambda args, env: purge_command.run_scan_history(args, _settings(args, env), sys.stdout),
    ),
    Command(
        "purge",
        "purge a user's or a term's messages (preview, confirm, resume)",
        purge_command.add_purge_arguments,
        lambda args, env: purge_command.run_purge(
            args, _settings(args, env), sys.stdin, sys.stdout, sys.stderr
        ),
    ),
)
_BY_NAME = {command.name: command for command in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rcmod", description="A moderation bot for Rocket.Chat.")
    parser.add_argument("--version", action="version", version=f"rcmod {__version__}")
    parser.add_argument("--config", type=Path, help="TOML config file (default: environment only)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.name, help=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ: Mapping[str, str] = os.environ
    # A bare `rcmod` runs the bot when a server is configured, the demo otherwise.
    name = args.command or ("run" if (args.config or environ.get("RCMOD_SERVER_URL")) else "demo")
    command = _BY_NAME.get(name)
    if command is None:
        print(f"rcmod: unknown command {name}", file=sys.stderr)
        return EXIT_USAGE
    if not command.logs:
        # Without a handler of their own, the library's warnings (retries, a policy problem they
        # also print) would reach stderr raw through logging's last resort, and a problem would
        # show twice.
        logging.getLogger("rcmod").addHandler(logging.NullHandler())
    try:
        return command.run(args, environ)
    except (RcmodError, Fatal, OSError, KeyboardInterrupt) as exc:
        return _failed(exc)


def _failed(exc: BaseException) -> int:
    """One line on stderr for what stopped a command, and its exit status."""
    if isinstance(exc, ConfigError):
        print(f"rcmod: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, TwoFactorRequired):
        # Rocket.Chat e-mails new users with a verified address a login code (e-mail 2FA is on by
        # default); a bot cannot read it, so retrying would only mail more codes.
        print(
            "rcmod: configuration error: the server asks the bot's account for a two-factor code at "
            "password login, which a bot cannot answer; log in with a personal access token instead "
            "(RCMOD_USER_ID + RCMOD_AUTH_TOKEN, created with 'Ignore Two Factor Authentication'; "
            "`rcmod setup` makes one)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if isinstance(exc, AuthError):
        # The server refused the configured credential: a configuration problem, not a crash.
        print(
            f"rcmod: configuration error: login refused ({exc}); check server.auth_token or server.password",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if isinstance(exc, RetryableError):
        print(
            f"rcmod: the server is unreachable or failing ({exc}); "
            "check server.url and that Rocket.Chat is up",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if isinstance(exc, RcmodError | Fatal):
        print(f"rcmod: {exc}", file=sys.stderr)  # a full disk lost nothing: a restart with space resumes
        return EXIT_FAILED
    if isinstance(exc, OSError):
        # A file or folder the command was pointed at cannot be used (permissions, a file where a
        # folder should be, a full disk under an export): say which, in one line.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"rcmod: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
    return EXIT_FAILED  # KeyboardInterrupt


def _setup_logging(settings: Settings) -> None:
    logformat.install(settings.logging.level, "%(asctime)s %(levelname)s %(name)s: %(message)s", sys.stderr)


def _run_bot(settings: Settings) -> int:
    from bot.app import BotApp

    app = BotApp(settings)  # raises ConfigError on a missing secret, before connecting

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, app.stop)
        # SIGHUP reloads the wordlists (built off the loop, swapped whole; a broken list keeps the old).
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(app.reload_wordlists()))
        await app.run()

    asyncio.run(go())
    return EXIT_OK


def _run_sandbox(port: int, out: TextIO, version: str | None, err: TextIO) -> int:
    from bot.sandbox import serve
    from bot.sandbox.releases import DEFAULT_VERSION, Release, ReleaseError

    try:
        release = Release.parse(version or DEFAULT_VERSION)  # before anything is served
    except ReleaseError as exc:
        err.write(f"rcmod sandbox: --version: {exc}\n")
        return EXIT_USAGE

    async def go() -> None:
        task = asyncio.create_task(serve(port, out, version=release.version))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
    except OSError as exc:
        from bot.web.server import listen_problem

        err.write(f"rcmod sandbox: cannot listen on 127.0.0.1:{port}: {listen_problem(exc)}\n")
        return EXIT_FAILED
    return EXIT_OK
