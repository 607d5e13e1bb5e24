"""The executor: the one place that carries out an :class:`~bot.moderation.actions.Action`.

Its order is the point, and it exists nowhere else:

1. **dry-run** (``/mod dryrun on``): the audit log records what would have been done, with
   outcome ``dry-run``; nothing is stored as evidence and the server is not called;
2. **evidence first**: the action's messages are stored, in one transaction with the audit
   record that cites them, before the server is asked to change anything;
3. **the call**: one REST (or DDP) call per change, through a table keyed by the change's type;
   With replicas, the call waits for the leader's permit first (``fence``, see
   bot.store.leadership): a deposed leader changes nothing on the server;
4. **the record**: an action without evidence is audited once it is known how it went; a
   refusal or a failure is audited as ``failed: <code>`` (after evidence, as a second record).

The REST client already retries transport faults and rate limits; what still fails comes back
as :attr:`Status.FAILED` (retry later) or :attr:`Status.REFUSED` (the server said no: the
bot lacks a permission, the message is gone, the user is not in the room), with the server's
code, so the caller decides what to tell a moderator or whether to queue a retry.

:class:`RecordingExecutor` records actions and touches nothing: a small fake for tests of a
shell's decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from bot.errors import ActionRefused, RateLimited, RcmodError
from bot.moderation import actions as change
from bot.moderation.actions import Action, Change
from bot.rest import RestClient
from bot.store.audit import AuditLog

__all__ = ["Act", "Executor", "RecordingExecutor", "Result", "Status"]

log = logging.getLogger("rcmod.executor")

DdpCall = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


class Status(Enum):
    DONE = "done"
    DRY_RUN = "dry-run"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    code: str | None = None
    evidence_ids: tuple[int, ...] = ()
    audit_seq: int | None = None
    value: Any = None  # what the call answered (a posted message's id)
    retry_after: float | None = None  # FAILED on a rate limit: seconds the server asked to wait

    @property
    def done(self) -> bool:
        return self.status is Status.DONE

    @property
    def acted(self) -> bool:
        """The change was made, or would have been in a dry run."""
        return self.status in (Status.DONE, Status.DRY_RUN)


class Act(Protocol):
    """What a shell needs of an executor; :class:`Executor` and :class:`RecordingExecutor`."""

    async def execute(self, action: Action, *, evidence_kept: bool = False) -> Result: ...

    def dry_run(self) -> bool: ...


class Executor:
    def __init__(
        self,
        *,
        rest: RestClient,
        audit: AuditLog,
        retention_days: int,
        dry_run: Callable[[], bool] = lambda: False,
        ddp_call: DdpCall | None = None,
        fence: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._rest = rest
        self._audit = audit
        self._retention_days = retention_days
        self._dry_run = dry_run
        # With a DDP connection: mutes by username (where the REST route is missing), and edits
        # that replace a message's attachments (which chat.update cannot).
        self._ddp_call = ddp_call
        # Replicas: returns only while this instance may act (raises Deposed otherwise). Nothing
        # is awaited between it and the call's start.
        self._fence = fence

    def dry_run(self) -> bool:
        return self._dry_run()

    async def execute(self, action: Action, *, evidence_kept: bool = False) -> Result:
        """Carry out ``action``. ``evidence_kept``: an earlier attempt (before a crash) already
        stored its evidence and audit record; they are not stored twice."""
        if action.dry_run_applies and self._dry_run():
            return Result(Status.DRY_RUN, audit_seq=self._audit_outcome(action, "dry-run"))
        evidence_ids: tuple[int, ...] = ()
        seq: int | None = None
        first = bool(action.evidence) and not evidence_kept
        if first:
            assert action.audit is not None, "evidence is always cited by an audit record"
            record = self._audit.append_audit(
                actor=action.actor,
                action=action.audit,
                targets=action.targets,
                reason=action.reason,
                evidence=action.evidence,
                retention_days=self._retention_days,
                case=action.case,
                files=action.files,
            )
            evidence_ids, seq = tuple(c["id"] for c in record.targets["evidence"]), record.seq
        if self._fence is not None:
            await self._fence()  # Deposed passes every caller by (it is no RcmodError): the bot stops
        try:
            value = await self._call(action.change)
        except ActionRefused as exc:
            code = exc.code or type(exc).__name__
            if code not in action.moot:
                self._audit_outcome(action, f"failed: {code}")
            return Result(Status.REFUSED, code, evidence_ids, seq)
        except RcmodError as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            self._audit_outcome(action, f"failed: {code}")
            log.warning("%s by %s failed (%s)", type(action.change).__name__, action.actor, code)
            wait = exc.retry_after if isinstance(exc, RateLimited) else None
            return Result(Status.FAILED, code, evidence_ids, seq, retry_after=wait)
        if not action.evidence:
            seq = self._audit_outcome(action, "ok")
        return Result(Status.DONE, None, evidence_ids, seq, value)

    def _audit_outcome(self, action: Action, outcome: str) -> int | None:
        if action.audit is None:
            return None
        return self._audit.append_audit(
            actor=action.actor,
            action=action.audit,
            targets=_targets(action),
            reason=action.reason,
            outcome=outcome,
        ).seq

    async def _call(self, c: Change) -> Any:
        rest = self._rest
        match c:
            case change.DeleteMessage(rid, mid):
                return await rest.delete_message(rid, mid)
            case change.CleanHistory(rid, oldest, latest, users, pinned, threads, discussion):
                return await rest.clean_history(
                    rid,
                    oldest=oldest,
                    latest=latest,
                    users=list(users),
                    exclude_pinned=pinned,
                    ignore_threads=threads,
                    ignore_discussion=discussion,
                )
            case change.EditMessage(rid, mid, text, attachments):
                if attachments is not None and self._ddp_call is not None:
                    message = {
                        "_id": mid,
                        "rid": rid,
                        "msg": text,
                        "attachments": [dict(a) for a in attachments],
                    }
                    return await self._ddp_call("updateMessage", message)
                return await rest.update_message(rid, mid, text)
            case change.PostMessage(rid, text, mid, tmid, attachments):
                return await rest.send_message(
                    rid, text, mid=mid, tmid=tmid, attachments=[dict(a) for a in attachments] or None
                )
            case change.MuteUser(rid, user_id, username) | change.UnmuteUser(rid, user_id, username):
                return await self._mute(c, rid, user_id, username)
            case change.KickUser(rid, room_type, user_id):
                return await rest.kick_user(rid, room_type, user_id)
            case change.BanUser(rid, user_id):
                return await rest.ban_user(rid, user_id)
            case change.UnbanUser(rid, user_id):
                return await rest.unban_user(rid, user_id)
            case change.SetReadOnly(rid, read_only):
                return await rest.set_read_only(rid, read_only)
            case change.SetUserActive(user_id, active):
                return await rest.set_user_active(user_id, active)
            case change.PinMessage(mid):
                return await rest.pin_message(mid)
            case change.UnpinMessage(mid):
                return await rest.unpin_message(mid)
            case change.SetAnnouncement(rid, text):
                return await rest.save_room_settings(rid, roomAnnouncement=text)
            case change.DismissReports(mid, reason, how):
                return await rest.dismiss_reports(msg_id=mid, reason=reason, action=how)
            case change.AddRoomModerator(rid, room_type, user_id):
                return await rest.add_room_moderator(rid, room_type, user_id)
            case change.FileReport(description, mid, user_id):
                if mid is not None:
                    return await rest.report_message(mid, description)
                assert user_id is not None, "a report names a message or a user"
                return await rest.report_user(user_id, description)
            case change.JoinChannel(rid):
                return await rest.join_channel(rid)
        raise AssertionError(f"no executor arm for {c!r}")  # pragma: no cover - mypy checks arms

    async def _mute(self, c: Change, rid: str, user_id: str, username: str) -> None:
        muted = isinstance(c, change.MuteUser)
        if self._ddp_call is not None:
            # The DDP method takes the username, and works where the REST route is missing.
            method = "muteUserInRoom" if muted else "unmuteUserInRoom"
            await self._ddp_call(method, {"rid": rid, "username": username})
        elif muted:
            await self._rest.mute_user(rid, user_id)
        else:
            await self._rest.unmute_user(rid, user_id)


def _targets(action: Action) -> Mapping[str, Any]:
    if action.case is None:
        return action.targets
    return {**action.targets, "case": action.case}


@dataclass
class RecordingExecutor:
    """Records every action and acts on nothing: the dry-run of previews and tests."""

    actions: list[Action] = field(default_factory=list)

    def dry_run(self) -> bool:
        return True

    async def execute(self, action: Action, *, evidence_kept: bool = False) -> Result:
        self.actions.append(action)
        return Result(Status.DRY_RUN)
