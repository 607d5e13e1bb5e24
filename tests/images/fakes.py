"""Small fakes for the image service's edges: the checker, the download, the outbox's queue, the
REST calls the executor makes. The store, the executor and the decisions are the real ones."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bot.errors import FileRefused, NotFound
from bot.models import HashMatch, ImageFinding, Message
from bot.moderation.settings import ImageSettings
from bot.realtime.events import NewMessage, RoomHint
from bot.services.executor import Executor
from bot.services.images import ImageModeration
from bot.services.outbox import Notice
from bot.services.router import Unfinished
from bot.store import Store
from bot.store.alerts import RaisedAlert

SETTINGS = ImageSettings.model_validate(
    {
        "rooms": [
            {"rooms": ["#general"], "policy": "block"},
            {"rooms": ["random"], "policy": "alert"},
        ],
        "critical_room": "staff",
    }
)
ROOM_IDS = {"general": "GENERAL", "random": "RANDOM", "staff": "STAFF"}


class FakeChecker:
    """Scores by the picture's bytes: ``b"score:0.97"`` scores 0.97; ``b"listed"`` matches a
    hash list; ``b"refuse:bomb"`` is refused."""

    def __init__(self) -> None:
        self.checked: list[bytes] = []

    async def check(self, data: bytes, *, score: bool) -> ImageFinding:
        self.checked.append(data)
        text = data.decode()
        if text.startswith("refuse:"):
            raise FileRefused(text.split(":", 1)[1])
        match = HashMatch("known-bad", "sha256", 0) if text == "listed" else None
        value = float(text.split(":", 1)[1]) if text.startswith("score:") else 0.0
        return ImageFinding(
            hashlib.sha256(data).hexdigest(), "ab" * 32, 80, 10, 10, match, value if score else None
        )


class FakeFiles:
    """Downloads what ``content`` holds per upload id; ``gate`` (when set) holds every download."""

    def __init__(self, content: dict[str, bytes | Exception]) -> None:
        self.content = content
        self.gate: asyncio.Event | None = None
        self.fetched: list[str] = []

    async def download(self, path: str, *, max_bytes: int, timeout: float) -> bytes:  # noqa: ASYNC109
        self.fetched.append(path)
        if self.gate is not None:
            await self.gate.wait()
        fid = path.split("/")[2]
        value = self.content[fid]
        if isinstance(value, Exception):
            raise value
        return value


class FakeRooms:
    async def room_by_name(self, name: str) -> dict[str, Any]:
        if name not in ROOM_IDS:
            raise NotFound("rooms.info: no such room", code="error-room-not-found")
        return {"_id": ROOM_IDS[name], "name": name, "t": "c"}


class FakeRest:
    """chat.delete: a message can be deleted once; after that it is not found."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def delete_message(self, rid: str, mid: str) -> None:
        if mid in self.deleted:
            raise NotFound("chat.delete: no such message", code="error-message-not-found")
        self.deleted.append(mid)


class QueueingOutbox:
    """The outbox's queuing side over the real alert ledger: an incident raised before raises
    nothing, across restarts too (the store remembers it)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.sent: list[Notice] = []
        self._ids = itertools.count(1)

    async def notify(self, notice: Notice) -> RaisedAlert | None:
        raised = self._store.alerts.raise_alert(
            notice.alert, recipients=["mod1"], window=600.0, new_dm_id=lambda: f"dm{next(self._ids)}"
        )
        if raised is not None:
            self.sent.append(notice)
        return raised

    def texts(self) -> list[str]:
        return [n.alert.excerpt for n in self.sent]


class Counts:
    def __init__(self) -> None:
        self.checked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def count_image_checked(self, verdict: str) -> None:
        self.checked[verdict] += 1

    def count_image_refused(self, reason: str) -> None:
        self.refused[reason] += 1


@dataclass
class World:
    """One bot process's image service over a store that outlives it (a restart builds another)."""

    store: Store
    files: FakeFiles
    rest: FakeRest = field(default_factory=FakeRest)
    checker: FakeChecker = field(default_factory=FakeChecker)
    counts: Counts = field(default_factory=Counts)
    dry_run: list[bool] = field(default_factory=lambda: [False])
    settings: ImageSettings = SETTINGS
    outbox: QueueingOutbox | None = None
    service: ImageModeration | None = None
    task: asyncio.Task[None] | None = None

    def start(self) -> ImageModeration:
        self.outbox = QueueingOutbox(self.store)
        executor = Executor(
            rest=cast(Any, self.rest),
            audit=self.store.audit,
            retention_days=90,
            dry_run=lambda: self.dry_run[0],
        )
        self.service = ImageModeration(
            settings=self.settings,
            ledger=self.store.images,
            evidence=self.store.evidence,
            audit=self.store.audit,
            executor=executor,
            outbox=self.outbox,
            checker=self.checker,
            files=self.files,
            rooms=FakeRooms(),
            metrics=self.counts,
            site_url=lambda: "https://chat.example",
            retention_days=90,
            unfinished=Unfinished(),
        )
        self.task = asyncio.create_task(self.service.run())
        return self.service

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def event(raw: dict[str, Any], name: str = "general") -> NewMessage:
    return NewMessage(Message.from_wire(raw), RoomHint(True, "c", name))


def open_store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "rcmod.sqlite3")
