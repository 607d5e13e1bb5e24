"""Hostile or broken input ends in one clear line and the documented exit status, never a
traceback: config files (TOML) and policy files (YAML front matter) that are binary, nested 5,000
deep or hold a 5,000-digit number; non-finite numbers in the config; `rcmod match` lines nested
deep as JSON or longer than any message, which are reported one by one while the rest is scanned."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError, RcmodError
from bot.sandbox import Sandbox
from bot.services.policies import read_policy_dir
from tests.conftest import bot_settings
from tests.helpers import write_lists

HOSTILE_TOML = {
    "binary": b"\xff\xfe\x00\x01\x89PNG\r\n\x1a\n\x00\x00",
    "deep arrays": b"[server]\nurl = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep tables": b"x = " + b"{a = " * 5000 + b"1" + b"}" * 5000 + b"\n",
    "5000 digits": b"[http]\nport = " + b"9" * 5000 + b"\n",
    "inf": b"[realtime]\nping_interval = inf\n",
    "nan": b"[realtime]\npong_timeout = nan\n",
    "-inf": b"[sanctions]\ndecay_days = -inf\n",
}


@pytest.mark.parametrize("content", HOSTILE_TOML.values(), ids=HOSTILE_TOML.keys())
def test_hostile_config_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "rcmod.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    assert (
        str(path) in message or "ping_interval" in message or "pong_timeout" in message or "decay" in message
    )


@pytest.mark.parametrize("content", HOSTILE_TOML.values(), ids=HOSTILE_TOML.keys())
def test_rcmod_run_with_a_hostile_config_exits_2_in_one_line(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rcmod.toml"
    path.write_bytes(content)
    assert main(["run", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("rcmod: configuration error: ")


HOSTILE_POLICY = {
    "binary": b"---\nrooms: [general]\n---\n\xff\xfe\x00\x01",
    "control characters": b"---\nrooms: [general]\x00\x01\n---\ntext\n",
    "deep lists": b"---\nrooms: " + b"[" * 5000 + b"]" * 5000 + b"\n---\ntext\n",
    "deep mappings": b"---\nrooms: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n---\ntext\n",
    "5000 digits": b"---\nrooms: [general]\nbanner: " + b"9" * 5000 + b"\n---\ntext\n",
    "5000 digit key": b"---\n" + b"9" * 5000 + b": 1\nrooms: [general]\n---\ntext\n",
}


@pytest.mark.parametrize("content", HOSTILE_POLICY.values(), ids=HOSTILE_POLICY.keys())
def test_hostile_policy_file_is_one_problem_and_the_others_still_count(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "bad.md").write_bytes(content)
    (tmp_path / "good.md").write_text("---\nrooms: [general]\n---\nBe kind.\n")
    specs, problems = read_policy_dir(tmp_path)
    assert list(specs) == ["good"]
    [problem] = problems
    assert problem.policy == "bad" and "bad.md" in problem.reason, problem
    assert "\n" not in problem.reason and len(problem.reason) < 300


def run_match(
    args: list[str], stdin: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[dict[str, object]], str]:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
    code = main(["match", *args])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def test_match_jsonl_deeply_nested_line_is_reported_and_scanning_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lists = write_lists(tmp_path)
    text = "\n".join(["[" * 5000 + "]" * 5000, "1" * 5000, json.dumps("a badword here")]) + "\n"
    code, rows, err = run_match(["--wordlists", str(lists), "--jsonl"], text, capsys, monkeypatch)
    assert code == 2
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[0]["error"] == rows[1]["error"] == "not a JSON string"
    assert [m["term"] for m in rows[2]["matches"]] == ["badword"]  # type: ignore[index]
    assert len(err.splitlines()) == 2  # one line for each line not scanned


def test_match_bounds_the_line_length_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli.match import MAX_LINE_CHARS

    lists = write_lists(tmp_path)
    long = "badword " * (MAX_LINE_CHARS // 8 + 10)
    text = "first badword\n" + long + "\nlast badword\n"
    code, rows, err = run_match(["--wordlists", str(lists)], text, capsys, monkeypatch)
    assert code == 1
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[1]["matches"] == [] and "longer than" in str(rows[1]["error"])
    assert len(rows[0]["matches"]) == len(rows[2]["matches"]) == 1  # type: ignore[arg-type]
    [line] = err.splitlines()
    assert line.startswith("rcmod match: line 2: longer than")


def test_sandbox_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sandbox", "--port", "99999"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--port" in err and "65535" in err, err


def test_sandbox_port_busy_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sandbox", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no seed line: nothing is served
    [line] = captured.err.splitlines()
    assert line == f"rcmod sandbox: cannot listen on 127.0.0.1:{port}: address already in use"


async def test_bot_http_port_busy_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = bot_settings(sandbox, tmp_path / "data", http={"port": port})
        with pytest.raises(RcmodError) as info:
            await BotApp(settings).run()
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port} (http.port): address already in use"
