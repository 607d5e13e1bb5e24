"""RestClient.download: a member-chosen file link is fetched only as /file-upload/<id>/<name> on the
configured server, with the bot's headers, under a size cap and a time limit.

The links are untrusted (a member can put any attachment on a message), so refusals are tested
against a second server that must never be asked anything."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.config import Credentials
from bot.errors import ActionRefused, FileRefused, NotFound, PermissionDenied, RetryableError
from bot.rest import RestClient
from bot.rest.client import file_url
from bot.sandbox import Sandbox
from tests.helpers import free_port, seed_user, upload
from tests.sandbox.test_sandbox_uploads import png

SERVER = "https://chat.example.org"


# ---------------------------------------------------------------- which links are fetched


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/file-upload/AbC123/cat.png", f"{SERVER}/file-upload/AbC123/cat.png"),
        ("/file-upload/AbC123/grey%20pic.png", f"{SERVER}/file-upload/AbC123/grey%20pic.png"),
        # encodeURI leaves ? and # in a name; here they stay part of the name.
        ("/file-upload/AbC123/what?.png", f"{SERVER}/file-upload/AbC123/what%3F.png"),
        ("/file-upload/AbC123/a#b.png", f"{SERVER}/file-upload/AbC123/a%23b.png"),
        ("/file-upload/AbC123/a/b.png", f"{SERVER}/file-upload/AbC123/a%2Fb.png"),
        ("/file-upload/AbC123/%E2%9C%93.png", f"{SERVER}/file-upload/AbC123/%E2%9C%93.png"),
        ("/file-upload/AbC123/x@evil.com", f"{SERVER}/file-upload/AbC123/x%40evil.com"),
    ],
)
def test_a_file_link_becomes_a_url_on_the_configured_server(path: str, url: str) -> None:
    assert file_url(SERVER, path) == url
    assert file_url(SERVER + "/", path) == url


@pytest.mark.parametrize(
    "path",
    [
        "http://127.0.0.1:9/file-upload/AbC123/x.png",  # absolute: another host
        "https://chat.example.org/file-upload/AbC123/x.png",  # absolute, even to the same host
        "//evil.example/file-upload/AbC123/x.png",  # scheme-relative
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/api/v1/me",  # another route on the server
        "file-upload/AbC123/x.png",  # not rooted
        "/file-upload/../api/v1/me",
        "/file-upload/AbC123/../../api/v1/me",
        "/file-upload/AbC123/%2E%2E/%2E%2E/api/v1/me",
        "/file-upload/AbC123/..%2F..%2Fapi",
        "/file-upload/AbC123/.",
        "/file-upload/AbC123\\..\\x.png",
        "/file-upload/AbC123/x\\y.png",
        "/file-upload/AbC123/x%5Cy.png",
        "/file-upload/AbC123/x\r\nHost: evil",
        "/file-upload/AbC123/x%0d%0aSet-Cookie:%20a=b",
        "/file-upload/AbC123/x%00.png",
        "/file-upload/AbC123/x y.png",  # raw whitespace: not encodeURI's output
        "/file-upload/AbC123/✓.png",  # raw non-ASCII
        "/file-upload/AbC123/",
        "/file-upload/AbC123",
        "/file-upload//x.png",
        "/file-upload/Ab.C/x.png",
        "/file-upload/" + "A" * 65 + "/x.png",
        "/file-upload/AbC123/" + "a" * 3000,
        "",
    ],
)
def test_links_that_could_reach_elsewhere_are_refused(path: str) -> None:
    with pytest.raises(ActionRefused) as caught:
        file_url(SERVER, path)
    assert caught.value.code == "error-invalid-file-path"


# ---------------------------------------------------------------- against the sandbox


@pytest.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[RestClient]:
    user = seed_user(sandbox, "rcmod.bot")
    client = RestClient(sandbox.url, Credentials(user_id=user["id"], token=user["token"]))
    try:
        yield client
    finally:
        await client.close()


async def test_the_bot_downloads_what_a_member_uploaded(sandbox: Sandbox, bot: RestClient) -> None:
    data = png(300, 200)
    message = await upload(
        sandbox.url,
        seed_user(sandbox, "alice"),
        "GENERAL",
        data,
        filename="q?#1.png",
        content_type="image/png",
    )
    link = message["attachments"][0]["title_link"]
    assert await bot.download(link, max_bytes=len(data), timeout=10) == data
    # The declared size over the cap: refused before the body is read.
    with pytest.raises(FileRefused) as caught:
        await bot.download(link, max_bytes=len(data) - 1, timeout=10)
    assert caught.value.reason == "too_large"
    with pytest.raises(NotFound):
        await bot.download("/file-upload/NoSuchFile/x.png", max_bytes=1000, timeout=10)


async def test_a_file_the_bot_may_not_read_is_permission_denied(sandbox: Sandbox, bot: RestClient) -> None:
    # The bot is in staff; a room it is not in, with files restricted to members, is closed to it.
    mod1 = sandbox.workspace.user_by_username("mod1")
    assert mod1 is not None
    room = sandbox.workspace.create_room("p", "secret", mod1, [mod1.id])
    message = await upload(
        sandbox.url,
        seed_user(sandbox, "mod1"),
        room["_id"],
        png(4, 4),
        filename="s.png",
        content_type="image/png",
    )
    sandbox.workspace.set_setting("FileUpload_Restrict_to_room_members", True)
    with pytest.raises(PermissionDenied) as caught:
        await bot.download(message["attachments"][0]["title_link"], max_bytes=10_000, timeout=10)
    assert caught.value.status == 403
    assert "s.png" not in str(caught.value)  # a member's file name is content: never in errors


# ---------------------------------------------------------------- against a hostile server


class Hostile:
    """A server that answers /file-upload/<id>/... by id with a chosen behaviour, and records
    every request it gets (a second one stands for any host a link must never reach)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""
        self.redirect_to = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, dict(request.headers)))
        behaviours: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "plain": self.plain,
            "endless": self.endless,
            "drip": self.drip,
            "bomb": self.bomb,
            "boom": self.boom,
            "redirect": self.redirect,
            "liar": self.liar,
        }
        parts = request.path.split("/")
        behaviour = behaviours.get(parts[2] if len(parts) > 2 else "")
        return await behaviour(request) if behaviour else web.Response(status=404)

    async def plain(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"12345", content_type="image/png")

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to go by
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b"\0" * 65536)
        return response

    async def drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 1000
        await response.prepare(request)
        for _ in range(1000):
            await response.write(b"x")
            await asyncio.sleep(0.05)
        return response

    async def bomb(self, request: web.Request) -> web.StreamResponse:
        # Ignores the bot's Accept-Encoding: a small gzip body that inflates to 50 MB.
        body = gzip.compress(b"\0" * 50_000_000)
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "image/png"})

    async def boom(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        # As FileUpload.redirectToFile does for S3 or Google Cloud Storage without the proxy
        # setting: 302 to the bucket's signed URL; the last part of the path picks what it is.
        target = request.path.rsplit("/", 1)[-1]
        location = {
            "bucket": f"{self.redirect_to}/bucket/plain/object?X-Amz-Signature=abc",
            "again": f"{self.redirect_to}/bucket/redirect/bucket",
            "file": "file:///etc/passwd",
        }[target]
        raise web.HTTPFound(location=location)

    async def liar(self, request: web.Request) -> web.StreamResponse:
        # Declares a small size, then sends more than the cap: the count catches it.
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"y" * 10_000)
        return response


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Hostile, Hostile]]:
    server, other = Hostile(), Hostile()
    await server.start()
    await other.start()
    server.redirect_to = other.url
    try:
        yield server, other
    finally:
        await server.stop()
        await other.stop()


@pytest.fixture
async def client(servers: tuple[Hostile, Hostile]) -> AsyncIterator[RestClient]:
    rest = RestClient(servers[0].url, Credentials(user_id="botid", token=SecretStr("bot-token")))
    try:
        yield rest
    finally:
        await rest.close()


async def refusal(rest: RestClient, path: str, **kw: Any) -> str:
    with pytest.raises(FileRefused) as caught:
        await rest.download(path, **({"max_bytes": 100_000, "timeout": 5.0} | kw))
    return caught.value.reason


async def test_the_bot_sends_its_headers_and_asks_for_no_coding(
    servers: tuple[Hostile, Hostile], client: RestClient
) -> None:
    server, _ = servers
    assert await client.download("/file-upload/plain/x.png", max_bytes=5, timeout=5) == b"12345"
    [(path, headers)] = server.requests
    assert path == "/file-upload/plain/x.png"
    assert headers["X-User-Id"] == "botid" and headers["X-Auth-Token"] == "bot-token"
    assert headers["Accept-Encoding"] == "identity"
    assert "Cookie" not in headers


async def test_caps_and_limits(servers: tuple[Hostile, Hostile], client: RestClient) -> None:
    assert await refusal(client, "/file-upload/endless/x") == "too_large"
    assert await refusal(client, "/file-upload/liar/x") == "too_large"
    assert await refusal(client, "/file-upload/bomb/x") == "too_large"
    assert await refusal(client, "/file-upload/drip/x", timeout=0.5) == "too_slow"


async def test_server_faults_and_redirects(servers: tuple[Hostile, Hostile], client: RestClient) -> None:
    _, other = servers
    with pytest.raises(RetryableError):
        await client.download("/file-upload/boom/x", max_bytes=1000, timeout=5)
    # The storage's redirect is followed once, as a browser does, but without the bot's token:
    # the signed URL is the whole credential, and the token is for the workspace alone.
    assert await client.download("/file-upload/redirect/bucket", max_bytes=1000, timeout=5) == b"12345"
    [(path, headers)] = other.requests
    assert path == "/bucket/plain/object?X-Amz-Signature=abc"
    assert "X-Auth-Token" not in headers and "X-User-Id" not in headers and "Cookie" not in headers
    assert headers["Accept-Encoding"] == "identity"
    # Only once, and only to http(s).
    for target in ("again", "file"):
        with pytest.raises(ActionRefused) as caught:
            await client.download(f"/file-upload/redirect/{target}", max_bytes=1000, timeout=5)
        assert caught.value.status == 302
    assert len(other.requests) == 2  # the second redirect was not followed


async def test_a_crafted_link_never_reaches_another_host(
    servers: tuple[Hostile, Hostile], client: RestClient
) -> None:
    server, other = servers
    host = other.url.split("://", 1)[1]
    for path in (
        f"{other.url}/file-upload/plain/x",
        f"//{host}/file-upload/plain/x",
        f"/file-upload/plain/..%2F..%2F{host}",
        f"/file-upload/plain/x\\@{host}",
        f"/file-upload/plain/x%0d%0aHost:%20{host}",
    ):
        with pytest.raises(ActionRefused):
            await client.download(path, max_bytes=1000, timeout=5)
    assert other.requests == []
    assert server.requests == []  # refused before any request


async def test_an_unreachable_server_is_retryable() -> None:
    rest = RestClient(f"http://127.0.0.1:{free_port()}", Credentials(user_id="u", token=None))
    try:
        with pytest.raises(RetryableError):
            await rest.download("/file-upload/AbC/x.png", max_bytes=10, timeout=5)
    finally:
        await rest.close()
