"""Only the executor carries out an action: no other module of the product calls a REST verb or a
realtime method that changes the workspace. Reads (history, lookups, settings) are anyone's."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every RestClient method that changes the workspace on the bot's behalf as a moderator.
ACTING_REST = {
    "delete_message",
    "update_message",
    "send_message",
    "mute_user",
    "unmute_user",
    "kick_user",
    "ban_user",
    "unban_user",
    "set_read_only",
    "set_user_active",
    "pin_message",
    "unpin_message",
    "save_room_settings",
    "dismiss_reports",
    "add_room_moderator",
    "join_channel",
    "clean_history",
    "report_message",
    "report_user",
}
ACTING_DDP = {"muteUserInRoom", "unmuteUserInRoom", "updateMessage", "sendMessage", "deleteMessage"}

# Where a call to one of them is the point: the executor, and the client that defines them.
ALLOWED = {"bot/services/executor.py", "bot/rest/client.py"}
# `rcmod setup` creates the bot's own account and grants it permissions before any bot exists: it
# administers the workspace for the operator at install time, it does not moderate members.
INSTALL_TIME = {"bot/ops/setup.py"}


def acting_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ACTING_REST:
            found.append(f"{func.attr} (line {node.lineno})")
        if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in ACTING_DDP:
            found.append(f"{node.args[0].value} (line {node.lineno})")
    return found


def test_only_the_executor_acts() -> None:
    offenders = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in ALLOWED | INSTALL_TIME or rel.startswith("bot/sandbox/"):
            continue
        calls = acting_calls(path)
        if calls:
            offenders[rel] = calls
    assert offenders == {}


def test_the_check_sees_an_acting_call(tmp_path: Path) -> None:
    sample = tmp_path / "shell.py"
    sample.write_text(
        "async def f(rest, ddp):\n"
        "    await rest.history_page('r')\n"
        "    await rest.delete_message('r', 'm')\n"
        "    await ddp('muteUserInRoom', {})\n"
    )
    assert acting_calls(sample) == ["delete_message (line 3)", "muteUserInRoom (line 4)"]
