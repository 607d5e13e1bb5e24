"""Persistence: the SQLite store and its migrations. No SQL lives outside this package."""

from bot.store.sqlite import AuditRecord, AuditVerification, LeaseHeld, Store, StoreError

__all__ = ["AuditRecord", "AuditVerification", "LeaseHeld", "Store", "StoreError"]
