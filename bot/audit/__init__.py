"""The audit trail: signed exports, offline verification, and the rules around evidence.

    chain.py      the audit record hash, recomputed from exported records        (pure)
    selection.py  what an export is about: a user, a case, or a date onwards    (pure)
    manifest.py   the export manifest and the checks verify-export runs         (pure)
    signing.py    the Ed25519 key: generated on first use, kept 0600 in the data folder
    export.py     writing an export atomically, and reading one back to verify it
    checkpoints.py  the chain head signed at intervals into a file beside the key (threat model there)
    integrity.py  everything `rcmod audit verify` checks: pages, chain, checkpoints, evidence links
    who.py        `--user @NAME|ID` resolved through the server or the store

The hash-chained log itself, evidence, legal holds, retention and erasure are store repositories
(``bot.store.AuditLog``: ``append_audit``, ``record_action``; ``bot.store.evidence.EvidenceArchive``:
``place_hold``, ``release_hold``, ``erase_user_evidence``, ``erase_expired_evidence``); this package
never speaks SQL.
"""

from bot.audit.chain import canonical, check_records, record_hash
from bot.audit.selection import Selection

__all__ = ["Selection", "canonical", "check_records", "record_hash"]
