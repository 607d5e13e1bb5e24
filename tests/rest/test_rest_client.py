"""The REST facade over rocketchat_API, against the sandbox: endpoints, retry, wait, re-login, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.config import Credentials
from bot.errors import PermissionDenied, RetryableError
from bot.rest import RestClient, RetryPolicy
from bot.sandbox import RateLimits, Sandbox


class FakeTime:
    """One clock for the sandbox and the client; sleeping advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def sandbox(fake_time: FakeTime) -> AsyncIterator[Sandbox]:
    async with Sandbox(clock=fake_time, rate_limits=RateLimits(rest_calls=3, rest_window=20.0)) as sb:
        yield sb


def user(sb: Sandbox, name: str) -> dict[str, Any]:
    return next(u for u in sb.seed_info()["users"] if u["username"] == name)


def room_id(sb: Sandbox, name: str) -> str:
    return str(next(r["id"] for r in sb.seed_info()["rooms"] if r["name"] == name))


def client(sb: Sandbox, name: str, fake_time: FakeTime, *, password: bool = False) -> RestClient:
    u = user(sb, name)
    creds = (
        Credentials(username=name, password=SecretStr(u["password"]))
        if password
        else Credentials(user_id=u["id"], token=SecretStr(u["token"]))
    )
    return RestClient(
        sb.url,
        creds,
        clock=fake_time,
        sleep=fake_time.sleep,
        retry=RetryPolicy(attempts=3, initial_delay=0.5),
    )


async def test_server_info_and_feature_switches(fake_time: FakeTime) -> None:
    for version, console in [("7.10.0", True), ("6.1.0", False)]:
        sb = Sandbox(clock=fake_time, version=version)
        await sb.start()
        rest = client(sb, "rcmod.bot", fake_time)
        try:
            info = await rest.server_info()
        finally:
            await rest.close()
            await sb.stop()
        assert info.version == version
        assert info.features.moderation_console is console


async def test_send_history_and_sync(sandbox: Sandbox, fake_time: FakeTime) -> None:
    rest = client(sandbox, "rcmod.bot", fake_time)
    general = room_id(sandbox, "general")
    try:
        start = datetime.fromtimestamp(fake_time.now, UTC) - timedelta(seconds=1)
        mid = await rest.send_message(general, "hello from the bot")
        assert sandbox.workspace.messages[mid]["msg"] == "hello from the bot"  # our id, chosen client-side
        posted = []
        for i in range(230):
            fake_time.now += 0.01
            posted.append(sandbox.post_as("alice", "general", f"message {i}")["_id"])
        seen = [m.id async for m in rest.history(general, "c", oldest=start, page=100)]
        assert len(seen) == len(set(seen)) == 231  # paged backwards, nothing twice, nothing lost
        assert seen[0] == posted[-1] and mid in seen

        fake_time.now += 1
        cut = datetime.fromtimestamp(fake_time.now, UTC)
        fake_time.now += 1
        sandbox.edit_as("alice", posted[0], "edited")
        sandbox.delete_as("alice", posted[1])
        updated, deleted = await rest.sync_messages(general, cut)
        assert [m.id for m in updated] == [posted[0]]
        assert updated[0].edited_at is not None
        assert [d[0] for d in deleted] == [posted[1]]
    finally:
        await rest.close()


async def test_rate_limit_is_waited_out_using_reset_header(sandbox: Sandbox, fake_time: FakeTime) -> None:
    rest = client(sandbox, "alice", fake_time)  # a member: the REST limiter applies (3 per 20 s here)
    try:
        for _ in range(4):
            assert (await rest.me())["username"] == "alice"
    finally:
        await rest.close()
    assert len(fake_time.slept) == 1
    assert 0 < fake_time.slept[0] <= 20.5  # X-RateLimit-Reset is epoch ms: waited for the window, not 60 s


async def test_bot_role_bypasses_the_rate_limiter(sandbox: Sandbox, fake_time: FakeTime) -> None:
    rest = client(sandbox, "rcmod.bot", fake_time)
    try:
        for _ in range(10):
            await rest.me()
    finally:
        await rest.close()
    assert fake_time.slept == []


async def test_server_fault_retried_then_given_up(sandbox: Sandbox, fake_time: FakeTime) -> None:
    rest = client(sandbox, "rcmod.bot", fake_time)
    try:
        sandbox.fail_next("/me", 500, "<html>upstream error</html>", "text/html")
        assert (await rest.me())["username"] == "rcmod.bot"
        assert fake_time.slept == [0.5]
        sandbox.fail_next("/me", 502, "<html>bad gateway</html>", "text/html", times=5)
        with pytest.raises(RetryableError):
            await rest.me()
    finally:
        await rest.close()


async def test_expired_session_logs_in_again_with_password(sandbox: Sandbox, fake_time: FakeTime) -> None:
    rest = client(sandbox, "bob", fake_time, password=True)
    try:
        await rest.login()
        sandbox.fail_next("/me", 401, {"status": "error", "message": "You must be logged in to do this."})
        assert (await rest.me())["username"] == "bob"
    finally:
        await rest.close()


async def test_permission_refusal_is_reported_not_retried(sandbox: Sandbox, fake_time: FakeTime) -> None:
    msg = sandbox.post_as("bob", "general", "bob's message")
    rest = client(sandbox, "alice", fake_time)
    try:
        with pytest.raises(PermissionDenied) as info:
            await rest.delete_message(room_id(sandbox, "general"), msg["_id"])
    finally:
        await rest.close()
    assert info.value.code == "error-action-not-allowed"
    assert fake_time.slept == []


async def test_query_values_are_url_encoded(sandbox: Sandbox, fake_time: FakeTime) -> None:
    """rocketchat_API joins GET queries without encoding; the facade encodes (',' and ':' here)."""
    rest = client(sandbox, "rcmod.bot", fake_time)
    try:
        settings = await rest.public_settings("Message_AllowPinning", "Site_Url")
    finally:
        await rest.close()
    assert settings["Message_AllowPinning"] is True
    assert settings["Site_Url"] == sandbox.url


async def test_unreachable_server_is_retryable(fake_time: FakeTime) -> None:
    rest = RestClient(
        "http://127.0.0.1:9",
        Credentials(user_id="u", token=SecretStr("t")),
        clock=fake_time,
        sleep=fake_time.sleep,
        retry=RetryPolicy(attempts=2, initial_delay=0.1),
        timeout=2,
    )
    try:
        with pytest.raises(RetryableError) as info:
            await rest.me()
    finally:
        await rest.close()
    assert "ConnectionError" in str(info.value)
    assert fake_time.slept == [0.1]


async def test_send_is_idempotent_when_the_answer_is_lost(sandbox: Sandbox, fake_time: FakeTime) -> None:
    """The first attempt lands but its answer is lost; the retry must not post a second copy."""
    rest = client(sandbox, "rcmod.bot", fake_time)
    general = room_id(sandbox, "general")
    before = len(sandbox.workspace.messages)
    real_run = rest._run_sync
    calls = {"n": 0}

    def lose_first_answer(endpoint: str, fn: Any) -> Any:
        result = real_run(endpoint, fn)
        if endpoint == "chat.sendMessage" and calls["n"] == 0:
            calls["n"] += 1
            raise RetryableError("chat.sendMessage: connection reset after the request was sent")
        return result

    rest._run_sync = lose_first_answer  # type: ignore[method-assign]
    try:
        mid = await rest.send_message(general, "exactly once please")
    finally:
        await rest.close()
    assert len(sandbox.workspace.messages) == before + 1
    assert sandbox.workspace.messages[mid]["msg"] == "exactly once please"


async def test_public_settings_are_read_once_a_minute_whatever_the_callers(
    sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """settings.public needs no login, so the server limits it per address for everyone, the bot
    with api-bypass-rate-limit included (here 3 calls per window): the client reads each setting
    at most once a minute, and sees a change after that."""
    async with aiohttp.ClientSession() as http:
        statuses = []
        bot = user(sandbox, "rcmod.bot")
        for _ in range(4):
            async with http.get(
                f"{sandbox.url}/api/v1/settings.public",
                headers={"X-User-Id": bot["id"], "X-Auth-Token": bot["token"]},
            ) as answer:
                statuses.append(answer.status)
        assert statuses == [200, 200, 200, 429]  # the headers earn no bypass on an anonymous route
    fake_time.now += 30  # a fresh window for the client below
    rest = client(sandbox, "rcmod.bot", fake_time)
    try:
        for _ in range(10):
            assert await rest.public_settings("Message_AllowPinning") == {"Message_AllowPinning": True}
        sandbox.workspace.set_setting("Message_AllowPinning", False)
        assert await rest.public_settings("Message_AllowPinning") == {"Message_AllowPinning": True}
        fake_time.now += 61
        assert await rest.public_settings("Message_AllowPinning") == {"Message_AllowPinning": False}
        assert await rest.public_settings("No_Such_Setting") == {}
        assert fake_time.slept == []  # never refused: the limiter was never reached
    finally:
        await rest.close()
