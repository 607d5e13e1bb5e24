"""One TTL cache for what the server said: the lookups' (a failed fetch answers with what was
kept) and the command dispatcher's (a refusal is an answer, kept a minute; /mod appoint forgets
a room's roles)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.commands.handlers.dispatch import LOOKUP_TTL, Dispatcher
from bot.errors import NotFound, RetryableError
from bot.services.lookups import DEFAULT_TTL, Lookups, RoleDirectory, TtlCache
from bot.store import AuditLog, Database
from tests.conftest import until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Answers:
    """A fetch that answers, or raises, what the test says next, and counts its calls."""

    def __init__(self, *answers: Any) -> None:
        self.answers, self.calls = list(answers), 0

    async def __call__(self) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_an_answer_is_kept_for_the_ttl_and_a_failure_keeps_nothing() -> None:
    clock = Clock()
    cache = TtlCache(clock, ttl=60)
    fetch = Answers("one", RetryableError("down"), "two")
    assert await cache.get("room:R1", fetch) == "one"
    clock.now += 59
    assert await cache.get("room:R1", fetch) == "one" and fetch.calls == 1
    clock.now += 1
    with pytest.raises(RetryableError):
        await cache.get("room:R1", fetch)
    assert cache.last("room:R1", "none") == "one"  # what was kept stays
    assert await cache.get("room:R1", fetch) == "two" and fetch.calls == 3
    assert cache.last("room:R2", "none") == "none"


async def test_forget_drops_the_answers_under_a_prefix() -> None:
    cache = TtlCache(Clock())
    await cache.get("roles:R1", Answers("a"))
    await cache.get("room:R1", Answers("b"))
    cache.forget("roles:")
    assert cache.last("roles:R1", None) is None and cache.last("room:R1", None) == "b"
    cache.forget()
    assert cache.last("room:R1", None) is None


async def test_a_lookup_that_fails_answers_with_the_last_good_value() -> None:
    clock = Clock()
    lookups = Lookups(None, clock=clock)  # type: ignore[arg-type]
    assert await lookups.cached("k", Answers(RetryableError("down")), "default") == "default"
    assert await lookups.cached("k", Answers("fresh"), "default") == "fresh"
    clock.now += DEFAULT_TTL
    assert await lookups.cached("k", Answers(RetryableError("down")), "default") == "fresh"


class RoomInfo:
    def __init__(self) -> None:
        self.calls = 0

    async def room_info(self, rid: str) -> dict[str, Any]:
        self.calls += 1
        raise NotFound("no such room", code="error-room-not-found")


async def test_the_dispatcher_keeps_a_refusal_as_an_answer_for_a_minute() -> None:
    clock, rest = Clock(), RoomInfo()

    async def nobody() -> frozenset[str]:
        return frozenset()

    dispatcher = Dispatcher(
        rest=rest,  # type: ignore[arg-type]
        audit=AuditLog(Database.in_memory()),
        handlers={},
        bot_moderators=nobody,
        site_url=lambda: "",
        clock=clock,
    )
    assert await dispatcher.room_type("GONE") is None
    assert await dispatcher.room_type("GONE") is None and rest.calls == 1
    clock.now += LOOKUP_TTL
    assert await dispatcher.room_type("GONE") is None and rest.calls == 2
    dispatcher.forget("room:")
    assert await dispatcher.room_type("GONE") is None and rest.calls == 3


async def test_an_expired_answer_is_used_while_it_is_renewed_in_the_background() -> None:
    """The message path never waits for a renewal: only the very first lookup of a key does."""
    clock = Clock()
    lookups = Lookups(None, clock=clock)  # type: ignore[arg-type]
    assert await lookups.cached("k", Answers("old"), "default") == "old"
    clock.now += DEFAULT_TTL
    answered = asyncio.Event()

    async def slow() -> str:
        await answered.wait()
        return "new"

    async with asyncio.timeout(5):  # a hang guard: the renewal is not awaited
        assert await lookups.cached("k", slow, "default") == "old"
        assert await lookups.cached("k", slow, "default") == "old"
    answered.set()
    assert await until(lambda: lookups._cache.last("k", None) == "new")
    assert await lookups.cached("k", Answers(), "default") == "new"  # fresh again: no fetch


class SlowUsers:
    def __init__(self) -> None:
        self.walks = 0
        self.answered = asyncio.Event()
        self.role = "user"

    async def all_users(self) -> list[dict[str, Any]]:
        self.walks += 1
        if self.walks > 1:
            await self.answered.wait()
        return [{"_id": "u1", "username": "alice", "roles": [self.role]}]


async def test_an_expired_role_snapshot_answers_while_the_next_is_read() -> None:
    clock = Clock()
    users = SlowUsers()
    directory = RoleDirectory(users, clock=clock)  # type: ignore[arg-type]
    await directory.prefetch()
    assert await directory.roles(user_id="u1") == {"user"}
    clock.now += DEFAULT_TTL
    users.role = "admin"
    async with asyncio.timeout(5):  # a hang guard: the walk is not awaited
        assert await directory.roles(user_id="u1") == {"user"}
        assert await directory.roles(user_id="u1") == {"user"}
    users.answered.set()
    assert await until(lambda: users.walks == 2)
    assert await until(lambda: directory._roles.get("u1") == {"admin"})
    assert await directory.roles(user_id="u1") == {"admin"} and users.walks == 2
