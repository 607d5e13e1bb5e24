"""``rcmod setup``: create the bot's account on a workspace and write its configuration.

Two phases. The *preflight* only reads (server, admin login, version, the admin's rights, free
username, rooms, settings) and stops with exit 1 before anything exists if a check fails. The
*changes* then run in order, each recording how to undo itself; if one fails, the undo list runs
backwards and the report says exactly what, if anything, was left behind.

Secrets: the admin password arrives in :class:`SetupOptions` as a ``SecretStr``; the bot's own
password is random, used once to create its personal access token, and then forgotten. The token
goes to a separate env file written with mode 0600 (see :func:`render_env`), and is printed only
with ``--show-token``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from bot.config import COMMAND_CHANNELS, Credentials
from bot.errors import ActionRefused, AuthError, PermissionDenied, RcmodError, TwoFactorRequired
from bot.ops.checks import (
    ALL_FEATURES,
    SETTING_IDS,
    Check,
    Status,
    parse_version,
    plan_grants,
    render,
    setting_checks,
    version_checks,
)
from bot.ops.connect import RestFactory, default_rest, describe, probe
from bot.rest import RestClient

__all__ = ["SetupOptions", "SetupResult", "admin_checks", "render_config", "render_env", "run_setup"]

TOKEN_NAME = "rcmod"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ADMIN_CODE_ENV = "RCMOD_ADMIN_2FA_CODE"
EMAIL_VERIFICATION = "Accounts_EmailVerification"
# Asks a person for the admin's second factor; gets the method ("email", "totp"), returns the code.
AskCode = Callable[[str], str | None]


def two_factor_prompt(method: str | None, admin_user: str) -> str:
    if method == "totp":
        return f"Two-factor code for {admin_user} from the authenticator app: "
    return f"Rocket.Chat e-mailed a login code to {admin_user}'s address; type it here (not shown): "


def two_factor_check(exc: TwoFactorRequired, admin_user: str, *, code_given: bool) -> Check:
    """What to do when the admin's password login wants a second factor."""
    if exc.refused_code:
        return Check(
            "admin login",
            Status.FAIL,
            f"the two-factor code for {admin_user} was refused ({exc.code}): wrong, used or expired",
            f"run setup again with a fresh code in {ADMIN_CODE_ENV} (a new one is e-mailed now)"
            if exc.method == "email"
            else f"run setup again with a current code in {ADMIN_CODE_ENV}",
        )
    where = (
        "the code from the authenticator app"
        if exc.method == "totp"
        else "the code Rocket.Chat just e-mailed to the admin's address (valid about an hour)"
    )
    return Check(
        "admin login",
        Status.FAIL,
        f"{admin_user} has two-factor authentication"
        + (" by e-mail" if exc.method == "email" else "")
        + ("; the code given was not used" if code_given else ""),
        f"run setup again with {ADMIN_CODE_ENV}=<{where}>, or in a terminal to be asked for it",
    )


@dataclass(frozen=True)
class SetupOptions:
    server: str
    admin_user: str
    admin_password: SecretStr
    out: Path
    rooms: tuple[str, ...] = ()
    autojoin: bool = False
    features: frozenset[str] = ALL_FEATURES
    bot_user: str = "rcmod.bot"
    bot_name: str = "rcmod"
    bot_email: str | None = None  # default <bot_user>@rcmod.invalid (never mailed)
    # How commands arrive besides DMs (commands.via): "dm", "room" or "app" (bot.config).
    commands: str = "dm"
    show_token: bool = False
    force: bool = False
    # The admin's second factor when their login asks for one (RCMOD_ADMIN_2FA_CODE): the code
    # Rocket.Chat e-mailed, or one from their authenticator app.
    admin_2fa_code: SecretStr | None = None

    @property
    def companion_app(self) -> bool:
        return self.commands == "app"

    @property
    def env_file(self) -> Path:
        return self.out.with_suffix(".env")


@dataclass
class SetupResult:
    code: int
    bot_user_id: str | None = None
    token: SecretStr | None = None
    left_behind: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- pure parts


def admin_checks(
    table: dict[str, list[str]],
    admin_roles: Iterable[str],
    rooms: Iterable[dict[str, Any]],
    admin_rids: set[str],
) -> list[Check]:
    """Can this admin do every step? Rooms by the rules addUsersToRoom applies (channels.invite)."""
    roles = set(admin_roles)

    def holds(permission: str) -> bool:
        return bool(roles & set(table.get(permission, [])))

    checks = []
    for permission, step in (
        ("create-user", "create the bot user"),
        ("delete-user", "delete it again if a later step fails"),
        ("access-permissions", "grant permissions to the bot role"),
    ):
        if holds(permission):
            checks.append(Check(f"admin may {step}", Status.OK, permission))
        else:
            checks.append(
                Check(
                    f"admin may {step}",
                    Status.FAIL,
                    f"the account lacks {permission} (roles: {', '.join(sorted(roles)) or 'none'})",
                    "run setup with an account holding the admin role (--admin-user)",
                )
            )
    for room in rooms:
        ok = (
            (room.get("t") == "c" and holds("add-user-to-any-c-room"))
            or (room.get("t") == "p" and holds("add-user-to-any-p-room"))
            or (room.get("_id") in admin_rids and holds("add-user-to-joined-room"))
        )
        name = f"admin may add the bot to {room.get('name')}"
        if ok:
            checks.append(Check(name, Status.OK))
        else:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    "the account may not add users to this room",
                    "join the room as this admin first, or add the bot to it by hand",
                )
            )
    return checks


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_config(
    *,
    server: str,
    user_id: str,
    autojoin: bool,
    env_file: Path,
    now: datetime,
    features: Iterable[str],
    commands: str = "dm",
) -> str:
    """The config file, in deploy/config.example.toml's format. It holds no secret."""
    lines = [
        f"# Written by `rcmod setup` on {now:%Y-%m-%d %H:%M} UTC. Every option: deploy/config.example.toml.",
        f"# Secrets (the personal access token) are in {env_file.name}, mode 0600: load it with",
        "# EnvironmentFile= (systemd), env_file: (compose), or `rcmod run --env-file FILE` (and doctor's).",
        f"# Features set up: {', '.join(sorted(features))}.",
        "",
        "[server]",
        f"url = {_toml(server)}",
        f"user_id = {_toml(user_id)}",
        "",
        "[commands]",
        f"# {commands}: {COMMAND_CHANNELS[commands]}.",
        "# The choices are explained in deploy/config.example.toml; run rcmod doctor after a change.",
        f"via = {_toml(commands)}",
        "",
        "[storage]",
        'data_dir = "data"',
        "",
        "[moderation]",
        "# wordlists = []",
        "# moderators = []",
        f"autojoin = {'true' if autojoin else 'false'}",
        "",
    ]
    return "\n".join(lines)


def render_env(token: str, webhook_secret: str | None) -> str:
    lines = [
        "# rcmod secrets, written by `rcmod setup`. Keep this file mode 0600.",
        f"RCMOD_AUTH_TOKEN={token}",
    ]
    if webhook_secret:
        lines.append(f"RCMOD_WEBHOOK_SECRET={webhook_secret}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the run


@dataclass
class _Undo:
    what: str  # what would be left behind, in the report's words
    action: Callable[[], Awaitable[None]]


class _Run:
    def __init__(
        self, opts: SetupOptions, out: TextIO, rest_factory: RestFactory, ask_code: AskCode | None = None
    ) -> None:
        self.opts = opts
        self.out = out
        self.rest_factory = rest_factory
        self.ask_code = ask_code
        self.undo: list[_Undo] = []
        self.failed = False
        self.version: str | None = None
        # Accounts_EmailVerification: when on, a non-admin's password login needs a verified address.
        self.email_verification = False

    async def admin_login(self, admin: RestClient) -> int | None:
        """Log the admin in, answering a second factor from the option or a prompt."""
        o = self.opts
        code = o.admin_2fa_code.get_secret_value() if o.admin_2fa_code else None
        for _attempt in range(2):
            try:
                await admin.login(code=code)
                return None
            except TwoFactorRequired as exc:
                if code is None and not exc.refused_code and self.ask_code is not None:
                    code = self.ask_code(exc.method or "email") or None
                    if code is not None:
                        continue  # one more login, now with the code
                self.say(two_factor_check(exc, o.admin_user, code_given=code is not None))
                return EXIT_USAGE
        return EXIT_USAGE  # not reached: the second attempt returns or raises

    def say(self, check: Check) -> None:
        if check.failed:
            self.failed = True
        print(render(check), file=self.out)

    async def preflight(self, admin: RestClient) -> tuple[list[dict[str, Any]], dict[str, list[str]]] | int:
        logged_in = await self._reach_and_log_in(admin)
        if isinstance(logged_in, int):
            return logged_in
        me = logged_in
        info = await admin.server_info()
        self.version = info.version
        for check in version_checks(info.version, self.opts.features):
            self.say(check)
        if parse_version(info.version) < (6, 0):
            return EXIT_FAILED
        table = await admin.permissions()
        admin_rids = {str(s.get("rid")) for s in await admin.subscriptions()} if self.opts.rooms else set()
        rooms = await self._check_rooms(admin)
        for check in admin_checks(table, [str(r) for r in me.get("roles") or []], rooms, admin_rids):
            self.say(check)
        await self._check_bot_username(admin)
        await self._check_settings(admin)
        self._check_files()
        if self.failed:
            return EXIT_FAILED
        return rooms, table

    async def _reach_and_log_in(self, admin: RestClient) -> dict[str, Any] | int:
        """The server answers like Rocket.Chat and the admin logs in: the admin's ``me``, or the
        exit status."""
        o = self.opts
        probed = await probe(admin, o.server)
        self.say(
            Check("server reachable", Status.OK if probed.ok else Status.FAIL, probed.sentence, probed.fix)
        )
        if not probed.ok:
            # An unreachable server may come back; a URL that is not Rocket.Chat is a usage error.
            return EXIT_FAILED if probed.kind == "unreachable" else EXIT_USAGE
        try:
            refused = await self.admin_login(admin)
            if refused is not None:
                return refused
            me = await admin.me()
        except AuthError:
            self.say(
                Check(
                    "admin login",
                    Status.FAIL,
                    f"refused for {o.admin_user}: wrong username or password",
                    "check --admin-user and RCMOD_ADMIN_PASSWORD",
                )
            )
            return EXIT_USAGE
        self.say(Check("admin login", Status.OK, f"as {o.admin_user}"))
        return me

    async def _check_rooms(self, admin: RestClient) -> list[dict[str, Any]]:
        """The rooms named with --rooms that the admin can see."""
        rooms: list[dict[str, Any]] = []
        for name in self.opts.rooms:
            try:
                room = await admin.room_info_by_name(name)
            except ActionRefused:
                self.say(
                    Check(
                        f"room {name}",
                        Status.FAIL,
                        "not found (or not visible to the admin)",
                        "check --rooms",
                    )
                )
                continue
            rooms.append(room)
            self.say(
                Check(
                    f"room {name}",
                    Status.OK,
                    {"c": "public channel", "p": "private group"}.get(room["t"], ""),
                )
            )
        return rooms

    async def _check_bot_username(self, admin: RestClient) -> None:
        o = self.opts
        try:
            await admin.user_info(username=o.bot_user)
        except PermissionDenied:
            self.say(
                Check(
                    f"username {o.bot_user}",
                    Status.FAIL,
                    "the admin may not look users up",
                    "run setup with an account holding the admin role",
                )
            )
        except ActionRefused:  # "User not found." (a bare 400) or a 404
            self.say(Check(f"username {o.bot_user}", Status.OK, "free"))
        else:
            self.say(
                Check(
                    f"username {o.bot_user}",
                    Status.FAIL,
                    "a user with this name already exists",
                    "choose another --bot-user, or delete the old account first",
                )
            )

    async def _check_settings(self, admin: RestClient) -> None:
        o = self.opts
        values = await admin.public_settings(*SETTING_IDS, EMAIL_VERIFICATION)
        self.email_verification = values.get(EMAIL_VERIFICATION) is True
        self.say(Check("commands", Status.OK, f"via {o.commands}: {COMMAND_CHANNELS[o.commands]}"))
        # A setting is required only for what the administrator asked for by name (--features
        # with a list, --commands room); with every feature (the default) each one is set up as
        # far as the workspace allows, and a setting that holds one back warns instead.
        required = o.features if o.features != ALL_FEATURES else frozenset()
        for check in setting_checks(values, o.features, commands=o.commands, required=required):
            self.say(check)
        if self.email_verification:
            self.say(
                Check(
                    f"setting {EMAIL_VERIFICATION}",
                    Status.WARN,
                    "on: the bot's address must count as verified, so if the workspace also opts new "
                    "users into e-mail 2FA the bot's one password login asks for a code nobody reads",
                    "if setup then fails at the token step, turn "
                    "Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In off and run it again",
                )
            )

    def _check_files(self) -> None:
        o = self.opts
        for path in (o.out, o.env_file):
            if path.exists() and not o.force:
                self.say(Check(f"file {path}", Status.FAIL, "exists", "choose another --out or pass --force"))

    async def changes(
        self, admin: RestClient, rooms: list[dict[str, Any]], table: dict[str, list[str]]
    ) -> SetupResult:
        o = self.opts
        password = secrets.token_urlsafe(24)
        # An unverified address keeps e-mail 2FA off for the bot: a default server opts every new
        # user in (Auto_Opt_In), but EmailCheck.isEnabled wants a verified address. Only when the
        # workspace refuses password logins without one (Accounts_EmailVerification) is it verified.
        user = await admin.create_user(
            username=o.bot_user,
            name=o.bot_name,
            email=o.bot_email or f"{o.bot_user}@rcmod.invalid",
            password=password,
            roles=["bot"],
            verified=self.email_verification,
        )
        uid = str(user["_id"])
        self.undo.append(_Undo(f"user {o.bot_user} (id {uid})", lambda: admin.delete_user(uid)))
        self.say(Check("create bot user", Status.OK, f"{o.bot_user} (id {uid}) with role bot"))

        grants = plan_grants(table, o.features, self.version)
        if grants:
            originals = {p: list(table[p]) for p in grants}
            await admin.update_permissions(grants)
            self.undo.append(
                _Undo(
                    "role bot added to " + ", ".join(sorted(grants)),
                    lambda: admin.update_permissions(originals),
                )
            )
        self.say(
            Check(
                "grant permissions to role bot", Status.OK, ", ".join(sorted(grants)) or "nothing was missing"
            )
        )

        bot = self.rest_factory(o.server, Credentials(username=o.bot_user, password=SecretStr(password)))
        try:
            try:
                await bot.login()
            except TwoFactorRequired as exc:
                raise RcmodError(
                    f"the bot's first login asks for a two-factor code ({exc.method or 'unknown'} method) "
                    "that nobody can read; turn Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In "
                    "off (or Accounts_EmailVerification) and run setup again"
                ) from exc
            token = await bot.generate_personal_access_token(
                TOKEN_NAME, bypass_two_factor=True, password=password
            )
            with contextlib.suppress(RcmodError):
                await bot.logout()  # the password session is not needed any more
        finally:
            await bot.close()
        self.say(
            Check("personal access token", Status.OK, f"{TOKEN_NAME!r}, ignores two-factor authentication")
        )

        for room in rooms:
            await admin.invite_to_room(str(room["_id"]), str(room["t"]), uid)
            self.say(Check(f"add bot to {room.get('name')}", Status.OK))
        if o.autojoin:
            self.say(Check("autojoin", Status.OK, "on: the bot joins every public channel itself"))

        secret = secrets.token_urlsafe(32) if o.companion_app else None
        _write_private(o.env_file, render_env(token, secret))
        self.undo.append(_Undo(f"file {o.env_file}", _remover(o.env_file)))
        config = render_config(
            server=o.server,
            user_id=uid,
            autojoin=o.autojoin,
            env_file=o.env_file,
            now=datetime.now(UTC),
            features=o.features,
            commands=o.commands,
        )
        o.out.write_text(config, encoding="utf-8")
        self.say(Check("write config", Status.OK, f"{o.out} (secrets in {o.env_file}, mode 0600)"))
        return SetupResult(EXIT_OK, bot_user_id=uid, token=SecretStr(token))

    async def rollback(self) -> list[str]:
        left = []
        for undo in reversed(self.undo):
            try:
                await undo.action()
            except (RcmodError, OSError) as exc:
                left.append(f"{undo.what} ({exc})")
                print(f"[FAIL] undo: could not remove {undo.what}", file=self.out)
            else:
                print(f"[ ok ] undo: removed {undo.what}", file=self.out)
        return left


def _remover(path: Path) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        await asyncio.to_thread(path.unlink, missing_ok=True)

    return remove


def _write_private(path: Path, text: str) -> None:
    """Create (or replace) the file with mode 0600 from the start, never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def describe_plan(
    opts: SetupOptions, grants: dict[str, list[str]], rooms: Iterable[dict[str, Any]]
) -> list[str]:
    """What the changes phase will do, in order, for the user to read (and confirm) first."""
    names = [str(r.get("name")) for r in rooms]
    return [
        f"create user {opts.bot_user} with role bot (random password, not kept)",
        "add role bot to " + (", ".join(sorted(grants)) if grants else "nothing (it has all it needs)"),
        f"create its personal access token {TOKEN_NAME!r} with two-factor bypass",
        ("add it to " + ", ".join(names))
        if names
        else "add it to no room" + (" (autojoin)" if opts.autojoin else ""),
        f"write {opts.out} (commands.via = {opts.commands}) and {opts.env_file} (mode 0600"
        + (", with the companion app's webhook secret)" if opts.companion_app else ")"),
    ]


async def run_setup(
    opts: SetupOptions,
    out: TextIO,
    rest_factory: RestFactory = default_rest,
    confirm: Callable[[], bool] | None = None,
    ask_code: AskCode | None = None,
    err: TextIO | None = None,
) -> SetupResult:
    """Preflight, show the plan, (ask,) then change; exit code and what was made in the result.
    The verdict of a failed preflight goes to ``err`` (stderr), the report to ``out``."""
    run = _Run(opts, out, rest_factory, ask_code)
    admin = rest_factory(opts.server, Credentials(username=opts.admin_user, password=opts.admin_password))
    try:
        try:
            pre = await run.preflight(admin)
        except RcmodError as exc:
            print(f"[FAIL] preflight: {describe(exc, _endpoint(exc), run.version)}", file=out)
            pre = EXIT_FAILED
        if isinstance(pre, int):
            # The verdict once, on stderr; the [FAIL] lines above are the report.
            print(
                "rcmod setup: stopped before changing anything; nothing was created", file=err or sys.stderr
            )
            return SetupResult(pre)
        rooms, table = pre
        for line in describe_plan(opts, plan_grants(table, opts.features, run.version), rooms):
            print(f"[plan] {line}", file=out)
        if confirm is not None and not confirm():
            print("declined: nothing was changed", file=out)
            return SetupResult(EXIT_FAILED)
        try:
            result = await run.changes(admin, rooms, table)
        except (RcmodError, OSError) as exc:
            reason = describe(exc, _endpoint(exc), run.version) if isinstance(exc, RcmodError) else str(exc)
            print(f"[FAIL] {reason}", file=out)
            print("rolling back what setup created:", file=out)
            left = await run.rollback()
            if left:
                print("LEFT BEHIND (remove by hand): " + "; ".join(left), file=out)
            else:
                print("rolled back: the workspace is as it was before setup", file=out)
            return SetupResult(EXIT_FAILED, left_behind=left)
    finally:
        await admin.close()
    if opts.show_token and result.token is not None:
        print(f"RCMOD_AUTH_TOKEN={result.token.get_secret_value()}", file=out)
    files = f"--config {shlex.quote(str(opts.out))} --env-file {shlex.quote(str(opts.env_file))}"
    print(f"done: check it with `rcmod doctor {files}`", file=out)
    print(f"start the bot with: rcmod run {files}", file=out)
    return result


def _endpoint(exc: RcmodError) -> str:
    """Our error messages start with the endpoint (``users.create: HTTP 400 ...``)."""
    return str(exc).split(":", 1)[0] or "request"
