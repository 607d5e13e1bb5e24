"""Journey: an administrator turns image checks on; members upload pictures as their client does
(rooms.media, then rooms.mediaConfirm); the bot, a real `rcmod run` with the real open_nsfw model,
downloads each one as itself, blocks what a hash list names (exactly or as a near duplicate),
alerts on a score past the threshold, lets a moderator's Allow stand for that picture, counts what
it cannot inspect, and after a restart does none of it twice.

Every picture here is generated and benign. The score path uses a low alert threshold instead of
an explicit picture: a flat skin-coloured square scores about 0.21 with open_nsfw, a landscape of
blocks about 0.0002, so 0.1 separates them."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from PIL import Image

from bot.cli.demo import picture
from bot.vision import decode_image, pdq
from tests.journeys.conftest import World, metric, poll, quiet_for


def _encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _images_config(world: World, sha_list: Path, pdq_list: Path) -> Path:
    return world.write_config(
        f"""
[images]
alert_threshold = 0.1
block_threshold = 0.9
critical_room = "staff"

[[images.rooms]]
rooms = ["general", "random"]
policy = "block"

[[images.hash_lists]]
path = "{sha_list}"
kind = "sha256"

[[images.hash_lists]]
path = "{pdq_list}"
kind = "pdq"
"""
    )


async def test_uploads_blocked_by_hash_lists_alerted_by_score_allowed_and_never_twice(world: World) -> None:
    listed = picture("listed")
    # The same picture, made smaller and saved again as a JPEG: new bytes, the same PDQ neighbourhood.
    near = _encode(Image.open(io.BytesIO(listed)).resize((560, 420)), "JPEG", quality=70)
    skin = picture("skin")
    clean = _encode(Image.open(io.BytesIO(picture("view"))), "JPEG", quality=85)
    broken = picture("view")[:400]  # a truncated upload

    lists = world.tmp / "hashlists"
    lists.mkdir()
    sha_list = lists / "known.sha256"
    sha_list.write_text(f"# exact copies\n{hashlib.sha256(listed).hexdigest()}\n", encoding="utf-8")
    pdq_list = lists / "known.pdq"
    digest, quality = pdq(decode_image(listed, max_bytes=10**7).image)
    assert digest is not None, "the generated picture is too flat for PDQ"
    pdq_list.write_text(f"{digest},{quality}\n", encoding="utf-8")
    # Only the PDQ list can name the near copy: its bytes are not on the SHA-256 list.
    assert hashlib.sha256(near).hexdigest() != hashlib.sha256(listed).hexdigest()

    config = _images_config(world, sha_list, pdq_list)
    env = world.bot_env()
    bot = await world.bot(env, ["run", "--config", str(config)])
    alice, bob, carol, mod1 = await world.persons("alice", "bob", "carol", "mod1")
    general, random = world.seed.room_id("general"), world.seed.room_id("random")

    def image_alerts() -> list[dict[str, Any]]:
        return mod1.replies_containing("*rcmod images")

    # A picture whose exact bytes are on the SHA-256 list: removed, its author told, moderators alerted.
    exact = await alice.upload(random, listed, filename="holiday.png", content_type="image/png")
    assert await poll(lambda: bool(alice.replies_containing("an image in it is not allowed here")), 30), [
        m.get("msg") for m in alice.from_bot()
    ]
    assert exact["_id"] not in {m["_id"] for m in await alice.history(random, "c")}
    assert await poll(lambda: any("known-bad image" in str(a.get("msg")) for a in image_alerts()), 15)
    critical = next(a for a in image_alerts() if "known-bad image" in str(a.get("msg")))
    assert "holiday" not in str(critical.get("msg")), "an alert names the file"
    buttons = [b.get("text") for att in critical.get("attachments") or [] for b in att.get("actions") or []]
    assert "Allow picture" not in buttons, "a listed picture can be allowed from chat"

    # A resized, re-encoded copy: only the PDQ list can know it.
    copy = await bob.upload(general, near, filename="copy.jpg", content_type="image/jpeg")
    assert await poll(lambda: bool(bob.replies_containing("an image in it is not allowed here")), 30)
    assert copy["_id"] not in {m["_id"] for m in await bob.history(general, "c")}

    # A score past the alert threshold but under the block threshold: an alert, the message stays.
    flagged = await carol.upload(random, skin, filename="wall.png", content_type="image/png")
    assert await poll(lambda: any("Alert only" in str(a.get("msg")) for a in image_alerts()), 30)
    scored = next(a for a in image_alerts() if "Alert only" in str(a.get("msg")))
    assert flagged["_id"] in str(scored.get("msg"))
    assert flagged["_id"] in {m["_id"] for m in await carol.history(random, "c")}

    # A moderator allows that picture: the same bytes are never flagged again.
    await mod1.click(scored, "Allow picture")
    assert await poll(lambda: bool(mod1.replies_containing("allowed")), 15), [
        m.get("msg") for m in mod1.from_bot()
    ]
    before = await bot.metrics()
    count = len(image_alerts())
    await carol.upload(random, skin, filename="same-wall.png", content_type="image/png")
    await alice.upload(general, clean, filename="view.jpg", content_type="image/jpeg")
    await bob.upload(general, broken, filename="cut.png", content_type="image/png")

    async def checked_three_more() -> bool:
        now = await bot.metrics()
        done = metric(now, "rcmod_image_files_total") + metric(now, "rcmod_image_files_refused_total")
        was = metric(before, "rcmod_image_files_total") + metric(before, "rcmod_image_files_refused_total")
        return done >= was + 3

    assert await poll(checked_three_more, 30)
    after = await bot.metrics()
    assert metric(after, "rcmod_image_files_total", verdict="allowed") >= 1
    assert metric(after, "rcmod_image_files_total", verdict="clean") >= 1
    assert metric(after, "rcmod_image_files_refused_total", reason="corrupt") == 1
    assert await quiet_for(lambda: len(image_alerts()) == count, 1.5)

    # A restart re-reads nothing into a second deletion or alert; a picture posted while the bot
    # was stopped is checked when it catches up.
    alerts_before = len(image_alerts())
    told_before = len(alice.from_bot()), len(bob.from_bot())
    carol_told = len(carol.replies_containing("an image in it is not allowed here"))
    assert await bot.stop() == 0
    while_away = await carol.upload(general, listed, filename="again.png", content_type="image/png")
    bot = await world.bot(env, ["run", "--config", str(config)])
    assert await poll(
        lambda: len(carol.replies_containing("an image in it is not allowed here")) == carol_told + 1, 30
    )
    assert while_away["_id"] not in {m["_id"] for m in await carol.history(general, "c")}
    # A message after the uploads, to know the restarted bot got that far.
    await alice.send(general, "back after the restart")

    async def caught_up() -> bool:
        return metric(await bot.metrics(), "rcmod_messages_seen_total", outcome="handled") >= 1

    assert await poll(caught_up, 30)
    assert await poll(lambda: len(image_alerts()) >= alerts_before + 2, 15)
    assert await quiet_for(
        lambda: (
            # mod1 reads a critical alert twice: in the DM and in #staff, the critical room.
            len(image_alerts()) == alerts_before + 2
            and (len(alice.from_bot()), len(bob.from_bot())) == told_before
        ),
        2.0,
    )
    after_restart = await bot.metrics()
    # Only the upload posted while the bot was away was checked: nothing before it again.
    assert metric(after_restart, "rcmod_image_files_total") == 1
    assert metric(after_restart, "rcmod_image_files_total", verdict="critical") == 1
    assert await bot.stop() == 0
