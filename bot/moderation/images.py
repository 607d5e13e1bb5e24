"""Image moderation decisions (pure): what to do about one uploaded picture.

The shell (:mod:`bot.services.images`) downloads a file and has it checked on this machine; the
checker's :class:`~bot.models.ImageFinding` (or the reason it refused the file) comes here with
the room's policy, and :func:`decide` returns the decision as data. The shell carries it out:
evidence and deletion through the one executor, alerts and the author's notice through the
outbox.

How a picture is decided, in order:

* a file the checker refused (too large, too slow, not an image, corrupt, a decompression bomb,
  encrypted) is counted, never acted on;
* a **hash-list match** is critical: in every room whose policy is not ``off`` the message is
  blocked (evidence first, deleted, its author told) and the critical route alerted. A
  moderator's Allow never overrides a list: the operator owns the list;
* a picture whose SHA-256 a moderator allowed (a false positive) is left alone;
* ``block`` and a score at or above ``block_threshold``: blocked, and the moderators told;
* ``alert`` or ``block`` and a score at or above ``alert_threshold``: the moderators alerted with
  the score and a link to the message, never the picture.

``/mod dryrun on`` turns every block into an alert that says what would have been done: nothing
is deleted and nobody but the moderators is told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from bot.models import FileRef, ImageFinding, Message, Room
from bot.moderation.actions import Action, DeleteMessage, EvidenceFile
from bot.moderation.alerts import permalink
from bot.moderation.neutralize import inline_literal
from bot.moderation.settings import ImagePolicy, ImageSettings

__all__ = [
    "ImageDecision",
    "ImageRules",
    "Verdict",
    "alert_text",
    "author_text",
    "block_action",
    "decide",
    "finding_reason",
]

Verdict = Literal["clean", "allowed", "refused", "alert", "block", "critical"]


@dataclass(frozen=True, slots=True)
class ImageRules:
    """The policy of each room, bound to room ids, and the score thresholds."""

    default: ImagePolicy = "off"
    by_room: Mapping[str, ImagePolicy] = field(default_factory=lambda: MappingProxyType({}))
    alert_threshold: float = 0.8
    block_threshold: float = 0.95

    @classmethod
    def bound(cls, settings: ImageSettings, room_ids: Mapping[str, str]) -> ImageRules:
        """The settings with each configured room (a name, ``#name`` or an id) bound to its room
        id through ``room_ids`` (name → id, as looked up when the bot started); an entry the
        lookup did not find is taken as a room id. A later entry for a room wins."""
        by_room: dict[str, ImagePolicy] = {}
        for entry in settings.rooms:
            for room in entry.rooms:
                name = room.strip().lstrip("#")
                by_room[room_ids.get(name, name)] = entry.policy
        return cls(
            settings.default, MappingProxyType(by_room), settings.alert_threshold, settings.block_threshold
        )

    def policy_for(self, rid: str) -> ImagePolicy:
        return self.by_room.get(rid, self.default)


@dataclass(frozen=True, slots=True)
class ImageDecision:
    """What to do about one picture. ``delete``: keep the message (and the picture) as evidence,
    then delete it; ``tell_author``: the author is told why; ``alert``: the moderators' alert
    (``critical`` also goes to the critical route); ``would_block``: a block a dry run held back;
    ``keep_evidence``: the message and the picture are kept as evidence (a block or an alert)."""

    verdict: Verdict
    reason: str = ""
    delete: bool = False
    tell_author: bool = False
    alert: Literal["high", "critical"] | None = None
    would_block: bool = False

    @property
    def keep_evidence(self) -> bool:
        return self.delete or self.alert is not None


_CLEAN = ImageDecision("clean")
_ALLOWED = ImageDecision("allowed", "allowed by a moderator")


def finding_reason(finding: ImageFinding) -> str:
    """Why a picture was flagged, in words moderators read (hashes and numbers only)."""
    m = finding.match
    if m is not None:
        how = "exact" if m.kind == "sha256" else f"near duplicate, distance {m.distance}"
        return f"matches hash list {inline_literal(m.list_name)} ({how})"
    return f"NSFW score {finding.score:.2f}" if finding.score is not None else "no score"


def decide(
    policy: ImagePolicy,
    finding: ImageFinding | None,
    *,
    rules: ImageRules,
    dry_run: bool,
    allowed: bool = False,
    refused: str | None = None,
) -> ImageDecision:
    """The decision for one picture in a room with ``policy``: ``finding`` is what the checker
    learnt, None when it refused the file (``refused`` says why). ``allowed``: a moderator
    allowed this picture's SHA-256."""
    if policy == "off":
        return _CLEAN
    if finding is None:
        return ImageDecision("refused", refused or "refused")
    if finding.match is not None:
        return _block(finding, "critical", "critical", dry_run)
    if allowed:
        return _ALLOWED
    score = finding.score
    if score is None:
        return _CLEAN
    if policy == "block" and score >= rules.block_threshold:
        return _block(finding, "block", "high", dry_run)
    if score >= rules.alert_threshold:
        return ImageDecision("alert", finding_reason(finding), alert="high")
    return _CLEAN


def _block(
    finding: ImageFinding, verdict: Verdict, alert: Literal["high", "critical"], dry_run: bool
) -> ImageDecision:
    reason = finding_reason(finding)
    if dry_run:
        return ImageDecision(verdict, reason, alert=alert, would_block=True)
    return ImageDecision(verdict, reason, delete=True, tell_author=True, alert=alert)


def block_action(
    message: Message, file: FileRef, finding: ImageFinding, decision: ImageDecision, kept: EvidenceFile
) -> Action:
    """Evidence first (the message, the picture's hashes and, if kept, its bytes), then delete."""
    return Action(
        DeleteMessage(message.rid, message.id),
        actor="rule:images",
        audit="message.deleted",  # bot.audit.actions.MESSAGE_DELETED (a layer above the core)
        targets={"message": message.id, "room": message.rid, "user": message.author.id, "file": file.id},
        reason=image_reason(finding, decision),
        evidence=(message,),
        files=(kept,),
    )


def image_reason(finding: ImageFinding, decision: ImageDecision) -> dict[str, object]:
    """What the audit log records of a picture: its hashes and why, never its bytes or name."""
    reason: dict[str, object] = {
        "rule": "images",
        "verdict": decision.verdict,
        "sha256": finding.sha256,
    }
    if finding.pdq is not None:
        reason["pdq"] = finding.pdq
    if finding.score is not None:
        reason["score"] = round(finding.score, 4)
    if finding.match is not None:
        reason["hash_list"] = finding.match.list_name
        reason["match"] = finding.match.kind
        reason["distance"] = finding.match.distance
    return reason


def alert_text(
    decision: ImageDecision,
    *,
    room: Room,
    author: str,
    site_url: str,
    mid: str,
    done: str,
    image_id: int,
) -> str:
    """The moderators' alert: what was found, what was (or would have been) done, and a link to
    the message. Never the picture, never its file name. ``image_id`` numbers the check, for
    `/mod allowimage`."""
    where = inline_literal("#" + room.name) if room.name else inline_literal(room.id)
    title = "critical — known-bad image" if decision.verdict == "critical" else "image"
    lines = [f"*rcmod images — {title}* in {where} by {inline_literal(author)}: {decision.reason}."]
    if decision.would_block:
        lines.append("Dry run is on: I would delete the message and tell its author.")
    elif decision.delete:
        lines.append(f"Done: {done}")
    else:
        lines.append("Alert only: nothing was done.")
    # permalink() percent-encodes the room name and the message id (both chosen by members).
    lines.append(f"Message: {permalink(site_url, room, mid)}")
    if decision.verdict != "critical":
        lines.append(f"False positive? `/mod allowimage {image_id}` stops this picture being flagged again.")
    return "\n".join(lines)


def author_text(room: Room) -> str:
    """Told to the author of a deleted picture (in the room's words, nothing of the picture)."""
    where = inline_literal("#" + (room.name or room.id))
    return (
        f"Your message in {where} was removed: an image in it is not allowed here. "
        "A moderator has been told; if this is a mistake, answer here with `mod appeal` and why."
    )
