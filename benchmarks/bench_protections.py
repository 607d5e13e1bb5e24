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
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import MATCHER_DATA, best_rate, machine_line, read_jsonl, read_keywords
from bot.config import Mode, ProtectionSettings
from bot.moderation import Matcher, compile, parse_wordlist
from bot.moderation.protections import Join, Post, Protections, find_domains

_MENTION = re.compile(r"@([\w.-]+)")


def load(data: Path, terms: int) -> tuple[list[str], list[str]]:
    return read_jsonl(data / "corpus.jsonl"), read_keywords(data)[:terms]


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

    return ProtectionSettings.model_validate(
        {
            "flood": {"mode": mode("flood")},
            "repeat": {"mode": mode("repeat")},
            "mentions": {"mode": mode("mentions")},
            "links": {"mode": mode("links"), "block_domains": blocked},
            "raid": {"mode": mode("raid"), "lock": True},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=MATCHER_DATA)
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--blocked", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    corpus, terms = load(args.data, args.terms)
    t0 = time.perf_counter()
    matcher: Matcher = compile([parse_wordlist("keywords", "\n".join(terms))])
    build = time.perf_counter() - t0
    posts = make_posts(corpus)
    blocked = block_list(corpus, args.blocked)
    rates = measure(posts, matcher, blocked, args.repeat)
    engine = Protections(settings_for(blocked))
    fired = Counter(t.protection for p in posts for t in engine.on_post(p))

    n, texts = len(posts), [p.text for p in posts]
    print(machine_line())
    print(
        f"parameters: {n:,} corpus messages (avg {sum(map(len, texts)) / n:.0f} chars), 3,000 authors, "
        f"40 rooms, one hour; every protection in mode act; {len(blocked):,} blocked domains; "
        f"matcher of {len(terms):,} terms (built in {build:.2f} s); best of {args.repeat}, one core"
    )
    print_rates(rates, n)
    print(
        "triggers over the hour: "
        + (", ".join(f"{k} {v}" for k, v in sorted(fired.items())) or "none")
        + f"; keys held at the end: {engine.tracked()}"
    )


def measure(posts: list[Post], matcher: Matcher, blocked: list[str], repeat: int) -> dict[str, float]:
    """Messages (joins for "raid") per second: "protections", "matcher", "both", each protection
    alone by its name, and "raid"."""
    texts = [p.text for p in posts]
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

    joins = [Join(rid=p.rid, room_name=p.room_name, user_id=p.user_id, username="", ts=p.ts) for p in posts]

    def raid() -> Callable[[], None]:
        on_join = Protections(full).on_join

        def run() -> None:
            for j in joins:
                on_join(j)

        return run

    matcher.scan("warm up")
    protections()()
    # Interleave the contenders so that machine noise hits all alike.
    rates = {"protections": 0.0, "matcher": 0.0, "both": 0.0}
    for _ in range(2):
        for name, prepare in (("protections", protections), ("matcher", matcher_alone), ("both", both)):
            rates[name] = max(rates[name], best_rate(prepare, n, repeat))
    for name in ("flood", "repeat", "mentions", "links"):
        rates[name] = best_rate(functools.partial(protections, settings_for(blocked, name)), n, repeat)
    rates["raid"] = best_rate(raid, n, repeat)
    return rates


def print_rates(rates: dict[str, float], n: int) -> None:
    us = 1e6
    prot_us, match_us, both_us = (us / rates[k] for k in ("protections", "matcher", "both"))
    print(f"  protections alone   {rates['protections']:>10,.0f} msg/s  ({prot_us:.2f} us per message)")
    print(f"  matcher alone       {rates['matcher']:>10,.0f} msg/s  ({match_us:.2f} us per message)")
    print(f"  matcher+protections {rates['both']:>10,.0f} msg/s  ({both_us:.2f} us per message)")
    print(
        f"protections add {100 * prot_us / match_us:.0f}% to the matcher's per-message cost "
        f"(measured together: +{100 * (both_us - match_us) / match_us:.0f}%)"
    )
    print("  one protection at a time (the others off):")
    for name in ("flood", "repeat", "mentions", "links"):
        rate = rates[name]
        print(f"    {name:<9} {rate:>10,.0f} msg/s  ({us / rate:.2f} us per message)")
    join_rate = rates["raid"]
    print(f"  raid (on_join, {n:,} joins) {join_rate:>10,.0f} joins/s  ({us / join_rate:.2f} us per join)")


if __name__ == "__main__":
    main()
