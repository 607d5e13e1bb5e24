"""The outbox: every alert and notice the bot sends people, persisted and delivered exactly once.

A feature hands it a :class:`Notice` — an :class:`~bot.moderation.alerts.Alert` and whom to tell
(:data:`Recipients`). The outbox resolves the recipients, then writes the alert and one delivery
per recipient in one transaction (:class:`bot.store.alerts.AlertLedger`); a background loop brings
every recipient's copy up to the alert's current version: sends it the first time, with a message
id chosen before the send (so a resend after a crash is the same message), and edits it when a
burst adds to the alert or it is closed. A recipient who cannot be reached is recorded and logged;
the others still get theirs. Over the per-moderator hourly cap, new keyword alerts wait for an
hourly digest.

It decides what to send; the executor sends it (``PostMessage``/``EditMessage``, not audited
there: the outbox audits the first copy of each alert itself, once its delivery is recorded).
The executor it is given never runs dry: with ``/mod dryrun on`` the moderators' alerts and
notices are how a dry run is watched, so they are still delivered.

How an alert reads depends on its kind: a keyword alert (``notify``/``block``) is rendered here,
a :data:`NOTICE` shows its text, a report or a policy notice is rendered by the feature that
registered it with :meth:`Outbox.register_renderer`, and any other kind — a member's private
notice (:meth:`Notice.direct`) — is its text as queued. So a notice a crashed process queued reads
right in the next one whether or not its feature has been built yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.audit import actions
from bot.config import ModerationSettings
from bot.errors import ActionRefused, RcmodError
from bot.metrics import Metrics
from bot.models import Room, UserRef
from bot.moderation import actions as change
from bot.moderation.actions import Action
from bot.moderation.alerts import (
    ALERTING_KINDS,
    Alert,
    buttons,
    keyword_actions,
    render_alert,
    render_digest,
)
from bot.moderation.neutralize import defuse_everyone
from bot.moderation.wordlist import ListOptions
from bot.rest import RestClient
from bot.rest.client import new_message_id
from bot.services.executor import Act, Result, Status
from bot.services.lookups import Lookups
from bot.services.moderators import BotModerators
from bot.store.alerts import AlertLedger, Delivery, RaisedAlert
from bot.store.audit import AuditLog

__all__ = [
    "NOTICE",
    "Member",
    "Moderators",
    "Notice",
    "Outbox",
    "Recipients",
    "Render",
    "RoleHolders",
    "render_direct",
    "render_notice",
]

log = logging.getLogger("rcmod.outbox")

NOTICE = "notice"  # the kind of an alert that is not a wordlist match: its text is the message

Render = Callable[[Delivery], str]


@dataclass(frozen=True, slots=True)
class Moderators:
    """The moderators an alert goes to: a wordlist's notify settings (named users, role holders,
    the room's moderators, a room for critical alerts) or, when it names none, the bot's
    moderators (the admins if none is configured). Never the person it is about, never the bot."""

    options: ListOptions | None = None


@dataclass(frozen=True, slots=True)
class RoleHolders:
    """The holders of these roles (not the person it is about, not the bot)."""

    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """One person, told privately: never capped, coalesced or given buttons."""

    username: str


Recipients = Moderators | RoleHolders | Member


@dataclass(frozen=True, slots=True)
class Notice:
    """An alert and whom to tell. ``window``: alerts with the same key within it are one message
    with a counter (None: the outbox's window)."""

    alert: Alert
    to: Recipients = Moderators()
    window: float | None = None

    @classmethod
    def about(
        cls,
        kind: str,
        *,
        key: str,
        incident: str,
        text: str,
        room: Room | None,
        subject: UserRef,
        severity: str = "high",
        roles: Sequence[str] = (),
        window: float | None = None,
        actions: Sequence[tuple[str, str]] = (),
    ) -> Notice:
        """An alert that is not a wordlist match — a protection firing, a sanction step, an appeal
        — routed and coalesced like keyword alerts, with a Dismiss button besides ``actions``.

        ``text`` is the whole body, already inert. ``key`` (within ``kind``) is what coalesces;
        ``incident`` names the occurrence, so a replay of it alerts no one twice. With ``roles``,
        the holders of those roles are told instead of the default moderators."""
        alert = Alert(
            kind=NOTICE,
            key=f"{kind}|{key}",
            list=kind,
            term=key,
            mid=incident,
            room=room or Room(""),
            author=subject,
            excerpt=text,
            severity=severity,
            actions=tuple(actions),
        )
        return cls(alert, RoleHolders(tuple(roles)) if roles else Moderators(), window)

    @classmethod
    def direct(
        cls, kind: str, *, incident: str, recipient: str, text: str, room: Room, subject: UserRef
    ) -> Notice:
        """A private message to one person (not a moderators' alert), queued durably and sent
        once. ``incident`` names what it is about: queuing it again sends nothing more. ``text``
        must already be inert; it is sent as it is (:func:`render_direct`)."""
        # Keyed like an alert on ``incident``, but of its own kind: not an alert to moderators.
        notice = cls.about(
            kind, key=incident, incident=incident, text=text, room=room, subject=subject, severity="low"
        )
        return cls(replace(notice.alert, kind=kind), Member(recipient), window=0.0)


def render_direct(d: Delivery) -> str:
    """A private message queued with :meth:`Notice.direct`: its text as queued."""
    return d.alert.excerpt or "rcmod notice (details expired)"


def render_notice(d: Delivery) -> str:
    """A notice (see :meth:`Notice.about`): its text, how often, and how it ended."""
    lines = [d.alert.excerpt or "rcmod notice (details expired)"]
    if d.count > 1:
        lines.append(f"_Seen {d.count} times since the first._")
    if d.outcome:
        lines.append(f"*Closed:* {d.outcome}")
    else:
        lines.append(f"Alert {d.alert_id} — close it with `/mod dismiss {d.alert_id}`.")
    return "\n".join(lines)


class Outbox:
    def __init__(
        self,
        *,
        alerts: AlertLedger,
        audit: AuditLog,
        rest: RestClient,
        executor: Act,
        moderation: ModerationSettings,
        site_url: Callable[[], str],
        metrics: Metrics,
        bot_username: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        window: float = 600.0,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        digest_interval: float = 3600.0,
        lookups: Lookups | None = None,
        bot_moderators: BotModerators | None = None,
    ) -> None:
        self._alerts = alerts
        self._audit = audit
        self._rest = rest  # reads only (routing, DM rooms): every send goes through the executor
        self._executor = executor
        self._settings = moderation
        self._site_url = site_url
        self._metrics = metrics
        self._bot_username = bot_username
        self._clock = clock
        self._window = window
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._digest_interval = digest_interval
        self._lookups = lookups or Lookups(rest, clock=clock)
        # Alerts go to the configured moderators' accounts (bound by id) under their current
        # names: never to whoever holds a configured name now.
        self._bot_moderators = bot_moderators or BotModerators(moderation.moderators, clock=clock)
        self._renderers: dict[str, Render] = {NOTICE: render_notice}
        self._wake = asyncio.Event()
        self._dm_rooms: dict[str, str] = {}

    # -- queuing ---------------------------------------------------------------------------------

    def register_renderer(self, kind: str, render: Render) -> None:
        """How alerts of ``kind`` read. Register when the outbox is built, not when queuing: a
        restarted process sends what an earlier one queued before it queues anything itself."""
        self._renderers[kind] = render

    async def notify(self, notice: Notice) -> RaisedAlert | None:
        """Queue ``notice`` for its recipients. None: nobody to tell, or this occurrence was
        raised before (an edit, a replay, a restart)."""
        alert = notice.alert
        recipients = await self.recipients(notice.to, alert.room, alert.author)
        if not recipients:
            log.warning(
                "%s alert in room %s has no recipient; set moderation.moderators", alert.list, alert.room.id
            )
            return None
        window = self._window if notice.window is None else notice.window
        raised = self._alerts.raise_alert(
            alert, recipients=recipients, window=window, new_dm_id=new_message_id
        )
        if raised is None:
            return None
        if not isinstance(notice.to, Member):  # a member's private notice is no moderators' alert
            self._metrics.alerts.labels("raised" if raised.created else "coalesced").inc()
        self._wake.set()
        return raised

    async def recipients(self, to: Recipients, room: Room, subject: UserRef) -> list[str]:
        """The usernames (and ``#room`` names) ``to`` stands for, for an alert about ``subject``
        in ``room`` (reports, which write their own alert rows, route with this too)."""
        match to:
            case Member(username):
                return [username]
            case RoleHolders(roles):
                return self._others(await self._role_holders(roles), subject)
            case Moderators(options):
                return await self._moderators(options or ListOptions(name=NOTICE), room, subject)

    async def _moderators(self, options: ListOptions, room: Room, subject: UserRef) -> list[str]:
        notify = options.notify
        names: list[str] = list(notify.users) + await self._role_holders(notify.roles)
        if notify.room_moderators and room.type in ("c", "p"):
            names += await self._lookups.cached(
                f"mods:{room.id}", lambda: self._rest.room_moderators(room.id, room.type or "c"), []
            )
        if not names and not notify.room:
            names = await self._bot_moderators.usernames(self._rest) or await self._role_holders(("admin",))
        if notify.room and options.severity == "critical":
            names.append(f"#{notify.room}")
        return self._others(names, subject)

    async def _role_holders(self, roles: Sequence[str]) -> list[str]:
        names: list[str] = []
        for role in roles:
            names += await self._lookups.cached(
                f"role:{role}", functools.partial(self._rest.users_with_role, role), []
            )
        return names

    def _others(self, names: Sequence[str], subject: UserRef) -> list[str]:
        """``names`` once each, without the person the alert is about and without the bot."""
        return [n for n in dict.fromkeys(names) if n not in (subject.username, self._bot_username())]

    def wake(self) -> None:
        """Deliver now: an alert was queued or changed outside :meth:`notify` (a report filed,
        an alert dismissed)."""
        self._wake.set()

    # -- delivering ------------------------------------------------------------------------------

    async def run(self) -> None:
        """The outbox loop: deliver what is due, then sleep until woken or a retry is due."""
        while True:
            self._wake.clear()  # before the pass: an alert raised during it wakes the next one
            try:
                await self.deliver_due()
                await self.deliver_digests()
            except RcmodError as exc:  # never let the loop die; deliveries stay queued
                log.warning("outbox pass failed (%s)", type(exc).__name__)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the event fires, and then shutdown hangs on this loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()

    async def deliver_digests(self) -> int:
        """Send each moderator the digest of alerts the cap held back, once the oldest has waited
        the digest interval (an hour). The digest's id is chosen before the send: exactly once."""
        sent = 0
        for recipient in self._alerts.digest_recipients():
            digest = self._alerts.open_digest(
                recipient, min_gap=self._digest_interval, new_dm_id=new_message_id
            )
            if digest is None:
                continue
            text = defuse_everyone(
                render_digest(digest.items, cap=self._settings.alert_cap_per_hour, site_url=self._site_url())
            )
            try:
                rid = await self._destination(recipient)
            except RcmodError as exc:
                result = Result(Status.FAILED, type(exc).__name__)
            else:
                result = await self._send(change.PostMessage(rid, text, mid=digest.dm_mid), actor="rcmod")
            if not result.acted:
                log.warning("digest %d to %s failed (%s); it stays queued", digest.id, recipient, result.code)
                continue
            self._alerts.digest_sent(digest.id)
            self._metrics.alerts.labels("digest").inc()
            sent += 1
        return sent

    async def deliver_due(self) -> int:
        delivered = 0
        for d in self._alerts.due_deliveries():
            if self._over_cap(d):
                self._alerts.hold_delivery(d.id)
                self._metrics.alerts.labels("held").inc()
                continue
            if await self._deliver(d):
                delivered += 1
        return delivered

    def _over_cap(self, d: Delivery) -> bool:
        # The per-moderator cap counts new keyword-alert DMs only: edits of a DM already sent,
        # notices, reports and room deliveries always go. Over it, the alert waits for the digest.
        cap = self._settings.alert_cap_per_hour
        capped = cap and d.sent_version == 0 and self._keyword(d) and not d.recipient.startswith("#")
        return bool(capped) and self._alerts.sent_since(d.recipient, self._clock() - 3600) >= cap

    async def _deliver(self, d: Delivery) -> bool:
        """Bring one copy up to date: send it, or edit the copy sent. True when it went."""
        # Whatever a renderer let through, no mention of everyone goes out: the server would
        # refuse the whole DM (the bot lacks mention-all) and the moderator would see nothing.
        text = defuse_everyone(self._render(d))
        try:
            rid = d.dm_rid or await self._destination(d.recipient)
        except ActionRefused as exc:
            result = Result(Status.REFUSED, exc.code or type(exc).__name__)
        except RcmodError as exc:
            result = Result(Status.FAILED, type(exc).__name__)
        else:
            result = await self._send(self._change(d, rid, text), actor=f"rule:{d.alert.list}")
        if result.status is Status.REFUSED:
            # Deactivated or unknown moderator, or a room the bot may not post in.
            self._alerts.delivery_failed(d.id, result.code or "refused")
            self._metrics.alerts.labels("undeliverable").inc()
            log.warning(
                "alert %d cannot reach %s (%s); other moderators still get it",
                d.alert_id,
                d.recipient,
                result.code,
            )
            return False
        if not result.acted:
            delay = min(self._retry_max, self._retry_initial * 2**d.attempts)
            self._alerts.delivery_retry(d.id, delay)
            log.warning(
                "alert %d to %s failed (%s); retry in %.0f s", d.alert_id, d.recipient, result.code, delay
            )
            return False
        self._metrics.alerts.labels("delivered" if d.sent_version == 0 else "updated").inc()
        self._alerts.delivery_done(d.id, d.version, rid)
        if d.sent_version == 0:  # the first copy to this recipient: an action, audited
            self._audit.append_audit(
                actor=f"rule:{d.alert.list}",
                action=actions.ALERT_SENT,
                targets={
                    "alert": d.alert_id,
                    "recipient": d.recipient,
                    "message": d.alert.mid,
                    "room": d.alert.room.id,
                },
                reason={"list": d.alert.list, "term": d.alert.term, "kind": d.alert.kind},
            )
        return True

    def _render(self, d: Delivery) -> str:
        renderer = self._renderers.get(d.alert.kind)
        if renderer is not None:
            return renderer(d)
        if not self._keyword(d):
            return render_direct(d)
        return render_alert(
            d.alert_id,
            d.alert.incident(),
            count=d.count,
            site_url=self._site_url(),
            first_at=datetime.fromtimestamp(d.first_at, UTC),
            outcome=d.outcome,
        )

    def _change(self, d: Delivery, rid: str, text: str) -> change.PostMessage | change.EditMessage:
        """The first copy is posted with the id chosen when the alert was raised; later versions
        edit it. A copy that carries buttons gets them again with its text: aimed at the message
        the text now names (a burst moves it to the newest), and none once the alert is closed,
        so a dismissed alert offers no Delete."""
        attachments = tuple(self._buttons(d))
        if d.sent_version == 0:
            return change.PostMessage(rid, text, mid=d.dm_mid, attachments=attachments)
        return change.EditMessage(
            rid, d.dm_mid, text, attachments=attachments if self._has_buttons(d) else None
        )

    def _has_buttons(self, d: Delivery) -> bool:
        """A moderator's DM of a keyword alert or a notice (a room copy has none: in a room the
        click would be an ordinary message, not a command; reports carry their commands in the
        text)."""
        return not d.recipient.startswith("#") and (self._keyword(d) or d.alert.kind == NOTICE)

    def _buttons(self, d: Delivery) -> list[dict[str, object]]:
        """Keyword alerts get Delete, Dismiss and Allow; notices the actions they were raised
        with, and Dismiss; a closed alert none."""
        if not self._has_buttons(d) or d.outcome:
            return []
        if self._keyword(d):
            return buttons(keyword_actions(d.alert_id, d.alert.incident()))
        return buttons([*d.alert.actions, ("Dismiss", f"mod dismiss {d.alert_id}")])

    def _keyword(self, d: Delivery) -> bool:
        """A keyword alert: rendered here, capped, offered Delete/Dismiss/Allow."""
        return d.alert.kind in ALERTING_KINDS

    async def _send(self, c: change.PostMessage | change.EditMessage, *, actor: str) -> Result:
        # Not audited by the executor: a resend after a crash would record the send twice; the
        # outbox audits the first copy once its delivery is recorded.
        return await self._executor.execute(Action(c, actor=actor, audit=None))

    async def _destination(self, recipient: str) -> str:
        if recipient.startswith("#"):
            # Not cached: a failure must reach deliver_due, which retries or records it.
            return str((await self._rest.room_by_name(recipient[1:]))["_id"])
        rid = self._dm_rooms.get(recipient)
        if rid is None:
            rid = await self._rest.dm_room(recipient)
            self._dm_rooms[recipient] = rid
        return rid
