"""Journey: an administrator installs rcmod on a workspace: `rcmod setup` (non-interactive), then
`rcmod doctor`, then `rcmod run` with the files setup wrote; a member then reaches the new bot."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from tests.journeys.conftest import BotProcess, CliResult, World, base_env, free_port, poll, rcmod


def read_env_file(path: Path) -> dict[str, str]:
    """What a shell's `set -a; . rcmod.env` would export."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


async def run_supports_env_file() -> bool:
    help_text = await rcmod(["run", "--help"], base_env())
    return "--env-file" in help_text.out


async def setup_non_interactive(world: World, config: Path, bot_user: str, commands: str) -> CliResult:
    """`rcmod setup --non-interactive`, writing ``config`` and its env file beside it."""
    seed = world.seed
    admin_env = {**base_env(), "RCMOD_ADMIN_PASSWORD": seed.user("admin")["password"]}
    config.parent.mkdir()
    setup = await rcmod(
        [
            "setup",
            "--server",
            seed.url,
            "--admin-user",
            "admin",
            "--rooms",
            "general,random",
            "--bot-user",
            bot_user,
            "--commands",
            commands,
            "--out",
            str(config),
            "--non-interactive",
        ],
        admin_env,
    )
    return setup


def files_setup_wrote(world: World, setup: CliResult, config: Path, commands: str) -> dict[str, str]:
    """The config and env file are there, the secrets only in the env file; what it exports."""
    seed = world.seed
    assert setup.code == 0, setup
    env_file = config.with_suffix(".env")
    assert config.exists() and env_file.exists()
    assert env_file.stat().st_mode & 0o077 == 0  # the token file is the operator's alone
    secrets_env = read_env_file(env_file)
    assert seed.user("admin")["password"] not in setup.out + setup.err + config.read_text()
    assert secrets_env["RCMOD_AUTH_TOKEN"] not in setup.out + config.read_text()
    if commands == "app":
        assert len(secrets_env.get("RCMOD_WEBHOOK_SECRET", "")) >= 32
    return secrets_env


async def doctor_says(config: Path, env_file: Path, local: dict[str, str], commands: str) -> None:
    doctor = await rcmod(["doctor", "--config", str(config), "--env-file", str(env_file)], local)
    problems = [line for line in doctor.out.splitlines() if line.startswith("[FAIL]")]
    if commands == "dm":
        assert doctor.code == 0, problems
        assert "0 failed" in doctor.out
    else:
        # The companion app is uploaded in Administration > Apps, which the sandbox cannot host:
        # until then doctor names exactly that, and what to do about it.
        assert doctor.code == 1, doctor
        assert len(problems) == 1 and "companion app" in problems[0] and "deploy/rc-app" in problems[0], (
            problems
        )


@pytest.mark.parametrize("commands", ["dm", "app"])
async def test_install_setup_doctor_run(world: World, tmp_path: Path, commands: str) -> None:
    seed = world.seed
    config = tmp_path / "site" / "rcmod.toml"
    bot_user = f"modbot-{commands}"  # the seed's own rcmod.bot already exists
    setup = await setup_non_interactive(world, config, bot_user, commands)
    secrets_env = files_setup_wrote(world, setup, config, commands)
    env_file = config.with_suffix(".env")

    port = free_port()
    # The bot's port and store are this machine's business, not the workspace's: set as an
    # operator would for a second instance on one host.
    local = {**base_env(), "RCMOD_HTTP_PORT": str(port), "RCMOD_DATA_DIR": str(tmp_path / "data")}
    await doctor_says(config, env_file, local, commands)

    if await run_supports_env_file():
        bot = BotProcess(world.procs, local, ["run", "--config", str(config), "--env-file", str(env_file)])
    else:
        # `rcmod run --env-file` is not there yet: the harness exports the file, as a shell would.
        bot = BotProcess(world.procs, {**local, **secrets_env}, ["run", "--config", str(config)])
    await bot.start()

    # The new bot answers a member's DM.
    alice = await world.person("alice")
    dm = await alice.dm_with(bot_user)
    await alice.send(dm, "help")
    assert await poll(
        lambda: any(
            (m.get("u") or {}).get("username") == bot_user and m["rid"] == dm
            for m in alice.seen.messages.values()
        ),
        15,
    ), alice.seen.messages

    if commands == "app":
        # The companion app's call, signed with the secret setup made, is answered.
        body = json.dumps(
            {
                "command": "mod",
                "args": "help",
                "user": {"id": seed.user("mod1")["id"], "username": "mod1"},
                "room": {"id": seed.room_id("general"), "name": "general"},
                "tmid": None,
                "trigger_id": "t-1",
            }
        ).encode()
        ts = str(int(time.time()))
        mac = hmac.new(
            secrets_env["RCMOD_WEBHOOK_SECRET"].encode(), ts.encode() + b"." + body, hashlib.sha256
        )
        headers = {
            "Content-Type": "application/json",
            "X-Rcmod-Timestamp": ts,
            "X-Rcmod-Signature": f"sha256={mac.hexdigest()}",
        }
        async with world.http.post(f"http://127.0.0.1:{port}/hooks/command", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["text"]
    assert await bot.stop() == 0
