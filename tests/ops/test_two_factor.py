"""E-mail two-factor authentication, as a default Rocket.Chat server applies it.

Facts held here (app/2fa/server/code/index.ts checkCodeForUser, code/EmailCheck.ts,
app/2fa/server/loginHandler.ts, app/authentication/server/startup/index.js insertUserDoc,
app/lib/server/functions/saveUser/saveNewUser.ts, app/api/server/api.ts login route):

- every new user gets ``services.email2fa`` while Auto_Opt_In is on (the default), but e-mail 2FA
  applies only to a user with a *verified* address; users.create stores ``verified`` as given;
- a password login of such a user (REST or DDP) fails with ``totp-required`` and e-mails a
  six-digit code; asking again within its life sends no new one (``codeGenerated: false``);
- the code logs in once (REST ``code`` / ``x-2fa-code``, DDP ``{"totp": {"login", "code"}}``);
  a wrong one is ``totp-invalid``.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli.ops import add_setup_arguments, run_setup_command
from bot.sandbox import Sandbox
from tests.ops.test_setup import admin_password, allow_slash_commands, options

ADMIN_MAIL = "Admin.Person@Example.org"


def give_admin_email_2fa(sandbox: Sandbox) -> None:
    """The admin account as a default server leaves it: a verified address, e-mail 2FA on."""
    allow_slash_commands(sandbox)
    admin = sandbox._user("admin")
    admin.mail, admin.mail_verified, admin.email2fa = ADMIN_MAIL, True, True


async def rest_login(sandbox: Sandbox, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    url = f"{sandbox.url}/api/v1/login"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def create_user(sandbox: Sandbox, username: str, *, verified: bool) -> str:
    admin = sandbox._user("admin")
    token = sandbox.workspace.create_personal_access_token(admin.id)
    body = {
        "username": username,
        "name": username,
        "email": f"{username.capitalize()}@Example.org",
        "password": f"{username}-secret",
        "verified": verified,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{sandbox.url}/api/v1/users.create",
            json=body,
            headers={"X-User-Id": admin.id, "X-Auth-Token": token},
        ) as resp,
    ):
        data = await resp.json()
    assert data["success"] is True, data
    # The address is stored as given, with the verified flag as given.
    assert data["user"]["emails"] == [{"address": body["email"], "verified": verified}]
    return f"{username}-secret"


async def test_a_verified_user_gets_an_emailed_code_and_logs_in_with_it(sandbox: Sandbox) -> None:
    password = await create_user(sandbox, "verity", verified=True)
    status, body = await rest_login(sandbox, {"user": "verity", "password": password})
    assert status == 401
    assert body["success"] is False and body["status"] == "error"
    assert (body["error"], body["message"]) == ("totp-required", "TOTP Required")
    assert body["details"] == {
        "method": "email",
        "codeGenerated": True,
        "emailOrUsername": "verity",
        "availableMethods": ["email"],
    }
    [code] = sandbox.workspace.email_codes_for("verity")
    assert len(code) == 7 and code[3] == "-"  # shown as 123-456
    # Asked again while the code lives: no second mail, and the answer says when it expires.
    status, body = await rest_login(sandbox, {"user": "verity", "password": password})
    assert status == 401 and body["details"]["codeGenerated"] is False
    assert "codeExpires" in body["details"]
    assert sandbox.workspace.email_codes_for("verity") == [code]
    status, body = await rest_login(sandbox, {"user": "verity", "password": password, "code": "000000"})
    assert (status, body["error"]) == (401, "totp-invalid")
    status, body = await rest_login(sandbox, {"user": "verity", "password": password}, **{"x-2fa-code": code})
    assert status == 200 and body["status"] == "success", body
    # A code works once: the next login gets a fresh one mailed, and the old one is invalid.
    status, body = await rest_login(sandbox, {"user": "verity", "password": password, "code": code})
    assert status == 401 and body["error"] == "totp-invalid" and body["details"]["codeGenerated"] is True
    assert len(sandbox.workspace.email_codes_for("verity")) == 2


async def test_an_unverified_address_means_no_email_2fa(sandbox: Sandbox) -> None:
    password = await create_user(sandbox, "plain", verified=False)
    status, body = await rest_login(sandbox, {"user": "plain", "password": password})
    assert status == 200, body
    assert sandbox.workspace.email_codes_for("plain") == []


async def test_ddp_login_asks_for_the_code_and_takes_it(sandbox: Sandbox) -> None:
    import hashlib

    import websockets

    password = await create_user(sandbox, "ddpuser", verified=True)
    digest = hashlib.sha256(password.encode()).hexdigest()
    login = {"user": {"username": "ddpuser"}, "password": {"digest": digest, "algorithm": "sha-256"}}
    url = sandbox.url.replace("http", "ws", 1) + "/websocket"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"msg": "connect", "version": "1", "support": ["1"]}))

        async def call(mid: str, params: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps({"msg": "method", "method": "login", "id": mid, "params": [params]}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("msg") == "result" and frame.get("id") == mid:
                    return dict(frame)

        first = await call("1", login)
        error = first["error"]
        assert (error["error"], error["reason"], error["message"]) == (
            "totp-required",
            "TOTP Required",
            "TOTP Required [totp-required]",
        )
        assert error["isClientSafe"] is True and error["errorType"] == "Meteor.Error"
        assert error["details"]["method"] == "email" and error["details"]["availableMethods"] == ["email"]
        [code] = sandbox.workspace.email_codes_for("ddpuser")
        second = await call("2", {"totp": {"login": login, "code": code}})
        assert "error" not in second and second["result"]["type"] == "password"


async def test_setup_works_on_a_default_server(sandbox: Sandbox, tmp_path: Path) -> None:
    """E-mail 2FA is on by default; the bot must still get its token."""
    assert sandbox.workspace.setting("Accounts_TwoFactorAuthentication_By_Email_Auto_Opt_In") is True
    allow_slash_commands(sandbox)
    out = io.StringIO()
    from bot.ops.setup import run_setup

    result = await run_setup(options(sandbox, tmp_path), out)
    assert result.code == 0, out.getvalue()
    assert result.bot_user_id is not None
    bot = sandbox.workspace.users[result.bot_user_id]
    # Its address is one the server treats as unverified, so e-mail 2FA never applies to it.
    assert bot.mail_verified is False and not sandbox.workspace.email_two_factor_enabled(bot)
    assert sandbox.workspace.email_codes_for("modbot") == []


def setup_args(sandbox: Sandbox, tmp_path: Path, *extra: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    argv = ["--server", sandbox.url, "--admin-user", "admin", "--rooms", "general"]
    return parser.parse_args([*argv, "--out", str(tmp_path / "rcmod.toml"), "--bot-user", "modbot", *extra])


async def test_an_admin_with_email_2fa_is_told_what_to_do_then_passes_the_code(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    give_admin_email_2fa(sandbox)
    env = {"RCMOD_ADMIN_PASSWORD": admin_password(sandbox)}
    out, err = io.StringIO(), io.StringIO()
    args = setup_args(sandbox, tmp_path, "--non-interactive")
    code = await asyncio.to_thread(run_setup_command, args, io.StringIO(), out, err, env)
    text = out.getvalue() + err.getvalue()
    assert code == 2, text
    assert "RCMOD_ADMIN_2FA_CODE" in text and "e-mail" in text
    assert "Traceback" not in text
    assert sandbox.workspace.user_by_username("modbot") is None  # nothing was created
    [mailed] = sandbox.workspace.email_codes_for("admin")
    # Run again with the e-mailed code: setup goes through.
    env["RCMOD_ADMIN_2FA_CODE"] = mailed
    out = io.StringIO()
    code = await asyncio.to_thread(run_setup_command, setup_args(sandbox, tmp_path, "--non-interactive"),
                                   io.StringIO(), out, err, env)  # fmt: skip
    assert code == 0, out.getvalue() + err.getvalue()
    assert sandbox.workspace.user_by_username("modbot") is not None
    assert mailed not in out.getvalue()  # the code is a secret too


async def test_an_admin_with_email_2fa_is_asked_for_the_code_in_a_terminal(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    give_admin_email_2fa(sandbox)
    asked: list[str] = []

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def ask_secret(prompt: str) -> str:
        asked.append(prompt)
        return sandbox.workspace.email_codes_for("admin")[-1]

    env = {"RCMOD_ADMIN_PASSWORD": admin_password(sandbox)}
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        run_setup_command,
        setup_args(sandbox, tmp_path, "--autojoin"),
        Tty(),
        out,
        err,
        env,
        ask=lambda prompt: "y",
        ask_secret=ask_secret,
    )
    assert code == 0, out.getvalue() + err.getvalue()
    assert len(asked) == 1 and "e-mail" in asked[0]


async def test_the_bots_password_mode_on_an_account_with_email_2fa_ends_in_one_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`rcmod run` in its own process, as an operator starts it."""
    import os
    import sys

    password = await create_user(sandbox, "pwbot", verified=True)
    env = {
        **os.environ,
        "RCMOD_SERVER_URL": sandbox.url,
        "RCMOD_USERNAME": "pwbot",
        "RCMOD_PASSWORD": password,
        "RCMOD_DATA_DIR": str(tmp_path / "data"),
        "RCMOD_HTTP_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, raw = await asyncio.wait_for(proc.communicate(), timeout=60)
    err = raw.decode()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("rcmod:")]
    assert len(lines) == 1, err
    assert "personal access token" in lines[0] and "RCMOD_AUTH_TOKEN" in lines[0]
    assert "Traceback" not in err and password not in err
    # One login attempt, so one e-mail: no retry loop.
    assert len(sandbox.workspace.email_codes_for("pwbot")) == 1


async def test_the_realtime_login_names_the_second_factor_and_stops(sandbox: Sandbox) -> None:
    """DDP login of a 2FA account: a fatal TwoFactorRequired (an AuthError), never a reconnect loop."""
    from pydantic import SecretStr

    from bot.config import Credentials
    from bot.errors import TwoFactorRequired
    from bot.realtime.client import RealtimeClient

    password = await create_user(sandbox, "ddpbot", verified=True)
    client = RealtimeClient(sandbox.url, Credentials(username="ddpbot", password=SecretStr(password)))
    try:
        with pytest.raises(TwoFactorRequired) as caught:
            async for _event in client.events():
                pass
    finally:
        await client.close()
    assert caught.value.method == "email" and not caught.value.refused_code
    assert len(sandbox.workspace.email_codes_for("ddpbot")) == 1


async def test_doctor_says_to_use_a_token_for_a_password_bot_with_email_2fa(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from bot.config import Settings
    from bot.ops.doctor import run_doctor

    password = await create_user(sandbox, "pwdoc", verified=True)
    settings = Settings.model_validate(
        {
            "server": {"url": sandbox.url, "username": "pwdoc", "password": password},
            "storage": {"data_dir": str(tmp_path / "data")},
        }
    )
    checks = {c.name: c for c in await run_doctor(settings, {"reports"})}
    assert checks["logged in"].failed and "personal access token" in checks["logged in"].fix
