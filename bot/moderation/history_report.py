"""What the current lists would have caught in past messages: the ``rcmod scan-history`` report
(pure: messages and matches in, counts out). Counts and message ids only, no message text, so a
report can be pasted into a ticket."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.models import Message
from bot.moderation.matcher import Match

__all__ = ["HistoryReport"]


@dataclass
class HistoryReport:
    scanned: Counter[str] = field(default_factory=Counter)  # room -> messages scanned
    caught: Counter[str] = field(default_factory=Counter)  # room -> messages with a match
    by_list: Counter[tuple[str, str]] = field(default_factory=Counter)  # (list, what it does) -> messages
    by_term: Counter[tuple[str, str]] = field(default_factory=Counter)  # (list, term) -> messages
    unscannable: Counter[str] = field(default_factory=Counter)  # room -> encrypted messages
    examples: dict[str, list[str]] = field(default_factory=dict)  # list -> a few message ids

    def add(self, room: str, message: Message, matches: list[Match]) -> None:
        if message.is_encrypted:
            self.unscannable[room] += 1
            return
        self.scanned[room] += 1
        hits = [m for m in matches if m.kind != "allow"]
        if not hits:
            return
        self.caught[room] += 1
        for lst, does in {(m.list, _does(m)) for m in hits}:
            self.by_list[(lst, does)] += 1
            ids = self.examples.setdefault(lst, [])
            if len(ids) < 3:
                ids.append(message.id)
        for key in {(m.list, m.term) for m in hits}:
            self.by_term[key] += 1

    def to_json(self) -> dict[str, object]:
        return {
            "rooms": [
                {"room": r, "scanned": n, "caught": self.caught[r], "unscannable": self.unscannable[r]}
                for r, n in sorted(self.scanned.items())
            ],
            "lists": [
                {"list": lst, "action": does, "messages": n, "examples": self.examples.get(lst, [])}
                for (lst, does), n in self.by_list.most_common()
            ],
            "terms": [{"list": lst, "term": t, "messages": n} for (lst, t), n in self.by_term.most_common()],
        }

    def render(self) -> str:
        total, caught = sum(self.scanned.values()), sum(self.caught.values())
        lines = [
            f"{total} message(s) scanned in {len(self.scanned)} room(s); {caught} would have been caught"
        ]
        for room, n in sorted(self.scanned.items()):
            extra = f", {self.unscannable[room]} encrypted (unscannable)" if self.unscannable[room] else ""
            lines.append(f"  #{room}: {n} scanned, {self.caught[room]} caught{extra}")
        for (lst, does), n in self.by_list.most_common():
            lines.append(
                f"  list {lst} ({does}): {n} message(s), e.g. {', '.join(self.examples.get(lst, []))}"
            )
        for (lst, term), n in self.by_term.most_common(20):
            lines.append(f"    {lst}: {term!r} in {n} message(s)")
        return "\n".join(lines)


def _does(m: Match) -> str:
    if m.kind == "block":
        return m.action or "delete"
    return "alert"
