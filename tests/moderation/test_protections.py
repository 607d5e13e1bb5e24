"""The automatic protections' decision engine: thresholds, bursts, evasion, links, memory bounds."""

from __future__ import annotations

import gc
import itertools
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from bot.config import (
    FloodSettings,
    LinkSettings,
    MentionSettings,
    Mode,
    ProtectionSettings,
    RaidSettings,
    RepeatSettings,
)
from bot.moderation.normalize import coarse
from bot.moderation.protections import Join, Post, Protections, Trigger, find_domains, repeat_fold

_ids = itertools.count()

OFF: Mode = "off"


def settings(**parts: Any) -> ProtectionSettings:
    """Every protection off except the ones given (so one test sees one protection)."""
    base: dict[str, Any] = {
        "flood": FloodSettings(mode=OFF),
        "repeat": RepeatSettings(mode=OFF),
        "mentions": MentionSettings(mode=OFF),
        "links": LinkSettings(mode=OFF),
        "raid": RaidSettings(mode=OFF),
    }
    base.update(parts)
    return ProtectionSettings(**base)


def post(
    text: str = "hello there",
    *,
    ts: float = 0.0,
    user: str = "u1",
    rid: str = "r1",
    room: str | None = "general",
    mentions: tuple[str, ...] = (),
    everyone: bool = False,
    probation: bool = False,
    may_mention_everyone: bool = False,
    urls: tuple[str, ...] = (),
    mid: str | None = None,
) -> Post:
    return Post(
        mid=mid or f"m{next(_ids)}",
        rid=rid,
        room_name=room,
        user_id=user,
        username=f"name-{user}",
        text=text,
        ts=ts,
        mentions=mentions,
        everyone=everyone,
        probation=probation,
        may_mention_everyone=may_mention_everyone,
        urls=urls,
    )


def join(user: str, *, ts: float = 0.0, rid: str = "r1", room: str | None = "general") -> Join:
    return Join(rid=rid, room_name=room, user_id=user, username=f"name-{user}", ts=ts)


def feed(p: Protections, posts: list[Post]) -> list[list[Trigger]]:
    return [p.on_post(x) for x in posts]


# --- flood ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_flood_fires_above_the_limit_not_at_it(limit: int) -> None:
    p = Protections(settings(flood=FloodSettings(mode="act", messages=limit, seconds=60)))
    posts = [post(f"message {i}", ts=i) for i in range(limit + 1)]
    results = feed(p, posts)
    assert all(r == [] for r in results[:limit])  # count == limit: nothing
    (t,) = results[limit]
    assert (t.protection, t.mode, t.action) == ("flood", "act", "mute")
    assert (t.count, t.limit) == (limit + 1, limit)
    assert t.mids == tuple(x.mid for x in posts)
    assert (t.user_id, t.username, t.rid, t.room_name, t.rooms) == ("u1", "name-u1", "r1", "general", ("r1",))
    assert t.detail == f"{limit + 1} messages in 60 s (limit {limit})"


def test_flood_window_is_half_open() -> None:
    p = Protections(settings(flood=FloodSettings(messages=2, seconds=10)))
    # t=0 has left the window at t=10, so 0, 5, 10 is two messages in the window.
    assert feed(p, [post(ts=0), post(ts=5), post(ts=10)]) == [[], [], []]
    (t,) = p.on_post(post(ts=10.5))  # 5, 10, 10.5
    assert t.count == 3 and t.mode == "alert"


def test_flood_counts_per_user_and_per_room() -> None:
    p = Protections(settings(flood=FloodSettings(messages=3, seconds=60)))
    posts = [post(ts=i, user=u, rid=r) for i in range(3) for u in ("a", "b") for r in ("r1", "r2")]
    assert all(r == [] for r in feed(p, posts))  # three each: at the limit
    assert [t.user_id for t in p.on_post(post(ts=4, user="b", rid="r2"))] == ["b"]


def test_flood_probation_threshold() -> None:
    s = settings(flood=FloodSettings(messages=10, probation_messages=3, seconds=60))
    p = Protections(s)
    results = feed(p, [post(ts=i, probation=True) for i in range(4)])
    assert results[:3] == [[], [], []]
    (t,) = results[3]
    assert (t.count, t.limit) == (4, 3) and "probation" in t.detail
    # Not on probation: four messages are fine.
    q = Protections(s)
    assert all(r == [] for r in feed(q, [post(ts=i) for i in range(4)]))
    # probation_days = 0: nobody is on probation, whatever the shell says.
    s0 = s.model_copy(update={"probation_days": 0.0})
    assert all(r == [] for r in feed(Protections(s0), [post(ts=i, probation=True) for i in range(4)]))


def test_flood_fires_once_per_burst_and_rearms_when_the_window_empties() -> None:
    p = Protections(settings(flood=FloodSettings(messages=3, seconds=10)))
    burst = [post(ts=i * 0.5) for i in range(30)]  # 30 messages in 15 s, never 10 s apart
    fired = [r for r in feed(p, burst) if r]
    assert len(fired) == 1 and fired[0][0].count == 4
    # Quiet for exactly `seconds`: the window has emptied, counting starts again.
    last = burst[-1].ts
    again = feed(p, [post(ts=last + 10 + i) for i in range(4)])
    assert again[:3] == [[], [], []] and len(again[3]) == 1


# --- repeated content ----------------------------------------------------------------------------

SPAM = "Join my crypto channel for free signals"


@pytest.mark.parametrize("copies", [2, 4, 6])
def test_repeat_copies_in_one_room(copies: int) -> None:
    p = Protections(settings(repeat=RepeatSettings(mode="act", copies=copies, rooms=50, seconds=300)))
    posts = [post(SPAM, ts=i) for i in range(copies)]
    results = feed(p, posts)
    assert all(r == [] for r in results[:-1])  # copies - 1 (the limit): nothing
    (t,) = results[-1]
    assert (t.protection, t.mode, t.action) == ("repeat", "act", "delete")
    assert (t.count, t.limit) == (copies, copies - 1)
    assert t.mids == tuple(x.mid for x in posts)
    assert t.detail == f"same text {copies} times in one room within 300 s (limit {copies - 1})"


def test_repeat_across_rooms_reports_every_copy() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=3, copies=10, seconds=300)))
    posts = [post(SPAM, ts=0, rid="r1"), post(SPAM, ts=1, rid="r1"), post(SPAM, ts=2, rid="r2")]
    assert feed(p, posts) == [[], [], []]  # two rooms: the limit
    third = post(SPAM, ts=3, rid="r3", room="random")
    (t,) = p.on_post(third)
    assert t.rooms == ("r1", "r2", "r3")
    assert t.mids == (*(x.mid for x in posts), third.mid)
    assert (t.rid, t.room_name, t.count, t.limit) == ("r3", "random", 3, 2)


@pytest.mark.parametrize(
    "variant",
    [
        "JOIN MY CRYPTO CHANNEL FOR FREE SIGNALS",
        "join  my   crypto channel\tfor free signals",
        "j\u200boin my cr\u200dypto channel for fr\u2060ee signals",
        "Jоin my сrурtо channel for free signals",  # Cyrillic о, с, р, у
        "J0in my crypt0 channel f0r fr33 signals",
        "Join my crypto channel for free signals!!! 🚀",
        "Ｊｏｉｎ ｍｙ crypto channel for free signals",
    ],
)
def test_repeat_sees_through_evasion(variant: str) -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=10, seconds=300)))
    assert p.on_post(post(SPAM, ts=0, rid="r1")) == []
    (t,) = p.on_post(post(variant, ts=1, rid="r2"))
    assert t.count == 2


def test_repeat_different_texts_and_users_do_not_combine() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=300)))
    assert p.on_post(post(SPAM, user="a", rid="r1")) == []
    assert p.on_post(post(SPAM, user="b", rid="r2")) == []
    assert p.on_post(post(SPAM + " today", user="a", rid="r2")) == []
    assert len(p.on_post(post(SPAM, user="b", rid="r1"))) == 1


def test_repeat_keeps_numbers_apart_that_the_fold_reads_as_letters() -> None:
    """The matcher's fold reads 16 and 19 as "ig" (leetspeak); as texts they differ."""
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=300, min_length=12)))
    assert p.on_post(post("your order number is 16", rid="r1")) == []
    assert p.on_post(post("your order number is 19", rid="r1")) == []
    assert len(p.on_post(post("Your order number is 16!", rid="r1"))) == 1


def test_repeat_ignores_short_texts() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=300, min_length=12)))
    for i in range(5):
        for rid in ("r1", "r2", "r3"):
            assert p.on_post(post("ok thanks!!", ts=i, rid=rid)) == []  # 9 characters normalised
            assert p.on_post(post("o k   t h x", ts=i, rid=rid)) == []  # 9 once spaces collapse
    assert p.tracked()["repeat"] == 0  # not even counted
    # Exactly min_length once normalised ("abcdef ghijk" is 12 characters) counts.
    assert p.on_post(post("Abcdef,  ghijk!!", rid="r1")) == []
    assert len(p.on_post(post("abcdef ghijk", rid="r2"))) == 1


def test_repeat_min_length_counts_normalised_characters_of_non_latin_text() -> None:
    # Han characters are words of their own, so the normalised text is longer than the raw one.
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=5, seconds=300, min_length=11)))
    text = "加入我们的电报群"  # 8 characters, 15 once spaced
    assert p.on_post(post(text, rid="r1")) == []
    assert len(p.on_post(post(text, rid="r2"))) == 1


def test_repeat_reports_each_later_copy_then_rearms() -> None:
    p = Protections(settings(repeat=RepeatSettings(mode="act", rooms=2, copies=10, seconds=100)))
    p.on_post(post(SPAM, ts=0, rid="r1"))
    (first,) = p.on_post(post(SPAM, ts=1, rid="r2"))
    assert len(first.mids) == 2
    later = [post(SPAM, ts=10 + 50 * i, rid=f"r{i % 3}") for i in range(4)]  # 50 s apart: one burst
    for i, x in enumerate(later):
        (t,) = p.on_post(x)
        assert (t.mids, t.rooms, t.action) == ((x.mid,), (x.rid,), "delete")
        assert t.count == 3 + i
        assert "another copy" in t.detail
    # No copy for `seconds`: the burst is over; one copy is then no longer repeated content.
    assert p.on_post(post(SPAM, ts=later[-1].ts + 100, rid="r1")) == []
    assert len(p.on_post(post(SPAM, ts=later[-1].ts + 101, rid="r2"))) == 1


def test_repeat_copies_outside_the_window_do_not_count() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=60)))
    assert feed(p, [post(SPAM, ts=t, rid=f"r{t}") for t in (0, 60, 120, 180)]) == [[], [], [], []]


def test_repeat_counts_a_message_once() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=60)))
    x = post(SPAM, mid="same")
    assert p.on_post(x) == [] and p.on_post(x) == []  # a re-emit is not a second copy
    assert len(p.on_post(post(SPAM, ts=1))) == 1


def test_repeat_re_emit_then_a_late_copy() -> None:
    p = Protections(settings(repeat=RepeatSettings(rooms=2, copies=2, seconds=60)))
    first = post(SPAM, ts=0, mid="a")
    assert p.on_post(first) == [] and p.on_post(post(SPAM, ts=50, mid="a")) == []
    assert p.on_post(post(SPAM, ts=100, mid="b")) == []  # "a" has left the window
    (t,) = p.on_post(post(SPAM, ts=101, mid="c"))
    assert t.mids == ("b", "c")


def test_repeat_keeps_hashes_not_texts() -> None:
    p = Protections(
        settings(
            flood=FloodSettings(),
            repeat=RepeatSettings(rooms=5, copies=5),
            links=LinkSettings(mode="alert", block_domains=["evil.com"]),
        )
    )
    marker = "Xylophonic zebra quartz message"
    posts = [post(marker, ts=i, rid=f"r{i}") for i in range(3)]
    feed(p, posts)
    folded = "xylophonic zebra quartz message"
    seen: set[int] = set()
    stack: list[object] = [p]
    strings: list[str] = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            strings.append(obj)
            continue
        stack.extend(gc.get_referents(obj))
    assert {x.mid for x in posts} <= set(strings)  # the walk reached the windows
    assert not any("zebra" in s.lower() for s in strings), "message text kept in memory"
    assert folded not in strings


# --- mentions ------------------------------------------------------------------------------------


def users(n: int) -> tuple[str, ...]:
    return tuple(f"user{i}" for i in range(n))


@pytest.mark.parametrize(("probation", "limit"), [(False, 10), (True, 5)])
def test_mentions_limit(probation: bool, limit: int) -> None:
    p = Protections(settings(mentions=MentionSettings(mode="act", max_mentions=10, probation_mentions=5)))
    assert p.on_post(post(mentions=users(limit), probation=probation)) == []
    (t,) = p.on_post(post(mentions=users(limit + 1), probation=probation))
    assert (t.protection, t.action, t.count, t.limit) == ("mentions", "delete", limit + 1, limit)
    assert t.detail.startswith(f"{limit + 1} users mentioned (limit {limit}")


def test_mentions_count_distinct_users_not_all_or_here() -> None:
    p = Protections(settings(mentions=MentionSettings(max_mentions=3)))
    assert p.on_post(post(mentions=("a", "b", "c", "a", "b", "all", "here"))) == []


@pytest.mark.parametrize(("allowed", "fires"), [(True, False), (False, True)])
def test_mentions_everyone(allowed: bool, fires: bool) -> None:
    p = Protections(settings(mentions=MentionSettings(mode="act")))
    got = p.on_post(post(everyone=True, may_mention_everyone=allowed))
    assert len(got) == fires
    if fires:
        assert (got[0].count, got[0].limit, got[0].action) == (1, 0, "delete")
        assert "＠all or ＠here" in got[0].detail


def test_mentions_everyone_and_too_many_in_one_trigger() -> None:
    p = Protections(settings(mentions=MentionSettings(max_mentions=2)))
    (t,) = p.on_post(post(mentions=users(3), everyone=True))
    assert (t.count, t.limit) == (3, 2) and "＠all" in t.detail and "3 users" in t.detail


# --- links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "domains"),
    [
        ("see https://Example.COM:8443/a?b=c", ["example.com"]),
        ("HTTP://WWW.EXAMPLE.COM", ["example.com"]),
        ("go to www.foo.bar now", ["foo.bar"]),
        ("join discord.gg/abc or t.me/joinchat/x", ["discord.gg", "t.me"]),
        ("visit example.com.", ["example.com"]),
        ("evil.zip/download", ["evil.zip"]),
        ("http://paypal.com@evil.com/login", ["evil.com"]),  # the host is after the user part
        ("http://user:pw@evil.com:80", ["evil.com"]),
        ("http://ev%69l.com/", ["evil.com"]),
        ("[click here](https://evil.com/x) now", ["evil.com"]),
        ("<https://evil.com|label>", ["evil.com"]),
        ("ＥＶＩＬ．ＣＯＭ", ["evil.com"]),  # fullwidth letters and dot
        ("ex\u200bample.com", ["example.com"]),  # a zero-width space does not split the name
        ("bücher.de and xn--bcher-kva.de", ["xn--bcher-kva.de"]),
        ("http://[::1]:8080/", ["::1"]),
        ("a.com b.com a.com", ["a.com", "b.com"]),
        ("--example.com-- ok", ["example.com"]),
        # Not links:
        ("e.g. this, i.e. that", []),
        ("edit config.toml then run main.py and read README.md", []),
        ("pi is 3.14 and we run v1.2.3", []),
        ("ok. wait... what?!", []),
        ("I said no.It is fine", []),  # mixed-case suffix: a missing space, not a link
        ("mail bob@example.com", []),  # an e-mail address
        ("trusted.com@evil.com", []),  # an address too: the user part is no link of its own
        ("trusted.com@evil.com/login", ["evil.com"]),  # with a path it is a link to its host
        ("no dots here at all", []),
    ],
)
def test_find_domains(text: str, domains: list[str]) -> None:
    assert find_domains(text) == domains


def links(block: list[str] | None = None, *, hold_probation: bool = True, mode: Mode = "act") -> Protections:
    return Protections(
        settings(links=LinkSettings(mode=mode, block_domains=block or [], hold_probation=hold_probation))
    )


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("see https://example.com/x", True),
        ("see https://sub.deep.example.com/x", True),  # a subdomain
        ("see https://notexample.com/x", False),  # only whole labels
        ("see -example.com-", True),
        ("see my-example.com", False),
        ("see https://example.com.evil.net/x", False),
        ("see EXAMPLE.COM", True),
        ("see www.Example.com/a", True),
        ("see https://example.com:8080", True),
        ("see http://trusted.org@example.com/", True),  # user part first, host after
        ("see http://example.com@trusted.org/", False),  # here the host is trusted.org
        ("see https://trusted.org/redirect?to=example.com", True),  # a redirect through it
        ("write to sales@example.com", True),  # an address at a blocked domain names it too
        ("see exаmple.com", True),  # Cyrillic а: a look-alike is held like the original
        ("no link here", False),
    ],
)
def test_links_block_list(text: str, held: bool) -> None:
    p = links(["Example.com"])
    got = p.on_post(post(text))
    assert len(got) == held
    if held:
        (t,) = got
        assert (t.protection, t.action, t.mode, t.limit) == ("links", "hold", "act", 0)
        assert t.detail == "link to a blocked domain (example.com)"


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("bücher.de", "https://xn--bcher-kva.de/"),
        ("xn--bcher-kva.de", "see bücher.de/x"),
        ("BÜCHER.DE", "see BÜCHER.de/x"),
        ("https://www.evil.com/whatever", "evil.com"),
        ("*.evil.com", "a.evil.com"),
        (".evil.com", "evil.com/x"),
    ],
)
def test_links_block_entries_are_normalised(entry: str, text: str) -> None:
    assert len(links([entry]).on_post(post(text))) == 1


def test_links_file_names_are_compared_with_the_block_list() -> None:
    # "evil.zip" alone is not a link for probation purposes, but a blocked name is still held.
    assert find_domains("get evil.zip") == []
    assert len(links(["evil.zip"]).on_post(post("get evil.zip"))) == 1


@pytest.mark.parametrize(
    ("text", "hold_probation", "probation", "held"),
    [
        ("look at example.org", True, True, True),
        ("look at example.org", True, False, False),
        ("look at example.org", False, True, False),
        ("edit config.toml please", True, True, False),  # a file name is not a link
        ("no link at all", True, True, False),
    ],
)
def test_links_probation(text: str, hold_probation: bool, probation: bool, held: bool) -> None:
    p = links(hold_probation=hold_probation)
    got = p.on_post(post(text, probation=probation))
    assert len(got) == held
    if held:
        assert got[0].detail == "1 link from an account on probation" and got[0].count == 1


def test_links_from_rocket_chat_urls_count() -> None:
    p = links(["evil.com"])
    assert len(p.on_post(post("no dots in this text", urls=("https://EVIL.com/a",)))) == 1
    q = links()
    assert len(q.on_post(post("nothing", probation=True, urls=("https://x.org",)))) == 1


def test_links_blocked_wins_over_probation_and_counts_domains() -> None:
    p = links(["evil.com", "bad.org"])
    (t,) = p.on_post(post("https://a.evil.com https://bad.org evil.com https://fine.net", probation=True))
    assert t.detail == "link to a blocked domain (evil.com, bad.org)" and t.count == 2


def test_link_finder_is_linear_on_hostile_text() -> None:
    import time

    hostile = [
        "a." * 50_000,
        "a-" * 50_000 + ".",
        "x" * 100_000 + ".y",
        "http://" + "a" * 100_000,
        "a.b " * 20_000,
        "a.com " * 20_000,
        "http://a.b/" * 20_000,
    ]
    for text in hostile:
        t0 = time.perf_counter()
        find_domains(text)
        assert time.perf_counter() - t0 < 0.5


# --- raid ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lock", "action"), [(True, "lock"), (False, "none")])
def test_raid_fires_above_the_limit(lock: bool, action: str) -> None:
    p = Protections(settings(raid=RaidSettings(mode="act", joins=5, seconds=60, lock=lock)))
    results = [p.on_join(join(f"j{i}", ts=i)) for i in range(6)]
    assert all(r == [] for r in results[:5])
    (t,) = results[5]
    assert (t.protection, t.action, t.count, t.limit) == ("raid", action, 6, 5)
    assert (t.user_id, t.username, t.mids, t.rooms) == (None, None, (), ("r1",))
    assert t.users == tuple(f"j{i}" for i in range(6))
    assert t.detail == "6 members joined in 60 s (limit 5)"


def test_raid_once_per_raid_then_rearms() -> None:
    p = Protections(settings(raid=RaidSettings(mode="alert", joins=2, seconds=30)))
    fired = [r for i in range(50) if (r := p.on_join(join(f"j{i}", ts=i)))]
    assert len(fired) == 1
    assert [bool(p.on_join(join(f"k{i}", ts=49 + 30 + i))) for i in range(3)] == [False, False, True]


def test_raid_counts_distinct_members_per_room() -> None:
    p = Protections(settings(raid=RaidSettings(mode="alert", joins=2, seconds=30)))
    assert all(p.on_join(join("same", ts=i)) == [] for i in range(10))
    assert p.on_join(join("other", ts=11)) == []
    assert p.on_join(join("third", ts=12, rid="r2")) == []
    assert len(p.on_join(join("third", ts=13))) == 1


# --- modes, exemptions, memory, details -----------------------------------------------------------


def everything(mode: Mode = "act", **extra: Any) -> ProtectionSettings:
    return ProtectionSettings(
        flood=FloodSettings(mode=mode, messages=1),
        repeat=RepeatSettings(mode=mode, rooms=2, copies=2, min_length=5),
        mentions=MentionSettings(mode=mode, max_mentions=1),
        links=LinkSettings(mode=mode, block_domains=["evil.com"]),
        raid=RaidSettings(mode=mode, joins=1),
        **extra,
    )


def noisy(i: int, **kw: Any) -> Post:
    return post("buy now https://evil.com/x", ts=i, mentions=users(3), everyone=True, **kw)


def test_everything_fires_in_order() -> None:
    p = Protections(everything())
    p.on_post(noisy(0))
    assert [t.protection for t in p.on_post(noisy(1))] == ["flood", "repeat", "mentions", "links"]
    p.on_join(join("a"))
    assert [t.protection for t in p.on_join(join("b"))] == ["raid"]


def test_mode_off_does_nothing_and_keeps_no_state() -> None:
    p = Protections(everything(mode="off"))
    for i in range(20):
        assert p.on_post(noisy(i, rid=f"r{i % 2}")) == []
        assert p.on_join(join(f"j{i}", ts=i)) == []
    assert p.tracked() == {"flood": 0, "repeat": 0, "raid": 0}


def test_mode_alert_is_reported_as_alert() -> None:
    p = Protections(everything(mode="alert"))
    p.on_post(noisy(0))
    got = p.on_post(noisy(1))
    assert got and {t.mode for t in got} == {"alert"}
    assert {t.action for t in got} == {"mute", "delete", "hold"}


@pytest.mark.parametrize(
    ("exempt", "rid", "room"),
    [("general", "r1", "general"), ("r1", "r1", None), ("#general", "r1", "general")],
)
def test_exempt_rooms(exempt: str, rid: str, room: str | None) -> None:
    p = Protections(everything(exempt_rooms=[exempt]))
    for i in range(5):
        assert p.on_post(noisy(i, rid=rid, room=room)) == []
        assert p.on_join(join(f"j{i}", ts=i, rid=rid, room=room)) == []
    assert p.tracked() == {"flood": 0, "repeat": 0, "raid": 0}
    # Other rooms are not exempt.
    p.on_post(noisy(10, rid="r9", room="other"))
    assert p.on_post(noisy(11, rid="r9", room="other"))


def test_memory_is_capped() -> None:
    p = Protections(everything(mode="alert"), max_keys=1000)
    for i in range(200_000):
        p.on_post(post(f"some distinct text number {i}", ts=i * 0.001, user=f"u{i}", rid=f"r{i % 7}"))
        if i % 4 == 0:
            p.on_join(join(f"u{i}", ts=i * 0.001, rid=f"room{i}"))
    sizes = p.tracked()
    assert all(0 < n <= 1000 for n in sizes.values()), sizes


def test_old_windows_are_dropped_as_time_moves_on() -> None:
    p = Protections(settings(flood=FloodSettings(seconds=60), repeat=RepeatSettings(seconds=60)))
    for i in range(500):
        p.on_post(post("a text that is long enough", ts=0, user=f"u{i}"))
    assert p.tracked()["flood"] == 500
    # Later traffic sweeps the expired windows away: each new key drops up to two of them.
    for i in range(300):
        p.on_post(post("another long enough text", ts=1000, user=f"late{i}"))
    assert p.tracked() == {"flood": 300, "repeat": 300, "raid": 0}


def test_time_going_backwards_is_clamped() -> None:
    p = Protections(settings(flood=FloodSettings(messages=2, seconds=10)))
    assert p.on_post(post(ts=100)) == []
    assert p.on_post(post(ts=50)) == []  # taken as t=100, not as an old message
    assert len(p.on_post(post(ts=101))) == 1


def test_details_never_contain_message_text() -> None:
    secret = "Zanzibar quokka https://secret-path.evil.com/Zanzibar-quokka"
    p = Protections(everything())
    got: list[Trigger] = []
    for i in range(4):
        got += p.on_post(post(secret, ts=i, rid=f"r{i % 2}", mentions=users(5), everyone=True))
    got += p.on_post(post("https://Zanzibar-quokka.example.org", probation=True, ts=9))
    assert {t.protection for t in got} == {"flood", "repeat", "mentions", "links"}
    for t in got:
        assert "zanzibar" not in t.detail.lower() and "quokka" not in t.detail.lower()
        assert "secret-path" not in t.detail


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        Protections(ProtectionSettings(), max_keys=0)


# --- repeat_fold's numbers -------------------------------------------------------------------------

# How repeat_fold read a text's numbers before its one-pass ASCII reading: the words that are
# digits once stripped of punctuation.
_REFERENCE_PUNCT = ".,;:!?()[]{}\"'#*"


def _reference_numbers(text: str) -> list[str]:
    return [t for w in text.split() if (t := w.strip(_REFERENCE_PUNCT)).isdigit()]


@hypothesis.settings(max_examples=400, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    st.text(
        alphabet=st.sampled_from(
            [*"0123456789", *_REFERENCE_PUNCT, *"ab-_/@", " ", "\t", "\n", "\x0b", "\x1c", "\x1f", "\x00"]
        ),
        max_size=40,
    )
)
def test_repeat_fold_keeps_the_same_numbers_of_any_ascii_text(text: str) -> None:
    numbers = _reference_numbers(text)
    folded = coarse(text).strip(" ")
    assert repeat_fold(text) == (f"{folded}\x00{' '.join(numbers)}" if numbers else folded)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("order 16 now", "16"),
        ("(12), 1a2 12.5 .5. #*9", "12 5 9"),
        ("n12 see you at 6!", "6"),
        ("²³ and 4", "²³ 4"),  # not ASCII: isdigit() reads superscripts as digits, as before
        ("no numbers here, n42", None),
    ],
)
def test_repeat_fold_keeps_numbers_standing_on_their_own(text: str, numbers: str | None) -> None:
    folded = coarse(text).strip(" ")
    assert repeat_fold(text) == (folded if numbers is None else f"{folded}\x00{numbers}")
