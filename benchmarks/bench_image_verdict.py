"""Post to verdict for uploads: members post pictures at a steady --rate and the bot, its own
composition with the real open_nsfw model, downloads each one as itself, checks it and decides.

The sandbox runs in this process (as in bench_path): each upload goes through the sandbox's own
rooms.media/rooms.mediaConfirm checks (``upload_as``), reaches the bot on its realtime stream and
is downloaded from the sandbox's ``/file-upload/`` route. The verdict time is when the upload's
row in the bot's image ledger is marked done (the decision taken and acted on), polled every 2 ms.
The CPU figure is this whole process's (bot and sandbox together) per picture.

Run: .venv/bin/python -m benchmarks.bench_image_verdict --help
Figures are lines starting with ``images verdict:``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import random
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from benchmarks.common import bot_settings, machine_line
from bot.app import BotApp, Extras
from bot.config import Settings
from bot.sandbox import Sandbox

MEMBERS = ("alice", "bob", "carol", "mod2")


def picture(seed: int, size: tuple[int, int], quality: int) -> bytes:
    """A benign generated picture, different for every seed (so every upload is a new hash)."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))  # type: ignore[arg-type]
    draw = ImageDraw.Draw(img)
    for _ in range(24):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        w, h = rng.randrange(20, size[0] // 3), rng.randrange(20, size[1] // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.rectangle([x, y, x + w, y + h], fill=colour)  # type: ignore[arg-type]
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    print("command: " + shlex.join([sys.executable, "-m", "benchmarks.bench_image_verdict", *sys.argv[1:]]))
    print(machine_line())
    size = (args.width, args.height)
    pictures = [picture(k, size, 85) for k in range(args.count)]
    mean_kb = sum(map(len, pictures)) / len(pictures) / 1024
    print(
        f"images shape: count={args.count} rate={args.rate:g}/s size={size[0]}x{size[1]} JPEG "
        f"mean_kb={mean_kb:.0f} workers={args.workers} one_process=yes"
    )
    sandbox = Sandbox()
    await sandbox.start()
    bot = next(u for u in sandbox.seed_info()["users"] if u["username"] == "rcmod.bot")
    with tempfile.TemporaryDirectory() as tmp_name:
        raw = bot_settings(sandbox.url, bot, Path(tmp_name), None, protections="off")
        raw["images"] = {
            "rooms": [{"rooms": ["general", "random"], "policy": "alert"}],
            "workers": args.workers,
        }
        raw["realtime"] = {"room_sub_interval": 0.05}
        app = BotApp(Settings.model_validate(raw), Extras())
        task = asyncio.create_task(app.run())
        try:
            await _until(lambda: app.services is not None and app.ready.is_set(), 30)
            services = app.services
            assert services is not None, "the bot did not start"
            assert app.store is not None
            ledger = app.store.images
            posted: dict[str, float] = {}  # message id -> when it was posted
            latencies: list[float] = []
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()

            async def watch() -> None:
                while True:
                    for mid, at in list(posted.items()):
                        row = ledger.image_check(mid, files[mid])
                        if row is not None and row.state == "done":
                            latencies.append(time.perf_counter() - at)
                            del posted[mid]
                    await asyncio.sleep(0.002)

            files: dict[str, str] = {}
            watcher = asyncio.create_task(watch())
            for k, data in enumerate(pictures):
                due = start + k / args.rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                who, room = MEMBERS[k % len(MEMBERS)], ("general", "random")[k % 2]
                at = time.perf_counter()
                msg = sandbox.upload_as(who, room, data, filename=f"p{k}.jpg", content_type="image/jpeg")
                files[msg["_id"]] = msg["file"]["_id"]
                posted[msg["_id"]] = at
            await _until(lambda: not posted, args.drain_timeout)
            elapsed = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        finally:
            app.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
            await sandbox.stop()
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    ms = [x * 1000 for x in latencies]
    print(
        f"images verdict: decided={len(ms)} of {args.count} lost={len(posted)} "
        f"post_to_verdict_ms p50={percentile(ms, 0.5):.1f} p99={percentile(ms, 0.99):.1f} max={max(ms):.1f} "
        f"cpu_ms_per_image={cpu / max(1, len(ms)) * 1000:.1f} (bot and sandbox) wall_s={elapsed:.2f}"
    )


async def _until(predicate: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="pictures posted")
    parser.add_argument("--rate", type=float, default=5.0, help="pictures posted per second")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--workers", type=int, default=2, help="images.workers")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
