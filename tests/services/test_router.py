"""The router runs, for each event, the handlers of its type and its base types, in the order they
were added, also when routes are added after events have gone through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.metrics import Metrics
from bot.models import Message
from bot.realtime.events import EditedMessage, Event, MessageEvent, NewMessage
from bot.services.router import Router


async def test_each_event_reaches_the_handlers_of_its_types_in_order() -> None:
    calls: list[str] = []

    def handler(name: str) -> Callable[[Event], Awaitable[None]]:
        async def run(event: Event) -> None:
            calls.append(f"{name}:{type(event).__name__}")

        return run

    router = Router(
        Metrics(),
        routes=[("new", (NewMessage,), handler("new")), ("any", (MessageEvent,), handler("any"))],
    )
    m = Message.from_wire({"_id": "m1", "rid": "R", "msg": "x", "ts": {"$date": 1}, "u": {"_id": "u"}})
    await router.dispatch(NewMessage(m))
    await router.dispatch(EditedMessage(m))
    router.add("late", (object,), handler("late"))  # after events of both types went through
    await router.dispatch(NewMessage(m))
    await router.dispatch(EditedMessage(m))
    assert calls == [
        "new:NewMessage",
        "any:NewMessage",
        "any:EditedMessage",
        "new:NewMessage",
        "any:NewMessage",
        "late:NewMessage",
        "any:EditedMessage",
        "late:EditedMessage",
    ]
