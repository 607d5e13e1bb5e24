"""`rcmod doctor` against the sandbox: green on a good setup, and each broken thing named."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.config import Settings
from bot.ops.checks import (
    ALL_FEATURES,
    Check,
    Status,
    exit_code,
    parse_features,
    permission_checks,
    render,
    setting_checks,
    version_checks,
)
from bot.ops.doctor import default_features, local_checks, run_doctor
from bot.sandbox import Sandbox
from tests.conftest import bot_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "wordlists" / "examples"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def seeded_bot(sandbox: Sandbox, tmp_path: Path, **overrides: Any) -> Settings:
    return bot_settings(sandbox, tmp_path / "data", **overrides)


async def test_the_seeded_bot_passes_every_check(sandbox: Sandbox, tmp_path: Path) -> None:
    """The sandbox's rcmod.bot holds what `rcmod setup` grants, so doctor is green for it."""
    sandbox.workspace.set_setting("Message_AllowUnrecognizedSlashCommand", True)
    examples = EXAMPLES
    settings = seeded_bot(
        sandbox, tmp_path, moderation={"moderators": ["mod1", "mod2"], "wordlists": [str(examples)]}
    )
    checks = await run_doctor(settings, ALL_FEATURES)
    assert [c for c in checks if c.status in (Status.FAIL, Status.WARN)] == []
    named = by_name(checks)
    assert named["moderator mod1"].status is Status.OK
    assert named["room staff"].detail == "visible (private group)"


def test_the_seed_grants_what_setup_grants() -> None:
    """PRODUCT.md: the seeded rcmod.bot has role bot plus the permissions `rcmod setup` grants."""
    from bot.ops.checks import required_permissions
    from bot.sandbox.seed import SETUP_PERMISSIONS
    from bot.sandbox.workspace import DEFAULT_PERMISSIONS

    held_by_default = {p for p, roles in DEFAULT_PERMISSIONS.items() if "bot" in roles}
    assert set(required_permissions(ALL_FEATURES)) <= set(SETUP_PERMISSIONS) | held_by_default


async def test_without_moderators_the_admins_are_checked(sandbox: Sandbox, tmp_path: Path) -> None:
    checks = by_name(await run_doctor(seeded_bot(sandbox, tmp_path), ALL_FEATURES))
    assert checks["moderators"].status is Status.WARN and "(admin)" in checks["moderators"].detail
    assert checks["moderator admin"].status is Status.OK


async def test_each_broken_permission_and_setting_is_named(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = sandbox.workspace
    ws.permissions["pin-message"]["roles"].remove("bot")
    ws.permissions["clean-channel-history"]["roles"].remove("bot")
    ws.set_setting("Message_AllowPinning", False)
    ws.set_setting("Message_AllowDeleting", False)
    bad_list = tmp_path / "lists" / "bad.txt"
    bad_list.parent.mkdir()
    bad_list.write_text("fine\nmid*dle\n")
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    config = tmp_path / "rcmod.toml"
    config.write_text(
        f'[server]\nurl = "{sandbox.url}"\nuser_id = "{bot["id"]}"\n'
        '[moderation]\nmoderators = ["mod1", "ghost"]\nwordlists = ["lists"]\n'
        '[commands]\nvia = "room"\n'  # room commands need Message_AllowUnrecognizedSlashCommand
    )
    monkeypatch.setenv("RCMOD_AUTH_TOKEN", bot["token"])
    argv = ["doctor", "--config", str(config), "--features", "all", "--rooms", "general,nowhere"]
    code = await asyncio.to_thread(cli.main, argv)
    text = capsys.readouterr().out
    assert code == 1
    failed = {line.split(":")[0] for line in text.splitlines() if line.startswith("[FAIL]")}
    assert failed == {
        "[FAIL] permission pin-message",
        "[FAIL] permission clean-channel-history",
        "[FAIL] setting Message_AllowPinning",
        "[FAIL] setting Message_AllowDeleting",
        "[FAIL] setting Message_AllowUnrecognizedSlashCommand",
        "[FAIL] room nowhere",
        "[FAIL] moderator ghost",
        "[FAIL] wordlists",
    }, text
    # Every failure says what to do.
    assert all(" -> " in line for line in text.splitlines() if line.startswith("[FAIL]"))
    assert "tick pin-message for role bot" in text
    assert bot["token"] not in text
    assert "[ ok ] moderator mod1" in text


async def test_a_refused_token_stops_the_server_checks(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = seeded_bot(sandbox, tmp_path, server={"auth_token": "not-the-token"})
    checks = await run_doctor(settings, ALL_FEATURES)
    named = by_name(checks)
    assert named["logged in"].failed and "RUNBOOK" in named["logged in"].fix
    assert named["server checks"].status is Status.SKIP
    assert "permission pin-message" not in named
    assert "store" in named  # local checks still run
    assert exit_code(checks) == 1


async def test_an_unreachable_server(sandbox: Sandbox, tmp_path: Path) -> None:
    url = sandbox.url
    await sandbox.stop()
    checks = await run_doctor(seeded_bot(sandbox, tmp_path, server={"url": url}), ALL_FEATURES)
    named = by_name(checks)
    assert named["server reachable"].failed and "cannot connect" in named["server reachable"].detail


async def test_companion_app_without_a_secret(sandbox: Sandbox, tmp_path: Path) -> None:
    for command in ("report", "mod"):
        sandbox.workspace.commands.append(
            {"command": command, "params": "", "description": "", "clientOnly": False}
        )
    checks = by_name(await run_doctor(seeded_bot(sandbox, tmp_path), ALL_FEATURES))
    assert checks["webhook secret"].failed
    # The app carries the commands, so the no-app setting is not required.
    assert checks["setting Message_AllowUnrecognizedSlashCommand"].status is Status.OK
    with_secret = seeded_bot(sandbox, tmp_path, http={"webhook_secret": "s3cret"})
    checks = by_name(await run_doctor(with_secret, ALL_FEATURES))
    assert checks["webhook secret"].status is Status.OK


async def test_a_bot_in_no_room_without_autojoin(sandbox: Sandbox, tmp_path: Path) -> None:
    ws = sandbox.workspace
    bot = ws.user_by_username("rcmod.bot")
    assert bot is not None
    for room in list(ws.rooms.values()):
        ws.remove_user_from_room(room, bot, None)
    checks = by_name(await run_doctor(seeded_bot(sandbox, tmp_path), ALL_FEATURES))
    assert checks["rooms"].failed and "autojoin" in checks["rooms"].fix
    autojoin = seeded_bot(sandbox, tmp_path, moderation={"autojoin": True})
    assert not by_name(await run_doctor(autojoin, ALL_FEATURES))["rooms"].failed


def test_store_and_policy_checks(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    settings = Settings.model_validate(
        {"storage": {"data_dir": str(a_file / "data")}, "policy": {"dir": str(tmp_path / "none")}}
    )
    checks = by_name(local_checks(settings))
    assert checks["store"].failed and checks["policy dir"].failed
    assert checks["wordlists"].status is Status.WARN
    good = Settings.model_validate({"storage": {"data_dir": str(tmp_path / "new" / "data")}})
    assert by_name(local_checks(good))["store"].status is Status.OK
    assert default_features(good) == ALL_FEATURES - {"policies"}


def test_doctor_config_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RCMOD_SERVER_URL", "RCMOD_AUTH_TOKEN", "RCMOD_USER_ID", "RCMOD_USERNAME", "RCMOD_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "c.toml"
    config.write_text('[server]\nurl = "http://127.0.0.1:9"\nuser_id = "abc"\n')
    assert cli.main(["doctor", "--config", str(config)]) == 2  # no token
    env = tmp_path / "rcmod.env"
    env.write_text("RCMOD_AUTH_TOKEN\n")
    assert cli.main(["doctor", "--config", str(config), "--env-file", str(env)]) == 2
    assert cli.main(["doctor", "--config", str(tmp_path / "missing.toml")]) == 2
    env.write_text("RCMOD_AUTH_TOKEN=x\n")
    assert cli.main(["doctor", "--config", str(config), "--env-file", str(env), "--features", "x"]) == 2


# ---------------------------------------------------------------- pure checks


@pytest.mark.parametrize(
    ("roles", "holders", "status"),
    [
        (["bot"], ["admin", "bot"], Status.OK),
        (["bot", "user"], ["user"], Status.OK),
        (["bot"], ["admin"], Status.FAIL),
        ([], ["admin"], Status.FAIL),
    ],
)
def test_permission_check(roles: list[str], holders: list[str], status: Status) -> None:
    table = {"pin-message": holders}
    check = by_name(permission_checks(table, roles, {"policies"}))["permission pin-message"]
    assert check.status is status


def test_missing_permission_on_the_server_and_warn_only() -> None:
    checks = by_name(permission_checks({"create-personal-access-tokens": ["admin"]}, ["bot"], set()))
    assert checks["permission create-personal-access-tokens"].status is Status.WARN
    assert (
        checks["permission view-c-room"].failed
        and "no such permission" in checks["permission view-c-room"].detail
    )


def test_setting_checks_follow_features() -> None:
    values: dict[str, object] = {
        "Message_AllowPinning": False,
        "Message_AllowDeleting": True,
        "Message_AllowEditing": False,
        "Message_AllowUnrecognizedSlashCommand": True,
        "Accounts_ManuallyApproveNewUsers": True,
    }
    only_reports = by_name(setting_checks(values, {"reports"}, commands="room"))
    assert "setting Message_AllowPinning" not in only_reports
    everything = by_name(setting_checks(values, ALL_FEATURES, commands="room"))
    assert everything["setting Message_AllowPinning"].failed
    assert everything["setting Message_AllowEditing"].status is Status.WARN
    assert "alerted" in everything["setting Accounts_ManuallyApproveNewUsers"].detail
    missing = by_name(setting_checks({}, ALL_FEATURES, commands="room"))
    assert missing["setting Message_AllowUnrecognizedSlashCommand"].failed


def test_version_checks_and_features() -> None:
    assert exit_code(version_checks("7.10.0", ALL_FEATURES)) == 0
    assert exit_code(version_checks("6.1.0", {"blocklists"})) == 0
    assert exit_code(version_checks("6.1.0", {"reports"})) == 1
    assert exit_code(version_checks("5.4.2-rc.1", set())) == 1
    assert parse_features("all") == ALL_FEATURES and parse_features("purge, reports") == {"purge", "reports"}
    with pytest.raises(ValueError, match="unknown feature"):
        parse_features("purge,nope")


def test_render_is_one_line_with_the_fix() -> None:
    assert render(Check("a", Status.OK, "fine", "ignored")) == "[ ok ] a: fine"
    assert render(Check("b", Status.FAIL, "broken", "do x")) == "[FAIL] b: broken -> do x"


async def test_a_server_too_old(tmp_path: Path) -> None:
    from tests.sandbox.test_sandbox_support import running

    async with running(version="5.4.0") as (sandbox, _seed):
        checks = by_name(await run_doctor(seeded_bot(sandbox, tmp_path), ALL_FEATURES))
    assert checks["server version"].failed and "older than 6.0" in checks["server version"].detail
    assert checks["server checks"].status is Status.SKIP


def test_the_checks_module_is_pure() -> None:
    """bot/ops/checks.py decides; it imports no I/O library (STYLE.md practice 1)."""
    from tests.test_architecture import IO_LIBRARIES, ROOT, _imports

    names = _imports(ROOT / "bot" / "ops" / "checks.py")
    assert not {n for n in names if any(n == lib or n.startswith(lib + ".") for lib in IO_LIBRARIES)}


def test_the_image_model_check_loads_verifies_and_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ops.doctor import image_model_check
    from bot.vision import bundled_model_path

    good = image_model_check()
    assert good.status is Status.OK and "checksum verified" in good.detail
    assert by_name(local_checks(Settings.model_validate({})))["image model"].status is Status.OK

    swapped = tmp_path / "open-nsfw.onnx"
    swapped.write_bytes(bundled_model_path().read_bytes()[:-1] + b"\0")
    for path, says in [(swapped, "fails its checksum"), (tmp_path / "absent.onnx", "cannot be read")]:
        failed = image_model_check(path)
        assert failed.failed and says in failed.detail and "reinstall" in failed.fix
        assert "\n" not in render(failed)

    monkeypatch.setattr("bot.vision.scorer._MODEL_FILE", "gone.onnx")
    missing = image_model_check()
    assert missing.failed and "missing from the installed package" in missing.detail
