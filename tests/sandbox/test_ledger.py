"""The fidelity ledger covers what the sandbox serves and what the bot calls, and names real tests.

The bot's REST routes, DDP methods and streams are found by reading its source (ast), not by a
list kept by hand, so a new call without a ledger line fails here with its name.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from bot.sandbox.ddp import _METHODS
from bot.sandbox.ledger import LEDGER, Entry
from bot.sandbox.rest import ROUTES

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
SANDBOX = BOT / "sandbox"
REALTIME = BOT / "realtime"

STREAM_NAME = re.compile(r"^stream-[a-z-]+$")
ROUTE_NAME = re.compile(r"^[a-zA-Z]+(\.[a-zA-Z]+)*$")

# rocketchat_API convenience methods the bot calls on its client, by the route each one requests.
ROCKETCHAT_API_METHODS = {
    "info": "GET info",
    "me": "GET me",
    "subscriptions_get": "GET subscriptions.get",
    "chat_delete": "POST chat.delete",
}
REST_CALLERS = {
    "call_api_get": "GET",
    "call_api_post": "POST",
    "call_api_put": "PUT",
    "call_api_delete": "DELETE",
}


def ledger_names(kind: str, ledger: Iterable[Entry] = LEDGER) -> list[str]:
    return [e.name for e in ledger if e.kind == kind]


# ---------------------------------------------------------------- what the sandbox serves


def served_rest() -> set[str]:
    # /api/info and the uploaded files' /file-upload/ are served beside the v1 table
    # (RestApi.add_routes).
    return {f"{r.method} {r.name}" for r in ROUTES} | {"GET info", "GET file-upload/:fileId/:name"}


def served_streams() -> set[str]:
    tree = ast.parse((SANDBOX / "ddp.py").read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and _is_stream(n.value)}


def _is_stream(value: object) -> bool:
    return isinstance(value, str) and STREAM_NAME.match(value) is not None


def coverage_problems(ledger: Iterable[Entry]) -> list[str]:
    ledger = list(ledger)
    problems: list[str] = []
    for kind, served in (("rest", served_rest()), ("ddp", set(_METHODS)), ("stream", served_streams())):
        counts = Counter(ledger_names(kind, ledger))
        problems += [f"{kind} {name}: no ledger line" for name in sorted(served - set(counts))]
        problems += [f"{kind} {name}: {n} ledger lines" for name, n in sorted(counts.items()) if n > 1]
        problems += [f"{kind} {name}: not served" for name in sorted(set(counts) - served)]
    return problems


def test_every_served_route_method_and_stream_has_exactly_one_line() -> None:
    assert served_streams() >= {"stream-room-messages", "stream-notify-user", "stream-notify-room"}
    assert coverage_problems(LEDGER) == []


def test_a_missing_line_is_reported_by_name() -> None:
    for dropped in ("POST chat.delete", "sendMessage", "stream-notify-logged"):
        remaining = [e for e in LEDGER if e.name != dropped]
        assert [p for p in coverage_problems(remaining) if dropped in p] == [
            next(f"{e.kind} {dropped}: no ledger line" for e in LEDGER if e.name == dropped)
        ]
    doubled = [*LEDGER, next(e for e in LEDGER if e.name == "GET me")]
    assert coverage_problems(doubled) == ["rest GET me: 2 ledger lines"]


# ---------------------------------------------------------------- what the bot calls


def bot_sources(*, exclude: tuple[Path, ...] = (SANDBOX,)) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(BOT.rglob("*.py")):
        if not any(path.is_relative_to(x) for x in exclude):
            yield path, ast.parse(path.read_text(), filename=str(path))


def _strings(node: ast.AST | None, scope: ast.AST) -> list[str]:
    """The string values an expression can take: literals, both arms of ``a if c else b``, the values of
    ``{...}.get(key)``, and a local name resolved through its assignments in ``scope``."""
    if node is None:
        return []
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, ast.IfExp):
        return _strings(node.body, scope) + _strings(node.orelse, scope)
    if isinstance(node, ast.BoolOp):
        return [s for v in node.values for s in _strings(v, scope)]
    if isinstance(node, ast.Dict):
        return [s for v in node.values for s in _strings(v, scope)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return _strings(node.func.value, scope)
    if isinstance(node, ast.Name):
        found: list[str] = []
        for n in ast.walk(scope):
            if isinstance(n, ast.Assign | ast.AnnAssign) and node.id in _assigned_names(n):
                found += _strings(n.value, scope)
        return found
    return []


def _assigned_names(node: ast.Assign | ast.AnnAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _functions(tree: ast.Module) -> Iterator[tuple[ast.AST, ast.Call]]:
    """Every call with the function (or the module) it sits in, to resolve local names."""
    scopes: list[ast.AST] = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    seen: set[int] = set()
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and id(node) not in seen:
                seen.add(id(node))
                yield scope, node
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in seen:
            yield tree, node


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def bot_rest_calls() -> set[tuple[str | None, str]]:
    """(method or None when only the route is known, route) for every REST request in bot/."""
    found: set[tuple[str | None, str]] = set()
    for _path, tree in bot_sources(exclude=(SANDBOX, REALTIME)):
        for scope, call in _functions(tree):
            name = _callee(call)
            first = call.args[0] if call.args else None
            if name in REST_CALLERS:
                found |= {(REST_CALLERS[name], s) for s in _strings(first, scope)}
            elif name == "call" and len(call.args) == 2:
                # The facade's call(endpoint, fn): endpoint names the route requested by fn.
                found |= {(None, s) for s in _strings(first, scope) if ROUTE_NAME.match(s)}
            elif name == "partial" and first is not None and _callee_name(first) == "_get":
                found |= {("GET", s) for s in _strings(call.args[1] if len(call.args) > 1 else None, scope)}
            elif isinstance(call.func, ast.Attribute) and _callee_name(call.func.value) == "rc":
                # A rocketchat_API convenience method: which route it requests is in the table above.
                found.add(("?", f"rocketchat_API.{name}"))
    # A label is redundant beside the request it names.
    return {(m, r) for m, r in found if m is not None or not any(k and q == r for k, q in found)}


def _callee_name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else ""


def missing_rest(calls: set[tuple[str | None, str]], ledger: Iterable[Entry] = LEDGER) -> list[str]:
    names = set(ledger_names("rest", ledger))
    missing = []
    for method, route in sorted(calls, key=lambda c: (c[1], c[0] or "")):
        if method == "?":
            known = ROCKETCHAT_API_METHODS.get(route.removeprefix("rocketchat_API."))
            ok = known is not None and known in names
        elif method is None:
            ok = any(n.split(" ", 1)[1] == route for n in names)
        else:
            ok = f"{method} {route}" in names
        if not ok:
            missing.append(route if method in (None, "?") else f"{method} {route}")
    return missing


def bot_ddp_use() -> tuple[set[str], set[str]]:
    """(DDP methods, streams) the bot uses: the realtime client's call()/login and every callable
    named like a DDP call handed to the moderation core, and every stream name it subscribes to."""
    methods: set[str] = set()
    streams: set[str] = set()
    for path, tree in bot_sources():
        in_realtime = path.is_relative_to(REALTIME)
        for scope, call in _functions(tree):
            name = _callee(call)
            first = call.args[0] if call.args else None
            if (in_realtime and name == "call") or "ddp_call" in name:
                methods |= {s for s in _strings(first, scope) if not _is_stream(s)}
        if in_realtime:
            streams |= {
                n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and _is_stream(n.value)
            }
    return methods, streams


def test_every_rest_route_the_bot_calls_has_a_line() -> None:
    calls = bot_rest_calls()
    # The scan must see the calls it is meant to see, or a broken scan would pass silently.
    assert {
        ("POST", "chat.sendMessage"),
        ("POST", "rooms.cleanHistory"),
        ("GET", "channels.history"),
    } <= calls
    assert (None, "info") in calls
    assert ("GET", "groups.history") in calls and ("?", "rocketchat_API.chat_delete") in calls
    assert missing_rest(calls) == []


def test_a_rest_call_without_a_line_is_reported_by_name() -> None:
    calls = bot_rest_calls() | {
        ("POST", "rooms.delete"),
        (None, "chat.ignoreUser"),
        ("?", "rocketchat_API.spotlight"),
    }
    assert set(missing_rest(calls)) == {"chat.ignoreUser", "POST rooms.delete", "rocketchat_API.spotlight"}
    without = [e for e in LEDGER if e.name != "GET users.listByStatus"]
    assert missing_rest(bot_rest_calls(), without) == ["GET users.listByStatus"]


def test_every_ddp_method_and_stream_the_bot_uses_has_a_line() -> None:
    methods, streams = bot_ddp_use()
    assert {"login", "muteUserInRoom", "unmuteUserInRoom"} <= methods
    assert {"stream-room-messages", "stream-notify-user", "stream-notify-room"} <= streams
    assert sorted(methods - set(ledger_names("ddp"))) == []
    assert sorted(streams - set(ledger_names("stream"))) == []


# ---------------------------------------------------------------- every line is backed


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    }


def unknown_tests(ledger: Iterable[Entry] = LEDGER) -> list[str]:
    cache: dict[Path, set[str]] = {}
    unknown = []
    for entry in ledger:
        for ref in entry.tests:
            file, _, name = ref.partition("::")
            path = ROOT / file
            if not path.is_file() or not file.startswith("tests/"):
                unknown.append(ref)
                continue
            if path not in cache:
                cache[path] = defined_tests(path)
            if name not in cache[path]:
                unknown.append(ref)
    return unknown


def test_every_named_test_exists() -> None:
    assert unknown_tests() == []
    bogus = Entry(
        "rest", "GET me", ("x",), "", "", "", "", "", ("tests/sandbox/test_ledger.py::test_nothing_here",)
    )
    assert unknown_tests([bogus]) == ["tests/sandbox/test_ledger.py::test_nothing_here"]


def test_every_line_names_a_server_file_and_a_test() -> None:
    bare = [e.name for e in LEDGER if not e.server or not e.tests]
    assert bare == []
    # Paths are repository-relative files of RocketChat/Rocket.Chat, not prose.
    assert [
        s
        for e in LEDGER
        for s in e.server
        if not re.fullmatch(r"(apps|packages|ee)/[\w./-]+\.(ts|tsx|js)", s)
    ] == []
