"""The name watch scans an author's names when they are new or changed, not on every message."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from bot.config import ModerationSettings
from bot.models import Message
from bot.realtime.events import NewMessage, RoomHint
from bot.services import names
from bot.services.names import NameWatch
from bot.store import Store


class CountingMatcher:
    def __init__(self) -> None:
        self.scanned: list[str] = []

    def scan(self, text: str) -> list[Any]:
        self.scanned.append(text)
        return []


def said(mid: str, username: str, name: str) -> NewMessage:
    user = {"_id": "u1", "username": username, "name": name}
    wire = {"_id": mid, "rid": "GENERAL", "msg": "hi", "ts": {"$date": 1}, "u": user}
    return NewMessage(Message.from_wire(wire), RoomHint(True, "c", "general"))


async def test_an_authors_names_are_scanned_when_they_change(tmp_path: Path, monkeypatch: Any) -> None:
    looked: list[str] = []  # the names a message's author was checked for (fields built, hashed)
    fields = names.user_fields
    monkeypatch.setattr(
        names, "user_fields", lambda user, **kw: (looked.append(user["username"]), fields(user, **kw))[1]
    )
    store = Store.open(tmp_path / "s.sqlite3")
    matchers = [CountingMatcher()]
    watch = NameWatch(
        policies=store.policies,
        state=store.state,
        rest=cast(Any, None),
        outbox=cast(Any, None),
        matcher=lambda: cast(Any, matchers[-1]),
        moderation=ModerationSettings(),
        site_url=lambda: "",
        bot_user_id=lambda: "bot",
        lookups=cast(Any, None),
    )
    await watch.on_event(said("m1", "alice", "Alice"))
    first = list(matchers[-1].scanned)
    assert "Alice" in first and "alice" in first
    for i in range(5):
        await watch.on_event(said(f"m{i + 2}", "alice", "Alice"))
    assert matchers[-1].scanned == first  # unchanged: not scanned again
    assert looked == ["alice"]  # nor even looked at
    await watch.on_event(said("m9", "alice", "Alice the Great"))
    assert matchers[-1].scanned[len(first) :] == ["Alice the Great"]
    matchers.append(CountingMatcher())  # a reload: everything is scanned afresh
    await watch.on_event(said("m10", "alice", "Alice the Great"))
    assert "Alice the Great" in matchers[-1].scanned
    store.close()
