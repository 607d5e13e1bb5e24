"""Keyword alerts: scan every message against the wordlists and tell the moderators.

Decisions (which incidents, which alert they join, the DM text) are pure code in
:mod:`bot.moderation.alerts`; this module is the shell around them. Each incident becomes an
:class:`~bot.moderation.alerts.Alert` handed to the :class:`~bot.services.outbox.Outbox`,
routed by its list's notify settings; the outbox persists it and delivers it exactly once,
coalescing a burst into one DM with a counter.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from bot.config import ModerationSettings
from bot.metrics import Metrics
from bot.moderation import Matcher
from bot.moderation.alerts import Alert, incidents_for
from bot.realtime.events import EditedMessage, EncryptedMessage, Event, MessageEvent, NewMessage, ThreadReply
from bot.services.lookups import Lookups
from bot.services.outbox import Moderators, Notice, Outbox
from bot.services.screening import Scans, screen
from bot.store.alerts import AlertLedger

__all__ = ["KeywordAlerts"]

log = logging.getLogger("rcmod.alerts")


class KeywordAlerts:
    def __init__(
        self,
        *,
        alerts: AlertLedger,
        outbox: Outbox,
        matcher: Callable[[], Matcher | None],
        moderation: ModerationSettings,
        metrics: Metrics,
        lookups: Lookups,
        scans: Scans | None = None,
    ) -> None:
        self._alerts = alerts
        self._scans = scans or Scans(matcher)
        self._outbox = outbox
        self._settings = moderation
        self._metrics = metrics
        self._lookups = lookups

    # -- deciding --------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, EncryptedMessage):
            self._alerts.count_unscannable(event.message.rid)
            self._metrics.unscannable.inc()
            return
        if not isinstance(event, NewMessage | ThreadReply | EditedMessage):
            return
        await self._scan(event)

    async def _scan(self, event: MessageEvent) -> None:
        message = event.message
        found = self._scans.found(message, event.room.name)
        if not found:
            return  # the common case (or no lists): no REST lookup at all
        screened = await screen(event, found, lookups=self._lookups, moderation=self._settings)
        if screened is None:
            return
        for text, matches in screened.found:
            options = {(m.list, m.term): m.options for m in matches}
            shown = dataclasses.replace(message, text=text)  # excerpt offsets are into this text
            for incident in incidents_for(shown, matches, screened.room):
                # None: nobody to tell, or already alerted for this message, list and term (an
                # edit, a replay); the outbox logs the first.
                await self._outbox.notify(
                    Notice(Alert.of(incident), Moderators(options[(incident.list, incident.term)]))
                )
