#!/usr/bin/env python3
"""One-off codemod: ``store.verb(...)`` becomes ``store.<repository>.verb(...)``.

The store used to be one class with every verb; it is now a holder of repositories
(``store.audit``, ``store.alerts``, …; see ``bot/store/__init__.py``). This rewrites every use of a
verb on something that names the store, and nothing else:

- a name or attribute whose last part is ``store``, ``_store``, ``store2``, ``old_store``, …
  (``store``, ``self._store``, ``self.store``, ``app.store``, ``running.app.store``);
- ``Store.open(...)`` / ``Store.over(...)`` used directly.

A use is rewritten whether it is a call or a bound method passed along. Strings and comments are
left alone. Running it twice changes nothing (``store.audit`` is not a verb), so it can be run
again on a merged tree to migrate call sites written meanwhile.

    python scripts/store_calls.py                 rewrite bot/ tests/ benchmarks/ in place, then
                                                  `ruff format` the files it changed
    python scripts/store_calls.py --check         list what would change; exit 1 if anything would
    python scripts/store_calls.py --uses          the repositories each class uses, as a table
    python scripts/store_calls.py PATH ...        only these files or folders
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("bot", "tests", "benchmarks")
SKIP = ("bot/store/",)  # the repositories themselves

# repository attribute of Store -> the verbs it holds
REPOSITORIES: dict[str, tuple[str, ...]] = {
    "db": ("schema_version", "check_integrity", "on_audit"),
    "lease": ("acquire_lease", "renew_lease", "release_lease"),
    "messages": (
        "is_handled",
        "mark_handled",
        "forget_handled_before",
        "room_cursor",
        "room_cursors",
        "advance_room_cursor",
        "last_handled_at",
        "lower_room_cursor",
        "forget_room",
    ),
    "audit": (
        "append_audit",
        "record_action",
        "audit_records",
        "audit_records_checked",
        "verify_audit",
        "verify_audit_checked",
        "audit_head",
        "case_number",
        "case_known",
    ),
    "evidence": (
        "store_evidence",
        "evidence_for_message",
        "evidence_rows",
        "all_evidence_rows",
        "erase_expired_evidence",
        "erase_user_evidence",
        "place_hold",
        "release_hold",
        "active_holds",
        "user_id_known",
        "user_ids_for_username",
    ),
    "alerts": (
        "raise_alert",
        "due_deliveries",
        "delivery_done",
        "delivery_retry",
        "delivery_failed",
        "sent_since",
        "hold_delivery",
        "digest_recipients",
        "open_digest",
        "digest_sent",
        "resolve_alert",
        "bump_alert",
        "alert_kind",
        "pending_deliveries",
        "undeliverable_count",
        "failed_deliveries",
        "alert_deliveries",
        "expire_alert_excerpts",
        "redact_author_alerts",
        "count_unscannable",
        "unscannable_rooms",
    ),
    "reports": (
        "reports_by_reporter_since",
        "file_report",
        "set_report_native",
        "report",
        "report_for_target",
        "report_for_alert",
        "open_reports",
        "open_report_count",
        "close_report",
    ),
    "state": ("state_get", "state_set"),
    "policies": (
        "add_policy_version",
        "latest_policy_versions",
        "policy_history",
        "record_policy_message",
        "retire_policy_message",
        "live_policy_messages",
        "is_policy_message",
        "policy_banners",
        "set_policy_banner",
        "claim_policy_dm",
        "release_policy_dm",
    ),
    "sanctions": (
        "add_strike",
        "set_strike_step",
        "strikes",
        "live_strike_count",
        "pardon_strikes",
        "begin_mute",
        "mute",
        "set_mute_state",
        "discard_mute",
        "live_mutes",
        "due_mutes",
        "next_mute_due",
        "begin_room_lock",
        "room_locked",
        "room_lock",
        "locked_rooms",
        "end_room_lock",
        "hold_message",
        "held_message",
        "held_by_mid",
        "mark_restored",
    ),
    "bans": ("add_ban", "active_ban", "active_bans", "lift_ban", "discard_ban"),
    "blocks": (
        "block_user",
        "unblock_user",
        "blocked_user",
        "blocked_users",
        "queue_block_retry",
        "note_block_in_flight",
        "due_block_retries",
        "block_retry_done",
        "has_enforcement_evidence",
    ),
    "purges": (
        "create_purge_job",
        "purge_job",
        "open_purge_jobs",
        "set_purge_state",
        "set_purge_token",
        "add_purge_room",
        "purge_rooms",
        "add_purge_items",
        "purge_items",
        "purge_counts",
        "reconcile_purge_evidence",
        "finish_purge_items",
        "expire_purge_previews",
        "forget_purge_content",
    ),
    "hooks": ("hook_signature_seen", "remember_hook_signature", "hook_signatures_kept"),
}


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for repo, verbs in REPOSITORIES.items():
        for verb in verbs:
            if verb in table:
                raise SystemExit(f"verb {verb!r} is in both {table[verb]!r} and {repo!r}: rename one")
            table[verb] = repo
    clash = set(table) & set(REPOSITORIES)
    if clash:  # a rewritten call would be rewritten again
        raise SystemExit(f"repository names that are also verbs: {sorted(clash)}")
    return table


TABLE = _table()
_STORE_NAME = re.compile(r"^_?(?:\w+_)?store\d*$")


def is_store(node: ast.expr) -> bool:
    """Whether ``node`` names the store (not a repository of it, not anything else)."""
    if isinstance(node, ast.Name):
        return bool(_STORE_NAME.match(node.id))
    if isinstance(node, ast.Attribute):
        return bool(_STORE_NAME.match(node.attr))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        return isinstance(func.value, ast.Name) and func.value.id == "Store" and func.attr in ("open", "over")
    return False


@dataclass(frozen=True, slots=True)
class Edit:
    line: int  # 1-based
    col: int  # byte offset of the verb in its line
    verb: str
    repo: str


def edits(source: str) -> list[Edit]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in TABLE and is_store(node.value):
            assert node.end_lineno is not None and node.end_col_offset is not None
            col = node.end_col_offset - len(node.attr.encode())
            found.append(Edit(node.end_lineno, col, node.attr, TABLE[node.attr]))
    return found


def rewrite(source: str) -> tuple[str, list[Edit]]:
    found = edits(source)
    lines = source.splitlines(keepends=True)
    for e in sorted(found, key=lambda e: (e.line, e.col), reverse=True):
        raw = lines[e.line - 1].encode()
        if raw[e.col : e.col + len(e.verb)] != e.verb.encode():
            raise SystemExit(f"line {e.line}: expected {e.verb!r} at byte {e.col}")
        lines[e.line - 1] = (raw[: e.col] + f"{e.repo}.".encode() + raw[e.col :]).decode()
    return "".join(lines), found


def python_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if ".venv" in f.parts or _skipped(f):
                continue
            yield f


def _skipped(f: Path) -> bool:
    posix = "/" + f.resolve().as_posix()
    return any(f"/{s}" in posix for s in SKIP)


def _shown(f: Path) -> str:
    return str(f.relative_to(Path.cwd())) if f.is_relative_to(Path.cwd()) else str(f)


def uses(files: list[Path]) -> dict[str, set[str]]:
    """Class (or module, for code outside classes) -> the repositories it reaches through the store,
    from call sites in either form (``store.verb`` or ``store.repo.verb``)."""
    found: dict[str, set[str]] = defaultdict(set)
    for f in files:
        tree = ast.parse(f.read_text())
        module = _shown(f)
        owners: dict[ast.AST, str] = {}
        for top in tree.body:
            name = f"{module}:{top.name}" if isinstance(top, ast.ClassDef) else module
            for node in ast.walk(top):
                owners[node] = name
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not is_store(node.value):
                continue
            repo = TABLE.get(node.attr) or (node.attr if node.attr in REPOSITORIES else None)
            if repo is not None:
                found[owners.get(node, module)].add(repo)
    return dict(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / p for p in DEFAULT_PATHS])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a call needs rewriting"
    )
    parser.add_argument("--uses", action="store_true", help="print which repositories each class uses")
    parser.add_argument("--no-format", action="store_true", help="do not run ruff format on changed files")
    args = parser.parse_args(argv)
    files = list(python_files(args.paths))
    if args.uses:
        print("| class or module | repositories |\n|---|---|")
        for owner, repos in sorted(uses(files).items()):
            print(f"| {owner} | {', '.join(sorted(repos))} |")
        return 0
    pending, changed = 0, []
    for f in files:
        source = f.read_text()
        new, found = rewrite(source)
        if not found:
            continue
        pending += len(found)
        for e in found:
            print(f"{_shown(f)}:{e.line}: {e.verb} -> {e.repo}.{e.verb}")
        if not args.check:
            f.write_text(new)
            changed.append(str(f))
    verb = "to rewrite" if args.check else "rewritten"
    print(f"{pending} use(s) {verb}", file=sys.stderr)
    if changed and not args.no_format:
        # A longer call may pass the line limit: the project's formatter rewraps what changed.
        subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", *changed], check=False)
    return 1 if args.check and pending else 0


if __name__ == "__main__":
    sys.exit(main())
