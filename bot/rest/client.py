"""An asyncio facade over ``rocketchat_API`` for every REST endpoint the bot uses.

``rocketchat_API`` is synchronous (``requests``), so calls run in a small bounded thread pool with
one client per worker thread (a ``requests.Session`` is not safe to share between threads). A
response hook turns every failed answer into an error from :mod:`bot.errors` *with* its headers,
which ``rocketchat_API``'s own exceptions drop (we need ``X-RateLimit-Reset``). The facade then
applies one policy: retry transport faults with backoff, wait out rate limits, log in again once
on 401 when it has a password, and let refusals through to the caller.

Known defect of ``rocketchat_API`` 3.7.1: GET query strings are joined without URL-encoding, so
every value we send in a query is percent-encoded here first.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
from rocketchat_API.rocketchat import RocketChat

from bot.config import Credentials
from bot.errors import (
    ActionRefused,
    AuthError,
    ConfigError,
    FileRefused,
    RateLimited,
    RcmodError,
    RetryableError,
    TwoFactorRequired,
)
from bot.models import MalformedPayload, Message, parse_date, to_iso
from bot.rest.errors import classify
from bot.rest.session import ServerSession

__all__ = ["Features", "RestClient", "RetryPolicy", "ServerInfo", "file_url"]

log = logging.getLogger("rcmod.rest")
T = TypeVar("T")

# Rocket.Chat's id alphabet; chat.sendMessage accepts an id we choose, which makes retries idempotent.
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


# Random bytes below this are kept, as one character each (the byte modulo the alphabet's size):
# the largest multiple of that size, so every character is equally likely.
_ID_BYTE_LIMIT = 256 - 256 % len(_ID_ALPHABET)


def new_message_id() -> str:
    # One read of the system's randomness per id rather than one per character (secrets.choice):
    # every alert queues a delivery with an id chosen beforehand, on the event path.
    chars: list[str] = []
    while len(chars) < 17:
        for byte in secrets.token_bytes(24):
            if byte < _ID_BYTE_LIMIT:
                chars.append(_ID_ALPHABET[byte % len(_ID_ALPHABET)])
                if len(chars) == 17:
                    break
    return "".join(chars)


def derived_message_id(seed: str) -> str:
    """A message id that is the same for the same ``seed``: a post made on behalf of something
    already recorded (a restored message) cannot be posted twice by a retry."""
    number = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest(), "big")
    chars = []
    for _ in range(17):
        number, i = divmod(number, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[i])
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 15.0
    max_rate_wait: float = 120.0  # beyond this a rate limit is reported instead of waited out


# Features by the server version that introduced them (Rocket.Chat's changelogs).
_FEATURE_VERSIONS: dict[str, tuple[int, int]] = {
    "moderation_console": (6, 2),  # chat.reportMessage files into moderation.*
    "report_user": (6, 4),  # moderation.reportUser
    "preview_urls_param": (6, 4),  # chat.sendMessage previewUrls
    "mute_endpoints": (6, 8),  # rooms.muteUser / rooms.unmuteUser; before: DDP muteUserInRoom
    "room_bans": (8, 3),  # rooms.banUser / rooms.unbanUser; before: the bot kicks and watches
}
MIN_SERVER = (6, 0)


@dataclass(frozen=True, slots=True)
class Features:
    moderation_console: bool = True
    report_user: bool = True
    preview_urls_param: bool = True
    mute_endpoints: bool = True
    room_bans: bool = True


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    features: Features
    notes: tuple[str, ...] = ()

    @classmethod
    def from_version(cls, version: str) -> ServerInfo:
        parts = [int(p) if p.isdigit() else 0 for p in version.split("-")[0].split(".")[:2]]
        major_minor = [*parts, 0, 0][:2]
        have = (major_minor[0], major_minor[1])
        enabled = {name: have >= since for name, since in _FEATURE_VERSIONS.items()}
        notes = [
            f"server {version} is older than {since[0]}.{since[1]}: {name.replace('_', ' ')} switched off"
            for name, since in _FEATURE_VERSIONS.items()
            if not enabled[name]
        ]
        if have < MIN_SERVER:
            notes.insert(0, f"server {version} is older than the supported {MIN_SERVER[0]}.{MIN_SERVER[1]}")
        return cls(version=version, features=Features(**enabled), notes=tuple(notes))


class RestClient:
    def __init__(
        self,
        server_url: str,
        credentials: Credentials,
        *,
        threads: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._url = server_url.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._on_error = on_error  # metrics hook: called with the error class name
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rcmod-rest")
        self._local = threading.local()
        self._auth: dict[str, str] = {}
        if credentials.token is not None and credentials.user_id:
            self._auth = {
                "X-User-Id": credentials.user_id,
                "X-Auth-Token": credentials.token.get_secret_value(),
            }
        self._login_lock = asyncio.Lock()
        self.user_id: str | None = credentials.user_id
        self._settings_cache: dict[str, tuple[float, Any]] = {}
        # The server's clock as its last answer's Date header gave it, and when (monotonic).
        self._server_date: tuple[datetime, float] | None = None
        self._date_header: tuple[str, datetime] | None = None  # the last Date header, parsed

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    # -- plumbing --------------------------------------------------------------------------------

    def _client(self) -> RocketChat:
        rc: RocketChat | None = getattr(self._local, "rc", None)
        if rc is None:
            session = ServerSession(self._url)
            session.hooks["response"].append(self._check_response)
            rc = RocketChat(server_url=self._url, session=session, timeout=self._timeout)
            self._local.rc = rc
        rc.headers = dict(self._auth)
        return rc

    def server_now(self) -> datetime | None:
        """The server's time now, from the last answer's ``Date`` header plus the time since;
        None before any answer carried one. ``Date`` has whole seconds, so this errs early."""
        seen = self._server_date
        if seen is None:
            return None
        date, at = seen
        return date + timedelta(seconds=max(0.0, time.monotonic() - at))

    def _note_server_date(self, response: requests.Response) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        # Date has whole seconds: most answers repeat the last one, parsed already.
        seen = self._date_header
        if seen is not None and seen[0] == header:
            date = seen[1]
        else:
            try:
                date = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                return  # a proxy's odd header: keep the last good one
            if date.tzinfo is None:
                return
            self._date_header = (header, date)
        self._server_date = (date, time.monotonic())

    def _check_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._note_server_date(response)
        if response.status_code >= 400:
            endpoint = response.url.split("?")[0].rsplit("/", 1)[-1] if response.url else "?"
            raise classify(
                response.status_code,
                response.text,
                dict(response.headers),
                endpoint=endpoint,
                now_ms=int(self._clock() * 1000),
            )

    def _run_sync(self, endpoint: str, fn: Callable[[RocketChat], Any]) -> Any:
        try:
            result = fn(self._client())
        except RcmodError:
            raise
        except requests.RequestException as exc:
            raise RetryableError(f"{endpoint}: {type(exc).__name__}") from exc
        if not isinstance(result, dict):
            raise RetryableError(f"{endpoint}: answer is not a JSON object")
        if result.get("success") is False:
            raise classify(400, _dumps(result), {}, endpoint=endpoint, now_ms=int(self._clock() * 1000))
        return result

    async def call(self, endpoint: str, fn: Callable[[RocketChat], Any]) -> dict[str, Any]:
        """Run one request with the retry policy. ``fn`` gets this thread's RocketChat client."""
        loop = asyncio.get_running_loop()
        delay = self._retry.initial_delay
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            try:
                result: dict[str, Any] = await loop.run_in_executor(self._pool, self._run_sync, endpoint, fn)
                return result
            except RateLimited as exc:
                self._count(exc)
                if exc.retry_after > self._retry.max_rate_wait or attempt >= self._retry.attempts * 4:
                    raise
                log.warning("rest %s rate limited; waiting %.1f s", endpoint, exc.retry_after)
                await self._sleep(exc.retry_after)
            except RetryableError as exc:
                self._count(exc)
                if attempt >= self._retry.attempts:
                    raise
                log.warning("rest %s failed (%s); retry %d in %.1f s", endpoint, exc, attempt, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._retry.max_delay)
            except AuthError as exc:
                self._count(exc)
                if relogged or self._credentials.password is None:
                    raise
                relogged = True
                await self.login()
            except RcmodError as exc:
                self._count(exc)
                raise

    def _count(self, exc: RcmodError) -> None:
        if self._on_error is not None:
            self._on_error(type(exc).__name__)

    async def login(self, code: str | None = None) -> None:
        """Password login over REST (a personal access token needs none). ``code`` answers a
        second factor (an e-mailed code); without it a 2FA account raises TwoFactorRequired."""
        creds = self._credentials
        if creds.password is None or creds.username is None:
            if not self._auth:
                raise ConfigError("server.auth_token: missing")
            return
        async with self._login_lock:
            password = creds.password.get_secret_value()
            username = creds.username

            body = {"user": username, "password": password}
            if code:
                body["code"] = code

            def do_login(rc: RocketChat) -> Any:
                rc.headers = {}
                return rc.call_api_post("login", body=body)

            loop = asyncio.get_running_loop()
            try:
                data = await loop.run_in_executor(self._pool, self._login_sync, do_login)
            except TwoFactorRequired:
                raise  # a person has to act on this one: keep what the server asked for
            except AuthError as exc:
                raise AuthError("login refused for the configured username and password") from exc
            self.user_id = data["userId"]
            self._auth = {"X-User-Id": data["userId"], "X-Auth-Token": data["authToken"]}

    def _login_sync(self, fn: Callable[[RocketChat], Any]) -> dict[str, Any]:
        try:
            result = fn(self._client())
        except requests.RequestException as exc:
            raise RetryableError(f"login: {type(exc).__name__}") from exc
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, dict) or "authToken" not in data:
            raise AuthError("login: unexpected answer")
        return data

    # -- endpoints -------------------------------------------------------------------------------

    async def server_info(self) -> ServerInfo:
        data = await self.call("info", lambda rc: rc.info())
        version = data.get("version") or (data.get("info") or {}).get("version")
        if not isinstance(version, str):
            raise RetryableError("info: no version in the answer")
        return ServerInfo.from_version(version)

    async def me(self) -> dict[str, Any]:
        return await self.call("me", lambda rc: rc.me())

    async def subscriptions(self) -> list[dict[str, Any]]:
        data = await self.call("subscriptions.get", lambda rc: rc.subscriptions_get())
        return [s for s in data.get("update", []) if isinstance(s, dict)]

    async def room_info(self, rid: str) -> dict[str, Any]:
        data = await self.call("rooms.info", lambda rc: rc.call_api_get("rooms.info", roomId=_q(rid)))
        room = data.get("room")
        if not isinstance(room, dict):
            raise RetryableError("rooms.info: no room in the answer")
        return room

    async def room_by_name(self, name: str) -> dict[str, Any]:
        data = await self.call("rooms.info", lambda rc: rc.call_api_get("rooms.info", roomName=_q(name)))
        room = data.get("room")
        if not isinstance(room, dict) or "_id" not in room:
            raise RetryableError("rooms.info: no room in the answer")
        return room

    async def public_settings(self, *ids: str) -> dict[str, Any]:
        """The public settings asked for, each read at most once a minute.

        settings.public needs no login, so the server's rate limiter knows no user there and the
        bot's api-bypass-rate-limit does not apply: 10 calls a minute per client address
        (ApiClass.ts). The policy keeper, the approval watch and start-up all ask; a cache keeps
        them together well under that, and a setting an admin changes is seen within the TTL."""
        now = self._clock()
        wanted = [
            i for i in ids if now - self._settings_cache.get(i, (float("-inf"), None))[0] >= _SETTINGS_TTL
        ]
        if wanted:
            # One call for every setting the bot reads, so a start (or a burst of restarts) costs
            # one call, not one per feature that asks.
            wanted = list(dict.fromkeys([*wanted, *_KNOWN_SETTINGS, *self._settings_cache]))
            settings = await self.walk("settings.public", "settings", _id=_q(",".join(wanted)))
            found = {s["_id"]: s.get("value") for s in settings if "_id" in s}
            for i in wanted:  # an id the server does not show is cached as absent, too
                self._settings_cache[i] = (now, found.get(i, _ABSENT))
        out: dict[str, Any] = {}
        for i in ids:
            value = self._settings_cache[i][1]
            if value is not _ABSENT:
                out[i] = value
        return out

    async def join_channel(self, rid: str) -> None:
        await self.call("channels.join", lambda rc: rc.call_api_post("channels.join", roomId=rid))

    async def sync_messages(
        self, rid: str, last_update: datetime
    ) -> tuple[list[Message], list[tuple[str, datetime]]]:
        """Messages updated (new or edited) and deleted in ``rid`` since ``last_update``."""
        data = await self.call(
            "chat.syncMessages",
            lambda rc: rc.call_api_get(
                "chat.syncMessages", roomId=_q(rid), lastUpdate=_q(to_iso(last_update))
            ),
        )
        result = data.get("result") or {}
        updated = _parse_messages(result.get("updated", []), "chat.syncMessages")
        deleted: list[tuple[str, datetime]] = []
        for item in result.get("deleted", []):
            try:
                deleted.append((str(item["_id"]), parse_date(item.get("_deletedAt"), "_deletedAt")))
            except (KeyError, TypeError, MalformedPayload):
                log.warning("chat.syncMessages: skipped a malformed deletion record in room %s", rid)
        return updated, deleted

    async def history(
        self, rid: str, room_type: str, *, oldest: datetime, latest: datetime | None = None, page: int = 100
    ) -> AsyncIterator[Message]:
        """Messages of a room, thread replies included, from newest to oldest within (oldest, latest],
        paging backwards (see walk_history)."""
        if room_type not in ("c", "p", "d"):
            return
        async for message in self.walk_history(rid, room_type, oldest=oldest, latest=latest, page=page):
            if message.ts > oldest:
                yield message

    async def walk_history(
        self, rid: str, room_type: str, *, oldest: datetime | None, latest: datetime | None, page: int = 100
    ) -> AsyncIterator[Message]:
        """Every message the history pages hold between ``oldest`` and ``latest``, newest first,
        each once.

        The boundary timestamp is kept inclusive and the messages already seen there are skipped
        by offset: several messages can share a millisecond across a page boundary, and the
        server may clamp ``count`` to its API_Upper_Count_Limit, so pages can be short."""
        seen: set[str] = set()
        cursor, skip = latest, 0
        while True:
            batch = await self.history_page(
                rid, room_type, oldest=oldest, latest=cursor, offset=skip, count=page
            )
            for message in batch:
                if message.id not in seen:
                    seen.add(message.id)
                    yield message
            # History answers carry no total: a short page may not be the last, an empty one is.
            if not batch:
                return
            boundary = min(m.ts for m in batch)
            at_boundary = sum(1 for m in batch if m.ts == boundary)
            if cursor is not None and boundary == cursor:
                skip += at_boundary  # a whole page in one millisecond: move on by offset
            else:
                cursor, skip = boundary, at_boundary

    async def dm_room(self, username: str) -> str:
        data = await self.call("dm.create", lambda rc: rc.call_api_post("dm.create", username=username))
        room = data.get("room") or {}
        rid = room.get("rid") or room.get("_id")
        if not isinstance(rid, str):
            raise RetryableError("dm.create: no room id in the answer")
        return rid

    async def send_message(
        self,
        rid: str,
        text: str,
        *,
        tmid: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        mid: str | None = None,
    ) -> str:
        """Post as the bot. The id is chosen by us (here, or by the caller's outbox before a crash),
        so a retry after a lost answer cannot double-post."""
        mid = mid or new_message_id()
        message: dict[str, Any] = {"_id": mid, "rid": rid, "msg": text}
        if tmid:
            message["tmid"] = tmid
        if attachments:
            message["attachments"] = attachments
        try:
            await self.call(
                "chat.sendMessage", lambda rc: rc.call_api_post("chat.sendMessage", message=message)
            )
        except RcmodError:
            # A retry whose first attempt landed is refused (duplicate id; servers word it
            # differently), so ask whether our id exists rather than trusting the error.
            if await self.message_exists(mid):
                return mid
            raise
        return mid

    async def message_exists(self, mid: str) -> bool:
        try:
            await self.call("chat.getMessage", lambda rc: rc.call_api_get("chat.getMessage", msgId=_q(mid)))
        except ActionRefused:
            return False
        return True

    async def delete_message(self, rid: str, mid: str) -> None:
        await self.call("chat.delete", lambda rc: rc.chat_delete(rid, mid))

    # -- files members upload --------------------------------------------------------------------

    # The limit is a parameter, not the caller's asyncio.timeout: it also bounds the worker
    # thread's socket reads and closes the response, which cancelling the awaiting task cannot.
    async def download(self, path: str, *, max_bytes: int, timeout: float) -> bytes:  # noqa: ASYNC109
        """The bytes of an uploaded file: ``path`` is a message's ``/file-upload/<id>/<name>``
        link (``title_link``), which a member can craft, so only that shape is fetched, and only
        from the configured server (:func:`file_url`; anything else is refused with
        :class:`ActionRefused` ``error-invalid-file-path`` before any request).

        Authenticated with the ``X-User-Id``/``X-Auth-Token`` headers: the file route
        (requestCanAccessFiles, file-upload/server/lib/FileUpload.ts) reads them when no
        ``rc_uid``/``rc_token`` query or cookie is given. Headers keep the token out of URLs
        (proxy and server logs) and out of a cookie jar. A file the bot may not read is
        :class:`PermissionDenied` (403, e.g. FileUpload_Restrict_to_room_members and the bot is
        not in the room), an unknown id :class:`NotFound`, 5xx and transport faults
        :class:`RetryableError`; none is retried here. Where files live in S3, Google Cloud
        Storage or Aliyun OSS without the server's proxy setting, the route answers 302 to the
        bucket's signed URL (FileUpload.redirectToFile, after its own access check): that one
        redirect is followed, to http(s) only, under the same caps and deadline, and without the
        bot's headers, which are for the workspace alone (the signed URL carries its own
        credential). The target is the server's, not a member's: the member chose only the id
        and name on the workspace's own route. A second redirect is refused.

        Over ``max_bytes`` (the declared Content-Length, or as counted while reading, after any
        content decoding) is ``FileRefused("too_large")``; past ``timeout`` seconds in all,
        ``FileRefused("too_slow")``. Asks for no content coding, so Content-Length is sent."""
        url = file_url(self._url, path)
        loop = asyncio.get_running_loop()
        opened: list[requests.Response] = []
        job = loop.run_in_executor(self._pool, self._download_sync, url, max_bytes, timeout, opened)
        # A download given up on below ends in its thread with an error nobody waits for.
        job.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(job), timeout)
        except TimeoutError:
            for response in opened:
                response.close()  # the thread's read fails at once instead of running on
            exc: RcmodError = FileRefused("too_slow")
            self._count(exc)
            raise exc from None
        except RcmodError as err:
            self._count(err)
            raise

    def _download_sync(
        self, url: str, max_bytes: int, timeout: float, opened: list[requests.Response]
    ) -> bytes:
        deadline = time.monotonic() + timeout
        response = self._get_file(url, {**self._auth, "Accept-Encoding": "identity"}, timeout, opened)
        self._note_server_date(response)
        if response.is_redirect:
            target = urljoin(url, response.headers.get("Location", ""))
            response.close()
            if urlsplit(target).scheme not in ("http", "https"):
                raise ActionRefused(
                    "file-upload: redirect to a non-HTTP location", status=response.status_code
                )
            left = max(0.001, deadline - time.monotonic())
            response = self._get_file(target, {"Accept-Encoding": "identity"}, left, opened)
            if response.is_redirect:
                response.close()
                raise ActionRefused("file-upload: redirected twice", status=response.status_code)
        with response:
            if response.status_code != 200:
                raise classify(
                    response.status_code,
                    "",
                    dict(response.headers),
                    endpoint="file-upload",
                    now_ms=int(self._clock() * 1000),
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FileRefused("too_large", f"declared {declared} bytes")
            body = bytearray()
            try:
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise FileRefused("too_large", f"over {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FileRefused("too_slow")
            except requests.RequestException as exc:
                if time.monotonic() >= deadline:
                    raise FileRefused("too_slow") from exc
                raise RetryableError(f"file-upload: {type(exc).__name__}") from exc
            return bytes(body)

    def _get_file(
        self, url: str, headers: dict[str, str], timeout: float, opened: list[requests.Response]
    ) -> requests.Response:
        """One GET of a file, streamed, redirects not followed, no session cookies sent."""
        session = self._client().session
        try:
            # Not the REST response hook: it would read a whole error body and name the file
            # (member content) as the endpoint in its message. (An empty list would not replace
            # it: requests keeps the session's hooks then.)
            request = requests.Request("GET", url, headers=headers, hooks={"response": [_no_hook]})
            prepared = session.prepare_request(request)
            for name in ("Cookie", "Authorization", "X-User-Id", "X-Auth-Token"):
                if name not in headers:  # only what this request was given: none to a bucket
                    prepared.headers.pop(name, None)
            settings = session.merge_environment_settings(url, {}, True, None, None)
            response: requests.Response = session.send(
                prepared, timeout=timeout, allow_redirects=False, **settings
            )
        except requests.Timeout as exc:
            raise FileRefused("too_slow") from exc
        except requests.RequestException as exc:
            raise RetryableError(f"file-upload: {type(exc).__name__}") from exc
        opened.append(response)
        return response

    # -- workspace administration (rcmod setup / doctor) --------------------------------------------

    async def info(self) -> dict[str, Any]:
        """``GET /api/info`` as answered (no version check): is this a Rocket.Chat server at all?"""
        return await self.call("info", lambda rc: rc.info())

    async def logout(self) -> None:
        await self.call("logout", lambda rc: rc.call_api_post("logout", body={}))

    async def room_info_by_name(self, name: str) -> dict[str, Any]:
        data = await self.call("rooms.info", lambda rc: rc.call_api_get("rooms.info", roomName=_q(name)))
        room = data.get("room")
        if not isinstance(room, dict):
            raise RetryableError("rooms.info: no room in the answer")
        return room

    async def create_user(
        self,
        *,
        username: str,
        name: str,
        email: str,
        password: str,
        roles: list[str],
        join_default_channels: bool = False,
        verified: bool = False,
    ) -> dict[str, Any]:
        """users.create. ``verified`` is stored as given; a verified address opts the user into
        e-mail 2FA on a default server (Auto_Opt_In), so leave it false for accounts that must
        log in with a password unattended."""
        body = {
            "username": username,
            "name": name,
            "email": email,
            "password": password,
            "roles": roles,
            "joinDefaultChannels": join_default_channels,
            "verified": verified,
            "requirePasswordChange": False,
            "sendWelcomeEmail": False,
        }
        data = await self.call("users.create", lambda rc: rc.call_api_post("users.create", body=body))
        user = data.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("_id"), str):
            raise RetryableError("users.create: no user id in the answer")
        return user

    async def delete_user(self, user_id: str) -> None:
        await self.call(
            "users.delete",
            lambda rc: rc.call_api_post("users.delete", body={"userId": user_id, "confirmRelinquish": True}),
        )

    async def permissions(self) -> dict[str, list[str]]:
        """permission id → roles holding it (permissions.listAll)."""
        data = await self.call("permissions.listAll", lambda rc: rc.call_api_get("permissions.listAll"))
        return {
            str(p["_id"]): [str(r) for r in p.get("roles") or []]
            for p in data.get("update", [])
            if isinstance(p, dict) and "_id" in p
        }

    async def update_permissions(self, roles_by_permission: dict[str, list[str]]) -> None:
        """permissions.update *overwrites* each permission's roles: send the whole list."""
        body = {"permissions": [{"_id": k, "roles": v} for k, v in roles_by_permission.items()]}
        await self.call("permissions.update", lambda rc: rc.call_api_post("permissions.update", body=body))

    async def generate_personal_access_token(
        self, token_name: str, *, bypass_two_factor: bool, password: str | None = None
    ) -> str:
        """A 2FA-protected route: with ``password``, answer the password fallback (its SHA-256)."""
        extra: dict[str, str] = {}
        if password is not None:
            digest = hashlib.sha256(password.encode()).hexdigest()
            extra = {"x-2fa-code": digest, "x-2fa-method": "password"}
        body = {"tokenName": token_name, "bypassTwoFactor": bypass_two_factor}

        def generate(rc: RocketChat) -> Any:
            rc.headers = {**rc.headers, **extra}
            return rc.call_api_post("users.generatePersonalAccessToken", body=body)

        data = await self.call("users.generatePersonalAccessToken", generate)
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise RetryableError("users.generatePersonalAccessToken: no token in the answer")
        return token

    async def invite_to_room(self, rid: str, room_type: str, user_id: str) -> None:
        endpoint = "groups.invite" if room_type == "p" else "channels.invite"
        body = {"roomId": rid, "userId": user_id}
        await self.call(endpoint, lambda rc: rc.call_api_post(endpoint, body=body))

    async def command_names(self) -> set[str]:
        """Slash commands the server knows (commands.list; includes those of installed apps)."""
        commands = await self.walk("commands.list", "commands")
        return {str(c["command"]) for c in commands if "command" in c}

    async def update_message(self, rid: str, mid: str, text: str) -> None:
        await self.call(
            "chat.update", lambda rc: rc.call_api_post("chat.update", roomId=rid, msgId=mid, text=text)
        )

    async def user_info(self, *, user_id: str | None = None, username: str | None = None) -> dict[str, Any]:
        params = {"userId": _q(user_id)} if user_id else {"username": _q(username or "")}
        data = await self.call("users.info", lambda rc: rc.call_api_get("users.info", **params))
        user = data.get("user")
        if not isinstance(user, dict):
            raise RetryableError("users.info: no user in the answer")
        return user

    async def users_with_role(self, role: str, *, page: int = 100) -> list[str]:
        """Usernames of active users holding a global role, from users.list.

        roles.getUsersInRole would be direct but needs ``access-permissions``, far more than a bot
        should hold; users.list needs only ``view-d-room``, which the bot role has.
        """
        return [
            str(u["username"])
            for u in await self.all_users(page=page)
            if role in (u.get("roles") or []) and u.get("active", True) and u.get("username")
        ]

    async def all_users(self, *, page: int = 100) -> list[dict[str, Any]]:
        """Every user of users.list (``_id``, ``username``, ``roles``, ``active``...): the one
        route that shows the bot other users' roles (users.info hides them without
        ``view-full-other-user-info``)."""
        return await self.walk("users.list", "users", page=page)

    async def walk(self, endpoint: str, key: str, *, page: int = 100, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated GET route, paging on the answer's ``offset``/``total``.

        The server clamps ``count`` to its ``API_Upper_Count_Limit`` (an admin may set it below
        100), so a short page is no sign of the end: only ``total``, or an empty page, is.
        """
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = await self.call(
                endpoint, functools.partial(_get, endpoint, offset=offset, count=page, **params)
            )
            batch = [item for item in data.get(key, []) if isinstance(item, dict)]
            items += batch
            offset += len(batch)
            total = data.get("total")
            if not batch or (isinstance(total, int) and offset >= total):
                return items

    async def room_moderators(self, rid: str, room_type: str) -> list[str]:
        """Usernames of the room's owners and moderators (room-scoped roles)."""
        endpoint = "groups.roles" if room_type == "p" else "channels.roles"
        data = await self.call(endpoint, lambda rc: rc.call_api_get(endpoint, roomId=_q(rid)))
        out = []
        for entry in data.get("roles", []):
            roles = entry.get("roles") or [] if isinstance(entry, dict) else []
            user = entry.get("u") if isinstance(entry, dict) else None
            if isinstance(user, dict) and ({"owner", "moderator"} & set(roles)) and user.get("username"):
                out.append(str(user["username"]))
        return out

    # -- history walking and purges ------------------------------------------------------

    async def history_page(
        self,
        rid: str,
        room_type: str,
        *,
        oldest: datetime | None,
        latest: datetime | None,
        offset: int = 0,
        count: int = 100,
    ) -> list[Message]:
        """One page of a room's history, thread replies included, newest first, with both bounds
        inclusive."""
        endpoint = {"c": "channels.history", "p": "groups.history", "d": "dm.history"}.get(room_type)
        if endpoint is None:
            raise ActionRefused(f"room type {room_type!r} has no history endpoint", code="error-invalid-room")
        params: dict[str, Any] = {
            "roomId": _q(rid),
            "inclusive": "true",
            "offset": offset,
            "count": count,
            **_WITH_THREAD_REPLIES,
        }
        if oldest is not None:
            params["oldest"] = _q(to_iso(oldest))
        if latest is not None:
            params["latest"] = _q(to_iso(latest))
        data = await self.call(endpoint, functools.partial(_get, endpoint, **params))
        return _parse_messages(data.get("messages", []), endpoint)

    async def public_channels(self, *, page: int = 100) -> list[dict[str, Any]]:
        """Every public channel (channels.list): the bot can read them without joining."""
        return await self.walk("channels.list", "channels", page=page)

    async def clean_history(
        self,
        rid: str,
        *,
        oldest: datetime,
        latest: datetime,
        users: list[str],
        exclude_pinned: bool,
        ignore_threads: bool,
        ignore_discussion: bool = True,
    ) -> int | None:
        """rooms.cleanHistory over ``[oldest, latest]`` (inclusive). ``users`` are usernames.

        ``excludePinned``, ``ignoreThreads`` and ``ignoreDiscussion`` are always sent: newer
        servers prune threads and discussions unless told not to. Returns the server's count
        (None from servers that do not report one).
        """
        body = {
            "roomId": rid,
            "oldest": to_iso(oldest),
            "latest": to_iso(latest),
            "inclusive": True,
            "users": users,
            "excludePinned": exclude_pinned,
            "ignoreThreads": ignore_threads,
            "ignoreDiscussion": ignore_discussion,
        }
        data = await self.call(
            "rooms.cleanHistory", lambda rc: rc.call_api_post("rooms.cleanHistory", body=body)
        )
        count = data.get("count")
        return count if isinstance(count, int) else None

    # -- reports and moderator commands ------------------------------------------------

    async def get_message(self, mid: str) -> Message:
        """chat.getMessage: NotFound for no such message, PermissionDenied for a room the bot
        cannot read."""
        data = await self.call(
            "chat.getMessage", lambda rc: rc.call_api_get("chat.getMessage", msgId=_q(mid))
        )
        try:
            return Message.from_wire(data.get("message"))
        except MalformedPayload as exc:
            raise RetryableError(f"chat.getMessage: {exc}") from exc

    async def report_message(self, mid: str, description: str) -> None:
        """chat.reportMessage: files into the moderation console (6.2+), as the bot."""
        body = {"messageId": mid, "description": description}
        await self.call("chat.reportMessage", lambda rc: rc.call_api_post("chat.reportMessage", body=body))

    async def report_user(self, user_id: str, description: str) -> None:
        body = {"userId": user_id, "description": description}
        await self.call(
            "moderation.reportUser", lambda rc: rc.call_api_post("moderation.reportUser", body=body)
        )

    async def dismiss_reports(
        self, *, msg_id: str | None = None, user_id: str | None = None, reason: str = "", action: str = ""
    ) -> bool:
        """moderation.dismissReports; False when there was nothing (left) to dismiss."""
        body: dict[str, Any] = {"msgId": msg_id} if msg_id else {"userId": user_id}
        if reason:
            body["reason"] = reason
        if action:
            body["action"] = action
        try:
            await self.call(
                "moderation.dismissReports",
                lambda rc: rc.call_api_post("moderation.dismissReports", body=body),
            )
        except ActionRefused as exc:
            if exc.code == "no-reports-found":  # already dismissed (in the console, or a retry)
                return False
            raise
        return True

    async def reports_by_users(
        self, *, oldest: datetime | None = None, page: int = 100
    ) -> list[dict[str, Any]]:
        """moderation.reportsByUsers: open message reports grouped by reported user. Each group
        names one of the user's reported messages only (the first filed): read the others with
        :meth:`user_reported_messages`."""
        params: dict[str, Any] = {}
        if oldest is not None:
            params["oldest"] = _q(to_iso(oldest))
        return await self.walk("moderation.reportsByUsers", "reports", page=page, **params)

    async def user_reported_messages(self, user_id: str, *, page: int = 100) -> list[dict[str, Any]]:
        """moderation.user.reportedMessages, every page: the user's open message reports, one
        entry per message (its newest report: ``_id``, ``message``, ``ts``, ``room``), newest first.

        The route pages over *reports* and deduplicates messages within a page only, so ``count``
        (reports on the page) moves the offset, and a message met again on a later page is skipped.
        """
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            data = await self.call(
                "moderation.user.reportedMessages",
                functools.partial(
                    _get, "moderation.user.reportedMessages", userId=_q(user_id), count=page, offset=offset
                ),
            )
            for entry in data.get("messages", []):
                message = entry.get("message") if isinstance(entry, dict) else None
                mid = message.get("_id") if isinstance(message, dict) else None
                if isinstance(mid, str) and mid not in out:
                    out[mid] = entry
            # Pages may be shorter than asked (API_Upper_Count_Limit): the end is ``total``.
            reports = data.get("count")
            if not isinstance(reports, int) or reports <= 0:
                return list(out.values())
            offset += reports
            if offset >= int(data.get("total", offset)):
                return list(out.values())

    async def add_room_moderator(self, rid: str, room_type: str, user_id: str) -> None:
        endpoint = "groups.addModerator" if room_type == "p" else "channels.addModerator"
        body = {"roomId": rid, "userId": user_id}
        await self.call(endpoint, lambda rc: rc.call_api_post(endpoint, body=body))

    async def room_roles(self, rid: str, room_type: str) -> dict[str, list[str]]:
        """user id → room-scoped roles (owner, moderator, leader) in one room. Keyed by id: a
        username can change hands between this answer and the question."""
        endpoint = "groups.roles" if room_type == "p" else "channels.roles"
        data = await self.call(endpoint, lambda rc: rc.call_api_get(endpoint, roomId=_q(rid)))
        out: dict[str, list[str]] = {}
        for entry in data.get("roles", []):
            if not isinstance(entry, dict) or not isinstance(entry.get("u"), dict):
                continue
            uid = entry["u"].get("_id")
            if isinstance(uid, str):
                out[uid] = [str(r) for r in entry.get("roles") or []]
        return out

    # -- policy announcements ----------------------------------------------------------

    async def pin_message(self, mid: str) -> dict[str, Any]:
        """chat.pinMessage. The answer is the new ``message_pinned`` system message, or the
        original message when it was already pinned (F.1): never the policy message's id."""
        data = await self.call(
            "chat.pinMessage", lambda rc: rc.call_api_post("chat.pinMessage", body={"messageId": mid})
        )
        message = data.get("message")
        return message if isinstance(message, dict) else {}

    async def unpin_message(self, mid: str) -> None:
        """chat.unPinMessage: the bot must be subscribed to the message's room."""
        await self.call(
            "chat.unPinMessage", lambda rc: rc.call_api_post("chat.unPinMessage", body={"messageId": mid})
        )

    async def pinned_message_ids(self, rid: str, *, page: int = 100) -> set[str]:
        """Ids of every pinned message in a room (chat.getPinnedMessages, paged)."""
        messages = await self.walk("chat.getPinnedMessages", "messages", page=page, roomId=_q(rid))
        return {str(m["_id"]) for m in messages if isinstance(m.get("_id"), str)}

    async def save_room_settings(self, rid: str, **settings: Any) -> None:
        """rooms.saveRoomSettings ``{rid, roomAnnouncement, ...}``: needs ``edit-room``. Setting
        the announcement posts a system message every time, so callers compare first (F.2)."""
        body = {"rid": rid, **settings}
        await self.call(
            "rooms.saveRoomSettings", lambda rc: rc.call_api_post("rooms.saveRoomSettings", body=body)
        )

    # -- sanctions: mute, kick, read-only rooms ---------------------------------------------------

    async def mute_user(self, rid: str, user_id: str) -> None:
        """rooms.muteUser (6.8+), needs ``mute-user`` in the room. The member can still read; their
        posts are refused with a bare ``You_have_been_muted``. In a read-only room it only takes back
        an earlier unmute. Not a member: ActionRefused ``error-user-not-in-room``."""
        body = {"roomId": rid, "userId": user_id}
        await self.call("rooms.muteUser", lambda rc: rc.call_api_post("rooms.muteUser", body=body))

    async def unmute_user(self, rid: str, user_id: str) -> None:
        """rooms.unmuteUser (6.8+). Succeeds for someone who was not muted too (and still posts a
        ``user-unmuted`` system message); in a read-only room it lets the member post."""
        body = {"roomId": rid, "userId": user_id}
        await self.call("rooms.unmuteUser", lambda rc: rc.call_api_post("rooms.unmuteUser", body=body))

    async def kick_user(self, rid: str, room_type: str, user_id: str) -> None:
        """channels.kick / groups.kick (needs ``remove-user`` in the room). Refused for a
        non-member (``error-user-not-in-room``) and for the room's last owner
        (``error-you-are-last-owner``); direct messages have no kick."""
        endpoint = {"c": "channels.kick", "p": "groups.kick"}.get(room_type)
        if endpoint is None:
            raise ActionRefused(
                f"room type {room_type!r} has no kick endpoint", code="error-invalid-room-type"
            )
        body = {"roomId": rid, "userId": user_id}
        await self.call(endpoint, lambda rc: rc.call_api_post(endpoint, body=body))

    async def ban_user(self, rid: str, user_id: str) -> None:
        """rooms.banUser (8.3+; older servers answer :class:`NotFound`), needs ``ban-user`` in the
        room. The member is taken out and cannot join again, nor be invited, until unbanned.
        Refused: not a member (``error-user-not-in-room``), banned already
        (``error-user-already-banned``), the room's last owner (``error-you-are-last-owner``)."""
        body = {"roomId": rid, "userId": user_id}
        await self.call("rooms.banUser", lambda rc: rc.call_api_post("rooms.banUser", body=body))

    async def unban_user(self, rid: str, user_id: str) -> None:
        """rooms.unbanUser (8.3+): the user may join again but is not made a member. Someone not
        banned: ActionRefused ``error-user-not-banned``."""
        body = {"roomId": rid, "userId": user_id}
        await self.call("rooms.unbanUser", lambda rc: rc.call_api_post("rooms.unbanUser", body=body))

    async def set_read_only(self, rid: str, read_only: bool) -> None:
        """rooms.saveRoomSettings ``readOnly`` (``edit-room``): only holders of ``post-readonly``
        (admin, owner, moderator) and explicitly unmuted members may post. A change posts a
        ``room-set-read-only`` / ``room-removed-read-only`` system message; no change posts nothing."""
        await self.save_room_settings(rid, readOnly=read_only)

    async def room_muted(self, rid: str) -> list[str]:
        """Usernames muted in the room (rooms.info ``muted``; absent until someone is muted)."""
        muted = (await self.room_info(rid)).get("muted")
        return [str(u) for u in muted] if isinstance(muted, list) else []

    async def users_page(self, offset: int, count: int = 100) -> tuple[list[dict[str, Any]], int]:
        """One page of users.list (needs ``view-d-room``, which the bot role has) and the total.
        Each user has ``_id``, ``username``, ``name``, ``type``, ``active``, ``roles`` and, once
        they have logged in, ``lastLogin`` — never ``reason`` (not in that route's projection)."""
        data = await self.call(
            "users.list", functools.partial(_get, "users.list", offset=offset, count=count)
        )
        users = [u for u in data.get("users", []) if isinstance(u, dict)]
        return users, int(data.get("total", offset + len(users)))

    async def users_by_status(
        self, *, status: str, has_logged_in: bool, user_type: str, offset: int = 0, count: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of users.listByStatus, oldest accounts first, and the total. Its projection
        includes the registration form's ``reason``. Servers before 6.8 answer :class:`NotFound`."""
        params = {
            "status": status,
            "hasLoggedIn": "true" if has_logged_in else "false",
            "type": user_type,
            "sort": _q('{"createdAt":1}'),
            "offset": offset,
            "count": count,
        }
        data = await self.call("users.listByStatus", functools.partial(_get, "users.listByStatus", **params))
        users = [u for u in data.get("users", []) if isinstance(u, dict)]
        return users, int(data.get("total", offset + len(users)))

    async def subscribed_rooms(self) -> list[dict[str, Any]]:
        """rooms.get: every room the bot is subscribed to, whole (``name``, ``fname``, ``topic``,
        ``announcement``, ``description``, ``prid``, ``teamMain``)."""
        data = await self.call("rooms.get", functools.partial(_get, "rooms.get"))
        return [r for r in data.get("update", []) if isinstance(r, dict)]

    async def rooms_updated_since(self, since: datetime) -> dict[str, datetime | None]:
        """rooms.get?updatedSince=: the bot's rooms written after ``since``, each with its
        ``_updatedAt`` (None when the answer's date cannot be read: the caller treats the room as
        changed). A room the answer leaves out was not written since then."""
        data = await self.call(
            "rooms.get", functools.partial(_get, "rooms.get", updatedSince=_q(to_iso(since)))
        )
        rooms: dict[str, datetime | None] = {}
        for room in data.get("update", []):
            rid = room.get("_id") if isinstance(room, dict) else None
            if not isinstance(rid, str):
                continue
            try:
                rooms[rid] = parse_date(room.get("_updatedAt"), "_updatedAt")
            except MalformedPayload:
                rooms[rid] = None
        return rooms

    async def set_user_active(self, user_id: str, active: bool) -> None:
        """users.setActiveStatus (needs ``edit-other-user-active-status``, admin-only by default)."""
        body = {"userId": user_id, "activeStatus": active, "confirmRelinquish": False}
        await self.call(
            "users.setActiveStatus", lambda rc: rc.call_api_post("users.setActiveStatus", body=body)
        )


# channels.history and dm.history leave thread replies out unless asked with exactly 'true'
# (groups.history keeps them unless told 'false'): without it a purge would collect no evidence
# of the replies rooms.cleanHistory still deletes, and scans, previews and catch-up would miss them.
_WITH_THREAD_REPLIES = {"showThreadMessages": "true"}
_SETTINGS_TTL = 60.0  # seconds a public setting is trusted (see RestClient.public_settings)
# The public settings the running bot reads (start-up, policies, the approval watch): read together.
_KNOWN_SETTINGS = (
    "Site_Url",
    "Message_AllowPinning",
    "Message_AllowDeleting",
    "Message_AllowEditing",
    "Message_AllowUnrecognizedSlashCommand",
    "Accounts_ManuallyApproveNewUsers",
)
_ABSENT = object()


# An uploaded file's link (FileUpload.getPath): /file-upload/<id>/<encodeURI(name)>. Upload ids
# are Random.id()s; the server finds the file by id alone and never reads the name.
_FILE_PREFIX = "/file-upload/"
_FILE_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_PATH_CHARS = re.compile(r"[!-~]+")  # printable ASCII without the space: encodeURI's output
INVALID_FILE_PATH = "error-invalid-file-path"


def file_url(server_url: str, path: str) -> str:
    """The URL of a member-chosen file link on the configured server, or ActionRefused.

    Accepted: a server-relative ``/file-upload/<id>/<name>`` in encodeURI's alphabet. Refused:
    absolute URLs and scheme-relative ones (other hosts), backslashes, control characters, any
    ``.``/``..`` segment (raw or percent-encoded). The URL is then built, not passed on: the
    server's own base, the fixed prefix, the checked id, and the name decoded and wholly
    percent-encoded again, so nothing in the name can add a path, query or fragment."""

    def refuse(why: str) -> ActionRefused:
        return ActionRefused(f"file link refused: {why}", code=INVALID_FILE_PATH)

    if not isinstance(path, str) or len(path) > 2048:
        raise refuse("not a short string")
    if not _PATH_CHARS.fullmatch(path):
        raise refuse("characters outside the link alphabet")
    if "\\" in path:
        raise refuse("backslash")
    if not path.startswith(_FILE_PREFIX):
        raise refuse("not a /file-upload/ link on this server")
    file_id, slash, name = path[len(_FILE_PREFIX) :].partition("/")
    if not slash or not _FILE_ID.fullmatch(file_id) or not name:
        raise refuse("no file id and name")
    decoded = unquote(name)
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in decoded):
        raise refuse("encoded control character or backslash")
    for form in (name, decoded):
        if any(segment in (".", "..") for segment in re.split(r"[/?#]", form)):
            raise refuse("dot segment")
    base = server_url.rstrip("/")
    url = f"{base}{_FILE_PREFIX}{file_id}/{quote(decoded, safe='')}"
    if urlsplit(url).netloc != urlsplit(base).netloc:  # cannot happen by construction; cheap to hold
        raise refuse("host changed")
    return url


def _no_hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    return None


def _get(endpoint: str, rc: RocketChat, **params: Any) -> Any:
    """A GET with the parameters bound now (a lambda in a loop would see the last values)."""
    return rc.call_api_get(endpoint, **params)


def _q(value: str) -> str:
    return quote(value, safe="")


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj)


def _parse_messages(items: Any, endpoint: str) -> list[Message]:
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(Message.from_wire(item))
        except MalformedPayload as exc:
            log.warning("%s: skipped a malformed message (%s)", endpoint, exc)
    return out
