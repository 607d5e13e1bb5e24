"""The bot process of bench_e2e: what `rcmod run` runs (BotApp, the composition root, with the
same signal handling), plus one handler after the others that records when each member message
reached the handlers.

Run by bench_e2e only: python -m benchmarks.e2e_bot SETTINGS.json
Writes to stdout, batched every 0.1 s so the reporting costs the bot little:
  ``H id,server_ts,handled_at id,...`` (wall-clock seconds) for each new message handled
  ``R t`` when the bot is ready (logged in, subscribed, the first catch-up done).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from bot.app import BotApp, Extras
from bot.cli import logformat
from bot.config import Settings
from bot.realtime.events import Event, NewMessage


async def main(settings: Settings) -> None:
    logformat.install(settings.logging.level, "%(asctime)s %(levelname)s %(name)s: %(message)s", sys.stderr)
    pending: list[str] = []

    async def record(event: Event) -> None:
        if isinstance(event, NewMessage):
            m = event.message
            pending.append(f"{m.id},{m.ts.timestamp():.6f},{time.time():.6f}")

    app = BotApp(settings, Extras(handlers=[("bench", (NewMessage,), record)]))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop)

    async def report() -> None:
        said_ready = False
        while True:
            await asyncio.sleep(0.1)
            if pending:
                sys.stdout.write("H " + " ".join(pending) + "\n")
                pending.clear()
            if app.ready.is_set() and not said_ready:
                sys.stdout.write(f"R {time.time():.6f}\n")
                said_ready = True
            sys.stdout.flush()

    reporter = asyncio.create_task(report())
    try:
        await app.run()
    finally:
        reporter.cancel()
        if pending:
            sys.stdout.write("H " + " ".join(pending) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(Settings.model_validate(json.loads(Path(sys.argv[1]).read_text()))))
