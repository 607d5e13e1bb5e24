"""The audit log's action names: one vocabulary for every part of the bot (pure).

Use these for ``store.audit.append_audit(action=...)`` so exports, filters and the README stay in
step. Name what was acted on in ``targets`` with the keys :mod:`bot.audit.selection` documents
(``user``, ``room``, ``message``, ``case`` ...), and never put message text in a record: the log is
kept for good, evidence is not.
"""

from __future__ import annotations

__all__ = ["ACTIONS"]

ALERT_SENT = "alert.sent"
MESSAGE_DELETED = "message.deleted"
MESSAGE_CENSORED = "message.censored"
PURGE_STARTED = "purge.started"
PURGE_PROGRESSED = "purge.progressed"
PURGE_FINISHED = "purge.finished"
USER_BLOCKED = "user.blocked"
USER_UNBLOCKED = "user.unblocked"
REPORT_FILED = "report.filed"
REPORT_RESOLVED = "report.resolved"
ALERT_DISMISSED = "alert.dismissed"
MODERATOR_APPOINTED = "moderator.appointed"
DRY_RUN_CHANGED = "dry_run.changed"
POLICY_PINNED = "policy.pinned"
POLICY_UNPINNED = "policy.unpinned"
POLICY_CHANGED = "policy.changed"
LIST_EDITED = "list.edited"
CONFIG_RELOADED = "config.reloaded"
COMMAND_REFUSED = "command.refused"
# Sanctions and protections.
USER_WARNED = "user.warned"
USER_MUTED = "user.muted"
USER_UNMUTED = "user.unmuted"
MUTE_EXPIRED = "mute.expired"
USER_KICKED = "user.kicked"
USER_BANNED = "user.banned"
USER_UNBANNED = "user.unbanned"
STRIKES_PARDONED = "strikes.pardoned"
SANCTION_ESCALATED = "sanction.escalated"
PROTECTION_TRIGGERED = "protection.triggered"
ROOM_LOCKED = "room.locked"
ROOM_UNLOCKED = "room.unlocked"
MESSAGE_HELD = "message.held"
MESSAGE_RESTORED = "message.restored"
APPEAL_FILED = "appeal.filed"
# Image checks.
IMAGE_FLAGGED = "image.flagged"
IMAGE_ALLOWED = "image.allowed"
# Written by the audit machinery itself.
LEGAL_HOLD_PLACED = "legal_hold.placed"
LEGAL_HOLD_RELEASED = "legal_hold.released"
EVIDENCE_ERASED = "evidence.erased"
EVIDENCE_EXPIRED = "evidence.expired"
AUDIT_EXPORTED = "audit.exported"

ACTIONS = frozenset(
    {
        ALERT_SENT,
        MESSAGE_DELETED,
        MESSAGE_CENSORED,
        PURGE_STARTED,
        PURGE_PROGRESSED,
        PURGE_FINISHED,
        USER_BLOCKED,
        USER_UNBLOCKED,
        REPORT_FILED,
        REPORT_RESOLVED,
        ALERT_DISMISSED,
        MODERATOR_APPOINTED,
        DRY_RUN_CHANGED,
        POLICY_PINNED,
        POLICY_UNPINNED,
        POLICY_CHANGED,
        LIST_EDITED,
        CONFIG_RELOADED,
        COMMAND_REFUSED,
        USER_WARNED,
        USER_MUTED,
        USER_UNMUTED,
        MUTE_EXPIRED,
        USER_KICKED,
        USER_BANNED,
        USER_UNBANNED,
        STRIKES_PARDONED,
        SANCTION_ESCALATED,
        PROTECTION_TRIGGERED,
        IMAGE_FLAGGED,
        IMAGE_ALLOWED,
        ROOM_LOCKED,
        ROOM_UNLOCKED,
        MESSAGE_HELD,
        MESSAGE_RESTORED,
        APPEAL_FILED,
        LEGAL_HOLD_PLACED,
        LEGAL_HOLD_RELEASED,
        EVIDENCE_ERASED,
        EVIDENCE_EXPIRED,
        AUDIT_EXPORTED,
    }
)
