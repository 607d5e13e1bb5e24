"""The composition root: one frozen set of services per run, built in dependency order; one-shot
commands get their clients from it too; each subcommand is declared once."""

from __future__ import annotations

import argparse
import dataclasses
import gc
from pathlib import Path

import pytest

from bot.app import BotApp, Services, command_session
from bot.cli import COMMANDS, build_parser, main
from bot.commands.handlers.dispatch import LOOKUP_TTL
from bot.realtime.events import Connected, Event, MessageEvent
from bot.sandbox import Sandbox
from bot.services.lookups import TtlCache
from bot.services.router import Router
from tests.conftest import bot_settings, start_bot


async def test_a_running_bot_is_one_frozen_set_of_services(sandbox: Sandbox, tmp_path: Path) -> None:
    running = await start_bot(bot_settings(sandbox, tmp_path / "data"))
    try:
        services = running.app.services
        assert isinstance(services, Services)
        with pytest.raises(dataclasses.FrozenInstanceError):
            services.enforcer = services.enforcer  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            services.shared.store = services.shared.store  # type: ignore[misc]
        # The views tests and the demo read are the services themselves, not copies.
        assert running.app.store is services.shared.store
        assert running.app.policies is services.policies
        assert running.app.executor is services.shared.executor
        with pytest.raises(AttributeError):
            running.app.store = None  # type: ignore[assignment]
    finally:
        await running.stop()


async def test_what_start_up_built_is_out_of_the_collectors_reach(sandbox: Sandbox, tmp_path: Path) -> None:
    running = await start_bot(bot_settings(sandbox, tmp_path / "data"))
    try:
        services = running.app.services
        # Frozen objects are the ones gc.get_objects() no longer lists: no full pass walks them.
        assert gc.get_freeze_count() > 0
        assert not any(o is services for o in gc.get_objects())
        later: list[list[int]] = [[]]  # built after start-up: collected as usual
        assert any(o is later for o in gc.get_objects())
    finally:
        await running.stop()


def test_the_views_are_empty_until_the_services_are_built(sandbox: Sandbox, tmp_path: Path) -> None:
    app = BotApp(bot_settings(sandbox, tmp_path / "data"))
    assert app.services is None
    assert (app.store, app.rest, app.web, app.names, app.policies) == (None, None, None, None, None)


async def test_command_session_is_logged_in_and_closes_the_store(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = bot_settings(sandbox, tmp_path / "data")
    async with command_session(settings) as session:
        assert session.rest.user_id is not None
        assert (await session.rest.me()).get("username") == "rcmod.bot"
        store = session.store
    with pytest.raises(Exception, match="closed"):  # sqlite3: "Cannot operate on a closed database."
        store.state.state_get("anything")


def test_each_subcommand_is_declared_once() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == names
    assert [h.dest for h in sub._choices_actions] == names  # each with its help line


def test_main_dispatches_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--version", "not-a-version"]) == 2
    assert "rcmod sandbox: --version:" in capsys.readouterr().err


async def test_router_routes_given_at_construction_run_in_order() -> None:
    from bot.metrics import Metrics

    seen: list[str] = []

    async def first(event: Event) -> None:
        seen.append("first")

    async def second(event: Event) -> None:
        seen.append("second")

    router = Router(Metrics(), routes=[("a", (object,), first), ("b", (MessageEvent,), second)])
    assert await router.dispatch(Connected(session="s", user_id="u", reconnect=False)) == 0
    assert seen == ["first"]


async def test_lookup_cache_forgets_by_prefix() -> None:
    now = [0.0]
    cache = TtlCache(lambda: now[0], ttl=LOOKUP_TTL)
    calls: list[str] = []

    async def fetch(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert await cache.get("roles:r1", lambda: fetch("roles:r1")) == "ROLES:R1"
    assert await cache.get("roles:r1", lambda: fetch("roles:r1")) == "ROLES:R1"
    assert await cache.get("user:u1", lambda: fetch("user:u1")) == "USER:U1"
    assert calls == ["roles:r1", "user:u1"]
    cache.forget("roles:")
    await cache.get("roles:r1", lambda: fetch("roles:r1"))
    await cache.get("user:u1", lambda: fetch("user:u1"))
    assert calls == ["roles:r1", "user:u1", "roles:r1"]
