"""Block lists and blocked users, as data: what to do with a message that arrives (pure).

A rule takes a message, the matches found in it and the author's block state, and returns a
:class:`BlockDecision` — frozen actions the enforcer (:mod:`bot.services.enforcement`) carries out in order:
keep the evidence, then delete (``chat.delete``) or censor in place (``chat.update`` with the
matched spans replaced by ``*``), then tell the author privately. The moderators' alert is not
decided here: the keyword notifier already alerts on ``block`` lists like on ``notify`` lists.

Which list wins when several block lists match: deleting is the stronger action, so one list
asking to delete makes the whole message deleted. Censoring rewrites the message text only, so a
block term found only in an attachment's title or description (which ``chat.update`` cannot
rewrite) deletes the message instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.models import Message
from bot.moderation.matcher import Match
from bot.moderation.neutralize import inline_literal, neutralize

__all__ = [
    "BlockDecision",
    "BlockReason",
    "BlockedUser",
    "author_notice",
    "censor_text",
    "decide_block",
]

CENSOR_CHAR = "*"


@dataclass(frozen=True, slots=True)
class BlockedUser:
    """A user whose new messages are removed on arrival; ``rid`` None means everywhere."""

    user_id: str
    username: str
    rid: str | None = None
    reason: str = ""

    def covers(self, rid: str) -> bool:
        return self.rid is None or self.rid == rid


@dataclass(frozen=True, slots=True)
class BlockReason:
    """Why a message was acted on: a block list (and term), or a blocked author."""

    rule: Literal["blocklist", "blocked_user"]
    list: str | None = None
    term: str | None = None
    reveal_term: bool = False


@dataclass(frozen=True, slots=True)
class BlockDecision:
    action: Literal["delete", "censor"]
    reason: BlockReason
    censored_text: str | None = None  # the new text, for "censor"

    @property
    def audit_reason(self) -> dict[str, str]:
        """What the audit record says (list and term are policy, not message content)."""
        out: dict[str, str] = {"rule": self.reason.rule}
        if self.reason.list:
            out["list"] = self.reason.list
        if self.reason.term:
            out["term"] = self.reason.term
        return out


def censor_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with every ``[start, end)`` span replaced by ``*`` (one per code point).

    Whitespace inside a span is kept, so "scam link" becomes "**** ****" and the message keeps its
    shape. Overlapping spans are fine.
    """
    hidden = [False] * len(text)
    for start, end in spans:
        for i in range(max(0, start), min(len(text), end)):
            hidden[i] = True
    return "".join(CENSOR_CHAR if h and not ch.isspace() else ch for ch, h in zip(text, hidden, strict=True))


def decide_block(
    message: Message,
    found: Sequence[tuple[str, Sequence[Match]]],
    *,
    blocked: BlockedUser | None = None,
) -> BlockDecision | None:
    """The action for one arriving message, or None to leave it.

    ``found`` pairs each scanned text (the message text first, then attachment texts, as
    :meth:`Message.scannable_texts` gives them) with the matches in it, already filtered by the
    lists' rooms. A blocked author's message is deleted whatever it says.
    """
    if message.is_system or message.is_encrypted:
        return None
    if blocked is not None and blocked.covers(message.rid):
        return BlockDecision("delete", BlockReason("blocked_user"))
    block_hits = [(text, [m for m in ms if m.kind == "block"]) for text, ms in found]
    block_hits = [(text, ms) for text, ms in block_hits if ms]
    if not block_hits:
        return None
    first = min((m for _, ms in block_hits for m in ms), key=lambda m: (m.start, m.list))
    reason = BlockReason("blocklist", first.list, first.term, first.options.reveal_term)
    in_text = [m for text, ms in block_hits if text == message.text for m in ms]
    wants_delete = any((m.action or "delete") == "delete" for _, ms in block_hits for m in ms)
    outside_text = any(text != message.text for text, _ in block_hits)
    # A censor list whose term sits where chat.update cannot reach (an attachment) deletes too.
    if wants_delete or outside_text or not in_text:
        return BlockDecision("delete", reason)
    censored = censor_text(message.text, [(m.start, m.end) for m in in_text])
    return BlockDecision("censor", reason, censored_text=censored)


def author_notice(decision: BlockDecision, room_name: str | None) -> str:
    """The private notice to the author. Names the policy; the term only if the list allows it."""
    where = f"in `#{neutralize(room_name)}`" if room_name else "in a direct message"
    done = "was removed" if decision.action == "delete" else "was edited to hide part of it"
    reason = decision.reason
    if reason.rule == "blocked_user":
        why = "you are blocked from posting there by the moderators"
    else:
        why = f"it matched the workspace's {inline_literal(reason.list or 'block')} block list"
        if reason.reveal_term and reason.term:
            why += f" (term {inline_literal(reason.term)})"
    return (
        f":no_entry: Your message {where} {done}: {why}. Contact a moderator if you think this is a mistake."
    )
