"""Uploads as the server takes and serves them: rooms.media then rooms.mediaConfirm (rooms.upload
before 8.0), the message they post, and the /file-upload/ route's access rules and headers.

The answers are the server's end-to-end tests' (apps/meteor/tests/end-to-end/api/rooms.ts,
``/rooms.media``) where they state them, else its source (see the ledger lines)."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox
from bot.sandbox.errors import MeteorError, PlainError
from tests.helpers import seed_user, upload


def png(width: int, height: int) -> bytes:
    """A real (tiny, grey) PNG of that size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def creds(sb: Sandbox, username: str) -> dict[str, str]:
    user = seed_user(sb, username)
    return {"X-User-Id": user["id"], "X-Auth-Token": user["token"]}


def rid(sb: Sandbox, name: str) -> str:
    room = sb.workspace.room_by_id_or_name(name=name)
    assert room is not None
    return str(room["_id"])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def media(
    http: aiohttp.ClientSession,
    sb: Sandbox,
    room: str,
    data: bytes,
    *,
    username: str = "alice",
    field: str = "file",
    filename: str = "1024x1024.png",
    content_type: str = "image/png",
    files: int = 1,
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData(quote_fields=False)
    for _ in range(files):
        form.add_field(field, data, filename=filename, content_type=content_type)
    url = f"{sb.url}/api/v1/rooms.media/{rid(sb, room)}"
    async with http.post(url, data=form, headers=creds(sb, username)) as r:
        assert r.headers["Content-Type"] == "application/json"
        return r.status, await r.json()


async def confirm(
    http: aiohttp.ClientSession,
    sb: Sandbox,
    room: str,
    fid: str,
    body: dict[str, Any],
    username: str = "alice",
) -> tuple[int, dict[str, Any]]:
    url = f"{sb.url}/api/v1/rooms.mediaConfirm/{rid(sb, room)}/{fid}"
    async with http.post(url, json=body, headers=creds(sb, username)) as r:
        return r.status, await r.json()


async def get(
    http: aiohttp.ClientSession, sb: Sandbox, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    # aiohttp asks for gzip by default; a plain download asks for no coding.
    async with http.get(sb.url + path, headers={"Accept-Encoding": "identity"} | (headers or {}), **kw) as r:
        return r.status, dict(r.headers), await r.read()


async def test_media_stores_a_file_and_confirm_posts_it_with_a_thumbnail(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    before = len(sandbox.workspace.messages)
    data = png(1024, 1024)
    status, stored = await media(http, sandbox, "general", data)
    assert status == 200 and stored["success"] is True
    fid, url = stored["file"]["_id"], stored["file"]["url"]
    assert url == f"/file-upload/{fid}/1024x1024.png"
    assert len(sandbox.workspace.messages) == before  # rooms.media alone posts nothing

    status, posted = await confirm(
        http, sandbox, "general", fid, {"msg": "look", "description": "a grey square"}
    )
    assert status == 200 and posted["success"] is True
    message = posted["message"]
    assert message["msg"] == "look" and message["u"]["username"] == "alice"
    [attachment] = message["attachments"]
    assert attachment["image_type"] == "image/png" and attachment["title"] == "1024x1024.png"
    assert attachment["title_link"] == url and attachment["title_link_download"] is True
    assert attachment["fileId"] == fid and attachment["image_size"] == len(data)
    assert attachment["description"] == "a grey square"
    # The picture shown is the thumbnail (fit inside 480x360); the original stays at title_link.
    assert attachment["image_url"] != url and attachment["image_dimensions"] == {"width": 360, "height": 360}
    original, thumb = message["files"]
    assert original == {
        "_id": fid,
        "name": "1024x1024.png",
        "type": "image/png",
        "size": len(data),
        "format": "png",
    }
    assert message["file"] == original
    assert thumb["name"] == "thumb-1024x1024.png" and thumb["typeGroup"] == "thumb"
    assert attachment["image_url"] == f"/file-upload/{thumb['_id']}/1024x1024.png"
    assert message["groupable"] is False

    # Like any message: in the bot's sync and in the room's history.
    bot = creds(sandbox, "rcmod.bot")
    async with http.get(
        f"{sandbox.url}/api/v1/chat.syncMessages",
        params={"roomId": "GENERAL", "lastUpdate": "2000-01-01T00:00:00.000Z"},
        headers=bot,
    ) as r:
        synced = (await r.json())["result"]["updated"]
    assert [m["files"] for m in synced if m["_id"] == message["_id"]] == [message["files"]]
    async with http.get(
        f"{sandbox.url}/api/v1/channels.history", params={"roomId": "GENERAL"}, headers=bot
    ) as r:
        history = (await r.json())["messages"]
    assert any(m["_id"] == message["_id"] and m["attachments"] == [attachment] for m in history)


async def test_a_picture_inside_the_thumbnail_box_is_shown_itself(sandbox: Sandbox) -> None:
    message = await upload(
        sandbox.url,
        seed_user(sandbox, "bob"),
        "GENERAL",
        png(100, 50),
        filename="small.png",
        content_type="image/png",
    )
    [attachment] = message["attachments"]
    assert attachment["image_url"] == attachment["title_link"]
    assert attachment["image_dimensions"] == {"width": 100, "height": 50}
    assert [f["name"] for f in message["files"]] == ["small.png"]


async def test_other_files_get_a_plain_file_attachment(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    status, stored = await media(
        http, sandbox, "general", b"a\nb\n", filename="lst-test.lst", content_type=""
    )
    assert status == 200
    status, posted = await confirm(http, sandbox, "general", stored["file"]["_id"], {})
    [attachment] = posted["message"]["attachments"]
    assert attachment["format"] == "LST" and attachment["title"] == "lst-test.lst"
    assert "image_url" not in attachment
    assert [f["name"] for f in posted["message"]["files"]] == ["lst-test.lst"]
    assert posted["message"]["files"][0]["type"] == "text/plain"


async def test_form_and_file_refusals_answer_as_the_server(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.workspace.set_setting("API_Enable_Rate_Limiter", False)  # more than 10 calls here
    data = png(10, 10)
    status, body = await media(http, sandbox, "general", data, field="test")
    assert (status, body) == (
        400,
        {"success": False, "error": "[invalid-field]", "errorType": "invalid-field"},
    )
    status, body = await media(http, sandbox, "general", data, files=2)
    assert status == 400 and body["success"] is False
    # A form that does not parse (here cut off mid-part) is a 400, never a server fault.
    headers = creds(sandbox, "alice") | {"Content-Type": "multipart/form-data; boundary=XX"}
    cut = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc'
    for raw in (b"garbage", cut):
        async with http.post(f"{sandbox.url}/api/v1/rooms.media/GENERAL", data=raw, headers=headers) as r:
            assert r.status == 400 and (await r.json())["success"] is False

    sandbox.workspace.set_setting("FileUpload_MaxFileSize", len(data) - 1)
    status, body = await media(http, sandbox, "general", data)
    assert status == 400 and body["errorType"] == "error-file-too-large"
    sandbox.workspace.set_setting("FileUpload_MaxFileSize", len(data))  # the cap itself is allowed
    assert (await media(http, sandbox, "general", data))[0] == 200
    sandbox.workspace.set_setting("FileUpload_MaxFileSize", -1)  # -1: no limit
    assert (await media(http, sandbox, "general", data))[0] == 200

    # The default black list holds SVG; a listed type is refused.
    status, body = await media(
        http, sandbox, "general", b"<svg/>", filename="logo.svg", content_type="image/svg+xml"
    )
    assert status == 400 and body["errorType"] == "error-invalid-file-type"
    sandbox.workspace.set_setting("FileUpload_MediaTypeBlackList", "text/plain")
    status, body = await media(http, sandbox, "general", b"x", filename="lst-test.lst", content_type="")
    assert status == 400 and body["errorType"] == "error-invalid-file-type"
    sandbox.workspace.set_setting("FileUpload_MediaTypeWhiteList", "image/*")
    status, body = await media(
        http, sandbox, "general", b"%PDF", filename="a.pdf", content_type="application/pdf"
    )
    assert status == 400 and body["errorType"] == "error-invalid-file-type"
    assert (await media(http, sandbox, "general", data))[0] == 200

    sandbox.workspace.set_setting("FileUpload_Enabled", False)
    status, body = await media(http, sandbox, "general", data)
    assert status == 400 and body["errorType"] == "error-file-upload-disabled"
    sandbox.workspace.set_setting("FileUpload_Enabled", True)

    # Confirm: an unknown file, a caption over Message_MaxAllowedSize.
    status, body = await confirm(http, sandbox, "general", "NoSuchFile", {})
    assert status == 400 and body["errorType"] == "invalid-file"
    status, stored = await media(http, sandbox, "general", data)
    sandbox.workspace.set_setting("Message_MaxAllowedSize", 10)
    status, body = await confirm(
        http, sandbox, "general", stored["file"]["_id"], {"description": "12345678910"}
    )
    assert status == 400 and body["errorType"] == "error-message-size-exceeded"
    status, body = await confirm(
        http, sandbox, "general", stored["file"]["_id"], {"description": "123456789"}
    )
    assert status == 200


async def test_who_may_upload(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    data = png(10, 10)
    # Not logged in: the API's 401.
    form = aiohttp.FormData()
    form.add_field("file", data, filename="a.png", content_type="image/png")
    async with http.post(f"{sandbox.url}/api/v1/rooms.media/GENERAL", data=form) as r:
        assert r.status == 401
    # A room the caller cannot access: the route's forbidden(), before the form is read.
    status, body = await media(http, sandbox, "staff", data, username="alice")
    assert (status, body) == (403, {"success": False, "error": "unauthorized"})
    status, _ = await media(http, sandbox, "staff", data, username="mod1")
    assert status == 200
    status, body = await confirm(http, sandbox, "staff", "any", {}, username="alice")
    assert status == 403
    # A direct message, with FileUpload_Enabled_Direct off.
    dm = sandbox.workspace.create_direct(seed_user(sandbox, "alice")["id"], ["bob"])
    sandbox.workspace.set_setting("FileUpload_Enabled_Direct", False)
    form = aiohttp.FormData()
    form.add_field("file", data, filename="a.png", content_type="image/png")
    async with http.post(
        f"{sandbox.url}/api/v1/rooms.media/{dm['_id']}", data=form, headers=creds(sandbox, "alice")
    ) as r:
        body = await r.json()
    assert r.status == 400 and body["errorType"] == "error-direct-message-file-upload-not-allowed"


async def test_upload_routes_share_the_rest_rate_limit_per_route(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    data = png(4, 4)
    statuses = [(await media(http, sandbox, room, data))[0] for room in ["general", "random"] * 5]
    assert statuses == [200] * 10
    # The limit counts the route (rooms.media/:rid), not each room's path.
    status, body = await media(http, sandbox, "general", data)
    assert status == 429 and body["errorType"] == "error-too-many-requests"


async def test_rooms_upload_posts_in_one_call_until_8_0(http: aiohttp.ClientSession) -> None:
    for version, expected in (("7.10.0", 200), ("8.0.0", 404)):
        async with Sandbox(version=version) as sb:
            form = aiohttp.FormData()
            form.add_field("file", png(8, 8), filename="one.png", content_type="image/png")
            form.add_field("msg", "in one go")
            form.add_field("description", "caption")
            url = f"{sb.url}/api/v1/rooms.upload/GENERAL"
            async with http.post(url, data=form, headers=creds(sb, "alice")) as r:
                assert r.status == expected, version
                body = await r.json()
            if expected == 200:
                message = body["message"]
                assert message["msg"] == "in one go"
                assert message["attachments"][0]["description"] == "caption"
                assert message["file"]["name"] == "one.png"


async def test_the_file_route_answers_with_the_bytes_and_the_stores_headers(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    data = png(20, 10)
    message = await upload(
        sandbox.url,
        seed_user(sandbox, "alice"),
        "GENERAL",
        data,
        filename="grey pic.png",
        content_type="image/png",
    )
    link = message["attachments"][0]["title_link"]
    assert link == f"/file-upload/{message['file']['_id']}/grey%20pic.png"
    status, headers, body = await get(http, sandbox, link, creds(sandbox, "bob"))
    assert status == 200 and body == data
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == str(len(data))
    assert headers["Content-Disposition"] == "inline; filename*=UTF-8''grey%20pic.png"
    assert headers["Content-Security-Policy"] == "default-src 'none'"
    assert headers["Cache-Control"] == "max-age=31536000"
    # The name is not checked: the id finds the file.
    status, _, body = await get(
        http, sandbox, f"/file-upload/{message['file']['_id']}/other", creds(sandbox, "bob")
    )
    assert status == 200 and body == data
    # Asked for gzip, the store compresses and sends no Content-Length.
    status, headers, body = await get(
        http, sandbox, link, creds(sandbox, "bob") | {"Accept-Encoding": "gzip, deflate"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Content-Length" not in headers
    assert gzip.decompress(body) == data
    # Unknown id: 404 with no body.
    status, _, body = await get(http, sandbox, "/file-upload/NoSuchFileId/x.png", creds(sandbox, "bob"))
    assert (status, body) == (404, b"")


async def test_the_file_routes_access_rules(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    ws = sandbox.workspace
    mod1 = seed_user(sandbox, "mod1")
    message = await upload(
        sandbox.url, mod1, rid(sandbox, "staff"), png(8, 8), filename="s.png", content_type="image/png"
    )
    link = message["attachments"][0]["title_link"]

    # FileUpload_ProtectFiles on (the default): no credentials, 403 with no body.
    assert (await get(http, sandbox, link))[::2] == (403, b"")
    assert (await get(http, sandbox, link, {"X-User-Id": mod1["id"], "X-Auth-Token": "wrong"}))[0] == 403
    # Any logged-in user may read it while no restriction is set (alice is not in staff).
    assert (await get(http, sandbox, link, creds(sandbox, "alice")))[0] == 200
    # Restricted to room members: the outsider is refused, a member is not.
    ws.set_setting("FileUpload_Restrict_to_room_members", True)
    assert (await get(http, sandbox, link, creds(sandbox, "alice")))[0] == 403
    assert (await get(http, sandbox, link, creds(sandbox, "mod2")))[0] == 200
    # Credentials as the web client sends them: rc_uid/rc_token in the query, or as cookies.
    mod2 = seed_user(sandbox, "mod2")
    query = {"rc_uid": mod2["id"], "rc_token": mod2["token"]}
    assert (await get(http, sandbox, link, params=query))[0] == 200
    assert (await get(http, sandbox, link, {"Cookie": f"rc_uid={mod2['id']}; rc_token={mod2['token']}"}))[
        0
    ] == 200
    # Restricted to who can access the room: the same here for a private room.
    ws.set_setting("FileUpload_Restrict_to_room_members", False)
    ws.set_setting("FileUpload_Restrict_to_users_who_can_access_room", True)
    assert (await get(http, sandbox, link, creds(sandbox, "alice")))[0] == 403
    assert (await get(http, sandbox, link, creds(sandbox, "mod2")))[0] == 200
    # Protection off: anyone, without credentials.
    ws.set_setting("FileUpload_ProtectFiles", False)
    assert (await get(http, sandbox, link))[0] == 200


def test_the_store_is_bounded() -> None:
    sb = Sandbox()
    ws = sb.workspace
    ws.upload_store_bytes = 100
    alice = seed_user(sb, "alice")["id"]
    ws.insert_upload(alice, "GENERAL", name="a.png", declared_type="image/png", data=b"x" * 60)
    with pytest.raises(PlainError, match="upload store is full"):
        ws.insert_upload(alice, "GENERAL", name="b.png", declared_type="image/png", data=b"x" * 60)


async def test_confirm_takes_only_the_callers_own_file_for_that_room(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, stored = await media(http, sandbox, "general", png(8, 8), filename="mine.png")
    fid = stored["file"]["_id"]
    # Another member cannot post alice's file, nor can alice post it in another room.
    status, body = await confirm(http, sandbox, "general", fid, {}, username="bob")
    assert (status, body["errorType"]) == (400, "invalid-file")
    status, body = await confirm(http, sandbox, "random", fid, {})
    assert (status, body["errorType"]) == (400, "invalid-file")
    # Extra message keys fail sendFileMessage's Match; fileName renames the file.
    status, body = await confirm(http, sandbox, "general", fid, {"bogus": 1})
    assert status == 400 and body["success"] is False
    status, posted = await confirm(http, sandbox, "general", fid, {"fileName": "renamed.png"})
    assert status == 200
    assert posted["message"]["file"]["name"] == "renamed.png"
    assert posted["message"]["attachments"][0]["title_link"] == f"/file-upload/{fid}/renamed.png"


async def test_upload_as_posts_in_process_with_the_same_checks(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    data = png(16, 16)
    message = sandbox.upload_as("bob", "random", data, filename="in.png", content_type="image/png", msg="hi")
    assert message["msg"] == "hi" and message["file"]["name"] == "in.png"
    status, _, body = await get(http, sandbox, message["attachments"][0]["title_link"], creds(sandbox, "bob"))
    assert (status, body) == (200, data)
    with pytest.raises(MeteorError) as caught:
        sandbox.upload_as("bob", "random", b"<svg/>", filename="x.svg", content_type="image/svg+xml")
    assert caught.value.error == "error-invalid-file-type"
