"""The purger: runs a purge as a persisted job with a journal (the shell around
:mod:`bot.moderation.purge`).

    prepare()  validate, resolve rooms and user, check the moderator's privilege in every room,
               walk the range and journal every selected message     -> a Plan with the preview
    run()      check the confirmation; per room: delete, each deletion an action carried out by
               the executor with its evidence (one ``purge.progressed`` audit record citing it:
               per message, or per room for a bulk deletion)
    resume()   pick up a job a crash or restart interrupted, where its journal says it stopped

Deletion: a user purge uses ``rooms.cleanHistory`` (``users: [username]``, ``oldest``/``latest``
fixed to the first and last selected message, ``excludePinned``/``ignoreThreads``/
``ignoreDiscussion`` always sent); where the bot lacks ``clean-channel-history`` it falls back to
``chat.delete`` message by message, as a term purge always does. The executor commits a
deletion's evidence before it asks the server; the journal stays the record of what is done: a
message's row moves ``selected -> evidence -> deleted`` once, so its evidence is stored once (a
resumed deletion says ``evidence_kept``) and it is counted once. Rate limits slow a purge down
and never fail it: the executor answers FAILED, and the purger waits and asks again.
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
from bot.models import Actor, Message, Room, to_iso, to_ms
from bot.moderation.actions import Action, CleanHistory, DeleteMessage, EditMessage, PostMessage
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
from bot.rest.client import new_message_id
from bot.rest.history import resolve_rooms, walk_room
from bot.services.executor import Act, Result, Status
from bot.services.lookups import RoleDirectory
from bot.store import LeaseHeld
from bot.store.audit import AuditLog
from bot.store.jobs import PurgeItem, PurgeJob, PurgeJournal, PurgeRoom
from bot.store.lease import Lease

__all__ = [
    "DmProgress",
    "Plan",
    "PurgeProgress",
    "PurgeRefused",
    "PurgeResult",
    "Purger",
    "holder_is_dead",
]

log = logging.getLogger("rcmod.purger")
T = TypeVar("T")

EVIDENCE_BATCH = 100
CHUNK = 20  # deletions between journal updates (and progress reports)
MAX_FAULTS = 10  # failures in a row before a purge stops (it stays resumable)
LEASE_TTL = 60.0
PREVIEW_TTL = 3600.0  # seconds a preview waits for its confirmation


class PurgeRefused(PurgeUsageError):
    """The moderator may not purge (some of) these rooms; nothing was selected or deleted."""


class _DryRun(Exception):
    """The executor is in dry-run mode: the purge stops, nothing more is deleted."""


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
    dry_run: bool = False  # dry-run mode was on when it ran: it stopped, deleting nothing more

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.deleted == self.total


# A progress sink: the command line's bar (plain function) or a moderator's DM (coroutine).
Progress = Callable[[PurgeProgress], Awaitable[None] | None]


class Purger:
    def __init__(
        self,
        *,
        audit: AuditLog,
        purges: PurgeJournal,
        lease: Lease,
        rest: RestClient,
        executor: Act,
        bot_user_id: str,
        threshold: int = DEFAULT_CONFIRM_THRESHOLD,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        page: int = 100,
        bot_moderators: Callable[[], frozenset[str]] = frozenset,
        roles: RoleDirectory | None = None,
    ) -> None:
        self._roles = roles or RoleDirectory(rest, clock=clock)
        self._audit = audit
        self._purges = purges
        self._lease = lease
        # The user ids of moderation.moderators: Rocket.Chat has no global moderator role, so the
        # configured bot moderators may purge anywhere, like workspace admins.
        self._bot_moderators = bot_moderators
        self._rest = rest  # reads only: history, roles, whether a message still exists
        self._executor = executor
        self._bot_user_id = bot_user_id
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
            self._audit.append_audit(
                actor=actor.id,
                action=actions.COMMAND_REFUSED,
                targets={"rooms": [r.id for r in rooms]},
                reason={"command": f"purge {request.kind}", "why": "not a moderator of every room"},
                outcome=f"refused: {exc}",
            )
            raise
        job_id = self._purges.create_purge_job(request.kind, request.to_json(), actor=actor.id, token="")
        method = "clean" if request.kind == "user" else "each"
        for room in rooms:
            self._purges.add_purge_room(job_id, PurgeRoom(room, method))
        return await self._collect(job_id, request)

    async def _collect(self, job_id: int, request: PurgeRequest) -> Plan:
        matcher = term_matcher(request.target) if request.kind == "term" else None
        for room in self._purges.purge_rooms(job_id):
            batch: list[PurgeItem] = []
            async for message in walk_room(
                self._rest, room.room, oldest=request.since, latest=request.until, page=self._page
            ):
                if selects(request, message, bot_user_id=self._bot_user_id, matcher=matcher):
                    batch.append(_item(message))
                if len(batch) >= EVIDENCE_BATCH:
                    self._purges.add_purge_items(job_id, batch)
                    batch = []
            self._purges.add_purge_items(job_id, batch)
        items = self._purges.purge_items(job_id)
        names = {r.room.id: _name(r.room) for r in self._purges.purge_rooms(job_id)}
        preview = summarize(
            (names.get(i.rid, i.rid), i.author_username, i.mid, str((i.message or {}).get("msg", "")))
            for i in items
        )
        token = confirmation_token(job_id, request, preview.total)
        self._purges.set_purge_token(job_id, token)
        self._purges.set_purge_state(job_id, "previewed")
        return Plan(job_id, request, preview, token, needs_token(preview.total, self._threshold))

    async def _user_exists(self, username: str) -> None:
        try:
            await self._rest.user_info(username=username.lstrip("@"))
        except ActionRefused:
            raise PurgeUsageError(f"no user {username.lstrip('@')!r} on this workspace") from None

    async def authorize(self, actor: Actor, rooms: list[Room]) -> None:
        """A workspace admin or bot moderator may purge anywhere; a room moderator (or owner) only
        their rooms (a direct message has no moderator: admins only)."""
        # An actor known only by name has that name as its id (see bot.models.Actor).
        user_id = actor.id if actor.id != actor.name else None
        if actor.operator or (user_id and user_id in self._bot_moderators()):
            return
        roles = (
            await self._roles.roles(user_id=user_id, fresh=True)
            if user_id
            else await self._roles.roles(username=actor.name, fresh=True)
        )
        if "admin" in roles:
            return
        outside = []
        for room in rooms:
            if room.type == "d" or actor.name not in await self._rest.room_moderators(
                room.id, room.type or "c"
            ):
                outside.append(_name(room))
        if outside:
            raise PurgeRefused(f"{actor.name} does not moderate " + ", ".join(f"#{n}" for n in outside))

    def job(self, job_id: int) -> PurgeJob | None:
        return self._purges.purge_job(job_id)

    def decline(self, job_id: int, *, dry_run: bool = False) -> None:
        """The moderator said no (or asked for a dry run): keep no copy of anyone's messages."""
        self._purges.forget_purge_content(job_id)
        self._purges.set_purge_state(job_id, "dry_run" if dry_run else "cancelled")

    # -- running ---------------------------------------------------------------------------------

    async def run(self, job_id: int, *, token: str | None, progress: Progress | None = None) -> PurgeResult:
        """Confirm and execute a previewed job. Above the threshold the preview's token is needed
        (the command line's ``--yes`` passes the job's own token)."""
        job = self._purges.purge_job(job_id)
        if job is None:
            raise PurgeUsageError(f"no purge job {job_id}")
        if job.state != "previewed":
            raise PurgeUsageError(f"purge job {job_id} is {job.state}, not waiting for confirmation")
        total = sum(self._purges.purge_counts(job_id).values())
        if needs_token(total, self._threshold) and token != job.token:
            raise PurgeUsageError(f"this purge selects {total} messages: confirm with the preview's token")
        self._purges.set_purge_state(job_id, "running")
        self._audit.append_audit(
            actor=job.actor,
            action=actions.PURGE_STARTED,
            targets={"purge": job_id, "rooms": [r.room.id for r in self._purges.purge_rooms(job_id)]},
            reason=_audit_reason(job),
            outcome=f"{total} message(s) selected",
        )
        return await self._execute(job_id, progress)

    async def resume(self, progress: Progress | None = None) -> list[PurgeResult]:
        """Finish every confirmed job a crash interrupted, unless another live process (a command
        line purge) is running it; cancel previews left unconfirmed for longer than an hour."""
        cutoff = datetime.fromtimestamp(self._clock() - PREVIEW_TTL, tz=UTC)
        self._purges.expire_purge_previews(to_iso(cutoff))
        results = []
        for job in self._purges.open_purge_jobs():
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
        for job in self._purges.open_purge_jobs():
            if job.state == "running" and {k: v for k, v in job.request.items() if k not in ignore} == wanted:
                return job
        return None

    async def resume_job(self, job_id: int, progress: Progress | None = None) -> PurgeResult:
        """Finish one confirmed job a crash interrupted."""
        job = self._purges.purge_job(job_id)
        if job is None or job.state != "running":
            raise PurgeUsageError(f"purge job {job_id} is not interrupted")
        return await self._execute(job_id, progress)

    async def _execute(self, job_id: int, progress: Progress | None) -> PurgeResult:
        job = self._purges.purge_job(job_id)
        assert job is not None
        lease = f"purge:{job_id}"
        self._lease.acquire_lease(self._holder, LEASE_TTL, name=lease, is_dead=holder_is_dead)
        try:
            request = PurgeRequest.from_json(job.request)
            # Evidence a crash left uncited in the journal is found by its audit record.
            self._purges.reconcile_purge_evidence(job_id)
            total = sum(self._purges.purge_counts(job_id).values())
            try:
                for room in self._purges.purge_rooms(job_id):
                    await self._purge_room(job, request, room, total, progress)
                    self._lease.renew_lease(self._holder, LEASE_TTL, name=lease)
            except _DryRun:
                return self._stopped_by_dry_run(job, total)
            counts = self._purges.purge_counts(job_id)
            result = PurgeResult(job_id, counts.get("deleted", 0), counts.get("failed", 0), total)
            self._purges.set_purge_state(job_id, "done")
            self._audit.append_audit(
                actor=job.actor,
                action=actions.PURGE_FINISHED,
                targets={"purge": job_id},
                reason=_audit_reason(job),
                outcome=f"{result.deleted} deleted, {result.failed} failed of {total}",
            )
            return result
        finally:
            self._lease.release_lease(self._holder, name=lease)

    def _stopped_by_dry_run(self, job: PurgeJob, total: int) -> PurgeResult:
        """Dry-run mode was switched on after the preview: what was not deleted stays, and no
        copy of it is kept (as after a declined preview)."""
        counts = self._purges.purge_counts(job.id)
        self.decline(job.id, dry_run=True)
        result = PurgeResult(job.id, counts.get("deleted", 0), counts.get("failed", 0), total, dry_run=True)
        self._audit.append_audit(
            actor=job.actor,
            action=actions.PURGE_FINISHED,
            targets={"purge": job.id},
            reason=_audit_reason(job),
            outcome=f"dry-run: stopped; {result.deleted} deleted, {result.failed} failed of {total}",
        )
        return result

    async def _purge_room(
        self, job: PurgeJob, request: PurgeRequest, room: PurgeRoom, total: int, progress: Progress | None
    ) -> None:
        rid = room.room.id
        lost = [i for i in self._purges.purge_items(job.id, state="selected", rid=rid) if i.message is None]
        if lost:
            # A journalled copy is gone (it should not be): such a message is never deleted, as
            # nothing could be kept of it; the job reports it as not done.
            log.error("purge %d: %d message(s) without a copy; left alone", job.id, len(lost))
        if not self._deletable(job.id, rid):
            return
        # Delete: in bulk where allowed, else one by one.
        if room.method == "clean":
            refused = await self._clean(job, request, rid)
            if refused is None:
                await self._report(job.id, total, _name(room.room), progress)
                return
            log.info("purge %d: bulk delete refused in %s (%s); deleting one by one", job.id, rid, refused)
            self._purges.add_purge_room(job.id, PurgeRoom(room.room, "each"))
        await self._each(job, rid, _name(room.room), total, progress)
        await self._report(job.id, total, _name(room.room), progress)

    def _deletable(self, job_id: int, rid: str) -> list[PurgeItem]:
        """The room's items left to delete: their evidence stored (``evidence``), or a copy to
        store it from (``selected``)."""
        return [
            i
            for i in self._purges.purge_items(job_id, rid=rid)
            if i.state == "evidence" or (i.state == "selected" and i.message is not None)
        ]

    async def _clean(self, job: PurgeJob, request: PurgeRequest, rid: str) -> str | None:
        """rooms.cleanHistory over the range of the room's selected messages, their evidence
        stored first (one record). Returns the server's refusal code (then delete one by one)."""
        pending = self._deletable(job.id, rid)
        fresh = [Message.from_wire(i.message) for i in pending if i.message is not None]
        first, last = min(i.ts_ms for i in pending), max(i.ts_ms for i in pending)
        action = Action(
            CleanHistory(
                rid,
                oldest=_from_ms(first),
                latest=_from_ms(last),
                users=(request.target,),
                exclude_pinned=not request.include_pinned,
                ignore_threads=request.threads == "keep",
                ignore_discussion=True,
            ),
            actor=job.actor,
            # Evidence stored by an earlier attempt is cited already: no second record.
            audit=actions.PURGE_PROGRESSED if fresh else None,
            targets={"purge": job.id, "room": rid, "messages": len(fresh)},
            reason=_audit_reason(job),
            evidence=tuple(fresh),
        )
        result = await self._act(action, evidence_kept=not fresh)
        self._purges.reconcile_purge_evidence(job.id)
        if result.status is Status.REFUSED:
            return result.code or "refused"
        if result.value == len(pending):
            self._purges.finish_purge_items(job.id, [i.mid for i in pending], "deleted")
            return None
        # The server's count differs (a resumed call, a message pinned meanwhile, an old server
        # that reports none): ask about each message rather than guess.
        for item in pending:
            exists = await self._read(lambda item=item: self._rest.message_exists(item.mid))  # type: ignore[misc]
            self._purges.finish_purge_items(job.id, [item.mid], "failed" if exists else "deleted")
        return None

    async def _each(self, job: PurgeJob, rid: str, name: str, total: int, progress: Progress | None) -> None:
        items = self._deletable(job.id, rid)
        for start in range(0, len(items), CHUNK):
            outcomes: dict[str, list[str]] = {"deleted": [], "failed": []}
            for item in items[start : start + CHUNK]:
                outcomes[await self._delete(job, item)].append(item.mid)
            # The executor stored the evidence: the journal learns it from the audit record,
            # then what became of each message.
            self._purges.reconcile_purge_evidence(job.id)
            for state, mids in outcomes.items():
                self._purges.finish_purge_items(job.id, mids, state)
            if start + CHUNK < len(items):
                await self._report(job.id, total, name, progress)

    async def _delete(self, job: PurgeJob, item: PurgeItem) -> str:
        """Delete one message through the executor; its final journal state."""
        kept = item.state == "evidence"  # stored by an earlier attempt: cited already
        action = Action(
            DeleteMessage(item.rid, item.mid),
            actor=job.actor,
            audit=None if kept else actions.PURGE_PROGRESSED,
            targets={"purge": job.id, "room": item.rid, "message": item.mid},
            reason=_audit_reason(job),
            evidence=() if item.message is None else (Message.from_wire(item.message),),
        )
        result = await self._act(action, evidence_kept=kept)
        if result.done:
            return "deleted"
        # Gone already (deleted just before a crash, or by someone else): deleted. Still there:
        # the server refused this one; record it and go on.
        exists = await self._read(lambda: self._rest.message_exists(item.mid))
        if exists:
            log.warning("purge %d: message %s refused (%s)", job.id, item.mid, result.code)
        return "failed" if exists else "deleted"

    async def _report(self, job_id: int, total: int, room: str, progress: Progress | None) -> None:
        if progress is None:
            return
        counts = self._purges.purge_counts(job_id)
        shown = progress(
            PurgeProgress(job_id, counts.get("deleted", 0) + counts.get("failed", 0), total, room)
        )
        if inspect.isawaitable(shown):
            await shown

    async def _act(self, action: Action, *, evidence_kept: bool) -> Result:
        """Carry out ``action`` through the executor, patiently: rate limits slow a purge down,
        never fail it; other failures get a few retries (the job stays resumable if they persist).
        Evidence stored by a failed attempt is not stored again by the next."""
        faults = 0
        while True:
            result = await self._executor.execute(action, evidence_kept=evidence_kept)
            if result.status is Status.DRY_RUN:
                raise _DryRun
            if result.status is not Status.FAILED:
                return result
            evidence_kept = evidence_kept or bool(result.evidence_ids)
            if result.retry_after is not None:
                log.info("purge rate limited; waiting %.1f s", result.retry_after)
                await self._sleep(max(result.retry_after, 0.05))
                continue
            faults += 1
            if faults >= MAX_FAULTS:
                raise RetryableError(f"{type(action.change).__name__} keeps failing ({result.code})")
            await self._sleep(min(30.0, 0.5 * 2**faults))

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        """A read with the same patience as :meth:`_act`."""
        faults = 0
        while True:
            try:
                return await call()
            except RateLimited as exc:
                log.info("purge rate limited; waiting %.1f s", exc.retry_after)
                await self._sleep(max(exc.retry_after, 0.05))
            except RetryableError:
                faults += 1
                if faults >= MAX_FAULTS:
                    raise
                await self._sleep(min(30.0, 0.5 * 2**faults))


class DmProgress:
    """Progress in the moderator's DM: one message, edited as the purge goes (at most every
    ``interval`` seconds, and always at the end), so a long purge is one DM, not a hundred.
    Posting and editing it is upkeep the audit log does not record."""

    def __init__(
        self,
        executor: Act,
        rest: RestClient,
        username: str,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 2.0,
    ) -> None:
        self._executor = executor
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
            if self._rid is None:
                self._rid = await self._rest.dm_room(self._username)
        except RcmodError as exc:  # progress is a courtesy: the purge goes on without it
            log.warning(
                "purge %d: progress DM to %s failed (%s)", p.job_id, self._username, type(exc).__name__
            )
            return
        if self._mid is None:
            mid = new_message_id()  # chosen here: a retried post cannot land twice
            result = await self._executor.execute(
                Action(PostMessage(self._rid, text, mid=mid), actor="rcmod")
            )
            self._mid = mid if result.done else None
        else:
            result = await self._executor.execute(
                Action(EditMessage(self._rid, self._mid, text), actor="rcmod")
            )
        if not result.acted:
            log.warning("purge %d: progress DM to %s failed (%s)", p.job_id, self._username, result.code)


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


def _name(room: Room) -> str:
    return room.name or room.id


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _audit_reason(job: PurgeJob) -> dict[str, object]:
    req = job.request
    # The term is policy, not message content; a username is an id-like target.
    return {"kind": job.kind, "target": req.get("target"), "everywhere": req.get("everywhere")}


def holder_is_dead(holder: str) -> bool:
    """A lease holder (``host:pid:...``) on this host whose process no longer exists crashed
    (kill -9, OOM): its lease — the bot's store, or a purge job — may be taken over."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only the lease's expiry can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False
