"""Who ``--user`` means: ``@username`` or a user id, resolved through the server when one is
configured (REST ``users.info``), else through what the store recorded (the usernames kept with
evidence and reports). A name that matches nothing is refused rather than held or exported
empty: a hold on a typo would protect nothing while saying it did."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.errors import ActionRefused, ConfigError, RcmodError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.store import Store

__all__ = ["resolve_user"]


def resolve_user(settings: Settings, store: Store, given: str) -> tuple[str, str | None] | str:
    """(user id, username or None), or the one-line refusal."""
    given = given.strip()
    username = given[1:] if given.startswith("@") else None
    if username is not None and not username:
        return "no user given after @"
    unreachable = ""
    if settings.server.url is not None:
        try:
            found = asyncio.run(_ask_server(settings, None if username else given, username or given))
        except ConfigError:
            raise
        except RcmodError as exc:
            found, unreachable = None, f"; the server could not be asked ({type(exc).__name__})"
        if found is not None:
            return found
    if username is None and store.evidence.user_id_known(given):
        return given, None
    ids = sorted(store.evidence.user_ids_for_username(username or given))
    if len(ids) == 1:
        return ids[0], _printable(username or given)
    if len(ids) > 1:
        return f"@{username or given} was recorded for several user ids ({', '.join(ids)}); give the id"
    where = "the server or the audit store" if settings.server.url is not None else "the audit store"
    return f"no user {given}: no user id or username {where} knows matches it{unreachable}"


async def _ask_server(
    settings: Settings, user_id: str | None, username: str
) -> tuple[str, str | None] | None:
    from bot.app import logged_in

    async with logged_in(settings) as rest:
        for query in ({"user_id": user_id}, {"username": username}):
            if not any(query.values()):
                continue
            try:
                user = await rest.user_info(**query)
            except ActionRefused:  # "User not found." (or not visible to the bot)
                continue
            uid, name = user.get("_id"), user.get("username")
            if isinstance(uid, str) and uid:
                return uid, _printable(name) if isinstance(name, str) else None
        return None


def _printable(name: str) -> str:
    """A username as the operator's terminal may show it: a member chose it, so no control
    characters (escape sequences) get through."""
    return "".join(ch for ch in name if ch.isprintable())[:80]
