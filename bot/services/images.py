"""Image checks: every upload in a watched room checked on the bot's own host, never sent away.

A new message carrying image files in a room whose policy is not ``off`` is held
(:class:`~bot.services.router.Unfinished`) and queued; the handler returns at once, so the ingest
path never waits on a download (only on a full queue: then the stream waits, as it does on a
full event queue). A few workers take the queue: download the file through the bot's own session
(:class:`FileSource`, size and time capped), have it checked (:class:`ImageCheck`, off the event
loop: decoding is CPU work), decide (:func:`bot.moderation.images.decide`), act, and release the
message, which ingest then records as handled.

Exactly once: each (message, upload) gets a row in the image ledger, written with its verdict and,
for a flagged picture, its ``image.flagged`` audit record and evidence, in one transaction, before
anything is done about it; the row is marked done once the deletion and the alerts are queued.
A message handled again (a crash, a reconnect, catch-up) finds a done row and is skipped; one that
was checked but not finished is finished again, and every step is safe to repeat: the evidence
is kept once (``evidence_kept``), a deleted message cannot be deleted twice, and the outbox
raises an alert and the author's notice once per incident.

Not fetched, only counted (``rcmod_image_files_refused{reason}``): uploads of end-to-end
encrypted messages, files that do not claim an image type, and files claiming more than
``max_bytes``. What the checker or the download refuses is counted by its reason too.

Logs carry message and upload ids, never file names or contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bot.audit import actions
from bot.errors import ActionRefused, FileRefused, NotFound, RcmodError, RetryableError
from bot.models import FileRef, ImageFinding, Message, Room
from bot.moderation.actions import EvidenceFile
from bot.moderation.images import (
    ImageDecision,
    ImageRules,
    alert_text,
    author_text,
    block_action,
    decide,
    image_reason,
)
from bot.moderation.settings import ImagePolicy, ImageSettings
from bot.moderation.wordlist import ListOptions, NotifyOptions
from bot.realtime.events import EncryptedMessage, Event, NewMessage, ThreadReply
from bot.services.executor import Act, Status
from bot.services.outbox import Moderators, Notice
from bot.services.router import Unfinished
from bot.store.alerts import RaisedAlert
from bot.store.audit import AuditLog
from bot.store.evidence import EvidenceArchive
from bot.store.images import ImageLedger

__all__ = ["FileSource", "ImageCheck", "ImageCounters", "ImageModeration", "Notify", "RoomNames"]

log = logging.getLogger("rcmod.images")

KIND = "image"  # the alert kind (and coalescing key prefix) of an image alert
_TRIES = 3  # downloads tried on a transport fault before the file is left unchecked


class ImageCheck(Protocol):
    """The checker (bot.vision.ImageChecker): decodes with bomb protection, hashes, matches the
    hash lists and, with ``score``, runs the NSFW model. Raises FileRefused."""

    async def check(self, data: bytes, *, score: bool) -> ImageFinding: ...


class FileSource(Protocol):
    """The bot's download of a same-origin upload (RestClient.download). Raises
    FileRefused("too_large"|"too_slow"), NotFound, PermissionDenied, RetryableError."""

    # The download's own contract (bot.rest): it bounds the whole transfer, not one await.
    async def download(self, path: str, *, max_bytes: int, timeout: float) -> bytes: ...  # noqa: ASYNC109


class RoomNames(Protocol):
    """rooms.info by name: binds configured room names to room ids once, at start."""

    async def room_by_name(self, name: str) -> dict[str, Any]: ...


class ImageCounters(Protocol):
    """What image checks count (bot.metrics.Metrics is one)."""

    def count_image_checked(self, verdict: str) -> None: ...

    def count_image_refused(self, reason: str) -> None: ...


class Notify(Protocol):
    """The outbox's queuing side."""

    async def notify(self, notice: Notice) -> RaisedAlert | None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    message: Message
    file: FileRef
    room: Room


class ImageModeration:
    def __init__(
        self,
        *,
        settings: ImageSettings,
        ledger: ImageLedger,
        evidence: EvidenceArchive,
        audit: AuditLog,
        executor: Act,
        outbox: Notify,
        checker: ImageCheck | None,
        files: FileSource | None,
        rooms: RoomNames,
        metrics: ImageCounters,
        site_url: Callable[[], str],
        retention_days: int,
        unfinished: Unfinished | None = None,
        room_info: Callable[[Room], Awaitable[Room]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._evidence = evidence
        self._audit = audit
        self._executor = executor
        self._outbox = outbox
        self._checker = checker
        self._files = files
        self._rooms = rooms
        self._metrics = metrics
        self._site_url = site_url
        self._retention_days = retention_days
        self.unfinished = unfinished if unfinished is not None else Unfinished()
        self._room_info = room_info
        self._sleep = sleep
        # Room names bound to ids by run(), once per process; None until then (messages still
        # queue, and are decided once the rules are bound).
        self.rules: ImageRules | None = None
        self._bound = asyncio.Event()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=settings.queue_size)
        self._busy = 0
        self._pending: set[tuple[str, str]] = set()  # (message, upload) queued or being checked
        self._idle = asyncio.Event()
        self._idle.set()
        self.enabled = settings.watching and checker is not None and files is not None
        if settings.watching and not self.enabled:
            log.error("image checks are configured but no image checker or download is built: none run")

    def status(self) -> list[str]:
        if not self._settings.watching:
            return ["Images: off (no room is watched)"]
        queued = self._queue.qsize() + self._busy
        return [f"Images: default {self._settings.default}, {queued} upload(s) waiting for a check"]

    # -- observing -------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if not self.enabled or not isinstance(event, NewMessage | ThreadReply | EncryptedMessage):
            return
        message = event.message
        if not message.files or self._policy(message.rid) == "off":
            return
        if isinstance(event, EncryptedMessage) or message.is_encrypted:
            for _ in message.files:
                self._metrics.count_image_refused("encrypted")  # the bot cannot read them
            return
        room = Room(message.rid, event.room.name, event.room.type)
        for file in message.files:
            if not file.is_image:
                self._metrics.count_image_refused("not_image")
                continue
            if file.size > self._settings.max_bytes:
                self._metrics.count_image_refused("too_large")  # as claimed: not even fetched
                continue
            key = (message.id, file.id)
            if key in self._pending:
                continue  # a replay while its check is queued: that check holds the message
            done = self._ledger.image_check(message.id, file.id)
            if done is not None and done.state == "done":
                continue  # handled before a restart or a reconnect
            self._pending.add(key)
            self.unfinished.hold(message.id, message.version)
            self._idle.clear()
            await self._queue.put(_Job(message, file, room))

    def _policy(self, rid: str) -> ImagePolicy | None:
        """The room's policy; None while names are not bound yet (the worker decides then)."""
        if self.rules is None:
            return None
        return self.rules.policy_for(rid)

    # -- the workers -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Bind the configured room names to ids, then run the workers (a supervised loop)."""
        if not self.enabled:
            await asyncio.Event().wait()  # nothing to do; stays up for /readyz
        if self.rules is None:
            self.rules = ImageRules.bound(self._settings, await self._bind_rooms())
            self._bound.set()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._settings.workers):
                group.create_task(self._work())

    async def _bind_rooms(self) -> Mapping[str, str]:
        """Configured names → room ids. A name the server does not know is kept as a room id;
        a server that cannot answer now is asked again (the supervisor restarts run())."""
        ids: dict[str, str] = {}
        for entry in self._settings.rooms:
            for configured in entry.rooms:
                name = configured.strip().lstrip("#")
                try:
                    room = await self._rooms.room_by_name(name)
                except ActionRefused:  # NotFound, or not visible to the bot: taken as an id
                    continue
                ids[name] = str(room["_id"])
        return ids

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._handle(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one upload's failure never stops the worker
                log.error(
                    "image check failed on message %s file %s: %s",
                    job.message.id,
                    job.file.id,
                    type(exc).__name__,
                )
            finally:
                self._busy -= 1
                self._queue.task_done()
                self._pending.discard((job.message.id, job.file.id))
                self.unfinished.release(job.message.id, job.message.version)
                if self._queue.empty() and self._busy == 0:
                    self._idle.set()

    async def settled(self) -> None:
        """Wait until every queued upload is handled (tests, benchmarks, a stop)."""
        await self._idle.wait()

    async def _handle(self, job: _Job) -> None:
        message, file = job.message, job.file
        policy = self._policy(message.rid) or "off"
        if policy == "off":
            return
        known = self._ledger.image_check(message.id, file.id)
        if known is not None and known.state == "done":
            return
        assert self._checker is not None and self._files is not None  # enabled
        try:
            data = await self._download(file)
            finding = await self._checker.check(data, score=True)
        except FileRefused as exc:
            self._metrics.count_image_refused(exc.reason)
            self._ledger.record_check(
                mid=message.id,
                file_id=file.id,
                rid=message.rid,
                finding=None,
                verdict="refused",
                refused=exc.reason,
                done=True,
            )
            return
        except NotFound:
            log.info("upload %s of message %s is gone before it was checked", file.id, message.id)
            self._metrics.count_image_refused("gone")
            return
        except RcmodError as exc:  # denied, or the server kept failing: left unchecked, logged
            log.warning("upload %s of message %s not checked (%s)", file.id, message.id, type(exc).__name__)
            self._metrics.count_image_refused("unavailable")
            return
        allowed = self._ledger.image_allowed(finding.sha256)
        decision = decide(
            policy, finding, rules=self._bound_rules(), dry_run=self._executor.dry_run(), allowed=allowed
        )
        kept = EvidenceFile(
            message.id, file.id, finding.sha256, finding.pdq, data if self._settings.keep_bytes else None
        )
        check = self._ledger.record_check(
            mid=message.id,
            file_id=file.id,
            rid=message.rid,
            finding=finding,
            verdict=decision.verdict,
            flagged=self._flagged(message, file, finding, decision, kept) if decision.alert else None,
        )
        if known is None:
            self._metrics.count_image_checked(decision.verdict)
        await self._act(job, finding, decision, kept, check.id)
        self._ledger.mark_done(check.id)

    def _bound_rules(self) -> ImageRules:
        assert self.rules is not None
        return self.rules

    async def _download(self, file: FileRef) -> bytes:
        assert self._files is not None
        s = self._settings
        for attempt in range(_TRIES):
            try:
                return await self._files.download(
                    file.path, max_bytes=s.max_bytes, timeout=s.download_timeout
                )
            except RetryableError:
                if attempt == _TRIES - 1:
                    raise
                await self._sleep(2.0 * 4**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _flagged(
        self,
        message: Message,
        file: FileRef,
        finding: ImageFinding,
        decision: ImageDecision,
        kept: EvidenceFile,
    ) -> Callable[[], None]:
        """The ``image.flagged`` record, written with the ledger row. Without a deletion it keeps
        the evidence itself (the message, the picture within the retention window); a deletion
        keeps it with its own record, evidence first, through the executor."""

        def append() -> None:
            self._audit.append_audit(
                actor="rule:images",
                action=actions.IMAGE_FLAGGED,
                targets={
                    "message": message.id,
                    "room": message.rid,
                    "user": message.author.id,
                    "file": file.id,
                },
                reason=image_reason(finding, decision),
                outcome="dry-run" if decision.would_block else ("ok" if decision.delete else "alert"),
                evidence=() if decision.delete else (message,),
                files=() if decision.delete else (kept,),
                retention_days=self._retention_days,
            )

        return append

    # -- acting ----------------------------------------------------------------------------------

    async def _act(
        self, job: _Job, finding: ImageFinding, decision: ImageDecision, kept: EvidenceFile, check_id: int
    ) -> None:
        message, file = job.message, job.file
        done, deleted = "", False
        if decision.delete:
            acted_before = bool(self._evidence.evidence_for_message(message.id))
            result = await self._executor.execute(
                block_action(message, file, finding, decision, kept),
                # Handled again after a crash: the first attempt kept the evidence.
                evidence_kept=acted_before,
            )
            if result.done or (result.status is Status.REFUSED and acted_before):
                # A refusal after an earlier attempt: that attempt's deletion had landed.
                deleted = True
                done = "message deleted, evidence kept (the picture's hashes, and its bytes if kept)"
            elif result.status is Status.DRY_RUN:
                done = "dry run: nothing deleted"
            else:
                done = f"could not delete ({result.code or result.status.value}); please check"
        if decision.alert is None:
            return
        room = await self._room(job.room)
        text = alert_text(
            decision,
            room=room,
            author=message.author.username or message.author.id,
            site_url=self._site_url(),
            mid=message.id,
            done=done,
            image_id=check_id,
        )
        notice = Notice.about(
            KIND,
            key=f"{message.id}:{file.id}",
            incident=f"{KIND}:{message.id}:{file.id}",
            text=text,
            room=room,
            subject=message.author,
            severity=decision.alert,
            # Allow: a false positive's picture is never flagged by score again (not a listed one).
            actions=[]
            if decision.verdict == "critical"
            else [("Allow picture", f"mod allowimage {check_id}")],
        )
        await self._outbox.notify(notice)
        critical_room = self._settings.critical_room
        if decision.alert == "critical" and critical_room:
            # The critical route: the operator's room for known-bad material, besides the moderators.
            options = ListOptions(name=KIND, severity="critical", notify=NotifyOptions(room=critical_room))
            alert = notice.alert
            again = replace(alert, key=f"{alert.key}|critical", mid=f"{alert.mid}:critical")
            await self._outbox.notify(Notice(again, Moderators(options)))
        if decision.tell_author and deleted and message.author.username:
            await self._outbox.notify(
                Notice.direct(
                    "image-removed",
                    incident=f"image-removed:{message.id}:{file.id}",
                    recipient=message.author.username,
                    text=author_text(room),
                    room=room,
                    subject=message.author,
                )
            )

    async def _room(self, hint: Room) -> Room:
        if self._room_info is None or (hint.name and hint.type):
            return hint
        with contextlib.suppress(RcmodError):
            return await self._room_info(hint)
        return hint
