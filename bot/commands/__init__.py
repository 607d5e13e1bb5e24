"""Chat commands (pure): declarations, parser, privilege model and help.

Three transports reach the same parser — the companion app's ``POST /hooks/command``, a DM to the
bot, and ``/report``/``/mod`` typed in a room — see :mod:`bot.commands.handlers.dispatch` for the I/O shell.
"""

from bot.commands.call import Call, Caller, Handler
from bot.commands.help import render_help
from bot.commands.parser import (
    MAX_ARGS,
    Invocation,
    MessageRef,
    RoomName,
    UsageError,
    UserName,
    addressed_to_bot,
    parse,
    parse_message_ref,
    split_command,
)
from bot.commands.privilege import Denied, check, resolve
from bot.commands.spec import COMMANDS, REPORT_CATEGORIES, Arg, ArgKind, Command, Privilege, find

__all__ = [
    "COMMANDS",
    "MAX_ARGS",
    "REPORT_CATEGORIES",
    "Arg",
    "ArgKind",
    "Call",
    "Caller",
    "Command",
    "Denied",
    "Handler",
    "Invocation",
    "MessageRef",
    "Privilege",
    "RoomName",
    "UsageError",
    "UserName",
    "addressed_to_bot",
    "check",
    "find",
    "parse",
    "parse_message_ref",
    "render_help",
    "resolve",
    "split_command",
]
