"""The keyword notifier: scan every message, raise alerts, deliver them to moderators by DM.

Decisions (which incidents, which alert they join, the DM text) are pure code in
:mod:`bot.moderation.alerts`; this module is the shell around them. Delivery goes through a
persisted outbox (:class:`bot.store.alerts.AlertLedger`): an incident and all its deliveries are
written in one transaction, then a background loop brings every moderator's copy up to the
alert's current version — send it the first time (with a message id chosen before the send, so
a resend after a crash is the same message), edit it (``chat.update``) when a burst adds to it.
A moderator who cannot be reached is recorded and logged; the others still get theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.audit import actions
from bot.commands import addressed_to_bot
from bot.config import ModerationSettings
from bot.errors import ActionRefused, RcmodError
from bot.metrics import Metrics
from bot.models import UserRef
from bot.moderation import Match, Matcher
from bot.moderation.alerts import (
    Incident,
    RoomRef,
    buttons,
    incidents_for,
    keyword_actions,
    render_alert,
    render_digest,
)
from bot.moderation.neutralize import defuse_everyone
from bot.moderation.wordlist import ListOptions
from bot.realtime.events import EditedMessage, EncryptedMessage, Event, MessageEvent, NewMessage, ThreadReply
from bot.rest import RestClient
from bot.rest.client import new_message_id
from bot.services.lookups import Lookups
from bot.services.moderators import BotModerators
from bot.store import Store
from bot.store.alerts import Delivery, RaisedAlert

__all__ = ["Notifier"]

log = logging.getLogger("rcmod.notifier")


class Notifier:
    def __init__(
        self,
        *,
        store: Store,
        rest: RestClient,
        matcher: Callable[[], Matcher | None],
        moderation: ModerationSettings,
        site_url: Callable[[], str],
        metrics: Metrics,
        bot_username: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        window: float = 600.0,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        renderers: Mapping[str, Callable[[Delivery], str]] | None = None,
        lookups: Lookups | None = None,
        digest_interval: float = 3600.0,
        ddp_call: Callable[..., Awaitable[Any]] | None = None,
        bot_moderators: BotModerators | None = None,
    ) -> None:
        # chat.update edits the text only; the DDP method updateMessage also replaces the
        # attachments, so an alert's buttons follow its text (None: text-only edits).
        self._ddp_call = ddp_call
        self._digest_interval = digest_interval
        # Alerts go to the configured moderators' accounts (bound by id) under their current
        # names: never to whoever holds a configured name now.
        self._bot_moderators = bot_moderators or BotModerators(moderation.moderators, clock=clock)
        self._store = store
        self._rest = rest
        self._matcher = matcher
        self._settings = moderation
        self._site_url = site_url
        self._metrics = metrics
        self._bot_username = bot_username
        self._clock = clock
        self._window = window
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        # Alert kinds rendered elsewhere (kind "report": bot.services.reports), delivered by this outbox.
        self._renderers = {NOTICE_KIND: render_notice, **(renderers or {})}
        self._wake = asyncio.Event()
        self._dm_rooms: dict[str, str] = {}
        self._lookups = lookups or Lookups(rest, clock=clock)

    # -- deciding --------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, EncryptedMessage):
            self._store.alerts.count_unscannable(event.message.rid)
            self._metrics.unscannable.inc()
            return
        if not isinstance(event, NewMessage | ThreadReply | EditedMessage):
            return
        matcher = self._matcher()
        if matcher is None:
            return
        await self._scan(event, matcher)

    async def _scan(self, event: MessageEvent, matcher: Matcher) -> None:
        message = event.message
        hint_room = RoomRef(message.rid, event.room.name, event.room.type)
        # Scan first: the REST lookups below only happen for the rare message that matches.
        found: list[tuple[str, list[Match]]] = []
        for text in message.scannable_texts():
            matches = matcher.scan(text, room=hint_room.name)
            if matches:
                found.append((text, matches))
        if not found:
            return
        room = await self._lookups.room(hint_room)
        if addressed_to_bot(message.text, room.type):
            return  # a command or a DM to the bot: said to the bot, not to the workspace
        if room.name in self._settings.exempt_rooms or await self._lookups.has_role(
            message.author, self._settings.exempt_roles
        ):
            return
        raised = 0
        for text, matches in found:
            options = {(m.list, m.term): m.options for m in matches}
            if room.name != hint_room.name:  # now that the name is known, apply rooms/skip_rooms
                matches = [
                    m for m in matches if m.options.applies_to(room.name) or m.options.applies_to(room.id)
                ]
            shown = dataclasses.replace(message, text=text)  # excerpt offsets are into this text
            for incident in incidents_for(shown, matches, room):
                recipients = await self._recipients(
                    options[(incident.list, incident.term)], room, message.author
                )
                if not recipients:
                    log.warning(
                        "alert for list %s in room %s has no recipient; set moderation.moderators",
                        incident.list,
                        room.id,
                    )
                    continue
                result = self._store.alerts.raise_alert(
                    _incident_row(incident),
                    recipients=recipients,
                    window=self._window,
                    new_dm_id=new_message_id,
                )
                if result is None:
                    continue  # already alerted for this message, list and term (an edit, a replay)
                raised += 1
                self._metrics.alerts.labels("raised" if result.created else "coalesced").inc()
        if raised:
            self._wake.set()

    async def _recipients(self, options: ListOptions, room: RoomRef, author: UserRef) -> list[str]:
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
        return self._others(names, author)

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

    async def notice(
        self,
        *,
        kind: str,
        key: str,
        incident: str,
        text: str,
        room: RoomRef,
        subject: UserRef,
        severity: str = "high",
        roles: Sequence[str] = (),
        window: float | None = None,
        actions: Sequence[tuple[str, str]] = (),
    ) -> RaisedAlert | None:
        """An alert that is not a wordlist match — a protection firing, a sanction step, an
        appeal — through the same outbox, routing and coalescing as keyword alerts.

        ``text`` is the whole body, already made inert by the caller. Alerts with the same ``key``
        within ``window`` (default: the notifier's) are one DM with a counter; ``incident`` names
        the occurrence, so a replay of it alerts no one twice. With ``roles``, the holders of those
        roles are told instead of the default moderators. None: nobody to tell, or a replay.
        """
        if roles:
            recipients = self._others(await self._role_holders(roles), subject)
        else:
            recipients = await self._recipients(ListOptions(name=kind), room, subject)
        if not recipients:
            log.warning("%s notice in room %s has no recipient; set moderation.moderators", kind, room.id)
            return None
        row = self._row(
            key=f"{kind}|{key}",
            kind=NOTICE_KIND,
            list_name=kind,
            term=key,
            severity=severity,
            room=room,
            incident=incident,
            subject=subject,
            text=text,
        )
        row["actions"] = [list(a) for a in actions]
        raised = self._store.alerts.raise_alert(
            row,
            recipients=recipients,
            window=self._window if window is None else window,
            new_dm_id=new_message_id,
        )
        if raised is not None:
            self._metrics.alerts.labels("raised" if raised.created else "coalesced").inc()
            self._wake.set()
        return raised

    def queue_direct(
        self, *, kind: str, incident: str, recipient: str, text: str, room: RoomRef, subject: UserRef
    ) -> bool:
        """A private message to one person (not a moderators' alert, so never capped, coalesced or
        given buttons), through the same persisted outbox: queued durably, sent with an id chosen
        before the send, retried until it lands. ``incident`` names what it is about: queuing the
        same incident again (a replay after a crash) sends nothing more. ``text`` must already be
        inert. True when newly queued.

        ``kind`` must be registered (``register_renderer(kind, render_direct)``) when the
        notifier is built, not here: a restarted process sends what an earlier one queued before
        it queues anything itself."""
        if kind not in self._renderers:
            raise ValueError(f"direct message kind {kind!r} has no renderer registered")
        row = self._row(
            key=f"{kind}|{incident}",
            kind=kind,
            list_name=kind,
            term=incident,
            severity="low",
            room=room,
            incident=incident,
            subject=subject,
            text=text,
        )
        raised = self._store.alerts.raise_alert(
            row, recipients=[recipient], window=0.0, new_dm_id=new_message_id
        )
        if raised is not None:
            self._wake.set()
        return raised is not None

    def _row(
        self,
        *,
        key: str,
        kind: str,
        list_name: str,
        term: str,
        severity: str,
        room: RoomRef,
        incident: str,
        subject: UserRef,
        text: str,
    ) -> dict[str, object]:
        """The alert row of a message that is not a wordlist match (a notice, a direct message):
        ``incident`` stands where a keyword alert has the message id."""
        return {
            "key": key,
            "kind": kind,
            "list": list_name,
            "term": term,
            "severity": severity,
            "categories": [],
            "rid": room.id,
            "room_name": room.name,
            "room_type": room.type,
            "mid": incident,
            "author_id": subject.id,
            "author_username": subject.username,
            "message_ts": self._clock(),
            "excerpt": text,
        }

    async def route(self, options: ListOptions, room: RoomRef, author: UserRef) -> list[str]:
        """The moderators an alert about ``author`` in ``room`` goes to (reports use this too)."""
        return await self._recipients(options, room, author)

    def register_renderer(self, kind: str, render: Callable[[Delivery], str]) -> None:
        self._renderers[kind] = render

    def wake(self) -> None:
        """Deliver now: something was queued or changed outside :meth:`on_event`."""
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
        for recipient in self._store.alerts.digest_recipients():
            digest = self._store.alerts.open_digest(
                recipient, min_gap=self._digest_interval, new_dm_id=new_message_id
            )
            if digest is None:
                continue
            text = defuse_everyone(
                render_digest(digest.items, cap=self._settings.alert_cap_per_hour, site_url=self._site_url())
            )
            try:
                await self._rest.send_message(await self._destination(recipient), text, mid=digest.dm_mid)
            except RcmodError as exc:
                log.warning(
                    "digest %d to %s failed (%s); it stays queued", digest.id, recipient, type(exc).__name__
                )
                continue
            self._store.alerts.digest_sent(digest.id)
            self._metrics.alerts.labels("digest").inc()
            sent += 1
        return sent

    async def deliver_due(self) -> int:
        delivered = 0
        cap = self._settings.alert_cap_per_hour
        for d in self._store.alerts.due_deliveries():
            renderer = self._renderers.get(str(d.alert["kind"]))
            # The per-moderator cap counts new keyword-alert DMs only: edits of a DM already sent,
            # reports and room deliveries always go. Over it, the alert waits for the digest.
            capped = cap and d.sent_version == 0 and renderer is None and not d.recipient.startswith("#")
            if capped and self._store.alerts.sent_since(d.recipient, self._clock() - 3600) >= cap:
                self._store.alerts.hold_delivery(d.id)
                self._metrics.alerts.labels("held").inc()
                continue
            incident = _incident_from(d.alert)
            text = (
                renderer(d)
                if renderer
                else render_alert(
                    d.alert_id,
                    incident,
                    count=int(str(d.alert["count"])),
                    site_url=self._site_url(),
                    first_at=datetime.fromtimestamp(float(str(d.alert["first_at"])), UTC),
                    outcome=str(d.alert["outcome"]) if d.alert["outcome"] else None,
                )
            )
            # Whatever a renderer let through, no mention of everyone goes out: the server would
            # refuse the whole DM (the bot lacks mention-all) and the moderator would see nothing.
            text = defuse_everyone(text)
            try:
                rid = d.dm_rid or await self._destination(d.recipient)
                if d.sent_version == 0:
                    await self._rest.send_message(
                        rid, text, mid=d.dm_mid, attachments=self._buttons(d, incident, renderer)
                    )
                    self._metrics.alerts.labels("delivered").inc()
                else:
                    await self._edit(rid, d, text, incident, renderer)
                    self._metrics.alerts.labels("updated").inc()
            except ActionRefused as exc:
                # Deactivated or unknown moderator, or a room the bot may not post in.
                self._store.alerts.delivery_failed(d.id, exc.code or type(exc).__name__)
                self._metrics.alerts.labels("undeliverable").inc()
                log.warning(
                    "alert %d cannot reach %s (%s); other moderators still get it",
                    d.alert_id,
                    d.recipient,
                    exc.code or type(exc).__name__,
                )
                continue
            except RcmodError as exc:
                delay = min(self._retry_max, self._retry_initial * 2**d.attempts)
                self._store.alerts.delivery_retry(d.id, delay)
                log.warning(
                    "alert %d to %s failed (%s); retry in %.0f s",
                    d.alert_id,
                    d.recipient,
                    type(exc).__name__,
                    delay,
                )
                continue
            self._store.alerts.delivery_done(d.id, d.version, rid)
            if d.sent_version == 0:  # the first copy to this moderator: an action, audited
                self._store.audit.append_audit(
                    actor=f"rule:{d.alert['list']}",
                    action=actions.ALERT_SENT,
                    targets={
                        "alert": d.alert_id,
                        "recipient": d.recipient,
                        "message": d.alert["mid"],
                        "room": d.alert["rid"],
                    },
                    reason={"list": d.alert["list"], "term": d.alert["term"], "kind": d.alert["kind"]},
                )
            delivered += 1
        return delivered

    def _buttons(
        self, d: Delivery, incident: Incident, renderer: Callable[[Delivery], str] | None
    ) -> list[dict[str, object]]:
        """One-click buttons for a moderator's DM (a room copy has none: in a room the click would
        be an ordinary message, not a command). Keyword alerts get Delete, Dismiss and Allow;
        notices get the actions they were raised with, and Dismiss."""
        if d.recipient.startswith("#") or d.alert["outcome"]:
            return []
        if renderer is None:
            return buttons(keyword_actions(d.alert_id, incident))
        if d.alert["kind"] != NOTICE_KIND:
            return []  # reports carry their own commands in the text
        stored = d.alert.get("actions") or ()
        acts = [(str(a[0]), str(a[1])) for a in stored]  # type: ignore[attr-defined]
        return buttons([*acts, ("Dismiss", f"mod dismiss {d.alert_id}")])

    async def _edit(
        self, rid: str, d: Delivery, text: str, incident: Incident, renderer: Callable[[Delivery], str] | None
    ) -> None:
        """Bring a sent copy up to date. A copy that carries buttons gets them again with the text:
        aimed at the message the text now names (a burst moves it to the newest), and none once
        the alert is closed, so a dismissed alert offers no Delete."""
        has_buttons = not d.recipient.startswith("#") and (renderer is None or d.alert["kind"] == NOTICE_KIND)
        if has_buttons and self._ddp_call is not None:
            attachments = self._buttons(d, incident, renderer)
            await self._ddp_call(
                "updateMessage", {"_id": d.dm_mid, "rid": rid, "msg": text, "attachments": attachments}
            )
            return
        await self._rest.update_message(rid, d.dm_mid, text)

    async def _destination(self, recipient: str) -> str:
        if recipient.startswith("#"):
            # Not cached: a failure must reach deliver_due, which retries or records it.
            return str((await self._rest.room_by_name(recipient[1:]))["_id"])
        rid = self._dm_rooms.get(recipient)
        if rid is None:
            rid = await self._rest.dm_room(recipient)
            self._dm_rooms[recipient] = rid
        return rid


NOTICE_KIND = "notice"


def render_direct(d: Delivery) -> str:
    """A private message queued with :meth:`Notifier.queue_direct`: its text as queued."""
    return str(d.alert["excerpt"] or "rcmod notice (details expired)")


def render_notice(d: Delivery) -> str:
    """A notice alert (see :meth:`Notifier.notice`): its text, how often, and how it ended."""
    alert = d.alert
    lines = [str(alert["excerpt"] or "rcmod notice (details expired)")]
    count = int(str(alert["count"]))
    if count > 1:
        lines.append(f"_Seen {count} times since the first._")
    if alert["outcome"]:
        lines.append(f"*Closed:* {alert['outcome']}")
    else:
        lines.append(f"Alert {d.alert_id} — close it with `/mod dismiss {d.alert_id}`.")
    return "\n".join(lines)


def _incident_row(incident: Incident) -> dict[str, object]:
    return {
        "key": incident.key,
        "kind": incident.kind,
        "list": incident.list,
        "term": incident.term,
        "severity": incident.severity,
        "categories": list(incident.categories),
        "rid": incident.room.id,
        "room_name": incident.room.name,
        "room_type": incident.room.type,
        "mid": incident.mid,
        "author_id": incident.author.id,
        "author_username": incident.author.username,
        "message_ts": incident.ts.timestamp(),
        "excerpt": incident.excerpt,
    }


def _incident_from(alert: dict[str, object]) -> Incident:
    return Incident(
        mid=str(alert["mid"]),
        room=RoomRef(str(alert["rid"]), _opt(alert["room_name"]), _opt(alert["room_type"])),
        author=UserRef(str(alert["author_id"]), str(alert["author_username"])),
        ts=datetime.fromtimestamp(float(str(alert["message_ts"])), UTC),
        list=str(alert["list"]),
        term=str(alert["term"]),
        severity=str(alert["severity"]),
        categories=tuple(str(c) for c in alert["categories"]),  # type: ignore[attr-defined]
        excerpt=str(alert["excerpt"] or "` (excerpt removed) `"),
        kind=str(alert["kind"]),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
