"""Image checks: what was decided about each upload, and the pictures moderators allowed.

A row per (message, upload) holds the picture's hashes, its score or hash-list match, or why it
was refused, and the verdict; never the picture or its name. It is written before anything is
done about the picture (state ``checked``) and marked ``done`` after, so a message handled again
after a crash or a reconnect is neither checked nor acted on twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.audit import actions
from bot.models import ImageFinding, to_iso
from bot.store.audit import AuditLog
from bot.store.db import Database, translates
from bot.store.messages import DEDUP_KEEP_DAYS

__all__ = ["ImageCheck", "ImageLedger"]

_COLUMNS = "id, mid, file_id, rid, sha256, verdict, state"


@dataclass(frozen=True, slots=True)
class ImageCheck:
    id: int
    mid: str
    file_id: str
    rid: str
    sha256: str | None
    verdict: str
    state: str


class ImageLedger:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    @translates("reading image checks")
    def image_check(self, mid: str, file_id: str) -> ImageCheck | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM image_check WHERE mid = ? AND file_id = ?",
            (mid, file_id),
        ).fetchone()
        return ImageCheck(*row) if row else None

    @translates("reading image checks")
    def image_check_by_id(self, check_id: int) -> ImageCheck | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM image_check WHERE id = ?", (check_id,)).fetchone()
        return ImageCheck(*row) if row else None

    @translates("recording an image check")
    def record_check(
        self,
        *,
        mid: str,
        file_id: str,
        rid: str,
        finding: ImageFinding | None,
        verdict: str,
        refused: str | None = None,
        done: bool = False,
        flagged: Callable[[], None] | None = None,
    ) -> ImageCheck:
        """Record the check and its verdict (once: a second call returns the first row).
        ``flagged`` appends the audit record of a flagged picture in the same transaction, only
        when the row is new: a message handled again is not audited twice."""
        with self._db.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO image_check (mid, file_id, rid, checked_at, sha256, pdq, score, "
                "hash_list, refused, verdict, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mid,
                    file_id,
                    rid,
                    self._db.now_iso(),
                    finding.sha256 if finding else None,
                    finding.pdq if finding else None,
                    finding.score if finding else None,
                    finding.match.list_name if finding and finding.match else None,
                    refused,
                    verdict,
                    "done" if done else "checked",
                ),
            )
            if cur.rowcount > 0 and flagged is not None:
                flagged()
        found = self.image_check(mid, file_id)
        assert found is not None
        return found

    @translates("recording an image check")
    def mark_done(self, check_id: int) -> None:
        self._db.execute("UPDATE image_check SET state = 'done' WHERE id = ?", (check_id,))

    @translates("forgetting image checks")
    def forget_checks(self, retention_days: int) -> int:
        """Delete finished checks older than the preservation window, and never younger than
        the dedup horizon (a message catch-up may still re-read must still find its check).
        Kept: an unfinished check (its message is still held) and the check an allowed
        picture names. A flagged picture's hashes stay in its audit record and evidence.
        Returns how many went."""
        days = max(retention_days, DEDUP_KEEP_DAYS)
        cutoff = to_iso(datetime.fromtimestamp(self._db.clock() - days * 86400, tz=UTC))
        cur = self._db.execute(
            "DELETE FROM image_check WHERE checked_at < ? AND state = 'done' AND id NOT IN "
            "(SELECT image_check_id FROM image_allowed WHERE image_check_id IS NOT NULL)",
            (cutoff,),
        )
        return int(cur.rowcount or 0)

    @translates("reading allowed images")
    def image_allowed(self, sha256: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM image_allowed WHERE sha256 = ?", (sha256,)).fetchone() is not None
        )

    @translates("allowing an image")
    def allow_image(self, sha256: str, *, actor: str, check_id: int | None = None) -> bool:
        """Allow a picture by its SHA-256 (audited with the hash); False if it was already."""
        with self._db.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO image_allowed (sha256, allowed_at, actor, image_check_id) "
                "VALUES (?, ?, ?, ?)",
                (sha256, self._db.now_iso(), actor, check_id),
            )
            added = cur.rowcount > 0
            self._audit.append_audit(
                actor=actor,
                action=actions.IMAGE_ALLOWED,
                targets={"image_check": check_id} if check_id is not None else {},
                reason={"sha256": sha256},
                outcome="ok" if added else "noop: already allowed",
            )
        return added
