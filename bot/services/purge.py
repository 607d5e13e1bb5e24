"""The purger: runs a purge as a persisted job with a journal (the shell around
:mod:`bot.moderation.purge`).

    prepare()  validate, resolve rooms and user, check the moderator's privilege in every room,
               walk the range and journal every selected message     -> a Plan with the preview
    run()      check the confirmation; per room: store evidence (batches of 100, each batch one
               ``purge.progressed`` audit record citing its evidence), then delete
    resume()   pick up a job a crash or restart interrupted, where its journal says it stopped

Deletion: a user purge uses ``rooms.cleanHistory`` (``users: [username]``, ``oldest``/``latest``
fixed to the first and last message already stored, ``excludePinned``/``ignoreThreads``/
``ignoreDiscussion`` always sent); where the bot lacks ``clean-channel-history`` it falls back to
``chat.delete`` message by message, as a term purge always does. Nothing is deleted before its
evidence is committed; a message is counted once because its journal row moves
``evidence -> deleted`` once. Rate limits slow a purge down and never fail it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from bot.audit import actions
from bot.errors import ActionRefused, RateLimited, RcmodError, RetryableError
from bot.models import Message, to_iso, to_ms
from bot.moderation.purge import (
    DEFAULT_CONFIRM_THRESHOLD,
    Preview,
    PurgeRequest,
    PurgeUsageError,
    confirmation_token,
    needs_token,
    selects,
    summarize,
    term_matcher,
)
from bot.rest import RestClient
from bot.rest.history import RoomTarget, resolve_rooms, walk_room
from bot.services.lookups import RoleDirectory
from bot.store import LeaseHeld, Store
from bot.store.jobs import PurgeItem, PurgeJob, PurgeRoom

__all__ = ["Actor", "DmProgress", "Plan", "PurgeProgress", "PurgeRefused", "PurgeResult", "Purger"]

log = logging.getLogger("rcmod.purger")
T = TypeVar("T")

EVIDENCE_BATCH = 100
LEASE_TTL = 60.0
PREVIEW_TTL = 3600.0  # seconds a preview waits for its confirmation


class PurgeRefused(PurgeUsageError):
    """The moderator may not purge (some of) these rooms; nothing was selected or deleted."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked. ``operator``: the command line, run by whoever holds the bot's credentials."""

    username: str
    operator: bool = False
    user_id: str | None = None  # who is a bot moderator is decided by id, never by username

    @property
    def audit_name(self) -> str:
        """Who the audit and the purge job name: the user id when known (a username can change
        hands; ``/mod confirm`` checks the job's actor against the confirming user's id)."""
        return "operator" if self.operator else (self.user_id or self.username)


@dataclass(frozen=True, slots=True)
class Plan:
    job_id: int
    request: PurgeRequest
    preview: Preview
    token: str
    needs_token: bool


@dataclass(frozen=True, slots=True)
class PurgeProgress:
    job_id: int
    done: int  # deleted (or failed) so far
    total: int
    room: str | None = None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    job_id: int
    deleted: int
    failed: int
    total: int

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.deleted == self.total


# A progress sink: the command line's bar (plain function) or a moderator's DM (coroutine).
Progress = Callable[[PurgeProgress], Awaitable[None] | None]


class Purger:
    def __init__(
        self,
        *,
        store: Store,
        rest: RestClient,
        bot_user_id: str,
        retention_days: int = 90,
        threshold: int = DEFAULT_CONFIRM_THRESHOLD,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        page: int = 100,
        bot_moderators: Callable[[], frozenset[str]] = frozenset,
        roles: RoleDirectory | None = None,
    ) -> None:
        self._roles = roles or RoleDirectory(rest, clock=clock)
        self._store = store
        # The user ids of moderation.moderators: Rocket.Chat has no global moderator role, so the
        # configured bot moderators may purge anywhere, like workspace admins.
        self._bot_moderators = bot_moderators
        self._rest = rest
        self._bot_user_id = bot_user_id
        self._retention_days = retention_days
        self._threshold = threshold
        self._sleep = sleep
        self._clock = clock
        self._page = page
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    # -- preparing -------------------------------------------------------------------------------

    async def prepare(self, request: PurgeRequest, *, actor: Actor) -> Plan:
        """Validate, check privilege, walk and journal; raises PurgeUsageError (nothing deleted)."""
        request.validate()
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        if request.until is None:
            request = dataclasses.replace(request, until=now)  # fixed now: new messages stay out
        if request.kind == "user":
            await self._user_exists(request.target)
        rooms = await resolve_rooms(self._rest, request.rooms, everywhere=request.everywhere)
        try:
            await self.authorize(actor, rooms)
        except PurgeRefused as exc:
            self._store.audit.append_audit(
                actor=actor.audit_name,
                action=actions.COMMAND_REFUSED,
                targets={"rooms": [r.rid for r in rooms]},
                reason={"command": f"purge {request.kind}", "why": "not a moderator of every room"},
                outcome=f"refused: {exc}",
            )
            raise
        job_id = self._store.purges.create_purge_job(
            request.kind, request.to_json(), actor=actor.audit_name, token=""
        )
        method = "clean" if request.kind == "user" else "each"
        for room in rooms:
            self._store.purges.add_purge_room(job_id, PurgeRoom(room.rid, room.name, room.type, method))
        return await self._collect(job_id, request)

    async def _collect(self, job_id: int, request: PurgeRequest) -> Plan:
        matcher = term_matcher(request.target) if request.kind == "term" else None
        for room in self._store.purges.purge_rooms(job_id):
            target = RoomTarget(room.rid, room.name, room.type)
            batch: list[PurgeItem] = []
            async for message in walk_room(
                self._rest, target, oldest=request.since, latest=request.until, page=self._page
            ):
                if selects(request, message, bot_user_id=self._bot_user_id, matcher=matcher):
                    batch.append(_item(message))
                if len(batch) >= EVIDENCE_BATCH:
                    self._store.purges.add_purge_items(job_id, batch)
                    batch = []
            self._store.purges.add_purge_items(job_id, batch)
        items = self._store.purges.purge_items(job_id)
        names = {r.rid: r.name for r in self._store.purges.purge_rooms(job_id)}
        preview = summarize(
            (names.get(i.rid, i.rid), i.author_username, i.mid, str((i.message or {}).get("msg", "")))
            for i in items
        )
        token = confirmation_token(job_id, request, preview.total)
        self._store.purges.set_purge_token(job_id, token)
        self._store.purges.set_purge_state(job_id, "previewed")
        return Plan(job_id, request, preview, token, needs_token(preview.total, self._threshold))

    async def _user_exists(self, username: str) -> None:
        try:
            await self._rest.user_info(username=username.lstrip("@"))
        except ActionRefused:
            raise PurgeUsageError(f"no user {username.lstrip('@')!r} on this workspace") from None

    async def authorize(self, actor: Actor, rooms: list[RoomTarget]) -> None:
        """A workspace admin or bot moderator may purge anywhere; a room moderator (or owner) only
        their rooms (a direct message has no moderator: admins only)."""
        if actor.operator or (actor.user_id and actor.user_id in self._bot_moderators()):
            return
        roles = (
            await self._roles.roles(user_id=actor.user_id, fresh=True)
            if actor.user_id
            else await self._roles.roles(username=actor.username, fresh=True)
        )
        if "admin" in roles:
            return
        outside = []
        for room in rooms:
            if room.type == "d" or actor.username not in await self._rest.room_moderators(
                room.rid, room.type
            ):
                outside.append(room.name)
        if outside:
            raise PurgeRefused(f"{actor.username} does not moderate " + ", ".join(f"#{n}" for n in outside))

    def job(self, job_id: int) -> PurgeJob | None:
        return self._store.purges.purge_job(job_id)

    def decline(self, job_id: int, *, dry_run: bool = False) -> None:
        """The moderator said no (or asked for a dry run): keep no copy of anyone's messages."""
        self._store.purges.forget_purge_content(job_id)
        self._store.purges.set_purge_state(job_id, "dry_run" if dry_run else "cancelled")

    # -- running ---------------------------------------------------------------------------------

    async def run(self, job_id: int, *, token: str | None, progress: Progress | None = None) -> PurgeResult:
        """Confirm and execute a previewed job. Above the threshold the preview's token is needed
        (the command line's ``--yes`` passes the job's own token)."""
        job = self._store.purges.purge_job(job_id)
        if job is None:
            raise PurgeUsageError(f"no purge job {job_id}")
        if job.state != "previewed":
            raise PurgeUsageError(f"purge job {job_id} is {job.state}, not waiting for confirmation")
        total = sum(self._store.purges.purge_counts(job_id).values())
        if needs_token(total, self._threshold) and token != job.token:
            raise PurgeUsageError(f"this purge selects {total} messages: confirm with the preview's token")
        self._store.purges.set_purge_state(job_id, "running")
        self._store.audit.append_audit(
            actor=job.actor,
            action=actions.PURGE_STARTED,
            targets={"purge": job_id, "rooms": [r.rid for r in self._store.purges.purge_rooms(job_id)]},
            reason=_audit_reason(job),
            outcome=f"{total} message(s) selected",
        )
        return await self._execute(job_id, progress)

    async def resume(self, progress: Progress | None = None) -> list[PurgeResult]:
        """Finish every confirmed job a crash interrupted, unless another live process (a command
        line purge) is running it; cancel previews left unconfirmed for longer than an hour."""
        cutoff = datetime.fromtimestamp(self._clock() - PREVIEW_TTL, tz=UTC)
        self._store.purges.expire_purge_previews(to_iso(cutoff))
        results = []
        for job in self._store.purges.open_purge_jobs():
            if job.state != "running":
                continue  # still being collected by a live process: its preview is not ours
            try:
                results.append(await self._execute(job.id, progress))
            except LeaseHeld:
                log.info("purge %d is being run by another process; leaving it", job.id)
        return results

    def open_job_for(self, request: PurgeRequest) -> PurgeJob | None:
        """A confirmed job for the same request that a crash interrupted (the command line resumes
        it when run again with the same arguments). Without ``until`` the job's own (fixed at its
        start) counts as the same."""
        ignore = {"until"} if request.until is None else set()
        wanted = {k: v for k, v in request.to_json().items() if k not in ignore}
        for job in self._store.purges.open_purge_jobs():
            if job.state == "running" and {k: v for k, v in job.request.items() if k not in ignore} == wanted:
                return job
        return None

    async def resume_job(self, job_id: int, progress: Progress | None = None) -> PurgeResult:
        """Finish one confirmed job a crash interrupted."""
        job = self._store.purges.purge_job(job_id)
        if job is None or job.state != "running":
            raise PurgeUsageError(f"purge job {job_id} is not interrupted")
        return await self._execute(job_id, progress)

    async def _execute(self, job_id: int, progress: Progress | None) -> PurgeResult:
        job = self._store.purges.purge_job(job_id)
        assert job is not None
        lease = f"purge:{job_id}"
        self._store.lease.acquire_lease(self._holder, LEASE_TTL, name=lease, is_dead=_holder_is_dead)
        try:
            request = PurgeRequest.from_json(job.request)
            # Evidence a crash left uncited in the journal is found by its audit record.
            self._store.purges.reconcile_purge_evidence(job_id)
            total = sum(self._store.purges.purge_counts(job_id).values())
            for room in self._store.purges.purge_rooms(job_id):
                await self._purge_room(job, request, room, total, progress)
                self._store.lease.renew_lease(self._holder, LEASE_TTL, name=lease)
            counts = self._store.purges.purge_counts(job_id)
            result = PurgeResult(job_id, counts.get("deleted", 0), counts.get("failed", 0), total)
            self._store.purges.set_purge_state(job_id, "done")
            self._store.audit.append_audit(
                actor=job.actor,
                action=actions.PURGE_FINISHED,
                targets={"purge": job_id},
                reason=_audit_reason(job),
                outcome=f"{result.deleted} deleted, {result.failed} failed of {total}",
            )
            return result
        finally:
            self._store.lease.release_lease(self._holder, name=lease)

    async def _purge_room(
        self, job: PurgeJob, request: PurgeRequest, room: PurgeRoom, total: int, progress: Progress | None
    ) -> None:
        # 1. Evidence for everything selected in this room, before anything in it is deleted.
        while batch := self._store.purges.purge_items(
            job.id, state="selected", rid=room.rid, limit=EVIDENCE_BATCH
        ):
            messages = [Message.from_wire(i.message) for i in batch if i.message is not None]
            if len(messages) < len(batch):
                # A journalled copy is gone (it should not be): such a message is never deleted,
                # as nothing could be kept of it; the job reports it as not done.
                log.error(
                    "purge %d: %d message(s) without a copy; left alone", job.id, len(batch) - len(messages)
                )
                if not messages:
                    break
            self._store.audit.record_action(
                actor=job.actor,
                action=actions.PURGE_PROGRESSED,
                targets={"purge": job.id, "room": room.rid, "messages": len(messages)},
                reason=_audit_reason(job),
                evidence=messages,
                retention_days=self._retention_days,
            )
            self._store.purges.reconcile_purge_evidence(job.id)
        pending = self._store.purges.purge_items(job.id, state="evidence", rid=room.rid)
        if not pending:
            return
        # 2. Delete: in bulk where allowed, else one by one.
        if room.method == "clean":
            try:
                await self._clean(job.id, request, room, pending)
            except ActionRefused as exc:
                log.info(
                    "purge %d: bulk delete refused in %s (%s); deleting one by one",
                    job.id,
                    room.rid,
                    exc.code,
                )
                self._store.purges.add_purge_room(job.id, PurgeRoom(room.rid, room.name, room.type, "each"))
                await self._each(job, room, total, progress)
        else:
            await self._each(job, room, total, progress)
        await self._report(job.id, total, room.name, progress)

    async def _clean(
        self, job_id: int, request: PurgeRequest, room: PurgeRoom, pending: list[PurgeItem]
    ) -> None:
        first, last = min(i.ts_ms for i in pending), max(i.ts_ms for i in pending)
        count = await self._patient(
            lambda: self._rest.clean_history(
                room.rid,
                oldest=_from_ms(first),
                latest=_from_ms(last),
                users=[request.target],
                exclude_pinned=not request.include_pinned,
                ignore_threads=request.threads == "keep",
                ignore_discussion=True,
            )
        )
        if count == len(pending):
            self._store.purges.finish_purge_items(job_id, [i.mid for i in pending], "deleted")
            return
        # The server's count differs (a resumed call, a message pinned meanwhile, an old server
        # that reports none): ask about each message rather than guess.
        for item in pending:
            exists = await self._patient(lambda item=item: self._rest.message_exists(item.mid))  # type: ignore[misc]
            self._store.purges.finish_purge_items(job_id, [item.mid], "failed" if exists else "deleted")

    async def _each(self, job: PurgeJob, room: PurgeRoom, total: int, progress: Progress | None) -> None:
        for done, item in enumerate(
            self._store.purges.purge_items(job.id, state="evidence", rid=room.rid), start=1
        ):
            try:
                await self._patient(lambda item=item: self._rest.delete_message(item.rid, item.mid))  # type: ignore[misc]
                state = "deleted"
            except ActionRefused as exc:
                # Gone already (deleted just before a crash, or by someone else): deleted. Still
                # there: the server refused this one; record it and go on.
                exists = await self._patient(lambda item=item: self._rest.message_exists(item.mid))  # type: ignore[misc]
                state = "failed" if exists else "deleted"
                if exists:
                    log.warning("purge %d: message %s refused (%s)", job.id, item.mid, exc.code)
            self._store.purges.finish_purge_items(job.id, [item.mid], state)
            if done % 20 == 0:
                await self._report(job.id, total, room.name, progress)

    async def _report(self, job_id: int, total: int, room: str, progress: Progress | None) -> None:
        if progress is None:
            return
        counts = self._store.purges.purge_counts(job_id)
        shown = progress(
            PurgeProgress(job_id, counts.get("deleted", 0) + counts.get("failed", 0), total, room)
        )
        if inspect.isawaitable(shown):
            await shown

    async def _patient(self, call: Callable[[], Awaitable[T]]) -> T:
        """Rate limits slow a purge down, never fail it; transport faults get a few retries (the
        job stays resumable if they persist)."""
        faults = 0
        while True:
            try:
                return await call()
            except RateLimited as exc:
                log.info("purge rate limited; waiting %.1f s", exc.retry_after)
                await self._sleep(max(exc.retry_after, 0.05))
            except RetryableError:
                faults += 1
                if faults >= 10:
                    raise
                await self._sleep(min(30.0, 0.5 * 2**faults))


class DmProgress:
    """Progress in the moderator's DM: one message, edited as the purge goes (at most every
    ``interval`` seconds, and always at the end), so a long purge is one DM, not a hundred."""

    def __init__(
        self,
        rest: RestClient,
        username: str,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 2.0,
    ) -> None:
        self._rest = rest
        self._username = username
        self._clock = clock
        self._interval = interval
        self._rid: str | None = None
        self._mid: str | None = None
        self._last = float("-inf")

    async def __call__(self, p: PurgeProgress) -> None:
        final = p.done >= p.total
        if not final and self._clock() - self._last < self._interval:
            return
        self._last = self._clock()
        state = "finished" if final else "in progress"
        where = f" (last room #{p.room})" if p.room else ""
        text = f":broom: Purge {p.job_id} {state}: {p.done}/{p.total} message(s) deleted{where}."
        try:
            if self._rid is None or self._mid is None:
                self._rid = await self._rest.dm_room(self._username)
                self._mid = await self._rest.send_message(self._rid, text)
            else:
                await self._rest.update_message(self._rid, self._mid, text)
        except RcmodError as exc:  # progress is a courtesy: the purge goes on without it
            log.warning(
                "purge %d: progress DM to %s failed (%s)", p.job_id, self._username, type(exc).__name__
            )


def _item(message: Message) -> PurgeItem:
    return PurgeItem(
        mid=message.id,
        rid=message.rid,
        author_id=message.author.id,
        author_username=message.author.username,
        ts_ms=to_ms(message.ts),
        state="selected",
        evidence_id=None,
        message=dict(message.raw),
    )


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _audit_reason(job: PurgeJob) -> dict[str, object]:
    req = job.request
    # The term is policy, not message content; a username is an id-like target.
    return {"kind": job.kind, "target": req.get("target"), "everywhere": req.get("everywhere")}


def _holder_is_dead(holder: str) -> bool:
    """A holder on this host whose process is gone crashed (kill -9): its job may be resumed."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
