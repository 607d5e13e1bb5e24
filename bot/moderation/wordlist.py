"""Wordlists: ``NAME.txt`` (one term per line) with an optional ``NAME.toml`` of list options.

Parsing takes text and returns frozen values (:func:`parse_terms`, :func:`parse_options`); only
:func:`read_wordlists` touches the file system, and only with :mod:`pathlib`. Every problem is a
:class:`WordlistError` naming the file, the line and the reason. The format is documented in
``wordlists/README.md``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.errors import ConfigError
from bot.moderation.normalize import NormalizeOptions

__all__ = [
    "CATEGORIES",
    "MAX_FILE_BYTES",
    "MAX_TERMS_PER_LIST",
    "MAX_TERM_CHARS",
    "SEVERITIES",
    "ListOptions",
    "NotifyOptions",
    "Term",
    "Wordlist",
    "WordlistError",
    "WordlistWarning",
    "parse_options",
    "parse_terms",
    "parse_wordlist",
    "read_wordlists",
]

Kind = Literal["notify", "block", "allow"]
Action = Literal["delete", "censor"]
Severity = Literal["low", "medium", "high", "critical"]

KINDS: tuple[Kind, ...] = ("notify", "block", "allow")
ACTIONS: tuple[Action, ...] = ("delete", "censor")
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
CATEGORIES = (
    "harassment", "hate", "sexual", "violence", "illegal", "spam", "impersonation", "privacy", "ip", "other",
)  # fmt: skip

MAX_TERM_CHARS = 200
MAX_TERMS_PER_LIST = 250_000
MAX_FILE_BYTES = 16 * 1024 * 1024


class WordlistError(ConfigError):
    """A wordlist or its sidecar is unusable. ``str()`` is ``file:line: reason``."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class WordlistWarning:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    """Who a notify list alerts. Empty means the bot's default moderators (``RCMOD_MODERATORS``)."""

    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    room_moderators: bool = False
    room: str | None = None


@dataclass(frozen=True, slots=True)
class ListOptions:
    """The options of one list. ``name`` is the file stem; ``source`` the file it came from."""

    name: str
    source: str = ""
    kind: Kind = "notify"
    action: Action | None = None
    severity: Severity = "medium"
    categories: tuple[str, ...] = ()
    reveal_term: bool = False
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    rooms: tuple[str, ...] = ()
    skip_rooms: tuple[str, ...] = ()
    notify: NotifyOptions = field(default_factory=NotifyOptions)

    def applies_to(self, room: str | None) -> bool:
        """Whether the list is active in ``room`` (a room name or id; ``None`` means any room)."""
        if room is None:
            return True
        if room in self.skip_rooms:
            return False
        return not self.rooms or room in self.rooms


@dataclass(frozen=True, slots=True)
class Term:
    """One line of a list. ``text`` is the term as written (wildcards removed), ``line`` its line number."""

    text: str
    line: int
    prefix: bool = False  # ``term*``: the match may continue into the word
    suffix: bool = False  # ``*term``: the match may start inside a word

    @property
    def written(self) -> str:
        return f"{'*' if self.suffix else ''}{self.text}{'*' if self.prefix else ''}"


@dataclass(frozen=True, slots=True)
class Wordlist:
    options: ListOptions
    terms: tuple[Term, ...]


# --- terms ----------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def parse_terms(data: bytes | str, file: str) -> tuple[Term, ...]:
    """Parse the body of ``NAME.txt``. Bytes must be UTF-8 (a BOM is allowed)."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise WordlistError(file, None, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        lines = data.split(b"\n")
        decoded: list[str] = []
        for number, raw in enumerate(lines, start=1):
            try:
                decoded.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise WordlistError(
                    file, number, f"not valid UTF-8 (byte {exc.start + 1} of the line)"
                ) from None
        text_lines = decoded
    else:
        text_lines = data.split("\n")
    if text_lines and text_lines[0].startswith("\ufeff"):
        text_lines[0] = text_lines[0][1:]
    terms: list[Term] = []
    for number, line in enumerate(text_lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        terms.append(_parse_term(stripped, file, number))
        if len(terms) > MAX_TERMS_PER_LIST:
            raise WordlistError(file, number, f"more than {MAX_TERMS_PER_LIST} terms in one list")
    return tuple(terms)


def _parse_term(stripped: str, file: str, number: int) -> Term:
    suffix = stripped.startswith("*")
    prefix = stripped.endswith("*") and len(stripped) > 1
    body = stripped[1 if suffix else 0 : len(stripped) - (1 if prefix else 0)]
    body = _SPACES.sub(" ", body).strip()
    if not body:
        raise WordlistError(file, number, "empty term")
    if "*" in body:
        raise WordlistError(file, number, f"'*' is only allowed at the start or end of a term: {stripped!r}")
    if len(body) > MAX_TERM_CHARS:
        raise WordlistError(file, number, f"term longer than {MAX_TERM_CHARS} characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in body):
        raise WordlistError(file, number, "term contains a lone surrogate")
    return Term(text=body, line=number, prefix=prefix, suffix=suffix)


# --- options --------------------------------------------------------------------------------

_TOP_KEYS = frozenset(
    {"kind", "action", "severity", "categories", "reveal_term", "normalize", "rooms", "skip_rooms", "notify"}
)
_NORMALIZE_KEYS = frozenset({"leet", "confusables", "separators", "diacritics", "repeats"})
_NOTIFY_KEYS = frozenset({"users", "roles", "room_moderators", "room"})


class _OptionError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def parse_options(text: str, name: str, file: str = "", list_file: str = "") -> ListOptions:
    """Parse a ``NAME.toml`` sidecar into :class:`ListOptions` for the list called ``name``."""
    file = file or f"{name}.toml"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise WordlistError(file, line, f"invalid TOML: {exc}") from None
    try:
        return _options_from(doc, name, list_file or file)
    except _OptionError as exc:
        raise WordlistError(file, _find_key_line(text, exc.key), exc.reason) from None


def _line_from_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _find_key_line(text: str, key: str) -> int | None:
    """Best-effort line of ``key`` (``a.b`` for a key in table ``[a]``) for error messages."""
    leaf = key.rsplit(".", 1)[-1]
    table = key.rsplit(".", 1)[0] if "." in key else None
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        m = re.match(r"\[\s*([^\]]+?)\s*\]", s)
        if m:
            current = m.group(1)
            if table is None and current == leaf:
                return number
            continue
        if re.match(rf"{re.escape(leaf)}\s*=", s) and current == table:
            return number
        if table and re.match(rf"{re.escape(table)}\s*\.\s*{re.escape(leaf)}\s*=", s) and current is None:
            return number
    return None


def _options_from(doc: Mapping[str, Any], name: str, source: str) -> ListOptions:
    for key in doc:
        if key not in _TOP_KEYS:
            raise _OptionError(key, f"unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    kind = _choice(doc, "kind", KINDS, "notify")
    action = _choice(doc, "action", ACTIONS, None)
    if action is not None and kind != "block":
        raise _OptionError("action", f"'action' only applies to block lists (this list is kind = {kind!r})")
    if kind == "block" and action is None:
        action = "delete"
    severity = _choice(doc, "severity", SEVERITIES, "medium")
    categories = _string_list(doc, "categories")
    for cat in categories:
        if cat not in CATEGORIES:
            raise _OptionError("categories", f"unknown category {cat!r} (known: {', '.join(CATEGORIES)})")
    reveal = _bool(doc, "reveal_term", False)
    rooms = _string_list(doc, "rooms")
    skip_rooms = _string_list(doc, "skip_rooms")

    norm_doc = _table(doc, "normalize")
    for key in norm_doc:
        if key not in _NORMALIZE_KEYS:
            raise _OptionError(
                f"normalize.{key}",
                f"unknown key 'normalize.{key}' (known: {', '.join(sorted(_NORMALIZE_KEYS))})",
            )
    normalize = NormalizeOptions(
        leet=_bool(norm_doc, "leet", True, "normalize."),
        confusables=_bool(norm_doc, "confusables", True, "normalize."),
        separators=_bool(norm_doc, "separators", True, "normalize."),
        diacritics=_bool(norm_doc, "diacritics", True, "normalize."),
        repeats=_bool(norm_doc, "repeats", False, "normalize."),
    )

    notify_doc = _table(doc, "notify")
    for key in notify_doc:
        if key not in _NOTIFY_KEYS:
            raise _OptionError(
                f"notify.{key}", f"unknown key 'notify.{key}' (known: {', '.join(sorted(_NOTIFY_KEYS))})"
            )
    room = notify_doc.get("room")
    if room is not None and not isinstance(room, str):
        raise _OptionError("notify.room", "'notify.room' must be a string (a room name)")
    notify = NotifyOptions(
        users=_string_list(notify_doc, "users", "notify."),
        roles=_string_list(notify_doc, "roles", "notify."),
        room_moderators=_bool(notify_doc, "room_moderators", False, "notify."),
        room=room,
    )
    return ListOptions(
        name=name,
        source=source,
        kind=kind,
        action=action,
        severity=severity,
        categories=categories,
        reveal_term=reveal,
        normalize=normalize,
        rooms=rooms,
        skip_rooms=skip_rooms,
        notify=notify,
    )


def _choice(doc: Mapping[str, Any], key: str, allowed: tuple[Any, ...], default: Any) -> Any:
    if key not in doc:
        return default
    value = doc[key]
    if value not in allowed:
        raise _OptionError(key, f"{key!r} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _bool(doc: Mapping[str, Any], key: str, default: bool, prefix: str = "") -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise _OptionError(prefix + key, f"{prefix + key!r} must be true or false, not {value!r}")
    return value


def _string_list(doc: Mapping[str, Any], key: str, prefix: str = "") -> tuple[str, ...]:
    value = doc.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _OptionError(prefix + key, f"{prefix + key!r} must be a list of strings")
    return tuple(value)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise _OptionError(key, f"{key!r} must be a table ([{key}])")
    return value


# --- files ----------------------------------------------------------------------------------


def parse_wordlist(
    name: str,
    terms_data: bytes | str,
    options_text: str | None = None,
    file: str = "",
    options_file: str = "",
) -> Wordlist:
    """A list from the contents of its files (``options_text`` is the sidecar, if any)."""
    file = file or f"{name}.txt"
    if options_text is None:
        options = ListOptions(name=name, source=file)
    else:
        options = parse_options(options_text, name, options_file or f"{name}.toml", file)
    return Wordlist(options=options, terms=parse_terms(terms_data, file))


def read_wordlists(paths: Iterable[str | Path]) -> tuple[Wordlist, ...]:
    """Read lists from files and folders (a folder: every ``*.txt`` in it, with its sidecar)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
            for sidecar in sorted(path.glob("*.toml")):
                if not sidecar.with_suffix(".txt").is_file():
                    raise WordlistError(
                        str(sidecar), None, f"options file without a list ({sidecar.stem}.txt)"
                    )
            if not found:
                raise WordlistError(str(path), None, "folder contains no .txt wordlists")
            files.extend(found)
        elif path.is_file():
            if path.suffix == ".toml":
                path = path.with_suffix(".txt")
                if not path.is_file():
                    raise WordlistError(str(raw), None, f"options file without a list ({path.name})")
            files.append(path)
        else:
            raise WordlistError(str(path), None, "no such file or folder")
    lists: list[Wordlist] = []
    seen: dict[str, Path] = {}
    for path in files:
        if path in seen.values():
            continue
        name = path.stem
        if name in seen:
            raise WordlistError(str(path), None, f"two lists are called {name!r} (the other is {seen[name]})")
        seen[name] = path
        try:
            data = path.read_bytes()
            sidecar = path.with_suffix(".toml")
            options_text = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else None
        except UnicodeDecodeError as exc:
            raise WordlistError(
                str(path.with_suffix(".toml")), None, f"not valid UTF-8: {exc.reason}"
            ) from None
        except OSError as exc:
            raise WordlistError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
        lists.append(parse_wordlist(name, data, options_text, str(path), str(path.with_suffix(".toml"))))
    return tuple(lists)
