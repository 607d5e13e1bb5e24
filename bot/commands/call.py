"""A parsed, permitted command call, as every handler receives it (pure data).

The dispatcher (:mod:`bot.commands.handlers.dispatch`) builds it; feature services that answer a
command take it, so they need nothing from the command shell itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.commands.parser import Invocation
from bot.commands.spec import Privilege

__all__ = ["Call", "Caller", "Handler"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who typed the command, and where (as the transport knows it)."""

    user_id: str
    username: str
    rid: str
    room_name: str | None = None
    room_type: str | None = None  # c, p, d; None when the transport did not say
    tmid: str | None = None
    transport: str = "dm"  # hook | dm | room


@dataclass(frozen=True, slots=True)
class Call:
    caller: Caller
    invocation: Invocation
    privilege: Privilege


Handler = Callable[[Call], Awaitable[str]]
