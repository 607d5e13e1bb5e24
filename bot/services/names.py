"""Watching names: usernames and display names, room names, topics, announcements and
descriptions, and accounts awaiting an admin's approval. What to scan, the incident ids and the
alert text are pure code in :mod:`bot.moderation.names`; this module decides when to look, does
the I/O, and raises the alerts through the persisted outbox (exactly once, routed per list and
severity like keyword alerts, bursts on one user or room coalesced).

How each reaches the bot, and why that route:

- **Room names, topics, announcements, descriptions.** Changing one posts a system message
  (``r``, ``room_changed_topic``, ``room_changed_announcement``, ``room_changed_description``)
  whose text is the new value. It arrives on ``__my_messages__`` for every room the bot can read —
  public channels included, joined or not — and catch-up replays it after downtime, so it is the
  live route and costs nothing. Rooms the bot is in also send ``rooms-changed`` with the whole
  room (a room the bot is added to, a room whose system messages are hidden), and each sweep
  reads them all with one ``rooms.get``.
- **Usernames and display names.** Every message carries its author's ``u.username`` and
  ``u.name``, and a sign-up joining the default channels posts a ``uj`` there: the live routes,
  free, for people who talk. No event a bot can rely on announces a display-name change
  (``Users:NameChanged`` on ``stream-notify-logged`` carries display names only when
  ``UI_Use_Real_Name`` is on), so a sweep of ``users.list`` — 100 users a request, ``view-d-room``
  is enough — every ``moderation.name_sweep_interval`` catches the rest, downtime included.
- **Accounts awaiting approval** (``Accounts_ManuallyApproveNewUsers``): registration creates the
  account inactive, with the form's ``reason``; the server only e-mails the admins. The admins'
  "Pending" tab is ``users.listByStatus?status=deactivated&hasLoggedIn=false&type=user`` (6.8+),
  polled every ``moderation.registration_poll_interval`` and at once when a ``uj`` shows someone
  new; older servers fall back to ``users.list`` (no reason there). Each account is announced
  once to the users holding the admin role; its username, display name and reason are scanned.

Names and room texts that already existed the first time the bot swept are its *baseline*: like
messages posted before it was installed they are recorded and counted, not alerted. What is set
or changed afterwards is alerted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.config import ModerationSettings
from bot.errors import ActionRefused, NotFound, RcmodError
from bot.models import Room, UserRef
from bot.moderation import Matcher
from bot.moderation.alerts import Alert
from bot.moderation.names import (
    ROOM_FIELD_MESSAGES,
    SCANNED_ROOM_TYPES,
    NameField,
    NameIncident,
    Subject,
    allow_action,
    name_incidents,
    render_name_alert,
    render_pending,
    room_fields,
    user_fields,
)
from bot.realtime.events import Event, MessageEvent, RoomChanged
from bot.rest import RestClient
from bot.services.lookups import Lookups
from bot.services.outbox import NOTICE, Moderators, Notice, Outbox
from bot.store.policies import PolicyStore
from bot.store.state import BotState

__all__ = ["APPROVAL_SETTING", "BASELINE_KEY", "NameWatch"]

log = logging.getLogger("rcmod.names")

APPROVAL_SETTING = "Accounts_ManuallyApproveNewUsers"
BASELINE_KEY = "names.baseline"
_BASELINE_MATCH = "names.baseline:"  # + "<pseudo id>|<list>|<term>": a match that predates the bot
COALESCE_WINDOW = 600.0
PAGE = 100
_JOINED = frozenset({"uj", "ujt", "ut"})  # the author is the member who joined
_ADDED = frozenset({"au", "added-user-to-team"})  # the text is the username of the member added
_SEEN_LIMIT = 200_000


class NameWatch:
    def __init__(
        self,
        *,
        policies: PolicyStore,
        state: BotState,
        rest: RestClient,
        outbox: Outbox,
        matcher: Callable[[], Matcher | None],
        moderation: ModerationSettings,
        site_url: Callable[[], str],
        bot_user_id: Callable[[], str | None],
        lookups: Lookups,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policies = policies
        self._state = state
        self._rest = rest
        self._outbox = outbox
        self._matcher = matcher
        self._settings = moderation
        self._site_url = site_url
        self._bot_user_id = bot_user_id
        self._lookups = lookups
        self._clock = clock
        self._sweep_interval = moderation.name_sweep_interval
        self._registration_interval = moderation.registration_poll_interval
        # Values already scanned against the current matcher (pseudo ids): a name seen on every
        # message is scanned once; a reload (a new matcher) scans everything afresh.
        self._seen: set[str] = set()
        self._seen_for: Matcher | None = None
        # Each author's (username, display name) as last scanned, against the matcher of the
        # time: most messages come from someone whose names have not changed, and need no scan.
        self._authors: dict[str, tuple[str, str | None]] = {}
        self._authors_for: Matcher | None = None
        self._announced: set[str] = set()  # pending accounts handled by this process
        self._by_status = True  # users.listByStatus exists (6.8+); False once a server says 404
        self._wake_registrations = asyncio.Event()
        self.approval_required: bool | None = None  # None: not read yet
        self.alerts_raised = 0
        self._baseline_matches = 0
        self.sweeps = 0
        self._sweep_state = "the first sweep has not run yet"
        self._registration_state = "not checked yet"

    # -- live routes ---------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """Router handler: room texts from system messages and ``rooms-changed``, authors' names
        from every message, sign-ups and additions from ``uj``/``au``."""
        if isinstance(event, RoomChanged):
            if event.action in ("inserted", "updated", "changed"):
                for f in room_fields(event.room):
                    # An announcement may be the bot's own policy banner, recorded only once its
                    # REST call returns: left to the system message (which names who set it) and
                    # the sweep, so this event cannot outrun that record.
                    if f.field != "announcement":
                        await self._scan(f)
            return
        if not isinstance(event, MessageEvent):
            return
        message = event.message
        if not message.author.id or message.author.id == self._bot_user_id():
            return
        if message.type in ROOM_FIELD_MESSAGES and message.text.strip():
            room = await self._lookups.room(Room(message.rid, event.room.name, event.room.type))
            if room.type in SCANNED_ROOM_TYPES:
                name = message.text if message.type == "r" else (room.name or "")
                handle = event.room.name or room.name
                subject = Subject("room", room.id, name, room.type, handle)
                field = NameField(subject, ROOM_FIELD_MESSAGES[message.type], message.text, message.author)
                await self._scan(field)
        elif message.type in _JOINED and self.approval_required:
            self._wake_registrations.set()  # perhaps a sign-up waiting for approval: look now
        elif message.type in _ADDED and message.text.strip():
            await self._scan_added(message.text.strip())
        u = message.raw.get("u")
        # dict first: the Mapping ABC's isinstance alone costs more than the rest of this path.
        display = u.get("name") if isinstance(u, (dict, Mapping)) else None
        names = (message.author.username, display if isinstance(display, str) else None)
        matcher = self._matcher()
        if matcher is not self._authors_for or len(self._authors) > _SEEN_LIMIT:
            self._authors, self._authors_for = {}, matcher
        if self._authors.get(message.author.id) == names:
            return  # scanned already, unchanged
        author: dict[str, Any] = {"_id": message.author.id, "username": names[0]}
        if names[1] is not None:
            author["name"] = names[1]
        await self._scan_user(author)
        self._authors[message.author.id] = names

    async def _scan_added(self, username: str) -> None:
        """``au`` names the added member by username only: their id is looked up on a match."""
        matcher = self._matcher()
        probe = NameField(Subject("user", "?", username), "username", username)
        if matcher is None or not name_incidents(probe, matcher.scan(username)):
            return
        info: dict[str, Any] = await self._lookups.cached(
            f"username:{username}", lambda: self._rest.user_info(username=username), {}
        )
        if isinstance(info.get("_id"), str):
            roles = await self._lookups.roles.roles(user_id=info["_id"])
            await self._scan_user({"_id": info["_id"], "username": username}, roles=sorted(roles))

    # -- scanning and alerting -----------------------------------------------------------------

    async def _scan_user(
        self, user: Mapping[str, Any], *, roles: Any = None, reason: bool = False, fresh: bool = False
    ) -> list[NameIncident]:
        if user.get("_id") == self._bot_user_id():
            return []
        found: list[NameIncident] = []
        for f in user_fields(user, reason=reason):
            found += await self._scan(f, roles=roles, fresh=fresh)
        return found

    async def _scan(self, field: NameField, *, roles: Any = None, fresh: bool = False) -> list[NameIncident]:
        """Scan one value (once per matcher) and raise an alert per incident.

        ``fresh``: the value is new by definition (an account awaiting approval), never baseline,
        and is scanned again even if seen, so the caller gets its incidents."""
        matcher = self._matcher()
        if matcher is None:
            return []
        if matcher is not self._seen_for or len(self._seen) > _SEEN_LIMIT:
            self._seen, self._seen_for = set(), matcher
        pid = field.pseudo_id
        if pid in self._seen and not fresh:
            return []
        self._seen.add(pid)
        incidents = name_incidents(field, matcher.scan(field.value))
        if not incidents or await self._exempt(field.subject, roles) or self._own_banner(field):
            return []
        for incident in incidents:
            await self._raise(incident, fresh=fresh)
        return incidents

    def _own_banner(self, field: NameField) -> bool:
        """The policy banner the bot itself keeps in that room (``/policy``): not news."""
        if field.field != "announcement":
            return False
        return self._policies.policy_banners().get(field.subject.id) == field.value

    async def _exempt(self, subject: Subject, roles: Any) -> bool:
        s = self._settings
        if subject.kind == "room":
            return bool({subject.name, subject.handle, subject.id} & set(s.exempt_rooms))
        if isinstance(roles, list):
            return bool(set(s.exempt_roles) & {str(r) for r in roles})
        return await self._lookups.has_role(UserRef(subject.id, subject.name), s.exempt_roles)

    async def _raise(self, incident: NameIncident, *, fresh: bool) -> None:
        f = incident.field
        marker = f"{_BASELINE_MATCH}{f.pseudo_id}|{incident.list}|{incident.term}"
        if not fresh:
            if not self.baseline_taken():
                self._state.state_set(marker, "1")  # there before the bot: history, not news
                self._baseline_matches += 1
                log.info("baseline: %s %s matches list %s", f.subject.kind, f.subject.id, incident.list)
                return
            if self._state.state_get(marker) is not None:
                return
        subject = f.subject
        if subject.kind == "room":
            room = Room(subject.id, subject.handle or subject.name, subject.room_type)
            author = f.changed_by or UserRef("", "")
        else:
            room = Room("")
            author = UserRef(subject.id, subject.name)
        now = self._clock()
        alert = Alert(
            kind=NOTICE,
            key=incident.key,
            list=incident.list,
            term=incident.term,
            mid=f.pseudo_id,
            room=room,
            author=author,
            excerpt=render_name_alert(
                incident, when=datetime.fromtimestamp(now, UTC), site_url=self._site_url()
            ),
            severity=incident.severity,
            categories=incident.categories,
            actions=tuple(allow_action(incident.term)),
            ts=now,
        )
        raised = await self._outbox.notify(
            Notice(alert, Moderators(incident.options), window=COALESCE_WINDOW)
        )
        if raised is not None:  # None: no recipient, or this value, list and term were alerted before
            self.alerts_raised += 1
            log.info(
                "name alert %d: %s %s %s, list %s",
                raised.alert_id,
                f.subject.kind,
                f.subject.id,
                f.field,
                incident.list,
            )

    # -- the sweep -----------------------------------------------------------------------------

    def baseline_taken(self) -> bool:
        return self._state.state_get(BASELINE_KEY) is not None

    def _take_baseline(self, matches: int) -> None:
        at = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._state.state_set(BASELINE_KEY, json.dumps({"at": at, "matches": matches}))

    async def sweep(self) -> int:
        """Scan every user's username and display name (users.list) and every room the bot is in
        (rooms.get). The first sweep ever is the baseline. Returns how many users were read."""
        baseline = not self.baseline_taken()
        users = rooms = 0
        problems: list[str] = []
        try:
            offset = 0
            while True:
                page, total = await self._rest.users_page(offset, PAGE)
                for user in page:
                    if self.approval_required and _looks_pending(user):
                        continue  # the registration check announces it, reason and all
                    await self._scan_user(user, roles=user.get("roles"))
                offset += len(page)
                users += len(page)
                if not page or offset >= total:
                    break
        except RcmodError as exc:
            problems.append(
                f"users.list failed ({_why(exc)}): display names of people who do not post are not seen"
            )
        try:
            for room in await self._rest.subscribed_rooms():
                rooms += 1
                for f in room_fields(room):
                    await self._scan(f)
        except RcmodError as exc:
            problems.append(f"rooms.get failed ({_why(exc)})")
        if baseline:
            self._take_baseline(self._baseline_matches)
        self.sweeps += 1
        when = datetime.fromtimestamp(self._clock(), UTC).strftime("%H:%M UTC")
        every = f"every {self._sweep_interval / 60:g} min"
        self._sweep_state = f"swept {every} (last {when}: {users} users, {rooms} rooms)"
        if problems:
            self._sweep_state += "; " + "; ".join(problems)
            log.warning("name sweep: %s", "; ".join(problems))
        return users

    # -- accounts awaiting approval ------------------------------------------------------------

    async def check_registrations(self) -> int:
        """Announce each account awaiting approval once; returns how many were announced now."""
        try:
            value = (await self._rest.public_settings(APPROVAL_SETTING)).get(APPROVAL_SETTING)
        except RcmodError as exc:
            self._registration_state = f"cannot be checked: reading {APPROVAL_SETTING} failed ({_why(exc)})"
            return 0
        self.approval_required = value is True
        if value is not True:
            self._registration_state = f"not required by this workspace ({APPROVAL_SETTING} is off)"
            return 0
        try:
            pending = await self._pending_accounts()
        except ActionRefused as exc:
            route = "users.listByStatus" if self._by_status else "users.list"
            self._registration_state = (
                f"CANNOT be checked: the server refused {route} ({_why(exc)}); new accounts are not announced"
            )
            log.warning("accounts awaiting approval cannot be listed (%s)", _why(exc))
            return 0
        except RcmodError as exc:
            self._registration_state = f"last check failed ({_why(exc)}); retrying"
            return 0
        announced = 0
        for user in pending:
            announced += await self._announce(user)
        route = "users.listByStatus" if self._by_status else "users.list"
        when = datetime.fromtimestamp(self._clock(), UTC).strftime("%H:%M UTC")
        self._registration_state = (
            f"watched via {route} every {self._registration_interval:g} s: {len(pending)} waiting "
            f"(last check {when})"
            + ("" if route == "users.listByStatus" else "; this server gives no reason")
        )
        return announced

    async def _pending_accounts(self) -> list[dict[str, Any]]:
        """Inactive accounts that never logged in: the admins' "Pending" tab. Servers that record
        why an account is inactive (``inactiveReason``) tell deactivated ones apart."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            if self._by_status:
                try:
                    page, total = await self._rest.users_by_status(
                        status="deactivated", has_logged_in=False, user_type="user", offset=offset, count=PAGE
                    )
                except NotFound:  # before 6.8: the whole users.list it is
                    self._by_status = False
                    log.info("users.listByStatus unknown to this server; reading users.list instead")
                    return await self._pending_accounts()
            else:
                page, total = await self._rest.users_page(offset, PAGE)
            found += [u for u in page if _looks_pending(u)]
            offset += len(page)
            if not page or offset >= total:
                return [u for u in found if u.get("inactiveReason") in (None, "pending_approval")]

    async def _announce(self, user: Mapping[str, Any]) -> int:
        uid, username = user.get("_id"), user.get("username")
        if not isinstance(uid, str) or not uid or uid in self._announced:
            return 0
        self._announced.add(uid)
        flagged = await self._scan_user(user, reason=True, fresh=True)
        raised = await self._outbox.notify(
            Notice.about(
                "registration",
                key=uid,
                incident=f"user:{uid}:pending",
                text=render_pending(user, flagged),
                room=None,
                subject=UserRef(uid, str(username or "")),
                severity="high" if flagged else "medium",
                roles=("admin",),
                window=0.0,
            )
        )
        if raised is None:
            return 0  # announced before (a restart), or no admin to tell
        log.info("account %s awaiting approval announced (alert %d)", uid, raised.alert_id)
        return 1

    # -- loops and status ----------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self.run_sweeps(), self.run_registrations())

    async def run_sweeps(self) -> None:
        if self._sweep_interval <= 0:
            if not self.baseline_taken():
                self._take_baseline(0)  # no sweep, no baseline: whatever the live routes see is news
            self._sweep_state = "live routes only (moderation.name_sweep_interval = 0)"
            return
        while True:
            await _quietly(self.sweep, "name sweep")
            await asyncio.sleep(self._sweep_interval)

    async def run_registrations(self) -> None:
        if self._registration_interval <= 0:
            self._registration_state = "not checked (moderation.registration_poll_interval = 0)"
            return
        while True:
            self._wake_registrations.clear()
            await _quietly(self.check_registrations, "registration check")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._registration_interval):
                    await self._wake_registrations.wait()

    def status(self) -> list[str]:
        """Lines for ``/mod status``."""
        lines = [f"Names and room texts: {self._sweep_state}"]
        raw = self._state.state_get(BASELINE_KEY)
        if raw:
            baseline = json.loads(raw)
            lines[0] += (
                f"; baseline taken {baseline.get('at')} ({baseline.get('matches', 0)} names or texts that "
                "already matched then were recorded, not alerted)"
            )
        lines.append(f"Accounts awaiting approval: {self._registration_state}")
        return lines


def _looks_pending(user: Mapping[str, Any]) -> bool:
    return user.get("active") is False and not user.get("lastLogin") and user.get("type", "user") == "user"


def _why(exc: RcmodError) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__


async def _quietly(step: Callable[[], Awaitable[Any]], what: str) -> None:
    try:
        await step()
    except RcmodError as exc:  # a background loop never dies of a server hiccup
        log.warning("%s failed (%s)", what, _why(exc))
