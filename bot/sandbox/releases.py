"""What the simulated server does differently by Rocket.Chat release, in one place.

``rcmod sandbox --version X`` and ``Sandbox(version=X)`` answer as release X would where this
module knows a difference; everything else is the same for every release. Sources (paths in
``RocketChat/Rocket.Chat``):

- Routes removed: rooms.upload/:rid (store and post in one call) in 8.0; rooms.media/:rid plus
  rooms.mediaConfirm/:rid/:fileId remain.
- Routes added: users.listByStatus, rooms.muteUser and rooms.unmuteUser arrived in 6.8, the room
  bans (rooms.banUser, rooms.unbanUser, rooms.bannedUsers) in 8.3 (the bot's own feature table
  agrees, ``bot/rest/client.py``); an older server answers 404.
- Refusals (``apps/meteor/app/api/server/ApiClass.ts``; in the 8.x line
  ``apps/meteor/server/api/ApiClass.ts`` and ``middlewares/permissions.ts``): breaking answers are
  behind ``applyBreakingChanges = shouldBreakInVersion(...)``. The 7.x source set the flag at
  8.0.0; the 8.x source moved it to 9.0.0, so every released line so far answers the legacy way:

  ===========================  ======================================  ===========================
  refusal                      before 9.0                              from 9.0
  ===========================  ======================================  ===========================
  not logged in                401 ``success``/``error`` plus legacy   401 ``success``/``error``
                               ``status: "error"``/``message``
  ``permissionsRequired``      403 "User does not have the             403 ``error: "forbidden"``
                               permissions required for this action
                               [error-unauthorized]"
  a route's ``forbidden()``    403 ``error: "unauthorized"``           403 ``error: "forbidden"``
  thrown ``error-unauthorized``  403 "<reason> [error-unauthorized]"   **401**, same body
  ===========================  ======================================  ===========================

  The 401 for a permission refusal is the one a client must not read as "log in again".
  Servers before 7.0 (Restivus) answered "not logged in" with the legacy fields only.

Data and pure functions: nothing here touches a socket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_VERSION", "LATEST_LINE", "Release", "ReleaseError"]

DEFAULT_VERSION = "7.10.0"
# The release line the server's development branch is on (8.x; its ApiClass.ts defers the
# breaking answers to 9.0.0).
LATEST_LINE = (8, 8)
BREAKING = (9, 0)  # shouldBreakInVersion('9.0.0') in the 8.x ApiClass.ts

NOT_LOGGED_IN = "You must be logged in to do this."
PERMISSIONS_REQUIRED = "User does not have the permissions required for this action [error-unauthorized]"

# Routes by the release that added them (method and route as in rest.ROUTES).
ROUTES_SINCE: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "users.listByStatus"): (6, 8),
    ("POST", "rooms.muteUser"): (6, 8),
    ("POST", "rooms.unmuteUser"): (6, 8),
    # The console's user reports (moderation.ts): merged in October 2023, first in 6.5 (inferred
    # from the merge date; no release note names it).
    ("GET", "moderation.userReports"): (6, 5),
    ("GET", "moderation.user.reportsByUserId"): (6, 5),
    ("POST", "moderation.dismissUserReports"): (6, 5),
    # Room bans (rooms.ts, banUserFromRoom.ts): merged in March 2026, first in 8.3; an older server
    # answers 404 and the bot falls back to kick-and-watch.
    ("POST", "rooms.banUser"): (8, 3),
    ("POST", "rooms.unbanUser"): (8, 3),
    ("GET", "rooms.bannedUsers"): (8, 3),
}

# Routes by the release that removed them: rooms.upload/:rid was deprecated for 8.0.0
# (``deprecation: {version: '8.0.0', alternatives: ['rooms.media']}`` in the 7.x rooms.ts) and is
# gone from the 8.x source; an 8.x server answers 404.
ROUTES_UNTIL: dict[tuple[str, str], tuple[int, int]] = {
    ("POST", "rooms.upload/:rid"): (8, 0),
}

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.]+)?$")


class ReleaseError(ValueError):
    """A version string the sandbox cannot act as."""


@dataclass(frozen=True)
class Release:
    version: str
    major_minor: tuple[int, int]

    @classmethod
    def parse(cls, version: str) -> Release:
        m = _VERSION.match(version.strip())
        if m is None:
            raise ReleaseError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. {DEFAULT_VERSION})")
        major_minor = (int(m.group(1)), int(m.group(2)))
        if major_minor >= (BREAKING[0] + 1, 0):
            # Older releases are accepted (a bot must be able to meet one and refuse it).
            raise ReleaseError(
                f"version {version!r} is beyond what the sandbox models (up to {BREAKING[0]}.x; "
                f"the server's current line is {LATEST_LINE[0]}.x)"
            )
        return cls(version.strip(), major_minor)

    @property
    def breaking(self) -> bool:
        """``applyBreakingChanges``: the answers the server keeps for its next major."""
        return self.major_minor >= BREAKING

    def serves(self, method: str, name: str) -> bool:
        since = ROUTES_SINCE.get((method, name))
        until = ROUTES_UNTIL.get((method, name))
        return (since is None or self.major_minor >= since) and (until is None or self.major_minor < until)

    def not_logged_in(self) -> tuple[int, dict[str, Any]]:
        if self.major_minor < (7, 0):
            return 401, {"status": "error", "message": NOT_LOGGED_IN}
        body: dict[str, Any] = {"success": False, "error": NOT_LOGGED_IN}
        if not self.breaking:
            body.update(status="error", message=NOT_LOGGED_IN)
        return 401, body

    def permissions_required(self) -> tuple[int, dict[str, Any]]:
        """A route's ``permissionsRequired`` the caller lacks."""
        return 403, {"success": False, "error": "forbidden" if self.breaking else PERMISSIONS_REQUIRED}

    def forbidden(self) -> tuple[int, dict[str, Any]]:
        """A route's own ``API.v1.forbidden()`` (``unauthorized()`` before it was renamed)."""
        return 403, {"success": False, "error": "forbidden" if self.breaking else "unauthorized"}

    def thrown_unauthorized(self, message: str) -> tuple[int, dict[str, Any]]:
        """A Meteor.Error ``error-unauthorized`` thrown inside a route (``message`` is its
        ``"<reason> [error-unauthorized]"``)."""
        return (401 if self.breaking else 403), {"success": False, "error": message}
