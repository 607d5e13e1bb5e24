"""The layout is the architecture: the pure core imports no I/O library (STYLE.md practice 1, 11)."""

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
    "bot.store",
    "bot.rest",
    "bot.web",
    "bot.sandbox",
    "bot.app",
    "bot.realtime.client",
}
PURE_MODULES = [
    "bot/models.py",
    "bot/errors.py",
    "bot/realtime/events.py",
    "bot/realtime/protocol.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "moderation").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "commands").glob("*.py")),
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
