"""Each service is handed the repositories it uses, not the whole store: one can be built over a
bare in-memory Database, with no Store at all."""

from __future__ import annotations

import inspect

import pytest

from bot.commands.handlers.dispatch import Dispatcher
from bot.commands.handlers.mod import ModCommands
from bot.commands.handlers.sanctions import SanctionCommands
from bot.moderation import actions as change
from bot.moderation.actions import Action
from bot.services.alerts import KeywordAlerts
from bot.services.enforcement import Enforcer
from bot.services.executor import Executor, Status
from bot.services.ingest import Ingest
from bot.services.names import NameWatch
from bot.services.outbox import Outbox
from bot.services.policies import PolicyKeeper
from bot.services.protections import Protector
from bot.services.purge import Purger
from bot.services.reports import ReportDesk
from bot.services.sanctions import Sanctioner
from bot.store import AuditLog, Database, Store
from bot.web.hook import StoredReplays


class DeleteOnly:
    """A REST client with the one route the test needs."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    async def delete_message(self, rid: str, mid: str) -> None:
        self.deleted.append((rid, mid))


async def test_an_executor_over_an_audit_log_alone_acts_and_audits() -> None:
    db = Database.in_memory()
    audit = AuditLog(db)
    rest = DeleteOnly()
    executor = Executor(rest=rest, audit=audit, retention_days=30)  # type: ignore[arg-type]
    result = await executor.execute(
        Action(
            change.DeleteMessage("r1", "m1"),
            actor="rule:test",
            audit="message.deleted",
            targets={"message": "m1", "room": "r1"},
        )
    )
    assert result.status is Status.DONE
    assert rest.deleted == [("r1", "m1")]
    [record] = audit.audit_records()
    assert (record.action, record.outcome) == ("message.deleted", "ok")
    assert record.targets["message"] == "m1" and record.targets["room"] == "r1"
    db.close()


@pytest.mark.parametrize(
    "service",
    [
        Executor,
        Outbox,
        KeywordAlerts,
        Enforcer,
        Protector,
        Sanctioner,
        Purger,
        PolicyKeeper,
        ReportDesk,
        NameWatch,
        Ingest,
        Dispatcher,
        ModCommands,
        SanctionCommands,
        StoredReplays,
    ],
)
def test_no_service_takes_the_whole_store(service: type) -> None:
    for name, parameter in inspect.signature(service).parameters.items():
        assert name != "store" and parameter.annotation not in (Store, "Store"), (service, name)
