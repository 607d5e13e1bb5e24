"""Store operations per second on both backends: SQLite (a file in a temporary folder, WAL, as the
bot opens it) and PostgreSQL (a throwaway 15 server on a unix socket, started the way the tests
start it, with its default durability: fsync and synchronous_commit on), or the server at --url.

Operations, each its own commit as the bot makes it:
- handled batch: MessageLog.record of 100 handled revisions and one cursor move (ingest's batch);
- audit append: AuditLog.append_audit of one record (chain head read, record, head moved);
- evidence write: AuditLog.append_audit citing one message (evidence row and record together);
- cursor move: MessageLog.advance_room_cursor of one room.

Run: .venv/bin/python -m benchmarks.bench_store [--ops 2000] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import machine_line
from bot.store import Store
from tests.helpers import chat_message


def _rate(n: int, op: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        op(i)
    return n / (time.perf_counter() - start)


def bench(store: Store, ops: int) -> dict[str, float]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batches = max(ops // 10, 20)

    def handled_batch(i: int) -> None:
        marks = [(f"m{i}-{k}", "", "r1", base.timestamp() + i) for k in range(100)]
        store.messages.record(marks, {"r1": base + timedelta(seconds=i)})

    def audit_append(i: int) -> None:
        store.audit.append_audit(actor="rule:spam", action="message.deleted", targets={"mid": f"a{i}"})

    def evidence_write(i: int) -> None:
        message = chat_message(f"e{i}", "u1", "a message kept as evidence", username="alice")
        store.audit.append_audit(actor="rule:spam", action="message.deleted", evidence=[message])

    def cursor_move(i: int) -> None:
        store.messages.advance_room_cursor(f"r{i % 50}", base + timedelta(seconds=i))

    return {
        "handled batch (100 marks)": _rate(batches, handled_batch),
        "audit append": _rate(ops, audit_append),
        "evidence write (+ its audit record)": _rate(ops, evidence_write),
        "cursor move": _rate(ops, cursor_move),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--url", help="an existing PostgreSQL database (emptied tables are not assumed)")
    args = parser.parse_args()
    print(machine_line())
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "rcmod.sqlite3")
        results["sqlite"] = bench(store, args.ops)
        store.close()
    if args.url:
        store = Store.connect(args.url)
        results["postgresql"] = bench(store, args.ops)
        store.close()
    else:
        from tests.backends import PostgresServer

        with tempfile.TemporaryDirectory(prefix="rcmod-pg-") as folder:
            server = PostgresServer(Path(folder), durable=True)
            server.start()
            try:
                store = Store.connect(server.new_database())
                results["postgresql"] = bench(store, args.ops)
                store.close()
            finally:
                server.stop()
    names = list(results["sqlite"])
    print(f"{'operation':<38}{'sqlite ops/s':>14}{'postgresql ops/s':>18}")
    for name in names:
        print(f"{name:<38}{results['sqlite'][name]:>14,.0f}{results['postgresql'][name]:>18,.0f}")


if __name__ == "__main__":
    main()
