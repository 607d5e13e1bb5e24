"""Everything ``rcmod audit verify`` checks about a store, in one place (also run before an
export, whose manifest records the outcome): SQLite's page check, the hash chain, the signed checkpoints
(:mod:`bot.audit.checkpoints`), each evidence item against its hash, and evidence against the
records that cite it, both ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.audit.checkpoints import Checkpoint, check_against_chain, parse_checkpoints, read_checkpoints
from bot.audit.manifest import check_evidence, check_links
from bot.audit.signing import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, load_signing_key, parse_public_key
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.store import AuditVerification, Store

__all__ = ["StoreCheck", "audit_public_key", "checkpoints_in", "verify_store"]


@dataclass(frozen=True, slots=True)
class StoreCheck:
    damage: list[str] = field(default_factory=list)
    chain: AuditVerification | None = None
    records: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_problems: list[str] = field(default_factory=list)
    evidence: int = 0
    erased: int = 0
    evidence_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.damage
            and self.chain is not None
            and self.chain.ok
            and not self.checkpoint_problems
            and not self.evidence_problems
        )


def audit_public_key(data_dir: Path) -> Ed25519PublicKey | None:
    """The audit key's public half: from the private key when present, else its public file."""
    key = load_signing_key(data_dir)
    if key is not None:
        return key.public_key()
    path = data_dir / PUBLIC_KEY_FILE
    try:
        return parse_public_key(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"storage.data_dir: cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"storage.data_dir: {path}: {exc}") from exc


def checkpoints_in(data_dir: Path) -> tuple[list[Checkpoint], list[str]]:
    """The data folder's verified checkpoints and the problems with its checkpoint file."""
    data = read_checkpoints(data_dir)
    if data is None:
        return [], []
    key = audit_public_key(data_dir)
    if key is None:
        return [], [f"checkpoints exist but the audit signing key ({PRIVATE_KEY_FILE}) is missing"]
    return parse_checkpoints(data, key)


def verify_store(store: Store, data_dir: Path) -> StoreCheck:
    damage = store.db.check_integrity()
    if damage:
        return StoreCheck(damage=damage)
    from bot.audit.export import evidence_json, record_json  # export imports this module

    chain = store.audit.verify_audit_checked()
    records = store.audit.audit_records_checked()
    checkpoints, cp_problems = checkpoints_in(data_dir)
    head = store.audit.audit_head()
    head_seq = head[0] if head else max((r.seq for r in records), default=0)
    cp_problems += check_against_chain(
        checkpoints, head_seq=head_seq, hashes={r.seq: r.hash for r in records}, where="audit log"
    )
    rows = store.evidence.all_evidence_rows()
    evidence = [evidence_json(e) for e in rows]
    as_json = [record_json(r) for r in records]
    evidence_problems = check_evidence(evidence, as_json, source=None) + check_links(evidence, as_json)
    return StoreCheck(
        chain=chain,
        records=chain.checked,
        checkpoints=checkpoints,
        checkpoint_problems=cp_problems,
        evidence=len(rows),
        erased=sum(e.content is None for e in rows),
        evidence_problems=evidence_problems,
    )
