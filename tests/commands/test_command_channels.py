"""How commands reach the bot — `rcmod setup --commands dm|room|app` and what `rcmod doctor`
checks for each. DM-only is the main path: it needs no workspace setting and no app (Community
Edition allows no private apps since Rocket.Chat 7.0)."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from bot.cli.ops import add_setup_arguments, read_env_file, run_setup_command
from bot.config import load_settings
from bot.ops.checks import ALL_FEATURES, Status
from bot.ops.doctor import run_doctor
from bot.sandbox import Sandbox
from tests.ops.test_doctor import by_name, seeded_bot
from tests.ops.test_setup import admin_password, written_config

SLASH = "Message_AllowUnrecognizedSlashCommand"


def setup(sandbox: Sandbox, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    out_file = tmp_path / "rcmod.toml"
    argv = ["--server", sandbox.url, "--admin-user", "admin", "--rooms", "general", "--non-interactive"]
    args = parser.parse_args([*argv, "--out", str(out_file), "--bot-user", "modbot", *extra])
    out, err = io.StringIO(), io.StringIO()
    env = {"RCMOD_ADMIN_PASSWORD": admin_password(sandbox)}
    code = run_setup_command(args, io.StringIO(), out, err, env)
    return code, out.getvalue() + err.getvalue(), out_file


async def test_dm_only_is_the_default_and_needs_no_workspace_setting(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    assert sandbox.workspace.setting(SLASH) is False  # the server's default
    code, text, out_file = await asyncio.to_thread(setup, sandbox, tmp_path)
    assert code == 0, text
    assert f"[FAIL] setting {SLASH}" not in text
    assert "direct message" in text  # setup says what the choice means
    env_file = out_file.with_suffix(".env")
    settings = load_settings(out_file, read_env_file(env_file))
    assert settings.commands.via == "dm"
    assert "RCMOD_WEBHOOK_SECRET" not in read_env_file(env_file)
    checks = await run_doctor(settings, ALL_FEATURES - {"policies"})
    assert [c for c in checks if c.failed] == [], [c for c in checks if c.failed]
    assert by_name(checks)[f"setting {SLASH}"].status in (Status.OK, Status.SKIP)


async def test_room_commands_need_the_setting(sandbox: Sandbox, tmp_path: Path) -> None:
    code, text, _ = await asyncio.to_thread(setup, sandbox, tmp_path, "--commands", "room")
    assert code == 1, text
    assert f"[FAIL] setting {SLASH}" in text and "nothing was created" in text
    sandbox.workspace.set_setting(SLASH, True)
    code, text, out_file = await asyncio.to_thread(setup, sandbox, tmp_path, "--commands", "room")
    assert code == 0, text
    settings = load_settings(out_file, read_env_file(out_file.with_suffix(".env")))
    assert settings.commands.via == "room"
    sandbox.workspace.set_setting(SLASH, False)  # someone turns it off later: doctor notices
    checks = by_name(await run_doctor(settings, ALL_FEATURES - {"policies"}))
    assert checks[f"setting {SLASH}"].failed


async def test_app_commands_get_a_secret_and_doctor_wants_the_app(sandbox: Sandbox, tmp_path: Path) -> None:
    code, text, out_file = await asyncio.to_thread(setup, sandbox, tmp_path, "--commands", "app")
    assert code == 0, text
    env = read_env_file(out_file.with_suffix(".env"))
    assert len(env["RCMOD_WEBHOOK_SECRET"]) >= 32
    settings = load_settings(out_file, env)
    assert settings.commands.via == "app"
    checks = by_name(await run_doctor(settings, ALL_FEATURES - {"policies"}))
    assert checks["companion app"].failed  # chosen, but /report and /mod are not registered yet
    assert checks[f"setting {SLASH}"].status in (Status.OK, Status.SKIP)
    for command in ("report", "mod"):
        sandbox.workspace.commands.append(
            {"command": command, "params": "", "description": "", "clientOnly": False}
        )
    checks = by_name(await run_doctor(settings, ALL_FEATURES - {"policies"}))
    assert not checks["companion app"].failed and not checks["webhook secret"].failed
    no_secret = load_settings(out_file, {k: v for k, v in env.items() if k != "RCMOD_WEBHOOK_SECRET"})
    assert by_name(await run_doctor(no_secret, ALL_FEATURES - {"policies"}))["webhook secret"].failed


async def test_doctor_checks_only_what_each_choice_needs(sandbox: Sandbox, tmp_path: Path) -> None:
    def doctor_for(via: str, **extra: Any) -> Any:
        return run_doctor(seeded_bot(sandbox, tmp_path, commands={"via": via}, **extra), ALL_FEATURES)

    dm = by_name(await doctor_for("dm"))
    assert not dm[f"setting {SLASH}"].failed and not dm["webhook secret"].failed
    assert "companion app" not in dm or not dm["companion app"].failed
    assert by_name(await doctor_for("room"))[f"setting {SLASH}"].failed
    assert by_name(await doctor_for("app"))["webhook secret"].failed


def test_help_explains_each_choice() -> None:
    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    text = parser.format_help()
    assert "--commands" in text
    for word in ("dm", "room", "app", SLASH, "Community Edition"):
        assert word in text.replace("\n", " ").replace("  ", " "), word


def test_companion_app_flag_still_means_app(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    args = parser.parse_args(["--companion-app"])
    assert args.companion_app is True


@pytest.mark.parametrize("via", ["dm", "room", "app"])
def test_the_written_config_names_the_choice(tmp_path: Path, via: str) -> None:
    path = written_config(tmp_path, user_id="u1", autojoin=False, commands=via)
    assert load_settings(path, {}).commands.via == via
