"""Log lines that stay one line each: every message is passed through
:func:`bot.moderation.neutralize.one_line`, so an id, a username or a room name a member chose
(a message ``_id`` may be any string) cannot end a line and forge the next one, nor reorder it
with bidi controls. Tracebacks, which the formatter appends after the message, keep their lines.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from bot.moderation.neutralize import one_line

__all__ = ["OneLineFormatter", "install"]


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


def install(level: int | str, fmt: str, stream: TextIO | None = None) -> None:
    """``logging.basicConfig`` with the one-line formatter on its handler (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])
