"""Every `rcmod` subcommand, given bad input (bad flags, missing files, bad values, a server that
is down): exactly one line on stderr, no traceback, and the documented exit status (2 usage or
configuration, 1 failed). Real processes, so whatever reaches a user's terminal is what is checked."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.sandbox import Sandbox
from tests.helpers import bot_login_env, rcmod_process

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) rcmod")
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens
CREDS = {"RCMOD_SERVER_URL": DOWN, "RCMOD_USER_ID": "bot", "RCMOD_AUTH_TOKEN": "t0ken"}


def cases(tmp: Path) -> list[tuple[list[str], dict[str, str], int]]:
    garbage = tmp / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    garbage_dir = tmp / "garbage-data"
    garbage_dir.mkdir()
    (garbage_dir / "rcmod.sqlite3").write_bytes(b"this is not a database" * 100)
    empty = tmp / "empty"
    empty.mkdir()
    bad_list = tmp / "bad.txt"
    bad_list.write_bytes(b"\xff\xfe\x00")
    data = {"RCMOD_DATA_DIR": str(tmp / "data")}
    lists = tmp / "lists"
    lists.mkdir()
    (lists / "watch.txt").write_text("badword\n")
    return [
        (["--bogus"], {}, 2),
        (["frobnicate"], {}, 2),
        (["--config", "/nonexistent/rcmod.toml"], {}, 2),
        (["run", "--bogus"], {}, 2),
        (["run", "--config", "/nonexistent/rcmod.toml"], {}, 2),
        (["run"], {"RCMOD_SERVER_URL": DOWN, **data}, 2),  # no credential
        (["run"], {"RCMOD_SERVER_URL": "ftp://x", **data}, 2),
        (["run"], {**CREDS, **data, "RCMOD_HTTP_PORT": "99999"}, 2),
        (["run"], {**CREDS, **data}, 1),  # the server is down
        (["demo", "--bogus"], {}, 2),
        (["sandbox", "--port", "99999"], {}, 2),
        (["sandbox", "--port", "http"], {}, 2),
        (["sandbox", "--version", "not.a.version"], {}, 2),
        (["match"], {}, 2),
        (["match", "--bogus"], {}, 2),
        (["match", "--wordlists", "/nonexistent/lists"], {}, 2),
        (["match", "--wordlists", str(bad_list)], {}, 2),
        (["audit"], {}, 2),
        (["audit", "verify", "--bogus"], {}, 2),
        (["audit", "verify"], {"RCMOD_DATA_DIR": str(garbage_dir)}, 1),
        (["audit", "export", "--user", "u1"], {**data}, 2),  # no --out
        (["audit", "export", "--case", "x", "--out", str(tmp / "out")], {**data}, 2),
        (["audit", "verify-export", "/nonexistent/export"], {}, 2),
        (["audit", "verify-export", str(empty)], {}, 1),
        (["audit", "hold"], {**data}, 2),
        (["audit", "release", "--case", "nine"], {**data}, 2),
        (["audit", "erase"], {**data}, 2),
        (["audit", "erase", "--user", "u1"], {"RCMOD_DATA_DIR": str(garbage_dir)}, 1),
        (["audit", "key", "--bogus"], {}, 2),
        (["setup", "--bogus"], {}, 2),
        (["setup"], {}, 2),
        (["setup", "--server", "not-a-url", "--admin-user", "admin"], {"RCMOD_ADMIN_PASSWORD": "x"}, 2),
        (["setup", "--server", DOWN, "--admin-user", "admin"], {"RCMOD_ADMIN_PASSWORD": "x"}, 1),
        (["doctor", "--bogus"], {}, 2),
        (["doctor"], {}, 2),
        (["doctor"], {**CREDS, **data}, 1),
        (["policy"], {}, 2),
        (["policy", "sync", "--bogus"], {}, 2),
        (["policy", "sync"], {}, 2),
        (["policy", "sync"], {**CREDS, **data, "RCMOD_POLICY_DIR": str(empty)}, 1),
        (["policy", "sync", "--dry-run"], {**CREDS, **data, "RCMOD_POLICY_DIR": str(empty)}, 1),
        (["scan-history", "--since", "the dawn of time"], {**CREDS, **data}, 2),
        (["scan-history", "--room", "general"], {**CREDS, **data, "RCMOD_WORDLISTS": str(lists)}, 1),
        (["purge"], {}, 2),
        (["purge", "user", "bob"], {**CREDS, **data}, 2),  # neither --room nor --everywhere
        (["purge", "user", "bob", "--room", "general", "--since", "soon"], {**CREDS, **data}, 2),
        (["purge", "user", "bob", "--room", "general", "--threads", "burn"], {**CREDS, **data}, 2),
        (["purge", "user", "bob", "--room", "general", "--yes"], {**CREDS, **data}, 1),
        (["store"], {}, 2),
        (["store", "migrate", "--bogus"], {}, 2),
        (["store", "migrate"], {**data}, 2),  # no target
        (["store", "migrate", "--to", "mysql://u@db/rcmod"], {**data}, 2),
        # No store in the data folder (one of its own: other cases create stores in `data`).
        (
            ["store", "migrate", "--to", "postgresql://u@/rcmod?host=/x"],
            {"RCMOD_DATA_DIR": str(tmp / "none")},
            2,
        ),
        (
            ["store", "migrate", "--to", "postgresql://u@/rcmod?host=/nonexistent"],
            {"RCMOD_DATA_DIR": str(garbage_dir)},
            1,
        ),
    ]


async def run_one(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await rcmod_process(
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


async def test_every_subcommand_with_bad_input_says_one_line_and_exits_as_documented(tmp_path: Path) -> None:
    table = cases(tmp_path)
    gate = asyncio.Semaphore(4)

    async def check(args: list[str], env: dict[str, str], expected: int) -> str | None:
        async with gate:
            code, err = await run_one(args, env, tmp_path)
        lines = err.splitlines()
        if args[:1] == ["run"]:
            # The bot's own log (timestamped) is its product; what ends it is one line after it.
            lines = [line for line in lines if not LOG_LINE.match(line)]
        if code != expected or len(lines) != 1 or "Traceback" in err:
            return f"rcmod {' '.join(args)}: exit {code} (want {expected}), stderr:\n{err}"
        return None

    failures = [f for f in await asyncio.gather(*(check(*case) for case in table)) if f]
    assert not failures, "\n\n".join(failures)


async def test_a_problem_is_printed_once(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "bad.md").write_text("---\nrooms: [general\n---\ntext\n")
    (folder / "good.md").write_text("---\nrooms: [general]\n---\nBe kind.\n")
    env = {**bot_login_env(sandbox, tmp_path / "data"), "RCMOD_POLICY_DIR": str(folder)}
    proc = await rcmod_process(
        "policy",
        "sync",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    both = out.decode() + err.decode()
    assert both.count("bad.md: front matter is not valid YAML") == 1, both
    assert err.decode().splitlines() == ["rcmod policy sync: 1 problem (listed above)"], err
