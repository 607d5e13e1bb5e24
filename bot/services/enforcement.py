"""The enforcer: carries out block-list and blocked-user decisions on arriving messages.

The decision is pure (:func:`bot.moderation.blocking.decide_block`); this is the shell around it,
and its order is the point: (0) the action is noted as under way in the store's retry queue;
(1)+(2) the executor (:mod:`bot.services.executor`) stores the message as evidence, with the audit
record that cites it, in one transaction, and only then deletes it (``chat.delete``) or censors it
in place (``chat.update``); (3) the author's private notice is queued in the persisted outbox,
which sends it exactly once; (4) the note of (0) is cleared. The moderators' alert comes from the
keyword alerts, which alert on ``block`` lists as on ``notify`` lists. In a dry run the executor
records what would have been done and nothing is noted, deleted or told.

A crash anywhere leaves the note of (0), so the next start takes the action up again from the
evidence (the retry loop runs at once). If the message is found already gone and this bot had
stored the evidence before, the earlier attempt landed (the crash came before its answer): the
notice is queued then, and the outbox's incident key keeps a replay from queuing it twice. If the
bot dies between (1) and (2), ingest has not marked the message handled either, so it may also come
back through catch-up; the evidence is found already stored and is not stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from bot.audit import actions
from bot.config import ModerationSettings
from bot.errors import ActionRefused, RcmodError
from bot.models import MalformedPayload, Message, Room
from bot.moderation import Matcher
from bot.moderation.actions import Action, DeleteMessage, EditMessage, SetUserActive
from bot.moderation.blocking import BlockDecision, author_notice, decide_block
from bot.moderation.purge import PurgeUsageError
from bot.moderation.screening import Found
from bot.realtime.events import EditedMessage, Event, MessageEvent, NewMessage, RoomHint, ThreadReply
from bot.rest import RestClient
from bot.services.executor import Act, Status
from bot.services.lookups import Lookups
from bot.services.outbox import Notice, Outbox
from bot.services.screening import Scans, screen
from bot.store.audit import AuditLog
from bot.store.evidence import EvidenceArchive
from bot.store.jobs import BlockList

__all__ = ["Enforcer"]

log = logging.getLogger("rcmod.enforcer")

MAX_RETRIES = 20  # about ten minutes of retries at the default delay
AUTHOR_NOTICE_KIND = "block-notice"


class Enforcer:
    def __init__(
        self,
        *,
        audit: AuditLog,
        evidence: EvidenceArchive,
        blocks: BlockList,
        rest: RestClient,
        executor: Act,
        outbox: Outbox,
        matcher: Callable[[], Matcher | None],
        moderation: ModerationSettings,
        clock: Callable[[], float] = time.time,
        retry_delay: float = 30.0,
        lookups: Lookups | None = None,
        scans: Scans | None = None,
    ) -> None:
        self._lookups = lookups or Lookups(rest, clock=clock)
        self._scans = scans or Scans(matcher)
        self._audit = audit
        self._evidence = evidence
        self._blocks = blocks
        self._rest = rest  # reads only: every change goes through the executor
        self._executor = executor
        self._outbox = outbox
        self._settings = moderation
        self._clock = clock
        self._retry_delay = retry_delay
        self._wake = asyncio.Event()
        # Messages this process is acting on now: the retry loop and the event path must not
        # act on one message at once (the retry queue holds it as "under way" meanwhile).
        self._in_flight: set[str] = set()

    async def on_event(self, event: Event) -> None:
        if not isinstance(event, NewMessage | ThreadReply | EditedMessage):
            return
        await self.enforce(event)

    async def enforce(self, event: MessageEvent) -> BlockDecision | None:
        """Decide and act on one message; returns what was decided (None: left alone)."""
        message = event.message
        blocked = self._blocks.blocked_user(message.author.id, message.rid)
        found: list[Found] = []
        if blocked is None:  # a blocked author's message goes whatever it says: no scan
            found = self._scans.found(message, event.room.name, kind="block") or []
            if not found:
                return None  # the common case: no REST lookup at all
        screened = await screen(event, found, lookups=self._lookups, moderation=self._settings)
        if screened is None:
            return None
        found, room_name, room_type = screened.found, screened.room.name, screened.room.type
        decision = decide_block(message, found, blocked=blocked)
        if decision is None:
            return None
        await self._act(message, decision, room_name, room_type)
        return decision

    async def _act(
        self, message: Message, decision: BlockDecision, room_name: str | None, room_type: str | None
    ) -> None:
        if message.id in self._in_flight:
            return  # the other path (event or retry) is on it; the retry queue still holds it
        self._in_flight.add(message.id)
        try:
            await self._act_once(message, decision, room_name, room_type)
        finally:
            self._in_flight.discard(message.id)

    async def _act_once(
        self, message: Message, decision: BlockDecision, room_name: str | None, room_type: str | None
    ) -> None:
        action = _action(message, decision)
        assert action.audit is not None
        # Under way before anything else: a crash from here on is finished by the next start. A
        # dry run has nothing under way (and a retry queued before it waits for its end).
        if not self._executor.dry_run():
            self._blocks.note_block_in_flight(message.id, message.rid)
        # Evidence first, in one transaction with the audit record; not again after a crash.
        acted_before = self._blocks.has_enforcement_evidence(message.id, action.audit)
        result = await self._executor.execute(action, evidence_kept=acted_before)
        if result.status is Status.DRY_RUN:
            return  # the executor recorded what would have been done
        if result.status is Status.FAILED:
            # The server is failing (the REST client already retried): try again later from the
            # evidence just kept, rather than leave a blocked message standing.
            attempts = self._blocks.queue_block_retry(message.id, message.rid, self._retry_delay)
            log.warning(
                "block %s of %s failed (%s); retry %d queued",
                decision.action,
                message.id,
                result.code,
                attempts,
            )
            self._wake.set()
            return
        if result.status is Status.REFUSED:
            if not (acted_before and decision.action == "delete" and await self._gone(message.id)):
                # The message may already be gone (a moderator was faster), or the bot lacks the
                # permission here: the executor said so in the audit log; tell nobody it was removed.
                self._blocks.block_retry_done(message.id)
                log.warning(
                    "block %s of %s in %s refused (%s)", decision.action, message.id, message.rid, result.code
                )
                return
            # Gone, and this bot had begun deleting it: an earlier attempt landed before a crash
            # (or its answer was lost). Finish as if this one had.
            log.info("block delete of %s had landed before; finishing it", message.id)
        else:
            log.info(
                "block %s: message %s in room %s (%s)", decision.action, message.id, message.rid, action.actor
            )
        await self._queue_author_notice(message, decision, room_name if room_type != "d" else None, room_type)
        self._blocks.block_retry_done(message.id)

    async def _gone(self, mid: str) -> bool:
        try:
            return not await self._rest.message_exists(mid)
        except RcmodError:
            return False  # cannot tell: the refusal stands

    async def _queue_author_notice(
        self, message: Message, decision: BlockDecision, room_name: str | None, room_type: str | None
    ) -> None:
        author = message.author
        if not author.username:
            return
        # Through the outbox, keyed by the message: exactly once across crashes and replays.
        await self._outbox.notify(
            Notice.direct(
                AUTHOR_NOTICE_KIND,
                incident=message.id,
                recipient=author.username,
                text=author_notice(decision, room_name),
                room=Room(message.rid, room_name, room_type),
                subject=author,
            )
        )

    # -- retrying after server failures ------------------------------------------------------------

    async def run(self) -> None:
        """Background loop: retry block-list actions the server failed, when they are due."""
        while True:
            self._wake.clear()
            try:
                await self.retry_due()
            except RcmodError as exc:  # never let the loop die; retries stay queued
                log.warning("block retry pass failed (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
                async with asyncio.timeout(self._retry_delay):
                    await self._wake.wait()

    async def retry_due(self) -> int:
        """Decide again from the stored evidence (the lists or blocks may have changed) and act.
        Returns how many retries were taken up."""
        due = self._blocks.due_block_retries()
        for mid, rid, attempts in due:
            kept = self._evidence.evidence_for_message(mid)
            if not kept or attempts > MAX_RETRIES:
                if kept:
                    self._audit.append_audit(
                        actor="rule:blocklist",
                        action=actions.MESSAGE_DELETED,
                        targets={"room": rid, "message": mid},
                        outcome=f"failed: gave up after {attempts} attempts",
                    )
                self._blocks.block_retry_done(mid)  # nothing kept to act from (erased), or given up
                continue
            try:
                message = Message.from_wire(kept[-1]["content"])
            except MalformedPayload:
                self._blocks.block_retry_done(mid)
                continue
            if await self.enforce(NewMessage(message, RoomHint())) is None:
                self._blocks.block_retry_done(mid)  # no longer blocked (lists or blocks changed)
        return len(due)

    # -- blocking users (the core of `/mod block` and `/mod unblock`) -------------------------------
    #
    # The command layer checks the moderator's privilege (a room moderator blocks in their rooms;
    # "everywhere" and deactivation are for admins and bot moderators) before calling these.

    async def block_user(
        self,
        username: str,
        *,
        rid: str | None,
        reason: str,
        actor: str,
        deactivate: bool = False,
        confirmed: bool = False,
    ) -> str:
        """Block ``username`` everywhere (``rid`` None) or in one room; optionally deactivate the
        account too, which needs ``confirmed`` (it logs the user out everywhere). Returns a line
        for the moderator. Raises PurgeUsageError for an unknown user or a missing confirmation."""
        if deactivate and not confirmed:
            raise PurgeUsageError("deactivating an account needs an explicit confirmation")
        user = await self._user(username)
        uid = str(user["_id"])
        changed = self._blocks.block_user(uid, username, rid, reason=reason, actor=actor)
        where = "everywhere" if rid is None else "in that room"
        line = f"{username} is {'now' if changed else 'already'} blocked {where}"
        if deactivate:
            result = await self._executor.execute(
                Action(
                    SetUserActive(uid, False),
                    actor=actor,
                    audit=actions.USER_BLOCKED,
                    targets={"user": uid},
                    reason={"deactivate": True},
                )
            )
            line += {
                Status.DONE: "; the account is deactivated",
                Status.DRY_RUN: "; dry run: the account would be deactivated (recorded, not done)",
                Status.REFUSED: "; the account could not be deactivated (the bot lacks the permission)",
                Status.FAILED: "; the account could not be deactivated (Rocket.Chat failed; try again)",
            }[result.status]
        return line

    async def unblock_user(self, username: str, *, rid: str | None, actor: str) -> bool:
        user = await self._user(username)
        return self._blocks.unblock_user(str(user["_id"]), rid, actor=actor)

    async def _user(self, username: str) -> dict[str, Any]:
        try:
            return await self._rest.user_info(username=username.lstrip("@"))
        except ActionRefused:
            raise PurgeUsageError(f"no user {username.lstrip('@')!r} on this workspace") from None


def _action(message: Message, decision: BlockDecision) -> Action:
    """Delete or censor ``message`` in place, evidence first, in the name of the rule."""
    if decision.action == "delete":
        change: DeleteMessage | EditMessage = DeleteMessage(message.rid, message.id)
    else:
        assert decision.censored_text is not None
        change = EditMessage(message.rid, message.id, decision.censored_text)
    return Action(
        change,
        actor=f"rule:{decision.reason.rule}",
        audit=actions.MESSAGE_DELETED if decision.action == "delete" else actions.MESSAGE_CENSORED,
        targets={"room": message.rid, "message": message.id, "user": message.author.id},
        reason=decision.audit_reason,
        evidence=(message,),
    )
