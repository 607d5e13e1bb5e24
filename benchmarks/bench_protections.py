"""Per-message cost of the automatic protections, next to the matcher's scan of the same messages.

Run: .venv/bin/python -m benchmarks.bench_protections [--terms 100000] [--repeat 5] [--blocked 1000]
Needs ../shared/data/matcher-dev (the chat corpus and the keyword list). The corpus lines get
realistic authors and rooms (Zipf-distributed activity over 3,000 users and 40 rooms, an hour of
traffic, 5% of authors on probation); every protection is in mode ``act`` and the link block list
has ``--blocked`` domains. Building the Post values (the shell's work) is not timed; each pass
starts from a fresh engine, so its windows fill as they would in an hour of chat.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import machine_line
from bot.config import (
    FloodSettings,
    LinkSettings,
    MentionSettings,
    Mode,
    ProtectionSettings,
    RaidSettings,
    RepeatSettings,
)
from bot.moderation import Matcher, compile, parse_wordlist
from bot.moderation.protections import Join, Post, Protections, find_domains

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "matcher-dev"
_MENTION = re.compile(r"@([\w.-]+)")


def load(data: Path, terms: int) -> tuple[list[str], list[str]]:
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    keywords = [k for k in (data / "keywords.txt").read_text(encoding="utf-8").split("\n") if k.strip()]
    return corpus, keywords[:terms]


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


def make_posts(corpus: list[str], seed: int = 11) -> list[Post]:
    """The corpus as an hour of chat: who posts where and when, as the shell would extract it."""
    rng = random.Random(seed)
    n_users, n_rooms = 3_000, 40
    users = rng.choices(range(n_users), weights=zipf_weights(n_users), k=len(corpus))
    rooms = rng.choices(range(n_rooms), weights=zipf_weights(n_rooms, 0.9), k=len(corpus))
    probation = {u for u in range(n_users) if rng.random() < 0.05}
    moderators = {u for u in range(n_users) if rng.random() < 0.02}
    rate = len(corpus) / 3600.0
    ts = 1_700_000_000.0
    posts = []
    for i, text in enumerate(corpus):
        ts += rng.expovariate(rate)
        u, r = users[i], rooms[i]
        names = [m for m in dict.fromkeys(_MENTION.findall(text)) if m not in ("all", "here")]
        everyone = "@all" in text or "@here" in text
        posts.append(
            Post(
                mid=f"m{i}",
                rid=f"rid{r}",
                room_name=f"room-{r}",
                user_id=f"uid{u}",
                username=f"user{u}",
                text=text,
                ts=ts,
                mentions=tuple(names),
                everyone=everyone,
                probation=u in probation,
                may_mention_everyone=everyone and u in moderators,
            )
        )
    return posts


def block_list(corpus: list[str], size: int) -> list[str]:
    """``size`` domains: a few that the corpus links to (so some messages are held), the rest made up."""
    seen = Counter(d for text in corpus for d in find_domains(text))
    real = [d for d, _ in seen.most_common()][1:6]  # not the most common: a realistic few percent
    tlds = ("com", "net", "xyz", "top", "ru", "io", "click", "info")
    made_up = [f"spam-{i}-offers.{tlds[i % len(tlds)]}" for i in range(size - len(real))]
    return real + made_up


def settings_for(blocked: list[str], only: str | None = None) -> ProtectionSettings:
    def mode(name: str) -> Mode:
        return "act" if only is None or only == name else "off"

    return ProtectionSettings(
        flood=FloodSettings(mode=mode("flood")),
        repeat=RepeatSettings(mode=mode("repeat")),
        mentions=MentionSettings(mode=mode("mentions")),
        links=LinkSettings(mode=mode("links"), block_domains=blocked),
        raid=RaidSettings(mode=mode("raid"), lock=True),
    )


def best_rate(prepare: Callable[[], Callable[[], None]], n: int, repeat: int) -> float:
    """Messages per second of the best of ``repeat`` runs; ``prepare`` (not timed) builds each run."""
    best = float("inf")
    for _ in range(repeat):
        run = prepare()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--blocked", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    corpus, terms = load(args.data, args.terms)
    t0 = time.perf_counter()
    matcher: Matcher = compile([parse_wordlist("keywords", "\n".join(terms))])
    build = time.perf_counter() - t0
    posts = make_posts(corpus)
    texts = [p.text for p in posts]
    blocked = block_list(corpus, args.blocked)
    full = settings_for(blocked)
    n = len(posts)

    def protections(s: ProtectionSettings = full) -> Callable[[], None]:
        on_post = Protections(s).on_post

        def run() -> None:
            for p in posts:
                on_post(p)

        return run

    def matcher_alone() -> Callable[[], None]:
        scan = matcher.scan

        def run() -> None:
            for t in texts:
                scan(t)

        return run

    def both() -> Callable[[], None]:
        scan, on_post = matcher.scan, Protections(full).on_post

        def run() -> None:
            for p in posts:
                scan(p.text)
                on_post(p)

        return run

    matcher.scan("warm up")
    protections()()
    # Interleave the contenders so that machine noise hits all alike.
    prot_rate = match_rate = both_rate = 0.0
    for _ in range(2):
        prot_rate = max(prot_rate, best_rate(protections, n, args.repeat))
        match_rate = max(match_rate, best_rate(matcher_alone, n, args.repeat))
        both_rate = max(both_rate, best_rate(both, n, args.repeat))
    parts = {
        name: best_rate(functools.partial(protections, settings_for(blocked, name)), n, args.repeat)
        for name in ("flood", "repeat", "mentions", "links")
    }

    joins = [Join(rid=p.rid, room_name=p.room_name, user_id=p.user_id, username="", ts=p.ts) for p in posts]

    def raid() -> Callable[[], None]:
        on_join = Protections(full).on_join

        def run() -> None:
            for j in joins:
                on_join(j)

        return run

    join_rate = best_rate(raid, n, args.repeat)

    engine = Protections(full)
    fired = Counter(t.protection for p in posts for t in engine.on_post(p))

    us = 1e6
    prot_us, match_us, both_us = us / prot_rate, us / match_rate, us / both_rate
    print(machine_line())
    print(
        f"parameters: {n:,} corpus messages (avg {sum(map(len, texts)) / n:.0f} chars), 3,000 authors, "
        f"40 rooms, one hour; every protection in mode act; {len(blocked):,} blocked domains; "
        f"matcher of {len(terms):,} terms (built in {build:.2f} s); best of {args.repeat}, one core"
    )
    print(f"  protections alone   {prot_rate:>10,.0f} msg/s  ({prot_us:.2f} us per message)")
    print(f"  matcher alone       {match_rate:>10,.0f} msg/s  ({match_us:.2f} us per message)")
    print(f"  matcher+protections {both_rate:>10,.0f} msg/s  ({both_us:.2f} us per message)")
    print(
        f"protections add {100 * prot_us / match_us:.0f}% to the matcher's per-message cost "
        f"(measured together: +{100 * (both_us - match_us) / match_us:.0f}%)"
    )
    print("  one protection at a time (the others off):")
    for name, rate in parts.items():
        print(f"    {name:<9} {rate:>10,.0f} msg/s  ({us / rate:.2f} us per message)")
    print(f"  raid (on_join, {n:,} joins) {join_rate:>10,.0f} joins/s  ({us / join_rate:.2f} us per join)")
    print(
        "triggers over the hour: "
        + (", ".join(f"{k} {v}" for k, v in sorted(fired.items())) or "none")
        + f"; keys held at the end: {engine.tracked()}"
    )


if __name__ == "__main__":
    main()
