"""The store the composition root opens: one database (SQLite, or PostgreSQL) and the repositories over it.

``Store`` holds no verbs of its own. Each concern is a repository (``store.audit``,
``store.alerts``, …) built over the one :class:`~bot.store.db.Database`, so a service can be
handed just the repositories it uses, and a test can build one repository alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.store.alerts import AlertLedger
from bot.store.audit import AuditLog
from bot.store.bans import BanLedger
from bot.store.db import Database
from bot.store.evidence import EvidenceArchive
from bot.store.hooks import HookReplayLedger
from bot.store.images import ImageLedger
from bot.store.jobs import BlockList, PurgeJournal
from bot.store.lease import Lease
from bot.store.lists import ChatLists
from bot.store.messages import MessageLog
from bot.store.policies import PolicyStore
from bot.store.reports import ReportLedger
from bot.store.sanctions import SanctionLedger
from bot.store.state import BotState

__all__ = ["Store"]


@dataclass(frozen=True, slots=True)
class Store:
    db: Database
    lease: Lease
    messages: MessageLog
    audit: AuditLog
    evidence: EvidenceArchive
    alerts: AlertLedger
    reports: ReportLedger
    state: BotState
    policies: PolicyStore
    sanctions: SanctionLedger
    bans: BanLedger
    blocks: BlockList
    purges: PurgeJournal
    hooks: HookReplayLedger
    images: ImageLedger
    lists: ChatLists

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_audit: Callable[[str, str], None] | None = None,
    ) -> Store:
        db = Database.open(path, clock=clock)
        db.on_audit = on_audit
        return cls.over(db)

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        on_audit: Callable[[str, str], None] | None = None,
    ) -> Store:
        """The store in the PostgreSQL database at ``url`` (see :mod:`bot.store.postgres`)."""
        db = Database.connect(url, clock=clock)
        db.on_audit = on_audit
        return cls.over(db)

    @classmethod
    def over(cls, db: Database) -> Store:
        """Every repository over ``db``; the ones that audit in their own transaction share one
        AuditLog."""
        audit = AuditLog(db)
        alerts = AlertLedger(db)
        return cls(
            db=db,
            lease=Lease(db),
            messages=MessageLog(db),
            audit=audit,
            evidence=EvidenceArchive(db, audit, alerts),
            alerts=alerts,
            reports=ReportLedger(db),
            state=BotState(db),
            policies=PolicyStore(db),
            sanctions=SanctionLedger(db),
            bans=BanLedger(db),
            blocks=BlockList(db, audit),
            purges=PurgeJournal(db),
            hooks=HookReplayLedger(db),
            images=ImageLedger(db, audit),
            lists=ChatLists(db, audit),
        )

    def close(self) -> None:
        self.db.close()
