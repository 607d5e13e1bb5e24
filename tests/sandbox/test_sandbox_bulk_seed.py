"""The benchmarks' bulk seed: many rooms and members at once, each member able to post where
it was put and the bot in every room."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.sandbox import Sandbox


@pytest.mark.parametrize(("rooms", "members", "per_member"), [(7, 3, 2), (3, 10, 2), (12, 4, 3)])
def test_every_room_has_the_bot_and_a_member_and_members_post_where_they_were_put(
    rooms: int, members: int, per_member: int
) -> None:
    sandbox = Sandbox()
    seeded = sandbox.seed_bulk(rooms, members, rooms_per_member=per_member)
    ws = sandbox.workspace
    bot = ws.user_by_username("rcmod.bot")
    assert bot is not None
    assert len(seeded["rooms"]) == rooms
    assert len(seeded["users"]) == members
    member_ids = {u["id"] for u in seeded["users"]}
    for room in seeded["rooms"]:
        assert (room["id"], bot.id) in ws.subscriptions
        assert any((room["id"], uid) in ws.subscriptions for uid in member_ids)
    for user in seeded["users"]:
        assert len(set(user["rooms"])) == len(user["rooms"]) >= min(per_member, rooms)
        assert ws.user_by_resume(user["token"]) is not None
        name = next(r["name"] for r in seeded["rooms"] if r["id"] == user["rooms"][-1])
        posted = sandbox.post_as(user["username"], name, "hello")
        assert posted["u"]["_id"] == user["id"]


def test_bulk_members_are_not_on_probation() -> None:
    sandbox = Sandbox()
    seeded = sandbox.seed_bulk(2, 2, created_days_ago=30)
    user = sandbox.workspace.users[seeded["users"][0]["id"]]
    assert user.created_at is not None
    assert sandbox.workspace.now() - user.created_at >= timedelta(days=29)
