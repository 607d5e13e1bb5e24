"""The protections shell: feeds every new message and join to the pure engine
(:mod:`bot.moderation.protections`) and carries out what it decides.

A trigger in ``alert`` mode (the default for flood, repeated content and mention spam), or in
``act`` mode while ``/mod dryrun`` is on, only tells the moderators what would have been done.
In ``act`` mode: a flood mutes the author in that room (and is a strike on the ladder);
repeated content and mention spam delete the messages, evidence first, and are a strike; a link
is held — evidence first, deleted, and restorable with ``/mod restore``; a raid locks the room
read-only when ``raid.lock`` is on. Administrators, the bot and exempt roles are never acted
on; a trigger by them is at most an alert.

The engine's counters live in memory (bounded); the only per-message I/O here is the account-age
lookup for probation, cached per user for the life of the process (an account's creation date
does not change), and a role lookup when a message mentions @all/@here.

The account-age lookup never holds the ingest path: an author not yet known is looked up beside
it (one task per author, a few at a time), and that author's messages wait for the answer, in
their order, while everyone else's go on. A waiting message is :class:`Unfinished` for ingest,
so it is not recorded as handled (nor its room's cursor moved past it) until its check is done:
a crash meanwhile makes catch-up read it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.audit import actions
from bot.commands import addressed_to_bot
from bot.config import ModerationSettings, ProtectionSettings
from bot.errors import ActionRefused, Fatal, NotFound, RcmodError
from bot.models import Actor, Message, Room, UserRef
from bot.moderation.actions import Action, DeleteMessage, PostMessage
from bot.moderation.alerts import permalink
from bot.moderation.neutralize import inline_literal, plain_name
from bot.moderation.protections import Join, Post, Protections, Trigger
from bot.realtime.events import Event, NewMessage, SystemMessage, ThreadReply
from bot.rest import RestClient
from bot.rest.client import derived_message_id
from bot.services.executor import Act, Status
from bot.services.lookups import Lookups
from bot.services.outbox import Notice, Outbox
from bot.services.router import Unfinished
from bot.services.sanctions import Sanctioner, Target
from bot.store.audit import AuditLog
from bot.store.evidence import EvidenceArchive
from bot.store.sanctions import SanctionLedger

__all__ = ["Protector"]

log = logging.getLogger("rcmod.protector")

# A member joining by themselves (a room, a team); `au` (added by someone) is not a raid.
JOIN_TYPES = frozenset({"uj", "ujt"})
_AGE_CACHE = 50_000
_LOOKUPS_AT_ONCE = 4  # account-age lookups in flight together, each for a different author


class Protector:
    def __init__(
        self,
        *,
        audit: AuditLog,
        evidence: EvidenceArchive,
        sanctions: SanctionLedger,
        rest: RestClient,
        executor: Act,
        outbox: Outbox,
        sanctioner: Sanctioner,
        settings: ProtectionSettings,
        moderation: ModerationSettings,
        bot_username: Callable[[], str | None],
        site_url: Callable[[], str],
        clock: Callable[[], float] = time.time,
        lookups: Lookups | None = None,
        unfinished: Unfinished | None = None,
    ) -> None:
        self._audit = audit
        self._evidence = evidence
        self._sanctions = sanctions
        self._rest = rest  # reads only: every change goes through the executor or the sanctioner
        self._executor = executor
        self._outbox = outbox
        self._sanctioner = sanctioner
        self._settings = settings
        self._moderation = moderation
        self._bot_username = bot_username
        self._site_url = site_url
        self._clock = clock
        self._lookups = lookups or Lookups(rest, clock=clock)
        self.engine = Protections(settings)
        self._created: OrderedDict[str, float | None] = OrderedDict()
        self.unfinished = unfinished if unfinished is not None else Unfinished()
        # Authors whose account age is being looked up, with their messages waiting, in order.
        self._waiting: dict[str, list[tuple[Message, str | None, float]]] = {}
        self._lookup_slots = asyncio.Semaphore(_LOOKUPS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._probation_seconds = settings.probation_days * 86400
        self._probation_on = settings.probation_days > 0 and (
            settings.flood.mode != "off" or settings.mentions.mode != "off" or settings.links.mode != "off"
        )

    def status(self) -> list[str]:
        """Lines for `/mod status`: each protection's mode, live mutes, rooms locked by a raid."""
        s = self._settings
        modes = ", ".join(
            f"{name} {getattr(s, name).mode}" for name in ("flood", "repeat", "mentions", "links", "raid")
        )
        locked = self._sanctions.locked_rooms()
        rooms = ", ".join(inline_literal("#" + (name or rid)) for rid, name in locked) or "none"
        return [
            f"Protections: {modes}"
            + (" (dry run: acting ones only alert)" if self._executor.dry_run() else ""),
            f"Live mutes: {len(self._sanctions.live_mutes())}; rooms locked against a raid: {rooms}",
        ]

    # -- observing -------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, NewMessage | ThreadReply):
            message = event.message
            room_type = event.room.type
            if room_type is None:  # catch-up does not always know it; rooms.info, cached
                room_type = (await self._lookups.room(Room(message.rid, event.room.name, None))).type
            if addressed_to_bot(message.text, room_type):
                # Commands and DMs to the bot are no flood, spam or raid: a member asking the
                # bot for help seven times must not be muted, and a DM has no room to mute in.
                return
            author = message.author.id
            if self._probation_on and (author in self._waiting or author not in self._created):
                self._wait_for_age(message, event.room.name)
                return
            await self._check(message, event.room.name)
        elif isinstance(event, SystemMessage) and event.message.type in JOIN_TYPES:
            m = event.message
            join = Join(m.rid, event.room.name, m.author.id, m.author.username, self._clock())
            for trigger in self.engine.on_join(join):
                await self._handle(trigger, None)

    async def _check(self, message: Message, room_name: str | None, arrived: float | None = None) -> None:
        post = await self._post(message, room_name, self._clock() if arrived is None else arrived)
        for trigger in self.engine.on_post(post):
            await self._handle(trigger, message)

    def _wait_for_age(self, message: Message, room_name: str | None) -> None:
        """Check ``message`` once its author's account age is known, after the author's earlier
        messages; the first message of an author starts the lookup."""
        self.unfinished.hold(message.id, message.version)
        # Counted at its arrival, not when checked: a burst of checks after a slow answer is
        # not a burst of messages.
        waiting = (message, room_name, self._clock())
        queue = self._waiting.get(message.author.id)
        if queue is not None:
            queue.append(waiting)
            return
        self._waiting[message.author.id] = [waiting]
        task = asyncio.create_task(self._look_up_and_check(message.author))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _look_up_and_check(self, author: UserRef) -> None:
        try:
            async with self._lookup_slots:
                await self._on_probation(author)
        except Exception as exc:  # the checks below go on as "not on probation"
            log.warning("account-age lookup failed (%s)", type(exc).__name__)
        queue = self._waiting[author.id]
        while queue:  # messages by the author that came meanwhile join the end of the queue
            message, room_name, arrived = queue.pop(0)
            try:
                await self._check(message, room_name, arrived)
            except Fatal:
                # Nothing can be recorded: left unfinished, so never marked handled.
                log.error("protections: store unwritable while checking message %s", message.id)
                continue
            except Exception as exc:  # as the router does: one message's failure is isolated
                log.error("protections failed on message %s: %s", message.id, type(exc).__name__)
            self.unfinished.release(message.id, message.version)
        del self._waiting[author.id]

    async def settled(self) -> None:
        """Wait until no message waits for an account-age lookup (tests, benchmarks, a stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _post(self, message: Message, room_name: str | None, arrived: float) -> Post:
        # A message by an author whose account age is known, with no @all/@here, waits on no
        # lookup here: the common case costs a few dict reads.
        raw = message.raw
        author = message.author
        mentions: tuple[str, ...] = ()
        everyone = False
        listed = raw.get("mentions")
        if listed:
            names: list[str] = []
            for m in listed:
                name = m.get("username") if isinstance(m, dict) else None
                if name in ("all", "here"):
                    everyone = True
                elif isinstance(name, str) and name != author.username:
                    names.append(name)
            mentions = tuple(dict.fromkeys(names))
        links = raw.get("urls")
        urls = (
            tuple(str(u["url"]) for u in links if isinstance(u, dict) and isinstance(u.get("url"), str))
            if links
            else ()
        )
        probation = False
        if self._probation_on:
            created = self._created.get(author.id, ...)
            if created is ...:
                probation = await self._on_probation(author)
            elif created is not None:
                probation = self._clock() - created < self._probation_seconds
        allowed = await self._may_mention_everyone(message) if everyone else True
        return Post(
            message.id,
            message.rid,
            room_name,
            author.id,
            author.username,
            message.text,
            arrived,
            mentions,
            everyone,
            probation,
            allowed,
            urls,
        )

    async def _on_probation(self, author: UserRef) -> bool:
        created = self._created.get(author.id, ...)
        if created is ...:
            info: dict[str, Any] = await self._lookups.cached(
                f"user:{author.id}", lambda: self._rest.user_info(user_id=author.id), {}
            )
            created = _epoch(info.get("createdAt"))
            if info:  # a failed lookup is asked again next time rather than remembered
                self._created[author.id] = created
                if len(self._created) > _AGE_CACHE:
                    self._created.popitem(last=False)
        if created is None:
            return False
        return self._clock() - created < self._probation_seconds

    async def _may_mention_everyone(self, message: Message) -> bool:
        wanted = set(self._settings.mentions.everyone_roles)
        if await self._lookups.has_role(message.author, wanted):
            return True
        room = await self._lookups.room(Room(message.rid, None, None))
        if room.type not in ("c", "p"):
            return True  # a direct message: @all reaches only its members
        roles: dict[str, list[str]] = await self._lookups.cached(
            f"roles:{room.id}", lambda: self._rest.room_roles(room.id, room.type or "c"), {}
        )
        return bool(wanted & set(roles.get(message.author.id, [])))

    # -- acting ----------------------------------------------------------------------------------

    async def _handle(self, trigger: Trigger, message: Message | None) -> None:
        room = await self._lookups.room(Room(trigger.rid, trigger.room_name, None))
        subject = UserRef(trigger.user_id or "", trigger.username or "")
        target: Target | str | None = None
        if trigger.username:
            found = await self._sanctioner.target(trigger.username, check=False, cached=True)
            if isinstance(found, Target) and set(found.roles) & set(self._moderation.exempt_roles):
                return  # bots and exempt roles are not watched, as by the notifier
            # An administrator or a bot moderator comes back as a refusal: alerted, never acted on.
            target = (self._sanctioner.refusal(found) or found) if isinstance(found, Target) else found
        # Asked before acting, not left to the executor: a dry run turns the whole response into
        # an alert (no strike, no lock), and the alert says what would have been done.
        acting = trigger.mode == "act" and not self._executor.dry_run() and trigger.action != "none"
        if acting and isinstance(target, str):
            acting = False  # an administrator, a bot moderator: tell, never act
        done = "alert only"
        acts: list[tuple[str, str]] = []
        if acting:
            try:
                done, acts = await self._act(trigger, room, target, message)
            except RcmodError as exc:
                done = f"could not act ({type(exc).__name__}); please check"
                log.warning("protection %s could not act (%s)", trigger.protection, type(exc).__name__)
        self._audit.append_audit(
            actor=f"rule:{trigger.protection}",
            action=actions.PROTECTION_TRIGGERED,
            targets={k: v for k, v in {"user": trigger.user_id, "room": trigger.rid}.items() if v},
            reason={
                "protection": trigger.protection,
                "count": trigger.count,
                "limit": trigger.limit,
                "action": trigger.action,
            },
            outcome="ok" if acting else ("dry-run" if trigger.mode == "act" else "alert"),
        )
        first = trigger.mids[0] if trigger.mids else trigger.rid
        notice = Notice.about(
            "protection",
            key=f"{trigger.protection}|{trigger.rid}|{trigger.user_id or ''}",
            incident=f"{trigger.protection}:{first}:{trigger.count}",
            text=self._alert_text(trigger, room, done, acting),
            room=room,
            subject=subject,
            severity="high",
            actions=acts,
        )
        await self._outbox.notify(notice)

    def _alert_text(self, trigger: Trigger, room: Room, done: str, acting: bool) -> str:
        where = inline_literal("#" + room.name) if room.name else inline_literal(room.id)
        who = f" by {inline_literal(trigger.username)}" if trigger.username else ""
        would = {
            "mute": "mute the author here",
            "delete": "delete the message(s)",
            "hold": "hold the message for review",
            "lock": "make the room read-only",
            "none": "nothing (alert only)",
        }[trigger.action]
        lines = [f"*rcmod protection — {trigger.protection}* in {where}{who}: {trigger.detail}."]
        if acting:
            lines.append(f"Done: {done}")
        elif trigger.mode == "act":
            lines.append(f"Dry run is on: I would {would}.")
        else:
            lines.append(
                f'Alert-only mode: I would {would} (set protections.{trigger.protection}.mode = "act").'
            )
        if trigger.mids and room.name:
            # Built by permalink(): the room name and the message id (both chosen by members) are
            # percent-encoded, so neither can close the link or add markdown.
            lines.append(f"Message: {permalink(self._site_url(), room, trigger.mids[-1])}")
        return "\n".join(lines)

    async def _act(
        self, trigger: Trigger, room_ref: Room, target: Target | str | None, message: Message | None
    ) -> tuple[str, list[tuple[str, str]]]:
        """What was done, and the one-click commands that undo it."""
        actor = Actor(f"rule:{trigger.protection}", trigger.protection)
        room = Room(room_ref.id, room_ref.name, room_ref.type or "c")
        if room.type not in ("c", "p"):
            # A protection acts in the room it fired in, never everywhere: without a channel or
            # group there is nothing to mute, delete or lock.
            return "nothing: not a channel or group", []
        if trigger.action == "lock":
            if not await self._sanctioner.lock_room(room, reason=trigger.detail, actor=actor):
                return "room was already locked", []
            # A button sends its command as the moderator's message: only plain names go in one.
            unlock = (
                [("Unlock room", f"mod unlock #{room.name}")] if room.name and plain_name(room.name) else []
            )
            return "room made read-only; `/mod unlock #room` lifts it", unlock
        assert isinstance(target, Target)
        if trigger.action == "hold":
            assert message is not None
            held_id, text = await self._hold(message, target, room)
            return text, [("Restore", f"mod restore {held_id}")] if held_id else []
        parts: list[str] = []
        remedy: float | None = None
        if trigger.action == "delete":
            deleted = 0
            for mid in trigger.mids:
                copy = message if message is not None and message.id == mid else await self._fetch(mid)
                if copy is not None and await self._remove(copy, actor, trigger.protection):
                    deleted += 1
            parts.append(f"{deleted} message(s) deleted, evidence kept")
        elif trigger.action == "mute":
            remedy = self._settings.flood.mute
        reason = f"{trigger.protection} protection: {trigger.detail}"
        parts.append(
            await self._sanctioner.strike(
                target,
                room=room,
                reason=reason,
                actor=actor,
                source=trigger.protection,
                remedy_mute=remedy,
            )
        )
        plain = room.name and plain_name(room.name) and plain_name(target.username)
        acts = [("Unmute", f"mod unmute @{target.username} #{room.name}")] if remedy and plain else []
        return "; ".join(parts), acts

    async def _fetch(self, mid: str) -> Message | None:
        try:
            return await self._rest.get_message(mid)
        except (NotFound, ActionRefused):
            return None  # already gone

    async def _remove(self, message: Message, actor: Actor, why: str) -> bool:
        """Evidence first, then chat.delete; True when the message is gone."""
        result = await self._executor.execute(
            Action(
                DeleteMessage(message.rid, message.id),
                actor=actor.id,
                audit=actions.MESSAGE_DELETED,
                targets={"message": message.id, "room": message.rid, "user": message.author.id},
                reason={"protection": why},
                evidence=(message,),
            )
        )
        if not result.done:
            log.warning(
                "protection %s could not delete %s (%s)", why, message.id, result.code or result.status.value
            )
        return result.done

    async def _hold(self, message: Message, user: Target, room: Room) -> tuple[int | None, str]:
        held = self._sanctions.held_by_mid(message.id)
        if held is not None and held.state != "held":
            return None, "already held"
        if self._executor.dry_run():
            return None, "dry run: not held"
        # The hold is recorded before the deletion, so a crash after the deletion still leaves a
        # number for `/mod restore`; a message handled again after a crash before the deletion
        # finds its hold and finishes it (its evidence is not stored twice).
        held_id = (
            held.id
            if held is not None
            else self._sanctions.hold_message(
                mid=message.id, rid=message.rid, user_id=user.id, username=user.username, evidence_id=None
            )
        )
        assert held_id is not None  # inserted just now, or found above
        result = await self._executor.execute(
            Action(
                DeleteMessage(message.rid, message.id),
                actor="rule:links",
                audit=actions.MESSAGE_HELD,
                targets={"message": message.id, "room": message.rid, "user": user.id},
                reason={"protection": "links"},
                evidence=(message,),
            ),
            evidence_kept=held is not None and bool(self._evidence.evidence_for_message(message.id)),
        )
        if result.evidence_ids:
            self._sanctions.set_held_evidence(held_id, result.evidence_ids[0])
        if result.status is Status.DRY_RUN:
            self._sanctions.discard_hold(held_id)  # a dry run began while this was being handled
            return None, "dry run: not held"
        if held is not None and result.status is Status.REFUSED:
            return None, "already held"  # the first attempt's deletion had landed
        # Held even when the deletion did not go through: its evidence is kept, and the alert
        # tells the moderators so.
        if result.status is Status.REFUSED:
            return (
                held_id,
                f"held as {held_id} but Rocket.Chat refused the deletion ({result.code or 'not allowed'})",
            )
        if result.status is Status.FAILED:
            return held_id, f"held as {held_id} but the deletion failed ({result.code}); please check"
        await self._sanctioner.tell_text(
            user,
            f"Your message in {_label(room)} contains a link and is held for a "
            "moderator to review. It is not lost: if it is fine, it will be posted again.",
            key=f"held:{held_id}",
            room=room,
        )
        return held_id, f"held for review as {held_id}: `/mod restore {held_id}` reposts it"

    async def restore(self, held_id: int, actor: Actor) -> str:
        """`/mod restore N`: repost a held message's text in its room, attributed to its author.
        The repost's id is derived from the held message, so a retry never posts it twice."""
        held = self._sanctions.held_message(held_id)
        if held is None:
            return f"No held message {held_id}."
        if held.state != "held":
            return f"Held message {held_id} was already restored."
        kept = self._evidence.evidence_for_message(held.mid)
        if not kept:
            return f"The text of held message {held_id} is no longer kept (past the retention window)."
        content = kept[-1]["content"]
        text = str(content.get("msg") or "") if isinstance(content, dict) else ""
        repost_id = derived_message_id(f"restore:{held.mid}")
        author = f"@{held.username}" if plain_name(held.username) else inline_literal(held.username)
        body = f"_Restored message from {author} (held for review, approved by a moderator):_\n{text}"
        result = await self._executor.execute(
            Action(
                PostMessage(held.rid, body, mid=repost_id),
                actor=actor.id,
                audit=actions.MESSAGE_RESTORED,
                targets={"message": held.mid, "room": held.rid, "user": held.user_id},
                reason={"held": held_id, "repost": repost_id},
            )
        )
        if result.status is Status.DRY_RUN:
            return f"Dry run: held message {held_id} would be restored (recorded, not posted)."
        if not result.done:
            return (
                f"Held message {held_id} could not be restored ({result.code}); it is still held, try again."
            )
        self._sanctions.mark_restored(held_id, restored_mid=repost_id, by=actor.id)
        return f"Held message {held_id} restored in its room, attributed to {inline_literal(held.username)}."


def _label(room: Room) -> str:
    return inline_literal("#" + (room.name or room.id))


def _epoch(value: Any) -> float | None:
    if isinstance(value, dict) and "$date" in value:
        return float(value["$date"]) / 1000
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
