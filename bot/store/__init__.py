"""Persistence: the SQLite store and its migrations. No SQL lives outside this package."""

from bot.store.sqlite import (
    AuditRecord,
    AuditVerification,
    BotCopy,
    ErasureResult,
    EvidenceRow,
    HoldKind,
    LeaseHeld,
    LegalHold,
    Store,
    StoreError,
)

__all__ = [
    "AuditRecord",
    "AuditVerification",
    "BotCopy",
    "ErasureResult",
    "EvidenceRow",
    "HoldKind",
    "LeaseHeld",
    "LegalHold",
    "Store",
    "StoreError",
]
