"""The audit trail: signed exports, offline verification, and the rules around evidence.

    chain.py      the audit record hash: the store appends with it, exports are checked with it (pure)
    selection.py  what an export is about: a user, a case, or a date onwards    (pure)
    manifest.py   the export manifest and the checks verify-export runs         (pure)
    signing.py    the Ed25519 key: generated on first use, kept 0600 in the data folder
    export.py     writing an export atomically, and reading one back to verify it
    checkpoints.py  the chain head signed at intervals into a file beside the key (threat model there)
    integrity.py  everything `rcmod audit verify` checks: pages, chain, checkpoints, evidence links

The hash-chained log itself, evidence, legal holds, retention and erasure are store verbs
(``bot.store.Store``: ``append_audit`` (with the evidence it cites), ``place_hold``, ``release_hold``,
``erase_user_evidence``, ``erase_expired_evidence``); this package never speaks SQL.
``--user @NAME|ID`` is resolved by :mod:`bot.cli.who`.

Two layers live here (the import contract in pyproject.toml holds them apart): actions, chain,
selection, manifest and signing are below the store, which uses the action names, the case keys
and the hash; export, integrity and checkpoints read the store and sit above it. The store
imports nothing else of this package, so there is no cycle between the two.
"""

from bot.audit.chain import canonical, check_records, record_hash
from bot.audit.selection import Selection

__all__ = ["Selection", "canonical", "check_records", "record_hash"]
