"""The image service: uploads held off the ingest path, checked, decided and acted on once."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from bot.audit import actions
from bot.commands.call import Call, Caller
from bot.commands.handlers.images import ImageCommands
from bot.commands.parser import Invocation, parse
from bot.commands.spec import Privilege
from bot.errors import FileRefused
from bot.metrics import Metrics
from bot.models import Message
from bot.realtime.events import MessageEvent
from bot.services.ingest import Ingest
from bot.services.router import Router
from tests.conftest import until
from tests.images.fakes import FakeFiles, World, event, open_store
from tests.images.shapes import ORIGINAL, THUMB, e2e_message, image_message, pdf_message
from tests.services.test_ingest import FakeRest as IngestRest


def audit_of(world: World, action: str) -> list[Any]:
    return [r for r in world.store.audit.audit_records() if r.action == action]


def world(tmp_path: Path, content: bytes | Exception = b"score:0.99", **kw: Any) -> World:
    return World(open_store(tmp_path), FakeFiles({ORIGINAL: content, THUMB: b"thumbnail"}), **kw)


async def test_a_blocked_picture_is_held_then_deleted_with_evidence_and_everyone_told(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.files.gate = asyncio.Event()
    service = w.start()
    raw = image_message(rid="GENERAL")
    ev = event(raw)
    await service.on_event(ev)  # returns at once: the download waits off the ingest path
    assert service.unfinished.held(ev.message.id, ev.message.version)
    assert await until(lambda: len(w.files.fetched) == 1)
    assert w.rest.deleted == []
    w.files.gate.set()
    await service.settled()
    assert not service.unfinished.held(ev.message.id, ev.message.version)
    # Only the upload is fetched, by the path the bot built; the thumbnail is not fetched again.
    assert w.files.fetched == [f"/file-upload/{ORIGINAL}/holiday%20photo%20%231%3F.png"]
    assert w.rest.deleted == [ev.message.id]
    assert w.outbox is not None
    kinds = [n.alert.list for n in w.outbox.sent]
    assert kinds == ["image", "image-removed"]
    alert = w.outbox.texts()[0]
    assert "NSFW score 0.99" in alert and "https://chat.example/channel/general?msg=" in alert
    assert "holiday" not in alert  # never the file name, never the picture
    (deleted,) = audit_of(w, actions.MESSAGE_DELETED)
    (cited,) = deleted.targets["evidence"]
    assert cited["files"][0]["sha256"] == hashlib.sha256(b"score:0.99").hexdigest()
    assert "data" not in cited["files"][0]
    (kept,) = w.store.evidence.evidence_files(cited["id"])
    assert kept.data == b"score:0.99"
    assert w.counts.checked["block"] == 1
    await w.stop()


async def test_a_replay_while_the_check_is_queued_is_not_checked_twice(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.files.gate = asyncio.Event()
    service = w.start()
    ev = event(image_message(rid="GENERAL"))
    await service.on_event(ev)
    await service.on_event(ev)  # a reconnect's replay before the first check ended
    w.files.gate.set()
    await service.settled()
    assert len(w.files.fetched) == 1 and w.rest.deleted == [ev.message.id]
    assert not service.unfinished.held(ev.message.id, ev.message.version)
    await w.stop()


async def test_alert_room_alerts_never_deletes_and_keeps_evidence(tmp_path: Path) -> None:
    w = world(tmp_path)
    service = w.start()
    await service.on_event(event(image_message(rid="RANDOM"), "random"))
    await service.settled()
    assert w.rest.deleted == []
    assert w.outbox is not None and [n.alert.list for n in w.outbox.sent] == ["image"]
    (flagged,) = audit_of(w, actions.IMAGE_FLAGGED)
    assert flagged.outcome == "alert" and flagged.reason["score"] == 0.99
    assert flagged.targets["evidence"][0]["files"][0]["file"] == ORIGINAL
    await w.stop()


async def test_a_listed_picture_is_blocked_even_in_an_alert_room_and_goes_to_the_critical_room(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, b"listed")
    service = w.start()
    await service.on_event(event(image_message(rid="RANDOM"), "random"))
    await service.settled()
    assert len(w.rest.deleted) == 1
    assert w.outbox is not None
    sent = [(n.alert.list, n.alert.severity) for n in w.outbox.sent]
    assert sent == [("image", "critical"), ("image", "critical"), ("image-removed", "low")]
    options = w.outbox.sent[1].to.options  # type: ignore[union-attr]
    assert options is not None and options.notify.room == "staff"
    await w.stop()


async def test_rooms_off_by_default_download_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    service = w.start()
    await service.on_event(event(image_message(rid="ELSEWHERE"), "elsewhere"))
    await service.settled()
    assert w.files.fetched == [] and w.checker.checked == []
    await w.stop()


async def test_encrypted_and_non_image_uploads_are_counted_never_fetched(tmp_path: Path) -> None:
    w = world(tmp_path)
    service = w.start()
    await until(lambda: service.rules is not None)
    await service.on_event(event(e2e_message(rid="GENERAL")))
    await service.on_event(event(pdf_message(rid="GENERAL")))
    big = image_message("msgBig0000000001", rid="GENERAL", size=SETTINGS_MAX + 1)
    await service.on_event(event(big))
    await service.settled()
    assert w.files.fetched == []
    assert dict(w.counts.refused) == {"encrypted": 1, "not_image": 1, "too_large": 1}
    await w.stop()


SETTINGS_MAX = 20 * 2**20


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"refuse:bomb", "bomb"), (b"refuse:corrupt", "corrupt"), (FileRefused("too_slow"), "too_slow")],
)
async def test_refusals_are_counted_per_reason_and_recorded_once(
    tmp_path: Path, content: bytes | Exception, reason: str
) -> None:
    w = world(tmp_path, content)
    service = w.start()
    ev = event(image_message(rid="GENERAL"))
    await service.on_event(ev)
    await service.settled()
    await service.on_event(ev)  # a replay: the refusal is recorded, nothing is fetched again
    await service.settled()
    assert w.counts.refused[reason] == 1 and len(w.files.fetched) == 1
    check = w.store.images.image_check(ev.message.id, ORIGINAL)
    assert check is not None and check.verdict == "refused" and check.state == "done"
    assert w.rest.deleted == [] and w.outbox is not None and w.outbox.sent == []
    await w.stop()


async def test_dry_run_deletes_nothing_tells_no_author_and_says_what_it_would_do(tmp_path: Path) -> None:
    w = world(tmp_path, dry_run=[True])
    service = w.start()
    await service.on_event(event(image_message(rid="GENERAL")))
    await service.settled()
    assert w.rest.deleted == []
    assert w.outbox is not None and [n.alert.list for n in w.outbox.sent] == ["image"]
    assert "Dry run is on: I would delete" in w.outbox.texts()[0]
    (flagged,) = audit_of(w, actions.IMAGE_FLAGGED)
    assert flagged.outcome == "dry-run" and flagged.targets["evidence"]
    await w.stop()


async def test_a_crash_before_the_check_is_finished_neither_deletes_nor_alerts_twice(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    files = FakeFiles({ORIGINAL: b"score:0.99"})
    first = World(store, files)
    service = first.start()
    mark_done = store.images.mark_done

    def crash(check_id: int) -> None:
        raise RuntimeError("the process dies here")

    store.images.mark_done = crash  # type: ignore[method-assign]
    raw = image_message(rid="GENERAL")
    await service.on_event(event(raw))
    await service.settled()
    await first.stop()
    assert first.rest.deleted == [raw["_id"]]
    assert first.outbox is not None and len(first.outbox.sent) == 2  # the alert, the author's notice
    store.images.mark_done = mark_done  # type: ignore[method-assign]

    # The restart: a new process over the same store; catch-up hands it the message again.
    second = World(store, files, rest=first.rest)
    service = second.start()
    await service.on_event(event(raw))
    await service.settled()
    assert first.rest.deleted == [raw["_id"]]  # the second delete found it gone: nothing more
    assert second.outbox is not None and second.outbox.sent == []  # no second alert or notice
    # Deleted once; the second attempt's refusal is recorded as such, and cites no evidence.
    deleted = audit_of(second, actions.MESSAGE_DELETED)
    assert [r.outcome for r in deleted] == ["ok", "failed: error-message-not-found"]
    assert "evidence" not in deleted[1].targets
    assert len(audit_of(second, actions.IMAGE_FLAGGED)) == 1
    assert len(store.evidence.evidence_for_message(raw["_id"])) == 1
    check = store.images.image_check(raw["_id"], ORIGINAL)
    assert check is not None and check.state == "done"

    # Handled again after that (a reconnect's replay): not even fetched.
    fetched = len(files.fetched)
    await service.on_event(event(raw))
    await service.settled()
    assert len(files.fetched) == fetched
    await second.stop()


async def test_an_allowed_picture_is_never_alerted_or_blocked_again(tmp_path: Path) -> None:
    w = world(tmp_path)
    service = w.start()
    first = event(image_message("msgFirst00000001", rid="RANDOM"), "random")
    await service.on_event(first)
    await service.settled()
    check = w.store.images.image_check(first.message.id, ORIGINAL)
    assert check is not None and check.sha256 is not None
    assert w.store.images.allow_image(check.sha256, actor="mod1-id", check_id=check.id)
    assert w.outbox is not None
    sent = len(w.outbox.sent)
    # The same picture again, in a blocking room and an alerting one: nothing is done.
    for mid, rid, name in (
        ("msgAgain00000001", "GENERAL", "general"),
        ("msgAgain00000002", "RANDOM", "random"),
    ):
        await service.on_event(event(image_message(mid, rid=rid), name))
    await service.settled()
    assert len(w.outbox.sent) == sent and w.rest.deleted == []
    assert w.counts.checked["allowed"] == 2
    (allowed,) = audit_of(w, actions.IMAGE_ALLOWED)
    assert allowed.reason == {"sha256": check.sha256}
    await w.stop()


def test_message_files_survive_the_parse_a_service_sees() -> None:
    assert Message.from_wire(image_message()).files[0].id == ORIGINAL


class Woken:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


async def test_allow_on_an_image_alert_whitelists_the_picture_and_closes_the_alert(tmp_path: Path) -> None:
    w = world(tmp_path)
    service = w.start()
    first = event(image_message("msgFirst00000001", rid="RANDOM"), "random")
    await service.on_event(first)
    await service.settled()
    check = w.store.images.image_check(first.message.id, ORIGINAL)
    assert check is not None
    assert w.outbox is not None
    alert = w.outbox.sent[0].alert
    assert ("Allow picture", f"mod allowimage {check.id}") in alert.actions

    outbox = Woken()
    commands = ImageCommands(images=w.store.images, alerts=w.store.alerts, outbox=outbox)  # type: ignore[arg-type]
    reply = await commands.allow_image(call(f"{check.id}"))
    assert f"Image {check.id} allowed" in reply and outbox.woken == 1
    assert "already allowed" in await commands.allow_image(call(f"{check.id}"))
    assert "no checked image" in await commands.allow_image(call("999"))

    # The same picture again, now in a blocking room: not flagged, not deleted.
    sent = len(w.outbox.sent)
    await service.on_event(event(image_message("msgAgain00000001", rid="GENERAL")))
    await service.settled()
    assert len(w.outbox.sent) == sent and w.rest.deleted == []
    await w.stop()


async def test_a_listed_picture_cannot_be_allowed_from_chat(tmp_path: Path) -> None:
    w = world(tmp_path, b"listed")
    service = w.start()
    ev = event(image_message(rid="RANDOM"), "random")
    await service.on_event(ev)
    await service.settled()
    check = w.store.images.image_check(ev.message.id, ORIGINAL)
    assert check is not None and check.verdict == "critical"
    commands = ImageCommands(images=w.store.images, alerts=w.store.alerts, outbox=Woken())  # type: ignore[arg-type]
    assert "does not override" in await commands.allow_image(call(str(check.id)))
    assert check.sha256 is not None and not w.store.images.image_allowed(check.sha256)
    await w.stop()


def call(args: str) -> Call:
    invocation = parse("mod", f"allowimage {args}")
    assert isinstance(invocation, Invocation)
    return Call(Caller("mod1-id", "mod1", "DM"), invocation, Privilege.BOT_MODERATOR)


async def test_ingest_records_a_message_with_uploads_as_handled_only_once_its_check_is_done(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    w.files.gate = asyncio.Event()
    service = w.start()
    router = Router(Metrics(), routes=[("images", (MessageEvent,), service.on_event)])
    ingest = Ingest(
        messages=w.store.messages,
        rest=IngestRest(),
        router=router,
        metrics=Metrics(),
        bot_user_id=lambda: "bot",
        clock=lambda: 1_767_225_900.0,
        unfinished=service.unfinished,
    )
    ev = event(image_message(rid="GENERAL"))
    plain = event(
        {
            "_id": "msgPlain00000001",
            "rid": "GENERAL",
            "msg": "hi",
            "ts": {"$date": 1_767_225_601_000},
            "u": {"_id": "bob-id", "username": "bob"},
            "_updatedAt": {"$date": 1_767_225_601_000},
        }
    )
    async with asyncio.timeout(10):  # a hang guard: handle() never waits for the download
        await ingest.handle(ev)
        await ingest.handle(plain)
    assert await until(lambda: len(w.files.fetched) == 1)
    ingest.flush()
    handled = w.store.messages.is_handled
    assert not handled(ev.message.id, "")  # a crash now reads it again
    w.files.gate.set()
    await service.settled()
    assert await until(
        lambda: not ingest.flush() and handled(ev.message.id, "") and handled("msgPlain00000001", "")
    )
    assert w.rest.deleted == [ev.message.id]
    await w.stop()
