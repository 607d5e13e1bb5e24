"""``rcmod match``: scan lines of text against wordlists, or explain one text.

    rcmod match --wordlists PATH... [--jsonl] [--room NAME]   < lines    one JSON object per line
    rcmod match --explain TEXT [--wordlists PATH...]                     why TEXT matches or not

Each output line is ``{"line": N, "matches": [{"term", "list", "start", "end", "text",
"severity", "categories"}]}`` with ``line`` counted from 1 and ``[start, end)`` code-point
offsets into the input line. Lists come from ``--wordlists`` or ``RCMOD_WORDLISTS`` (paths
separated by ``:``). A line longer than ``MAX_LINE_CHARS`` is not scanned: its output object
says so in ``error`` and the next line goes on. Exit status: 0 done, 1 a line was too long to
scan, 2 usage or configuration error (a bad wordlist, an input line with ``--jsonl`` that is not
a JSON string).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.moderation import Match, WordlistError, read_wordlists
from bot.moderation import compile as compile_lists
from bot.moderation.explain import explain, format_explanation
from bot.store import Store, StoreError
from bot.store.lists import ChatList, read_file_lists

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The longest input line scanned, in characters (a chat message is at most a few thousand).
MAX_LINE_CHARS = 100_000
MAX_WARNINGS_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wordlists",
        nargs="+",
        metavar="PATH",
        help="wordlist files or folders (default: RCMOD_WORDLISTS, paths separated by ':')",
    )
    parser.add_argument("--jsonl", action="store_true", help="each input line is one JSON string")
    parser.add_argument("--explain", metavar="TEXT", help="show the normalised TEXT and why each match fired")
    parser.add_argument("--room", metavar="NAME", help="apply the lists' rooms/skip_rooms for this room")


def _match_json(match: Match, line: str) -> dict[str, Any]:
    return {
        "term": match.term,
        "list": match.list,
        "start": match.start,
        "end": match.end,
        "text": line[match.start : match.end],
        "severity": match.severity,
        "categories": list(match.categories),
    }


def _dumps(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from undecodable input: escape them
        text = json.dumps(obj)
    return text


def run(
    args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> int:
    paths: list[str] = list(args.wordlists or [])
    if not paths:
        paths = [p for p in environ.get("RCMOD_WORDLISTS", "").split(":") if p]
    if not paths:
        print("rcmod match: no wordlists: give --wordlists PATH... or set RCMOD_WORDLISTS", file=stderr)
        return EXIT_USAGE
    try:
        # The lists moderators edit in chat (/mod allow, /mod deny) are in the bot's store, and
        # the bot always loads them: so does this command, or the two would disagree.
        chat = _chat_lists(environ)
        matcher = compile_lists((*read_wordlists(paths), *(c.wordlist() for c in chat)))
    except WordlistError as exc:
        print(f"rcmod match: wordlist error: {exc}", file=stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"rcmod match: {exc}", file=stderr)
        return EXIT_USAGE
    for warning in matcher.warnings[:MAX_WARNINGS_SHOWN]:
        print(f"rcmod match: warning: {warning}", file=stderr)
    if len(matcher.warnings) > MAX_WARNINGS_SHOWN:
        print(f"rcmod match: warning: ... and {len(matcher.warnings) - MAX_WARNINGS_SHOWN} more", file=stderr)

    if args.explain is not None:
        print(format_explanation(explain(matcher, args.explain, args.room)), file=stdout)
        return EXIT_OK

    reconfigure = getattr(stdin, "reconfigure", None)
    if reconfigure is not None:
        # Undecodable bytes become lone surrogates, which the matcher scans like any text,
        # instead of an exception halfway through a file.
        reconfigure(errors="surrogateescape")
    status = EXIT_OK
    for number, raw, whole in _lines(stdin, MAX_LINE_CHARS):
        if not whole:
            # Scanning costs memory in proportion to the line (normalised copies, offsets): a
            # 50 MB line took gigabytes. No chat message comes near this bound.
            reason = f"longer than {MAX_LINE_CHARS} characters; not scanned"
            print(f"rcmod match: line {number}: {reason}", file=stderr)
            print(_dumps({"line": number, "matches": [], "error": reason}), file=stdout)
            status = max(status, EXIT_FAILED)
            continue
        line = raw[:-1] if raw.endswith("\n") else raw
        if line.endswith("\r"):
            line = line[:-1]
        if args.jsonl:
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: "[[[[…" thousands deep
                value = None
            if not isinstance(value, str):
                print(f"rcmod match: line {number}: not a JSON string", file=stderr)
                print(_dumps({"line": number, "matches": [], "error": "not a JSON string"}), file=stdout)
                status = EXIT_USAGE
                continue
            line = value
        matches = matcher.scan(line, args.room)
        print(_dumps({"line": number, "matches": [_match_json(m, line) for m in matches]}), file=stdout)
    return status


def _chat_lists(environ: Mapping[str, str]) -> tuple[ChatList, ...]:
    """The chat-edited lists of the store named by RCMOD_STORAGE_URL or RCMOD_DATA_DIR (none
    without either). A data folder whose store has not yet imported an earlier version's list
    files gives those files, as the bot's next start will import them."""
    url, data_dir = environ.get("RCMOD_STORAGE_URL"), environ.get("RCMOD_DATA_DIR")
    if url:
        store = Store.connect(url)
    elif data_dir and (Path(data_dir) / "rcmod.sqlite3").is_file():
        store = Store.open(Path(data_dir) / "rcmod.sqlite3")
    else:
        return read_file_lists(Path(data_dir) / "lists") if data_dir else ()
    try:
        if not store.lists.imported() and data_dir:
            return read_file_lists(Path(data_dir) / "lists")
        return store.lists.lists()
    finally:
        store.close()


def _lines(stdin: TextIO, limit: int) -> Iterator[tuple[int, str, bool]]:
    """(number, line, whole) for each input line, holding at most ``limit`` characters of one
    line: a longer line is skipped to its end and given as ``("", False)``."""
    number = 0
    while True:
        chunk = stdin.readline(limit + 2)  # room for the line's own "\r\n"
        if not chunk:
            return
        number += 1
        if chunk.endswith("\n") or len(chunk) <= limit:
            yield number, chunk, True
            continue
        while chunk and not chunk.endswith("\n"):
            chunk = stdin.readline(limit)
        yield number, "", False
