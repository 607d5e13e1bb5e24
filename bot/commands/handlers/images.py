"""`/mod allowimage N`: a moderator's Allow on an image alert. The picture's SHA-256 is allowed
for good (a false positive is never flagged by score again, in any room) and the alert is closed
on every moderator's copy. A hash-list match is the operator's list speaking: it cannot be
allowed from chat (edit the list instead)."""

from __future__ import annotations

from bot.commands.handlers.dispatch import Call, Handler
from bot.services.images import KIND
from bot.services.outbox import Outbox
from bot.store.alerts import AlertLedger
from bot.store.images import ImageLedger

__all__ = ["ImageCommands"]


class ImageCommands:
    def __init__(self, *, images: ImageLedger, alerts: AlertLedger, outbox: Outbox) -> None:
        self._images = images
        self._alerts = alerts
        self._outbox = outbox

    def handlers(self) -> dict[str, Handler]:
        return {"mod allowimage": self.allow_image}

    async def allow_image(self, call: Call) -> str:
        number = call.invocation.number("image")
        check = self._images.image_check_by_id(number)
        if check is None or check.sha256 is None:
            return f"There is no checked image {number}."
        if check.verdict == "critical":
            return (
                f"Image {number} matched a known-bad hash list: an Allow does not override the "
                "operator's list (remove the entry from the list file if it is wrong)."
            )
        added = self._images.allow_image(check.sha256, actor=call.caller.user_id, check_id=check.id)
        incident = f"{check.mid}:{check.file_id}"
        alert_id = self._alerts.incident_alert(f"{KIND}:{incident}", KIND, incident)
        if alert_id is not None and self._alerts.resolve_alert(
            alert_id, f"picture allowed by {call.caller.username} (false positive)"
        ):
            self._outbox.wake()  # every moderator's copy is edited to show it
        short = check.sha256[:12]
        if not added:
            return f"Image {number} (SHA-256 {short}…) was already allowed."
        return f"Image {number} allowed: this picture (SHA-256 {short}…) is never flagged by its score again."
