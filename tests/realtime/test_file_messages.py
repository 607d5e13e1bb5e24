"""End to end: a member uploads a picture over REST as their client does; the message reaches the
running bot on its realtime stream with the file fields; the bot downloads the very bytes."""

from __future__ import annotations

from pathlib import Path

from bot.sandbox import Sandbox
from tests.conftest import bot_settings, start_bot, until
from tests.helpers import bot_rest, seed_user, upload
from tests.sandbox.test_sandbox_uploads import png


async def test_a_members_upload_reaches_the_bot_and_downloads_whole(sandbox: Sandbox, tmp_path: Path) -> None:
    running = await start_bot(bot_settings(sandbox, tmp_path / "data"))
    rest = bot_rest(sandbox)
    try:
        data = png(640, 480)
        posted = await upload(
            sandbox.url,
            seed_user(sandbox, "carol"),
            "GENERAL",
            data,
            filename="holiday.png",
            content_type="image/png",
            msg="look at this",
        )
        mid = posted["_id"]
        assert await until(lambda: running.recorder.message_ids()[mid] >= 1)
        [message] = [m for m in running.recorder.messages() if m.id == mid]
        assert message.text == "look at this"
        raw = message.raw
        assert raw["file"]["name"] == "holiday.png" and raw["file"]["type"] == "image/png"
        assert [f["name"] for f in raw["files"]] == ["holiday.png", "thumb-holiday.png"]
        [attachment] = raw["attachments"]
        assert attachment["image_type"] == "image/png" and attachment["image_size"] == len(data)
        assert attachment["fileId"] == raw["file"]["_id"]
        # The original is at title_link; image_url is the thumbnail, another file.
        assert attachment["title_link"] == f"/file-upload/{raw['file']['_id']}/holiday.png"
        assert attachment["image_url"] != attachment["title_link"]
        assert await rest.download(attachment["title_link"], max_bytes=1 << 20, timeout=10) == data
    finally:
        await rest.close()
        await running.stop()
