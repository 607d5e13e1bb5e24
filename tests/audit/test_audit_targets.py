"""`rcmod audit hold|release|export|erase --user` takes @username or an id and resolves it (the
server's users.info when configured, else the usernames recorded with evidence); what matches
nothing is refused. Reports, purges and actions on a message carry case numbers, so `--case N`
finds their records and evidence."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot import cli
from bot.audit.export import verify_export
from bot.models import Message
from bot.sandbox import Sandbox
from bot.store import Store
from tests.backends import CLI_FINDS_THE_FILE
from tests.helpers import chat_message


def _message(mid: str, uid: str, username: str, text: str = "offending text") -> Message:
    return chat_message(mid, uid, text, username=username)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).strip().splitlines()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder with bob's deleted message; no server configured."""
    for name in ("RCMOD_SERVER_URL", "RCMOD_USER_ID", "RCMOD_AUTH_TOKEN", "RCMOD_USERNAME", "RCMOD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    store = Store.open(tmp_path / "rcmod.sqlite3")
    store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"user": "UBOB", "room": "r1", "message": "m1"},
        evidence=[_message("m1", "UBOB", "bob")],
    )
    store.close()
    return tmp_path


def _holds(data_dir: Path) -> list[tuple[str, str]]:
    store = Store.open(data_dir / "rcmod.sqlite3")
    try:
        return [(h.kind, h.ref) for h in store.evidence.active_holds()]
    finally:
        store.close()


@pytest.mark.parametrize("given", ["@bob", "bob", "UBOB"])
def test_hold_resolves_a_username_through_the_store(
    offline: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    code, lines = _run(["audit", "hold", "--user", given], capsys)
    assert code == 0, lines
    assert "legal hold placed on user UBOB" in lines[0]
    assert _holds(offline) == [("user", "UBOB")]


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
@pytest.mark.parametrize("command", ["hold", "release", "erase"])
@pytest.mark.parametrize("given", ["@nobody", "nobody"])
def test_a_user_matching_nothing_is_refused_in_one_line(
    offline: Path, capsys: pytest.CaptureFixture[str], command: str, given: str
) -> None:
    store = Store.open(offline / "rcmod.sqlite3")
    before = store.audit.audit_head()
    store.close()
    code, lines = _run(["audit", command, "--user", given], capsys)
    assert code == 1
    assert len(lines) == 1 and "no user" in lines[0] and "nobody" in lines[0]
    store = Store.open(offline / "rcmod.sqlite3")
    assert store.audit.audit_head() == before  # nothing recorded
    store.close()
    assert _holds(offline) == []


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_export_of_a_user_matching_nothing_writes_nothing(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    code, lines = _run(["audit", "export", "--user", "bob2", "--out", str(out)], capsys)
    assert code == 1 and len(lines) == 1 and "no user" in lines[0]
    assert not out.exists()
    code, lines = _run(["audit", "export", "--user", "@bob", "--out", str(out)], capsys)
    assert code == 0, lines
    check = verify_export(out)
    assert check.ok and check.evidence == 1 and check.selection == {"user": "UBOB"}


async def test_hold_by_username_resolves_through_the_server(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bot_user = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    bob = sandbox.workspace.user_by_username("bob")
    assert bob is not None
    monkeypatch.setenv("RCMOD_SERVER_URL", sandbox.url)
    monkeypatch.setenv("RCMOD_USER_ID", bot_user["id"])
    monkeypatch.setenv("RCMOD_AUTH_TOKEN", bot_user["token"])
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    # A preservation request may come before the bot has stored anything about the user. The
    # command runs its own event loop, so it runs beside the sandbox's, in a thread.
    code, lines = await asyncio.to_thread(_run, ["audit", "hold", "--user", "@bob"], capsys)
    assert code == 0, lines
    assert f"legal hold placed on user {bob.id} (@bob)" in lines[0]
    assert _holds(tmp_path) == [("user", bob.id)]
    code, lines = await asyncio.to_thread(_run, ["audit", "hold", "--user", bob.id], capsys)
    assert code == 0 and "already under legal hold" in lines[0]
    code, lines = await asyncio.to_thread(_run, ["audit", "hold", "--user", "@ghost"], capsys)
    assert code == 1 and len(lines) == 1 and "no user @ghost" in lines[0]


def test_reports_purges_and_message_actions_get_case_numbers(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "rcmod.sqlite3")
    filed = store.audit.append_audit(
        actor="U3",
        action="report.filed",
        targets={"report": 1, "message": "m1", "room": "r1", "user": "UBOB"},
        evidence=[_message("m1", "UBOB", "bob")],
    )
    resolved = store.audit.append_audit(actor="MOD", action="report.resolved", targets={"report": 1})
    deleted = store.audit.append_audit(
        actor="rule:block",
        action="message.deleted",
        targets={"message": "m2", "room": "r1", "user": "UBOB"},
        evidence=[_message("m2", "UBOB", "bob")],
    )
    purge = store.audit.append_audit(actor="MOD", action="purge.started", targets={"purge": 3})
    [eid] = [c["id"] for c in filed.targets["evidence"]]
    [eid2] = [c["id"] for c in deleted.targets["evidence"]]
    case = filed.targets["case"]
    assert isinstance(case, int)
    assert resolved.targets["case"] == case
    assert deleted.targets["case"] not in (case, None)
    assert purge.targets["case"] not in (case, deleted.targets["case"], None)
    rows = {e.id: e.case for e in store.evidence.all_evidence_rows()}
    assert rows == {eid: case, eid2: deleted.targets["case"]}
    store.close()


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
def test_export_and_hold_by_case_find_the_reports_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path / "data"))
    store = Store.open(tmp_path / "data" / "rcmod.sqlite3")
    filed = store.audit.append_audit(
        actor="U3",
        action="report.filed",
        targets={"report": 1, "message": "m1", "room": "r1", "user": "UBOB"},
        evidence=[_message("m1", "UBOB", "bob")],
    )
    store.close()
    case = filed.targets["case"]
    out = tmp_path / "export"
    code, lines = _run(["audit", "export", "--case", str(case), "--out", str(out)], capsys)
    assert code == 0, lines
    check = verify_export(out)
    assert check.ok and check.records == 1 and check.evidence == 1
    assert json.loads((out / "evidence.jsonl").read_text())["case"] == case
    code, lines = _run(["audit", "hold", "--case", str(case)], capsys)
    assert code == 0 and f"legal hold placed on case {case}" in lines[0]
    code, lines = _run(["audit", "export", "--case", "999", "--out", str(tmp_path / "x")], capsys)
    assert code == 1 and len(lines) == 1 and "no case 999" in lines[0]
    code, lines = _run(["audit", "hold", "--case", "999"], capsys)
    assert code == 1 and len(lines) == 1 and "no case 999" in lines[0]


@pytest.mark.sqlite_only(CLI_FINDS_THE_FILE)
async def test_a_reports_case_number_is_shown_and_finds_its_records_and_evidence(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import bot_settings, start_bot
    from tests.helpers import ask

    data = tmp_path / "data"
    bot = await start_bot(bot_settings(sandbox, data, moderation={"moderators": ["mod1"]}))
    msg = sandbox.post_as("bob", "general", "doxxing someone")
    assert "#1" in await ask(sandbox, "alice", f"report privacy {msg['_id']}")
    listing = await ask(sandbox, "mod1", "mod reports")
    match = re.search(r"#1 · privacy · .* · audit case (\d+)", listing)
    assert match, listing
    case = int(match.group(1))
    assert f"Audit case {case}." in await ask(sandbox, "mod1", "mod resolve 1 delete")
    await bot.stop()
    monkeypatch.setenv("RCMOD_DATA_DIR", str(data))
    out = tmp_path / "export"
    code, lines = await asyncio.to_thread(
        _run, ["audit", "export", "--case", str(case), "--out", str(out)], capsys
    )
    assert code == 0, lines
    check = verify_export(out)
    assert check.ok, check.problems
    records = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert [r["action"] for r in records] == ["report.filed", "message.deleted", "report.resolved"]
    evidence = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    assert {e["mid"] for e in evidence} == {msg["_id"]} and {e["case"] for e in evidence} == {case}
    assert len(evidence) == 2  # when reported, and again just before the delete
