"""Memory, build time and scan throughput of the matcher at 100,000 terms, optionally side by side
with another checkout of rcmod (the code before a change).

    .venv/bin/python benchmarks/bench_matcher_memory.py [--against DIR] [--size N] [--rounds N]
        [--builds N] [--repeats]

Uses ../shared/data/matcher-dev. For each source tree (this one, and ``--against DIR`` when
given) it runs, each in a fresh child process with this interpreter and ``DIR`` first on
``sys.path``:

- memory: RSS added by ``compile([parse_wordlist(...)])`` at ``--size`` terms (normalize's
  process-wide tables are warmed first and not counted), and the build time; ``--builds``
  times per tree, in turn: the highest RSS and the fastest build count;
- live heap: the same build under tracemalloc (Python objects and pyahocorasick's nodes, which
  it allocates through Python's allocator), without the allocator's free but unreturned memory;
- throughput: one long-lived child per tree builds the matcher, then the parent asks the
  children for one pass over the corpus each in turn (which goes first alternates),
  ``--rounds`` times, so machine noise hits both alike; the best pass counts. The child also
  hashes every match (term, list, offsets, severity, categories, line, kind, action) on the
  corpus and the labelled set at this size, and on the labelled set at 100, 1,000 and 10,000
  terms: equal digests mean equal results.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from benchmarks.common import MATCHER_DATA, machine_line, read_jsonl, read_keywords  # noqa: E402

EVAL_SIZES = (100, 1_000, 10_000)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _options(repeats: bool) -> str:
    return "[normalize]\nrepeats = true\n" if repeats else ""


def _import_bot(src: Path) -> Any:
    """``bot.moderation`` from the tree ``src`` (not the one the venv installed)."""
    sys.path.insert(0, str(src))
    from bot import moderation

    assert Path(moderation.__file__).resolve().is_relative_to(src.resolve()), moderation.__file__
    moderation.normalize.warm_up()
    return moderation


def _child_memory(src: Path, data: Path, size: int, repeats: bool, traced: bool) -> None:
    moderation = _import_bot(src)
    text = "\n".join(read_keywords(data)[:size])
    options = _options(repeats)
    if traced:
        import tracemalloc

        tracemalloc.start()
    gc.collect()
    before = _rss_bytes()
    t0 = time.perf_counter()
    matcher = moderation.compile([moderation.parse_wordlist("keywords", text, options)])
    seconds = time.perf_counter() - t0
    gc.collect()
    result = {"mib": (_rss_bytes() - before) / 2**20, "seconds": seconds, "terms": matcher.term_count}
    if traced:
        result["traced_mib"] = tracemalloc.get_traced_memory()[0] / 2**20
    matcher.scan("warm")
    print(json.dumps(result), flush=True)


def _digest(matcher: Any, texts: list[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        for m in matcher.scan(text):
            row = (m.term, m.list, m.start, m.end, m.severity, m.categories, m.line, m.kind, m.action)
            h.update(repr(row).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def _child_scan(src: Path, data: Path, size: int, repeats: bool) -> None:
    """Build, report the digests, then run one pass over the corpus per line read on stdin."""
    moderation = _import_bot(src)
    keywords = read_keywords(data)
    corpus: list[str] = read_jsonl(data / "corpus.jsonl")
    evaltexts = [str(item["text"]) for item in read_jsonl(data / "eval.jsonl")]
    options = _options(repeats)
    digests = {}
    for n in EVAL_SIZES:
        small = moderation.compile([moderation.parse_wordlist("keywords", "\n".join(keywords[:n]), options)])
        digests[f"eval@{n}"] = _digest(small, evaltexts)
        del small
    gc.collect()
    before = _rss_bytes()
    matcher = moderation.compile([moderation.parse_wordlist("keywords", "\n".join(keywords[:size]), options)])
    built = _rss_bytes()
    digests[f"eval@{size}"] = _digest(matcher, evaltexts)
    digests[f"corpus@{size}"] = _digest(matcher, corpus)
    gc.collect()
    # RSS after a first look at every message: caches filled on the slow path count too.
    scanned = _rss_bytes()
    print(
        json.dumps(
            {
                "digests": digests,
                "rss_built_mib": (built - before) / 2**20,
                "rss_scanned_mib": (scanned - before) / 2**20,
            }
        ),
        flush=True,
    )
    scan = matcher.scan
    for _ in sys.stdin:
        t0 = time.perf_counter()
        for m in corpus:
            scan(m)
        print(time.perf_counter() - t0, flush=True)


def _run_child(mode: str, src: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, mode, str(src), "--data", str(args.data), "--size", str(args.size)]
        + (["--repeats"] if args.repeats else []),
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=MATCHER_DATA)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=11, help="passes over the corpus per tree")
    parser.add_argument("--builds", type=int, default=3, help="fresh builds per tree for memory and time")
    parser.add_argument("--against", type=Path, default=None, help="another rcmod checkout to compare")
    parser.add_argument("--repeats", action="store_true", help="lists read stretched letters")
    parser.add_argument("--child-memory", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-traced", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-scan", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory is not None:
        _child_memory(args.child_memory, args.data, args.size, args.repeats, traced=False)
        return 0
    if args.child_traced is not None:
        _child_memory(args.child_traced, args.data, args.size, args.repeats, traced=True)
        return 0
    if args.child_scan is not None:
        _child_scan(args.child_scan, args.data, args.size, args.repeats)
        return 0
    if not (args.data / "keywords.txt").is_file():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2

    trees = {"this tree": ROOT}
    if args.against is not None:
        trees = {"against": args.against.resolve(), **trees}
    corpus: list[str] = read_jsonl(args.data / "corpus.jsonl")
    corpus_mb = sum(len(m.encode("utf-8")) for m in corpus) / 1e6
    print("rcmod matcher memory benchmark")
    print(f"  {machine_line()}")
    print(f"  {args.size} terms{' (repeats = true)' if args.repeats else ''}; corpus {len(corpus)} messages")
    for name, src in trees.items():
        print(f"  {name}: {src}")
    print()

    memory: dict[str, dict[str, float]] = {name: {"mib": 0.0, "seconds": float("inf")} for name in trees}
    for _ in range(args.builds):
        for name, src in trees.items():
            built = _run_child("--child-memory", src, args)
            memory[name]["mib"] = max(memory[name]["mib"], built["mib"])
            memory[name]["seconds"] = min(memory[name]["seconds"], built["seconds"])
    traced = {name: _run_child("--child-traced", src, args) for name, src in trees.items()}

    children = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--child-scan", str(src), "--data", str(args.data)]
            + ["--size", str(args.size)]
            + (["--repeats"] if args.repeats else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, src in trees.items()
    }
    info: dict[str, dict[str, Any]] = {}
    for name, child in children.items():
        assert child.stdout is not None
        info[name] = json.loads(child.stdout.readline())
    best = dict.fromkeys(trees, float("inf"))
    for r in range(args.rounds):
        for name, child in sorted(children.items(), reverse=r % 2 == 1):
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            best[name] = min(best[name], float(child.stdout.readline()))
    for child in children.values():
        assert child.stdin is not None
        child.stdin.close()
        child.wait()

    print(
        f"{'tree':<10} {'RSS MiB':>8} {'live MiB':>9} {'build s':>8} {'msgs/s':>9} {'MB/s':>6}"
        "  RSS after a scan"
    )
    for name in trees:
        rate = len(corpus) / best[name]
        print(
            f"{name:<10} {memory[name]['mib']:>8.1f} {traced[name]['traced_mib']:>9.1f} "
            f"{memory[name]['seconds']:>8.2f} {rate:>9,.0f} {corpus_mb / best[name]:>6.2f}  "
            f"{info[name]['rss_scanned_mib']:.1f} MiB"
        )
    print()
    print("result digests (sha256 of every match)")
    names = list(trees)
    for key in info[names[0]]["digests"]:
        cells = [info[name]["digests"][key] for name in names]
        same = "" if len(set(cells)) == 1 else "  DIFFERENT"
        print(f"  {key:<14} " + "  ".join(cells) + same)
    if len(names) == 2:
        ratio = best[names[0]] / best[names[1]]
        print()
        print(f"throughput, this tree / against: {ratio:.3f}x (best of {args.rounds} interleaved passes)")
        print(f"memory, this tree / against: {memory[names[1]]['mib'] / memory[names[0]]['mib']:.2f}x")
        return 0 if info[names[0]]["digests"] == info[names[1]]["digests"] else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
