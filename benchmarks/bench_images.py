"""Benchmark of the image checker: pictures per second on one core, per-stage latency, and
the hash-list match.

    .venv/bin/python benchmarks/bench_images.py [--rounds N] [--list-size N]

Pictures are generated (gradients, noise, coloured shapes: benign by construction) at three
sizes and encoded as JPEG, plus the mid size as PNG. Each stage is timed on its own, one
picture at a time in this thread, with onnxruntime held to one thread: decode (sniff, pixel
cap, first frame, EXIF, RGB, down to 512 px; JPEGs decode at 1/2..1/8 scale), sha256 of the
bytes, pdq of the decoded picture, score (open_nsfw, its own resize and JPEG round trip
included). "whole" is ImageChecker.check_now with scoring on and one PDQ list of --list-size
hashes: what one worker does per upload, given as pictures per second by the wall clock and by
the thread's CPU time (onnxruntime with one intra-op thread computes in the calling thread), the
second steadier on a shared machine. Every figure is measured in this run on this machine;
other work on the machine shows up in p99.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_line, pct  # noqa: E402
from bot.vision import ImageChecker, NsfwScorer, decode_image, pdq, sha256  # noqa: E402
from bot.vision.hashlists import HashList, parse_hash_list  # noqa: E402
from tests.vision.images import encode, gradient, noise, shapes  # noqa: E402

SIZES = [(640, 480, "JPEG"), (1920, 1080, "JPEG"), (4000, 3000, "JPEG"), (1920, 1080, "PNG")]
CAP = 64_000_000


def pictures(width: int, height: int, fmt: str, count: int) -> list[bytes]:
    makers: list[Callable[[int], bytes]] = [
        lambda s: encode(gradient(width, height), fmt, **_options(fmt)),
        lambda s: encode(noise(width, height, seed=s), fmt, **_options(fmt)),
        lambda s: encode(shapes(width, height, seed=s), fmt, **_options(fmt)),
    ]
    return [makers[i % len(makers)](i) for i in range(count)]


def _options(fmt: str) -> dict[str, object]:
    return {"quality": 85} if fmt == "JPEG" else {}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {pct(ordered, 0.5):7.2f} ms  p99 {pct(ordered, 0.99):7.2f} ms"


def bench_sizes(scorer: NsfwScorer, rounds: int, list_size: int) -> None:
    listed = random_pdq_list(list_size)
    checker = ImageChecker(max_bytes=CAP, scorer=scorer, hash_lists=[listed])
    print("\nper stage, one picture at a time on one core (3 kinds: gradient, noise, shapes)")
    try:
        for width, height, fmt in SIZES:
            count = 6 if width * height > 5_000_000 else 12
            batch = pictures(width, height, fmt, count)
            mean_kb = statistics.mean(len(b) for b in batch) / 1024
            stages: dict[str, list[float]] = {k: [] for k in ("decode", "sha256", "pdq", "score", "whole")}
            cpu: list[float] = []
            for _ in range(rounds):
                for data in batch:
                    stages["sha256"].append(timed(lambda d=data: sha256(d)))
                    t0 = time.perf_counter()
                    decoded = decode_image(data, max_bytes=CAP)
                    stages["decode"].append((time.perf_counter() - t0) * 1000)
                    stages["pdq"].append(timed(lambda im=decoded.image: pdq(im)))
                    stages["score"].append(timed(lambda im=decoded.image: scorer.score(im)))
                    cpu0 = time.thread_time()
                    stages["whole"].append(timed(lambda d=data: checker.check_now(d, True)))
                    cpu.append(time.thread_time() - cpu0)
            whole = stages["whole"]
            print(
                f"{width}x{height} {fmt} ({mean_kb:,.0f} KiB mean, {len(whole)} checks): "
                f"{1000 / statistics.mean(whole):6.1f} pictures/s per core by the clock, "
                f"{1 / statistics.mean(cpu):6.1f} by this thread's CPU time"
            )
            for stage, values in stages.items():
                print(f"    {stage:7} {ms(values)}")
    finally:
        checker.close()


def random_pdq_list(size: int, seed: int = 5) -> HashList:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(size)]
    return parse_hash_list("\n".join(f"{r},100" for r in rows), name="bench", kind="pdq")


def bench_list(size: int) -> None:
    rng = np.random.default_rng(9)
    rows = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(size)]
    text = "\n".join(f"{r},100" for r in rows)
    t0 = time.perf_counter()
    listed = parse_hash_list(text, name="bench", kind="pdq")
    parse_ms = (time.perf_counter() - t0) * 1000
    queries = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(300)]
    # Half the queries are a listed hash with 10 bits flipped: a match, found as the nearest.
    near = [f"{int(rows[i * 97], 16) ^ 0x3FF:064x}" for i in range(150)]
    times = []
    found = 0
    for q in queries[:150] + near:
        t0 = time.perf_counter()
        hit = listed.match("", q)
        times.append((time.perf_counter() - t0) * 1000)
        found += hit is not None
    print(f"\nPDQ list of {listed.size:,} hashes: parse {parse_ms:,.0f} ms; match {ms(times)}")
    print(f"    {found} of {len(times)} queries matched (150 are a listed hash 10 bits away)")


def _rss_mib() -> float:
    """This process's resident set now (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--list-size", type=int, default=100_000)
    args = parser.parse_args()
    print(machine_line())
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    scorer = NsfwScorer(threads=1)
    print(
        f"model load (checksum, session, warm-up): {(time.perf_counter() - t0) * 1000:.0f} ms; "
        f"resident memory {rss0:.0f} -> {_rss_mib():.0f} MiB"
    )
    bench_list(args.list_size)
    bench_sizes(scorer, args.rounds, args.list_size)


if __name__ == "__main__":
    main()
