"""Persistence: the store and its migrations. No SQL lives outside this package.

db.py         Database: the connection, the clock, transactions, error translation, migrating;
              its SQLite implementation (the embedded default)
postgres.py   PostgresDatabase: the same on PostgreSQL, SQLite's dialect translated once per statement
sqlite.py     Store: what the composition root opens, a holder of the repositories below
lease.py      Lease              one instance per data folder
messages.py   MessageLog         handled messages, catch-up cursors
audit.py      AuditLog           the hash-chained log, cases, evidence stored with its record
evidence.py   EvidenceArchive    evidence read back, legal holds, retention, erasure
alerts.py     AlertLedger        keyword alerts, the DM outbox, digests
reports.py    ReportLedger       /report and its console
state.py      BotState           small named values (dry-run mode, baselines)
policies.py   PolicyStore        policy versions, their messages and banners
sanctions.py  SanctionLedger     strikes, mutes, raid locks, held messages
bans.py       BanLedger          room bans
jobs.py       BlockList, PurgeJournal   the block list and its retries; purge jobs
hooks.py      HookReplayLedger   signatures of accepted hook requests
images.py     ImageLedger        image checks (hashes and verdicts), pictures moderators allowed
lists.py      ChatLists          the lists moderators edit in chat (/mod allow, /mod deny)
"""

from bot.store.audit import AuditLog, AuditRecord, AuditVerification
from bot.store.db import Database, StoreError
from bot.store.evidence import ErasureResult, EvidenceFileRow, EvidenceRow, HoldKind, LegalHold
from bot.store.lease import LeaseHeld
from bot.store.sqlite import Store

__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuditVerification",
    "Database",
    "ErasureResult",
    "EvidenceFileRow",
    "EvidenceRow",
    "HoldKind",
    "LeaseHeld",
    "LegalHold",
    "Store",
    "StoreError",
]
