"""``rcmod match``: the command's output contract, explain mode and exit statuses."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import match as match_command


def run(argv: list[str], stdin: str = "", environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="rcmod match")
    match_command.add_arguments(parser)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    status = match_command.run(args, io.StringIO(stdin), out, err, environ or {})
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    (tmp_path / "insults.txt").write_text("ass\njoin boaram today\n*cunt*\n", encoding="utf-8")
    (tmp_path / "insults.toml").write_text('severity = "high"\ncategories = ["harassment"]\n')
    (tmp_path / "places.txt").write_text("scunthorpe\n")
    (tmp_path / "places.toml").write_text('kind = "allow"\n')
    return tmp_path


def test_one_json_object_per_input_line(lists: Path) -> None:
    status, out, err = run(["--wordlists", str(lists)], "you a55!\nScunthorpe\n\nЗдесь JOIN, boaram today\n")
    assert status == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [
        {
            "line": 1,
            "matches": [
                {
                    "term": "ass",
                    "list": "insults",
                    "start": 4,
                    "end": 7,
                    "text": "a55",
                    "severity": "high",
                    "categories": ["harassment"],
                }
            ],
        },
        {"line": 2, "matches": []},
        {"line": 3, "matches": []},
        {
            "line": 4,
            "matches": [
                {
                    "term": "join boaram today",
                    "list": "insults",
                    "start": 6,
                    "end": 24,
                    "text": "JOIN, boaram today",
                    "severity": "high",
                    "categories": ["harassment"],
                }
            ],
        },
    ]


def test_jsonl_input(lists: Path) -> None:
    stdin = json.dumps("line one\nstill one: \u0430ss") + "\n" + json.dumps("clean") + "\n"
    status, out, _ = run(["--wordlists", str(lists), "--jsonl"], stdin)
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [(r["line"], [(m["term"], m["text"], m["start"]) for m in r["matches"]]) for r in rows] == [
        (1, [("ass", "\u0430ss", 20)]),
        (2, []),
    ]


def test_jsonl_line_that_is_not_a_string(lists: Path) -> None:
    status, out, err = run(["--wordlists", str(lists), "--jsonl"], '"ok"\n{"text": 1}\nnot json\n')
    assert status == 2
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2, 3]
    assert "line 2: not a JSON string" in err and "line 3: not a JSON string" in err


def test_wordlists_from_the_environment(lists: Path) -> None:
    status, out, _ = run([], "ass\n", {"RCMOD_WORDLISTS": str(lists)})
    assert status == 0 and json.loads(out)["matches"][0]["list"] == "insults"
    status, out, _ = run([], "ass\n", {"RCMOD_WORDLISTS": f"{lists / 'insults.txt'}:{lists / 'places.txt'}"})
    assert status == 0 and len(json.loads(out)["matches"]) == 1


def test_no_wordlists_is_a_usage_error() -> None:
    status, out, err = run([], "ass\n", {})
    assert status == 2 and out == "" and "RCMOD_WORDLISTS" in err


def test_bad_wordlist_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_bytes(b"fine\n\xc3\x28 broken\n")
    status, out, err = run(["--wordlists", str(tmp_path)], "x\n")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"{tmp_path / 'l.txt'}:2: not valid UTF-8" in err


def test_duplicate_terms_warn_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("ass\nASS\n")
    status, out, err = run(["--wordlists", str(tmp_path)], "ass\n")
    assert status == 0 and "warning:" in err and "l.txt:2" in err
    assert len(json.loads(out)["matches"]) == 1


def test_explain(lists: Path) -> None:
    status, out, _ = run(["--wordlists", str(lists), "--explain", "Y0u @ss, 455, Scunthorpe"])
    assert status == 0
    assert "normalised:  'y0u @ss 455 scunthorpe'" in out
    assert "MATCH 'ass' from list 'insults'" in out and "leetspeak '@' read as 'a'" in out
    assert "'455'" in out and "not read as leetspeak" in out
    assert "suppressed: inside 'scunthorpe'" in out


def test_explain_without_match(lists: Path) -> None:
    status, out, _ = run(["--wordlists", str(lists), "--explain", "all good"])
    assert status == 0 and "no match" in out


def test_room_option(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("ass\n")
    (tmp_path / "l.toml").write_text('skip_rooms = ["staff"]\n')
    assert json.loads(run(["--wordlists", str(tmp_path), "--room", "staff"], "ass\n")[1])["matches"] == []
    assert json.loads(run(["--wordlists", str(tmp_path), "--room", "general"], "ass\n")[1])["matches"] != []


def test_undecodable_stdin_through_the_real_cli(lists: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot import cli; raise SystemExit(cli.main())",
            "match",
            "--wordlists",
            str(lists),
        ],
        input=b"\xff\xfe a55\nass\n",
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [len(r["matches"]) for r in rows] == [1, 1]
