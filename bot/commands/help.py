"""``/mod help``, generated from the declarations: only the commands the asker may use. Pure."""

from __future__ import annotations

from bot.commands.spec import COMMANDS, Command, Privilege

__all__ = ["render_help"]


def render_help(have: Privilege, topic: str | None = None) -> str:
    usable = [c for c in COMMANDS if c.shown_from <= have]
    if topic:
        wanted = topic.lower().lstrip("/").removeprefix("mod ").strip()
        match = [c for c in usable if wanted in (c.sub, c.name)]
        if not match:
            return f"No command `{wanted[:40]}` that you may use. `/mod help` lists them."
        usable = match
    lines = [f"*rcmod commands* (you are {have.label}):"]
    lines += [_line(c) for c in usable]
    return "\n".join(lines)


def _line(command: Command) -> str:
    need = "" if command.shown_from is Privilege.MEMBER else f" · {command.shown_from.label}"
    return f"`{command.usage}` — {command.help}{need}"
