"""kill -9 at random moments around block-list removals: is every removed message's author told
exactly once? Real `rcmod run` processes against an in-process sandbox.

    .venv/bin/python -m benchmarks.bench_kill_notices [KILLS]

Each round starts the bot, posts one blocked message and kills the bot 0-300 ms later (anywhere
between arrival, evidence, delete and notice). A last, clean run then catches up. Prints how many
messages were removed, how many notices their author got, and the lost and duplicated counts.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from pathlib import Path

from benchmarks.common import machine_line
from bot.sandbox import RateLimits, Sandbox
from bot.store import Store
from tests.conftest import until
from tests.helpers import bot_login_env, free_port, rcmod_process, ready


def _lists(root: Path) -> Path:
    lists = root / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "banned.txt").write_text("badword\n")
    (lists / "banned.toml").write_text('kind = "block"\naction = "delete"\n\n[notify]\nusers = ["mod1"]\n')
    return lists


async def _spawn(sandbox: Sandbox, root: Path, port: int) -> asyncio.subprocess.Process:
    env = {
        **bot_login_env(sandbox, root / "data"),
        "RCMOD_HTTP_PORT": str(port),
        "RCMOD_WORDLISTS": str(_lists(root)),
    }
    quiet = asyncio.subprocess.DEVNULL
    return await rcmod_process("run", env=env, stdout=quiet, stderr=quiet)


async def _settled(root: Path) -> None:
    """Wait until the bot's store (read from outside) has nothing left to send or finish: a late
    duplicate notice could only come from there."""
    store = Store.open(root / "data" / "rcmod.sqlite3")
    try:
        await until(
            lambda: store.alerts.pending_deliveries() == 0 and store.blocks.due_block_retries() == [],
            within=30,
        )
    finally:
        store.close()


def _notices(sandbox: Sandbox) -> int:
    ws = sandbox.workspace
    bot, alice = ws.user_by_username("rcmod.bot"), ws.user_by_username("alice")
    assert bot is not None and alice is not None
    rid = "".join(sorted({bot.id, alice.id}))
    return sum(1 for m in ws.messages.values() if m["rid"] == rid and m["u"]["_id"] == bot.id)


async def main(kills: int) -> None:
    print(machine_line())
    rng = random.Random(7)
    # Every start reads settings.public, which the server limits to 10 calls a minute per address
    # for everyone (no login there, so no bypass): sixty starts in a few minutes would measure that
    # limit, not the notices. The REST limit is lifted here; the tests keep it.
    sandbox = Sandbox(rate_limits=RateLimits(rest_enabled=False))
    await sandbox.start()
    posted: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root, port = Path(tmp), free_port()
            for n in range(kills):
                proc = await _spawn(sandbox, root, port)
                if not await ready(port, within=30, every=0.05):
                    raise SystemExit("the bot did not become ready")
                posted.append(sandbox.post_as("alice", "general", f"badword {n}")["_id"])
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                proc.kill()
                await proc.wait()
            proc = await _spawn(sandbox, root, port)
            await ready(port, within=30)
            await until(
                lambda: (
                    not any(mid in sandbox.workspace.messages for mid in posted)
                    and _notices(sandbox) >= len(posted)
                ),
                within=60,
            )
            await _settled(root)
            proc.terminate()
            await proc.wait()
    finally:
        await sandbox.stop()
    removed = sum(1 for mid in posted if mid not in sandbox.workspace.messages)
    told = _notices(sandbox)
    print(
        f"kills: {kills}; removed: {removed}/{len(posted)}; notices: {told}; "
        f"lost: {max(0, removed - told)}; duplicated: {max(0, told - removed)}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
