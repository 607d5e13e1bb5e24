"""From `rcmod setup` to a running bot, as an administrator would go: optional settings warn
(only what the administrator asked for fails), setup ends with the exact command that starts the
bot, `rcmod run --env-file` reads the token setup wrote, and without it the error says how."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cli
from bot.ops.checks import ALL_FEATURES
from bot.ops.setup import render_config, run_setup
from bot.sandbox import Sandbox
from tests.conftest import until
from tests.helpers import free_port, rcmod_process, ready
from tests.ops.test_setup import options


async def test_an_optional_setting_off_warns_and_setup_goes_on(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.workspace.set_setting("Message_AllowPinning", False)
    sandbox.workspace.set_setting("Message_AllowDeleting", False)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path), out)
    text = out.getvalue()
    assert result.code == 0, text
    assert "[warn] setting Message_AllowPinning: off" in text
    assert "[warn] setting Message_AllowDeleting: off" in text
    assert "[FAIL]" not in text


async def test_a_setting_what_was_asked_for_needs_still_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.workspace.set_setting("Message_AllowPinning", False)
    out = io.StringIO()
    result = await run_setup(options(sandbox, tmp_path, features=frozenset({"policies"})), out)
    assert result.code == 1
    assert "[FAIL] setting Message_AllowPinning: off" in out.getvalue()
    out = io.StringIO()  # commands typed in rooms need the slash-command setting (off by default)
    result = await run_setup(options(sandbox, tmp_path, commands="room"), out)
    assert result.code == 1
    assert "[FAIL] setting Message_AllowUnrecognizedSlashCommand: off" in out.getvalue()


async def test_setup_ends_with_the_command_that_starts_the_bot(sandbox: Sandbox, tmp_path: Path) -> None:
    opts = options(sandbox, tmp_path)
    out = io.StringIO()
    result = await run_setup(opts, out)
    assert result.code == 0
    last = out.getvalue().strip().splitlines()[-1]
    assert f"rcmod run --config {opts.out} --env-file {opts.env_file}" in last


def written_config(tmp_path: Path) -> Path:
    config = tmp_path / "rcmod.toml"
    config.write_text(
        render_config(
            server="http://127.0.0.1:9",
            user_id="BotUserId12345678",
            autojoin=False,
            env_file=tmp_path / "rcmod.env",
            now=datetime.now(UTC),
            features=ALL_FEATURES,
        )
    )
    return config


def test_run_without_the_token_says_to_pass_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [k for k in os.environ if k.startswith("RCMOD_")]:
        monkeypatch.delenv(key)
    assert cli.main(["run", "--config", str(written_config(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--env-file" in err and "RCMOD_AUTH_TOKEN" in err


def test_run_with_an_unreadable_or_broken_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [k for k in os.environ if k.startswith("RCMOD_")]:
        monkeypatch.delenv(key)
    config = str(written_config(tmp_path))
    assert cli.main(["run", "--config", config, "--env-file", str(tmp_path / "missing.env")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.env" in err
    broken = tmp_path / "broken.env"
    broken.write_text("RCMOD_AUTH_TOKEN=s3cr3t-value\nthis-line-is-s3cr3t-too\n")
    assert cli.main(["run", "--config", config, "--env-file", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.env:2" in err
    assert "s3cr3t" not in err  # values are never shown


async def test_run_with_the_env_file_setup_wrote_starts_the_bot(sandbox: Sandbox, tmp_path: Path) -> None:
    opts = options(sandbox, tmp_path)
    result = await run_setup(opts, io.StringIO())
    assert result.code == 0 and result.token is not None
    port = free_port()
    env = {"RCMOD_HTTP_PORT": str(port)}  # the written config leaves the port at its default
    command = ["run", "--config", str(opts.out), "--env-file", str(opts.env_file)]
    proc = await rcmod_process(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert await ready(port), "the bot did not become ready"
        ws = sandbox.workspace
        sandbox.dm_as("alice", opts.bot_user, "help")
        bot = ws.user_by_username(opts.bot_user)
        assert bot is not None
        assert await until(
            lambda: any(m["u"]["_id"] == bot.id and "/report" in str(m["msg"]) for m in ws.messages.values())
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
    assert code == 0
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert result.token.get_secret_value() not in err  # the token is never logged
