"""The ``rcmod setup`` and ``rcmod doctor`` subcommands: arguments, prompts, output, exit codes.

Exit codes as everywhere: 0 ok, 1 a check or step failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from bot.config import load_settings
from bot.errors import ConfigError
from bot.ops.checks import Status, exit_code, parse_features, render
from bot.ops.connect import RestFactory, default_rest
from bot.ops.doctor import default_features, run_doctor
from bot.ops.setup import ADMIN_CODE_ENV, SetupOptions, run_setup, two_factor_prompt

__all__ = [
    "add_doctor_arguments",
    "add_setup_arguments",
    "read_env_file",
    "run_doctor_command",
    "run_setup_command",
]

EXIT_USAGE = 2


def _names(text: str) -> list[str]:
    return [n.strip().lstrip("#") for n in text.split(",") if n.strip()]


def add_setup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help="workspace URL, e.g. https://chat.example.org (prompted if missing)")
    p.add_argument("--admin-user", help="an administrator's username; password from RCMOD_ADMIN_PASSWORD")
    p.add_argument("--rooms", default="", help="rooms to add the bot to, separated by ','")
    p.add_argument("--autojoin", action="store_true", help="let the bot join every public channel itself")
    p.add_argument(
        "--out", type=Path, default=Path("rcmod.toml"), help="config file to write (default rcmod.toml)"
    )
    p.add_argument("--bot-user", default="rcmod.bot", help="username of the bot account to create")
    p.add_argument("--bot-email", help="e-mail of the bot account (default <bot-user>@rcmod.invalid)")
    p.add_argument(
        "--features",
        default="all",
        help="comma-separated: blocklists,purge,policies,appoint,reports (default all)",
    )
    p.add_argument(
        "--commands",
        choices=("dm", "room", "app"),
        help="how /report and /mod reach the bot (default dm). "
        "dm: in a direct message to the bot only, no workspace setting needed (works on every "
        "edition); room: also typed in any room, which needs Message_AllowUnrecognizedSlashCommand "
        "on; app: also through the companion app's real slash commands (Starter, Pro, Enterprise; "
        "Community Edition allows no private apps since 7.0): setup makes its webhook secret",
    )
    p.add_argument("--companion-app", action="store_true", help="the same as --commands app")
    p.add_argument("--show-token", action="store_true", help="print the bot's token at the end")
    p.add_argument("--force", action="store_true", help="overwrite an existing config and env file")
    p.add_argument("--non-interactive", action="store_true", help="never prompt; fail on missing input")


def add_doctor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    p.add_argument("--env-file", type=Path, help="KEY=VALUE file with secrets (as written by rcmod setup)")
    p.add_argument("--features", help="features to check (default: all; policies only with policy.dir)")
    p.add_argument("--rooms", default="", help="also check these rooms are visible, separated by ','")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments and blank lines ignored; optional quotes stripped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--env-file: cannot read {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def run_doctor_command(
    args: argparse.Namespace,
    out: TextIO,
    environ: Mapping[str, str],
    rest_factory: RestFactory = default_rest,
) -> int:
    env = dict(environ)
    if args.env_file is not None:
        env.update(read_env_file(args.env_file))  # given explicitly, so it wins
    settings = load_settings(getattr(args, "config", None), env)
    try:
        features = parse_features(args.features) if args.features else default_features(settings)
    except ValueError as exc:
        raise ConfigError(f"--features: {exc}") from None
    checks = asyncio.run(run_doctor(settings, features, rooms=_names(args.rooms), rest_factory=rest_factory))
    for check in checks:
        print(render(check), file=out)
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    summary = f"{len(checks)} checks: {failed} failed, {warned} warnings"
    # A failed doctor says so once, on stderr (the checks above are the report on stdout).
    print(summary if not failed else f"rcmod doctor: {summary}", file=out if not failed else sys.stderr)
    return exit_code(checks)


def run_setup_command(
    args: argparse.Namespace,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str],
    *,
    rest_factory: RestFactory = default_rest,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> int:
    interactive = not args.non_interactive and stdin.isatty()
    server, admin_user = args.server, args.admin_user
    password = environ.get("RCMOD_ADMIN_PASSWORD") or None
    admin_code = environ.get(ADMIN_CODE_ENV, "").strip() or None
    rooms = _names(args.rooms)
    if interactive:
        server = server or ask("Rocket.Chat URL (https://...): ").strip()
        admin_user = admin_user or ask("Administrator username: ").strip()
        password = password or ask_secret(f"Password of {admin_user} (not shown): ")
        if not rooms and not args.autojoin:
            rooms = _names(ask("Rooms to add the bot to (comma-separated, empty for autojoin): "))
            args.autojoin = not rooms
    missing = [
        flag
        for flag, value in (
            ("--server", server),
            ("--admin-user", admin_user),
            ("RCMOD_ADMIN_PASSWORD", password),
        )
        if not value
    ]
    if missing:
        print(f"rcmod setup: missing {', '.join(missing)} (non-interactive)", file=err)
        return EXIT_USAGE
    if not server.startswith(("http://", "https://")):
        print("rcmod setup: --server must start with http:// or https://", file=err)
        return EXIT_USAGE
    try:
        features = parse_features(args.features)
    except ValueError as exc:
        print(f"rcmod setup: --features: {exc}", file=err)
        return EXIT_USAGE
    commands = args.commands or ("app" if args.companion_app else "dm")
    if args.companion_app and commands != "app":
        print(f"rcmod setup: --companion-app contradicts --commands {commands}", file=err)
        return EXIT_USAGE
    opts = SetupOptions(
        server=server.rstrip("/"),
        admin_user=admin_user,
        admin_password=SecretStr(password or ""),
        out=args.out,
        rooms=tuple(rooms),
        autojoin=args.autojoin,
        features=features,
        bot_user=args.bot_user,
        bot_email=args.bot_email,
        commands=commands,
        show_token=args.show_token,
        force=args.force,
        admin_2fa_code=SecretStr(admin_code) if admin_code else None,
    )

    def confirm() -> bool:
        return ask("Make these changes? [y/N] ").strip().lower() in ("y", "yes")

    def ask_code(method: str) -> str | None:
        return ask_secret(two_factor_prompt(method, opts.admin_user)).strip() or None

    result = asyncio.run(
        run_setup(
            opts,
            out,
            rest_factory,
            confirm if interactive else None,
            ask_code if interactive else None,
            err,
        )
    )
    return result.code
