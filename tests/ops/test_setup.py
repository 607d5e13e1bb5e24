"""`rcmod setup` end to end against the sandbox: the happy path, then each bad input.

Every failure case checks both the message and that nothing was left half-created.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot import cli
from bot.cli.ops import add_setup_arguments, read_env_file, run_setup_command
from bot.config import load_settings
from bot.ops.checks import ALL_FEATURES, plan_grants, required_permissions
from bot.ops.doctor import run_doctor
from bot.ops.setup import SetupOptions, render_config, render_env, run_setup
from bot.sandbox import Sandbox
from tests.helpers import free_port
from tests.sandbox.test_sandbox_support import running


def admin_password(sandbox: Sandbox, username: str = "admin") -> str:
    return str(next(u for u in sandbox.seed_info()["users"] if u["username"] == username)["password"])


def options(sandbox: Sandbox, tmp_path: Path, **kw: Any) -> SetupOptions:
    base: dict[str, Any] = {
        "server": sandbox.url,
        "admin_user": "admin",
        "admin_password": SecretStr(admin_password(sandbox)),
        "out": tmp_path / "conf" / "rcmod.toml",
        "rooms": ("general", "staff"),
        "features": ALL_FEATURES,
        "bot_user": "modbot",
    }
    base.update(kw)
    return SetupOptions(**base)


def snapshot(sandbox: Sandbox) -> tuple[set[str], dict[str, list[str]], int]:
    ws = sandbox.workspace
    return (
        {u.username for u in ws.users.values()},
        {k: list(v["roles"]) for k, v in ws.permissions.items()},
        len(ws.subscriptions),
    )


def allow_slash_commands(sandbox: Sandbox) -> None:
    sandbox.workspace.set_setting("Message_AllowUnrecognizedSlashCommand", True)


def revoke_from_bot(sandbox: Sandbox, *permissions: str) -> None:
    for permission in permissions:
        roles = sandbox.workspace.permissions[permission]["roles"]
        if "bot" in roles:
            roles.remove("bot")


async def test_setup_then_doctor_is_green(sandbox: Sandbox, tmp_path: Path) -> None:
    allow_slash_commands(sandbox)
    revoke_from_bot(sandbox, "pin-message", "clean-channel-history", "set-moderator")
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path), out)
    text = out.getvalue()
    assert result.code == 0, text
    assert result.token is not None and result.bot_user_id is not None
    # Secrets stay out of the output unless asked for.
    assert result.token.get_secret_value() not in text
    assert admin_password(sandbox) not in text
    # The account: role bot only, a token that bypasses 2FA, member of exactly the chosen rooms.
    ws = sandbox.workspace
    bot = ws.users[result.bot_user_id]
    assert bot.roles == ["bot"] and bot.personal_tokens["rcmod"]["bypassTwoFactor"] is True
    assert {ws.rooms[rid]["name"] for rid, uid in ws.subscriptions if uid == bot.id} == {"general", "staff"}
    for permission in (
        "pin-message",
        "clean-channel-history",
        "set-moderator",
        "create-personal-access-tokens",
    ):
        assert "bot" in ws.permissions[permission]["roles"], permission
    # Admin-only permissions were not handed out.
    assert "bot" not in ws.permissions["create-user"]["roles"]
    assert "bot" not in ws.permissions["access-permissions"]["roles"]
    # Files: a config without secrets, and a 0600 env file with the token.
    opts = options(sandbox, tmp_path)
    config_text = opts.out.read_text()
    assert result.token.get_secret_value() not in config_text
    assert stat.S_IMODE(opts.env_file.stat().st_mode) == 0o600
    env = read_env_file(opts.env_file)
    assert env["RCMOD_AUTH_TOKEN"] == result.token.get_secret_value()
    assert "RCMOD_WEBHOOK_SECRET" not in env
    settings = load_settings(opts.out, env)
    assert settings.server.user_id == bot.id and settings.storage.data_dir == opts.out.parent / "data"

    checks = await run_doctor(settings, ALL_FEATURES)
    failed = [c for c in checks if c.failed]
    assert failed == [], failed
    names = {c.name for c in checks}
    for permission in required_permissions(ALL_FEATURES, sandbox.version):
        assert f"permission {permission}" in names
    assert {"room general", "room staff", "logged in", "server reachable", "store"} <= names


async def test_setup_cli_non_interactive_with_companion_app(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `rcmod setup` itself (run in a thread so the sandbox keeps serving)."""
    monkeypatch.setenv("RCMOD_ADMIN_PASSWORD", admin_password(sandbox))
    out = tmp_path / "rcmod.toml"
    argv = ["setup", "--server", sandbox.url, "--admin-user", "admin", "--rooms", "random", "--autojoin"]
    argv += [
        "--out",
        str(out),
        "--bot-user",
        "modbot2",
        "--companion-app",
        "--show-token",
        "--non-interactive",
    ]
    code = await asyncio.to_thread(cli.main, argv)
    text = capsys.readouterr().out
    assert code == 0, text
    env = read_env_file(out.with_suffix(".env"))
    assert f"RCMOD_AUTH_TOKEN={env['RCMOD_AUTH_TOKEN']}" in text  # --show-token
    assert len(env["RCMOD_WEBHOOK_SECRET"]) >= 32
    assert admin_password(sandbox) not in text
    settings = load_settings(out, env)
    assert settings.moderation.autojoin is True and settings.commands.via == "app"
    for command in ("report", "mod"):  # the administrator installs the companion app
        sandbox.workspace.commands.append(
            {"command": command, "params": "", "description": "", "clientOnly": False}
        )
    code = await asyncio.to_thread(
        cli.main, ["doctor", "--config", str(out), "--env-file", str(out.with_suffix(".env"))]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "[FAIL]" not in text and "checks: 0 failed" in text


async def test_wrong_url_fails_fast_and_creates_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot(sandbox)
    out = io.StringIO()
    err = io.StringIO()
    result = await run_setup(
        options(sandbox, tmp_path, server=f"http://127.0.0.1:{free_port()}"), out, err=err
    )
    assert result.code == 1
    assert "cannot connect" in out.getvalue() and "nothing was created" in err.getvalue()
    assert snapshot(sandbox) == before


async def test_a_server_that_is_not_rocket_chat(sandbox: Sandbox, tmp_path: Path) -> None:
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path, server=sandbox.url + "/not-here"), out)
    assert result.code == 2
    assert "does not answer like a Rocket.Chat server" in out.getvalue()


async def test_wrong_admin_password(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot(sandbox)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path, admin_password=SecretStr("not-it")), out)
    assert result.code == 2
    assert "wrong username or password" in out.getvalue()
    assert "not-it" not in out.getvalue()
    assert snapshot(sandbox) == before and not (tmp_path / "conf").exists()


async def test_an_admin_without_the_rights(sandbox: Sandbox, tmp_path: Path) -> None:
    allow_slash_commands(sandbox)
    before = snapshot(sandbox)
    out = io.StringIO()
    opts = options(
        sandbox, tmp_path, admin_user="alice", admin_password=SecretStr(admin_password(sandbox, "alice"))
    )
    result = await run_setup(opts, out)
    text = out.getvalue()
    assert result.code == 1
    assert "lacks create-user" in text and "lacks access-permissions" in text
    assert "[FAIL] room staff: not found (or not visible to the admin)" in text  # alice is not in it
    assert snapshot(sandbox) == before


@pytest.mark.parametrize(("version", "expected"), [("5.4.0", "older than 6.0"), ("6.1.3", "added in 6.2")])
async def test_a_version_too_old(tmp_path: Path, version: str, expected: str) -> None:
    async with running(version=version) as (sandbox, _seed):
        allow_slash_commands(sandbox)
        before = snapshot(sandbox)
        out = io.StringIO()
        result = await run_setup(options(sandbox, tmp_path), out)
        assert result.code == 1
        assert expected in out.getvalue()
        assert snapshot(sandbox) == before


async def test_an_endpoint_missing_midway_rolls_back(sandbox: Sandbox, tmp_path: Path) -> None:
    allow_slash_commands(sandbox)
    revoke_from_bot(sandbox, "pin-message")
    before = snapshot(sandbox)
    sandbox.fail_next("users.generatePersonalAccessToken", 404)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path), out)
    text = out.getvalue()
    assert result.code == 1
    assert "has no users.generatePersonalAccessToken endpoint" in text
    assert "undo: removed user modbot" in text and "rolled back" in text
    assert result.left_behind == []
    assert snapshot(sandbox) == before
    assert not (tmp_path / "conf" / "rcmod.toml").exists()


async def test_a_failed_rollback_says_exactly_what_is_left(sandbox: Sandbox, tmp_path: Path) -> None:
    allow_slash_commands(sandbox)
    sandbox.fail_next("users.generatePersonalAccessToken", 404)
    sandbox.fail_next("users.delete", 403, {"success": False, "error": "unauthorized"}, times=3)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path), out)
    assert result.code == 1
    assert len(result.left_behind) == 1 and result.left_behind[0].startswith("user modbot (id ")
    assert "LEFT BEHIND (remove by hand): user modbot" in out.getvalue()


async def test_preflight_refusals(sandbox: Sandbox, tmp_path: Path) -> None:
    before = snapshot(sandbox)
    out = io.StringIO()
    opts = options(sandbox, tmp_path, bot_user="rcmod.bot", rooms=("general", "nowhere"))
    (tmp_path / "conf").mkdir()
    opts.out.write_text("# an old config\n")
    result = await run_setup(opts, out)
    text = out.getvalue()
    assert result.code == 1
    assert "[FAIL] username rcmod.bot: a user with this name already exists" in text
    assert "[FAIL] room nowhere" in text
    # Default workspace: unknown slash commands never reach the server, which DM-only (the
    # default --commands) does not need.
    assert "setting Message_AllowUnrecognizedSlashCommand: not needed" in text
    assert f"[FAIL] file {opts.out}: exists" in text
    assert snapshot(sandbox) == before
    assert opts.out.read_text() == "# an old config\n"


def test_non_interactive_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RCMOD_ADMIN_PASSWORD", raising=False)
    argv = ["setup", "--server", "http://127.0.0.1:9", "--admin-user", "admin", "--non-interactive"]
    assert cli.main(argv) == 2
    assert "missing RCMOD_ADMIN_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("RCMOD_ADMIN_PASSWORD", "x")
    assert cli.main(["setup", "--server", "chat.example.org", "--admin-user", "a", "--non-interactive"]) == 2
    assert cli.main([*argv, "--features", "blocklists,nope"]) == 2
    assert "unknown feature nope" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_prompts_for_what_is_missing(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "c.toml")])
    asked: list[str] = []
    answers = iter([f"http://127.0.0.1:{free_port()}", "admin", ""])

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    secrets_asked: list[str] = []

    def ask_secret(prompt: str) -> str:
        secrets_asked.append(prompt)
        return "pw"

    out, err = io.StringIO(), io.StringIO()
    code = run_setup_command(args, _Tty(), out, err, {}, ask=ask, ask_secret=ask_secret)
    assert code == 1 and "cannot connect" in out.getvalue()  # nothing listens there
    assert len(asked) == 3 and len(secrets_asked) == 1
    assert args.autojoin is True  # no rooms given: autojoin


def written_config(tmp_path: Path, **options: Any) -> Path:
    """``tmp_path``/rcmod.toml as setup renders it for chat.example.org, all features on."""
    from datetime import UTC, datetime

    path = tmp_path / "rcmod.toml"
    path.write_text(
        render_config(
            server="https://chat.example.org",
            env_file=tmp_path / "rcmod.env",
            now=datetime(2026, 1, 1, tzinfo=UTC),
            features=ALL_FEATURES,
            **options,
        )
    )
    return path


def test_rendered_config_loads_and_holds_no_secret(tmp_path: Path) -> None:
    path = written_config(tmp_path, user_id='id"with quote', autojoin=True)
    text = path.read_text()
    env = {"RCMOD_AUTH_TOKEN": "T0K3N-xyz"}
    settings = load_settings(path, env)
    assert settings.server.user_id == 'id"with quote' and settings.moderation.autojoin is True
    assert "T0K3N-xyz" not in text
    env_path = tmp_path / "rcmod.env"
    env_path.write_text(render_env("tok", "sec"))
    assert read_env_file(env_path) == {"RCMOD_AUTH_TOKEN": "tok", "RCMOD_WEBHOOK_SECRET": "sec"}


def test_plan_grants_keeps_existing_roles_and_skips_held_ones() -> None:
    table = {
        "pin-message": ["owner", "moderator", "admin"],
        "delete-message": ["admin", "bot"],
        "view-c-room": ["admin", "user", "bot"],
    }
    grants = plan_grants(table, {"policies", "blocklists"})
    # permissions.update overwrites: the old holders must be sent along. Unknown ids are left out.
    assert grants == {"pin-message": ["owner", "moderator", "admin", "bot"]}


async def test_interactive_setup_shows_the_plan_and_can_be_declined(sandbox: Sandbox, tmp_path: Path) -> None:
    allow_slash_commands(sandbox)
    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    before = snapshot(sandbox)

    def attempt(confirm: str) -> tuple[int, str]:
        args = parser.parse_args(["--out", str(tmp_path / f"{confirm}.toml"), "--bot-user", f"bot-{confirm}"])
        answers = iter([sandbox.url, "admin", "general", confirm])
        out, err = io.StringIO(), io.StringIO()
        code = run_setup_command(
            args,
            _Tty(),
            out,
            err,
            {},
            ask=lambda _p: next(answers),
            ask_secret=lambda _p: admin_password(sandbox),
        )
        return code, out.getvalue()

    code, text = await asyncio.to_thread(attempt, "n")
    assert code == 1 and "declined: nothing was changed" in text
    assert "[plan] create user bot-n with role bot" in text and "[plan] add it to general" in text
    assert snapshot(sandbox) == before
    code, text = await asyncio.to_thread(attempt, "y")
    assert code == 0, text
    assert sandbox.workspace.user_by_username("bot-y") is not None


async def test_the_first_change_failing_leaves_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    """An e-mail already in use is only found out by users.create itself."""
    allow_slash_commands(sandbox)
    before = snapshot(sandbox)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path, bot_email="alice@sandbox.invalid"), out)
    text = out.getvalue()
    assert result.code == 1
    assert "[FAIL] users.create: HTTP 400 [error-field-unavailable]" in text
    assert "rolled back: the workspace is as it was before setup" in text
    assert snapshot(sandbox) == before
