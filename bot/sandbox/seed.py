"""The seeded workspace promised by the ``rcmod sandbox`` contract (PRODUCT.md).

Deterministic for a given seed: same ids, passwords and personal access tokens every run.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.workspace import User, Workspace

__all__ = ["BOT_USERNAME", "SETUP_PERMISSIONS", "seed_summary", "seed_workspace"]

BOT_USERNAME = "rcmod.bot"

# What `rcmod setup` grants the bot, by adding the `bot` role to each permission the way
# permissions.update would (a room-independent grant).
SETUP_PERMISSIONS = (
    "delete-message",
    "edit-message",
    "pin-message",
    "edit-room",
    "post-readonly",
    "clean-channel-history",
    "set-moderator",
    "mute-user",
    "remove-user",
    "ban-user",
    "view-full-other-user-info",
    "view-moderation-console",
    "manage-moderation-actions",
    "create-d",
    "view-c-room",
    "api-bypass-rate-limit",
    "create-personal-access-tokens",
)

_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", "Administrator", ("admin",)),
    ("mod1", "Moderator One", ("user",)),
    ("mod2", "Moderator Two", ("user",)),
    ("alice", "Alice", ("user",)),
    ("bob", "Bob", ("user",)),
    ("carol", "Carol", ("user",)),
    (BOT_USERNAME, "rcmod", ("bot",)),
)


def seed_workspace(workspace: Workspace) -> dict[str, str]:
    """Create the seed users and rooms; returns username → personal access token."""
    tokens: dict[str, str] = {}
    users: dict[str, User] = {}
    for username, name, roles in _USERS:
        password = f"{username.replace('.', '-')}-{workspace.ids.id()[:8]}"
        user = workspace.create_user(username, password, roles, name=name, bot=username == BOT_USERNAME)
        users[username] = user
        tokens[username] = workspace.create_personal_access_token(user.id)
    for permission in SETUP_PERMISSIONS:
        workspace.grant_permission_to_role(permission, "bot")

    everyone = [u.id for u in users.values()]
    admin = users["admin"]
    # `general` is created at startup without an owner and with the fixed id GENERAL, as
    # Rocket.Chat creates it (server/startup/initialData.ts).
    general = workspace.create_room("c", "general", None, everyone, rid="GENERAL")
    random_members = [users[n].id for n in ("admin", "alice", "bob", "carol", "mod1", "mod2", BOT_USERNAME)]
    random = workspace.create_room("c", "random", admin, random_members)
    staff_members = [users[n].id for n in ("admin", "mod1", "mod2", BOT_USERNAME)]
    staff = workspace.create_room("p", "staff", admin, staff_members)
    for room in (general, random, staff):
        for moderator in ("mod1", "mod2"):
            sub = workspace.subscriptions[(room["_id"], users[moderator].id)]
            sub["roles"] = [*sub.get("roles", []), "moderator"]
    return tokens


def seed_summary(workspace: Workspace, url: str, tokens: dict[str, str]) -> dict[str, Any]:
    """The JSON object `rcmod sandbox` prints: it carries passwords and tokens by contract."""
    users = []
    for username, _name, _roles in _USERS:
        user = workspace.user_by_username(username)
        if user is None:
            continue
        users.append(
            {
                "username": user.username,
                "password": user.password,
                "id": user.id,
                "token": tokens[username],
                "roles": list(user.roles),
            }
        )
    rooms = [
        {"name": r["name"], "id": r["_id"], "type": r["t"]}
        for r in workspace.rooms.values()
        if r["t"] in ("c", "p") and r["name"] in ("general", "random", "staff")
    ]
    return {"url": url, "users": users, "rooms": rooms}
