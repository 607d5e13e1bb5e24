"""``rcmod doctor``: check a configuration against the live server, one line per check.

The decisions live in :mod:`bot.ops.checks`; this module fetches what they need, as the bot
itself would see it (logged in with the configured credential), and never changes anything on
the server except opening direct-message rooms with moderators, which the bot does anyway.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import COMMAND_CHANNELS, Settings
from bot.errors import ActionRefused, AuthError, ConfigError, RcmodError, TwoFactorRequired
from bot.ops.checks import (
    SETTING_IDS,
    Check,
    Status,
    parse_version,
    permission_checks,
    setting_checks,
    version_checks,
)
from bot.ops.connect import RestFactory, default_rest, describe, probe
from bot.rest import RestClient

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["default_features", "image_model_check", "local_checks", "run_doctor"]

APP_COMMANDS = frozenset({"report", "mod"})
T = TypeVar("T")


def default_features(settings: Settings) -> frozenset[str]:
    """Every feature, except policies when no policy folder is configured."""
    from bot.ops.checks import ALL_FEATURES

    return ALL_FEATURES if settings.policy.dir is not None else ALL_FEATURES - {"policies"}


async def run_doctor(
    settings: Settings,
    features: Iterable[str],
    *,
    rooms: Iterable[str] = (),
    rest_factory: RestFactory = default_rest,
) -> list[Check]:
    """All checks, server ones first. Raises ConfigError only for a configuration that has no
    server or no credential at all (nothing to check against)."""
    credentials = settings.credentials()
    url = settings.server.url
    assert url is not None  # credentials() checked it
    features = frozenset(features)
    rest = rest_factory(url, credentials)
    try:
        checks = await _server_checks(rest, url, settings, features, list(rooms))
    finally:
        await rest.close()
    return checks + local_checks(settings)


async def _server_checks(
    rest: RestClient, url: str, settings: Settings, features: frozenset[str], rooms: list[str]
) -> list[Check]:
    checks: list[Check] = []
    probed = await probe(rest, url)
    checks.append(
        Check("server reachable", Status.OK if probed.ok else Status.FAIL, probed.sentence, probed.fix)
    )
    if not probed.ok:
        return [*checks, Check("server checks", Status.SKIP, "skipped: the server is not reachable")]
    logged_in, me = await _login_check(rest)
    checks.append(logged_in)
    if me is None:
        return [*checks, Check("server checks", Status.SKIP, "skipped: not logged in")]
    roles = [str(r) for r in me.get("roles") or []]
    checks.append(_bot_role_check(str(me.get("username", "?")), roles))

    version = await _step(checks, "server version", rest.server_info())
    if version is not None:
        checks += version_checks(version.version, features)
        if parse_version(version.version) < (6, 0):
            return [*checks, Check("server checks", Status.SKIP, "skipped: the server is too old")]

    table = await _step(checks, "permissions", rest.permissions())
    if table is not None:
        checks += permission_checks(table, roles, features, version.version if version else None)

    checks += await _command_checks(rest, settings)

    values = await _step(checks, "settings", rest.public_settings(*SETTING_IDS))
    if values is not None:
        checks += setting_checks(values, features, commands=settings.commands.via)

    checks += await _room_checks(rest, settings, rooms)
    checks += await _moderator_checks(rest, settings)
    return checks


async def _login_check(rest: RestClient) -> tuple[Check, dict[str, Any] | None]:
    """The "logged in" check, and the bot's ``me`` when it did log in."""
    try:
        await rest.login()
        me = await rest.me()
    except TwoFactorRequired:
        return Check(
            "logged in",
            Status.FAIL,
            "the bot's password login asks for a two-factor code (e-mail 2FA), which a bot cannot answer",
            "log in with a personal access token instead: server.user_id and RCMOD_AUTH_TOKEN "
            "(rcmod setup makes one)",
        ), None
    except AuthError:
        return Check(
            "logged in",
            Status.FAIL,
            "the server refused the configured credential",
            "check server.user_id and RCMOD_AUTH_TOKEN (or the password); a deleted or "
            "regenerated token must be replaced (RUNBOOK: rotate the token)",
        ), None
    except RcmodError as exc:
        return Check("logged in", Status.FAIL, describe(exc, "me"), "see the message"), None
    username = str(me.get("username", "?"))
    roles = [str(r) for r in me.get("roles") or []]
    return Check("logged in", Status.OK, f"as {username} (roles: {', '.join(roles) or 'none'})"), me


def _bot_role_check(username: str, roles: list[str]) -> Check:
    if "bot" in roles:
        return Check("role bot", Status.OK, "the bot user has the bot role")
    return Check(
        "role bot",
        Status.WARN,
        "the bot user lacks the bot role: REST rate limits and the DDP limits apply to it",
        f"Administration > Users > {username}: add the role bot",
    )


async def _command_checks(rest: RestClient, settings: Settings) -> list[Check]:
    """How commands reach the bot (settings.commands.via), and whether that path is set up."""
    checks: list[Check] = []
    via = settings.commands.via
    commands = await _step(checks, "slash commands", rest.command_names(), quiet=True)
    secret = settings.http.webhook_secret is not None and bool(
        settings.http.webhook_secret.get_secret_value()
    )
    app_installed = commands is not None and commands >= APP_COMMANDS
    checks.append(Check("commands", Status.OK, f"via {via}: {COMMAND_CHANNELS[via]}"))
    checks.append(_webhook_check(secret, app_installed, commands is not None, via))
    if via == "app":
        checks.append(_app_check(app_installed, commands is not None))
    return checks


async def _step(checks: list[Check], name: str, coro: Awaitable[T], *, quiet: bool = False) -> T | None:
    try:
        return await coro
    except RcmodError as exc:
        if not quiet:
            checks.append(Check(name, Status.FAIL, describe(exc, name), "see the message"))
        return None


def _app_check(app_installed: bool, known: bool) -> Check:
    """commands.via = app: the companion app's /report and /mod must be registered."""
    name = "companion app"
    if app_installed:
        return Check(name, Status.OK, "its /report and /mod are registered")
    fix = (
        "install deploy/rc-app (Starter, Pro or Enterprise; Community Edition allows no private apps "
        "since 7.0), or set commands.via = dm"
    )
    if not known:
        return Check(name, Status.WARN, "the server's command list could not be read", fix)
    return Check(name, Status.FAIL, "commands.via is app, but no app registers /report and /mod", fix)


def _webhook_check(secret: bool, app_installed: bool, known: bool, via: str) -> Check:
    name = "webhook secret"
    if via == "app" and not secret:
        return Check(
            name,
            Status.FAIL,
            "commands.via is app, but http.webhook_secret is not set, so every forwarded command is rejected",
            "set RCMOD_WEBHOOK_SECRET to the secret configured in the companion app",
        )
    if app_installed and not secret:
        return Check(
            name,
            Status.FAIL,
            "the companion app's /report and /mod are registered but http.webhook_secret is not set, "
            "so every forwarded command is rejected",
            "set RCMOD_WEBHOOK_SECRET to the secret configured in the companion app",
        )
    if secret and not app_installed:
        if via == "app":  # the companion app check says what is missing
            return Check(name, Status.OK, "set")
        return Check(
            name,
            Status.WARN if known else Status.OK,
            "set, but no companion app command is registered on the server"
            if known
            else "set (the server's command list could not be read)",
            "install the companion app from deploy/ or unset RCMOD_WEBHOOK_SECRET",
        )
    if secret:
        return Check(name, Status.OK, "set, and the companion app is installed")
    return Check(name, Status.OK, f"not used: no companion app, commands arrive via {via}")


async def _room_checks(rest: RestClient, settings: Settings, extra: list[str]) -> list[Check]:
    checks: list[Check] = []
    try:
        subscriptions = await rest.subscriptions()
    except RcmodError as exc:
        return [Check("rooms", Status.FAIL, describe(exc, "subscriptions.get"), "see the message")]
    joined = {str(s.get("name")): str(s.get("rid")) for s in subscriptions if s.get("t") in ("c", "p")}
    if not joined and not settings.moderation.autojoin:
        checks.append(
            Check(
                "rooms",
                Status.FAIL,
                "the bot is a member of no room and autojoin is off, so it sees nothing",
                "invite the bot to the rooms to watch, or set moderation.autojoin = true",
            )
        )
    else:
        checks.append(Check("rooms", Status.OK, f"member of {len(joined)} room(s); autojoin {_on(settings)}"))
    wanted = dict.fromkeys([*extra, *settings.moderation.exempt_rooms])
    for name in sorted(joined):
        if name in wanted:
            continue
        checks.append(await _room_visible(rest, name, joined[name]))
    for name in wanted:
        checks.append(await _room_visible(rest, name, None))
    return checks


def _on(settings: Settings) -> str:
    return "on" if settings.moderation.autojoin else "off"


async def _room_visible(rest: RestClient, name: str, rid: str | None) -> Check:
    label = f"room {name}"
    try:
        room = await (rest.room_info(rid) if rid else rest.room_info_by_name(name))
    except ActionRefused:
        return Check(
            label,
            Status.FAIL,
            "not visible to the bot (no such room, or a private group it is not in)",
            f"check the name, or invite the bot: /invite @bot in {name}",
        )
    except RcmodError as exc:
        return Check(label, Status.FAIL, describe(exc, "rooms.info"), "see the message")
    kind = {"c": "public channel", "p": "private group"}.get(str(room.get("t")), "room")
    detail = f"visible ({kind})"
    if room.get("encrypted"):
        return Check(label, Status.WARN, f"{detail}, end-to-end encrypted: its messages cannot be scanned")
    return Check(label, Status.OK, detail)


async def _moderator_checks(rest: RestClient, settings: Settings) -> list[Check]:
    names = list(settings.moderation.moderators)
    if not names:
        # Without a list, alerts go to the users holding the admin role (PRODUCT.md).
        try:
            names = await rest.users_with_role("admin")
        except RcmodError as exc:
            return [
                Check(
                    "moderators",
                    Status.WARN,
                    f"none configured, and the admins could not be listed ({describe(exc, 'users.list')})",
                    "list moderators in moderation.moderators (or RCMOD_MODERATORS)",
                )
            ]
        if not names:
            return [
                Check(
                    "moderators",
                    Status.FAIL,
                    "none configured and no active admin: alerts reach nobody",
                    "list moderators in moderation.moderators (or RCMOD_MODERATORS)",
                )
            ]
        checks = [
            Check(
                "moderators",
                Status.WARN,
                f"none configured: alerts go to the admins ({', '.join(names)})",
                "list moderators in moderation.moderators (or RCMOD_MODERATORS)",
            )
        ]
    else:
        checks = [Check("moderators", Status.OK, f"{len(names)} configured")]
    for name in names:
        label = f"moderator {name}"
        try:
            user = await rest.user_info(username=name)
        except ActionRefused:
            # Rights are bound to the account the name has when the bot starts: a listed name
            # nobody holds would go to whoever registers it before the next start.
            checks.append(
                Check(
                    label,
                    Status.FAIL,
                    "no such user: it grants nothing now, but whoever registers the name before rcmod "
                    "next starts becomes a bot moderator",
                    "fix or remove the name in moderation.moderators (RCMOD_MODERATORS)",
                )
            )
            continue
        except RcmodError as exc:
            checks.append(Check(label, Status.FAIL, describe(exc, "users.info"), "see the message"))
            continue
        if user.get("active") is False:
            checks.append(
                Check(
                    label,
                    Status.FAIL,
                    "the account is deactivated",
                    "reactivate it or remove it from the list",
                )
            )
            continue
        try:
            await rest.dm_room(name)
        except RcmodError as exc:
            checks.append(
                Check(
                    label,
                    Status.FAIL,
                    f"cannot open a direct message ({describe(exc, 'dm.create')})",
                    "grant create-d to role bot",
                )
            )
            continue
        checks.append(Check(label, Status.OK, "direct messages can be sent"))
    return checks


def local_checks(settings: Settings) -> list[Check]:
    """Checks that need no server: wordlists, store, policy folder, the image model."""
    return [
        _wordlist_check(settings),
        _store_check(settings.storage.data_dir),
        *_policy_check(settings),
        image_model_check(),
    ]


def image_model_check(model_path: Path | None = None) -> Check:
    """The NSFW model as the bot would load it (the file inside the installed package unless
    ``model_path`` says otherwise): present, its checksum verified, and it calls a generated
    plain picture safe. Loading it takes under a second and downloads nothing."""
    # Imported here: numpy, Pillow and the model's packages would add a fifth of a second to
    # every rcmod command's start, and only this check needs them.
    from bot.vision.scorer import MODEL_FIX, NsfwScorer

    name = "image model"
    try:
        scorer = NsfwScorer(model_path=model_path)
    except ConfigError as exc:
        return Check(name, Status.FAIL, str(exc).removesuffix(f": {MODEL_FIX}"), MODEL_FIX)
    score = scorer.score(_plain_picture())
    if not 0.0 <= score < 0.5:
        return Check(
            name,
            Status.FAIL,
            f"the model scores a plain gradient {score:.3f}, as explicit: it does not behave as open_nsfw",
            MODEL_FIX,
        )
    return Check(name, Status.OK, f"open_nsfw loads, checksum verified; a plain gradient scores {score:.4f}")


def _plain_picture() -> Image.Image:
    from PIL import Image

    ramp = Image.linear_gradient("L").resize((320, 240))
    return Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp.rotate(180)))


def _wordlist_check(settings: Settings) -> Check:
    paths = settings.moderation.wordlists
    if not paths:
        return Check(
            "wordlists",
            Status.WARN,
            "none configured: nothing is matched",
            "list files or folders in moderation.wordlists (or RCMOD_WORDLISTS)",
        )
    from bot.moderation import load_matcher

    try:
        load_matcher([str(p) for p in paths])
    except ConfigError as exc:
        return Check(
            "wordlists", Status.FAIL, str(exc), "fix the list named above (rcmod match --explain helps)"
        )
    return Check("wordlists", Status.OK, f"{len(paths)} path(s) compile")


def _store_check(data_dir: Path) -> Check:
    name = "store"
    target = data_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return Check(name, Status.FAIL, f"{data_dir} is not a folder", "set storage.data_dir to a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".rcmod-doctor-"):
            pass
    except OSError as exc:
        return Check(
            name,
            Status.FAIL,
            f"cannot write in {target} ({exc.strerror})",
            f"give the bot's user write access to {data_dir} or change storage.data_dir",
        )
    db = data_dir / "rcmod.sqlite3"
    if db.exists() and not os.access(db, os.W_OK):
        return Check(name, Status.FAIL, f"{db} is read-only", f"chown or chmod {db} for the bot's user")
    where = "exists" if db.exists() else "will be created"
    return Check(name, Status.OK, f"{db} {where}, writable")


def _policy_check(settings: Settings) -> list[Check]:
    folder = settings.policy.dir
    if folder is None:
        return []
    if not folder.is_dir():
        return [Check("policy dir", Status.FAIL, f"{folder} is not a folder", "create it or fix policy.dir")]
    count = len(list(folder.glob("*.md")))
    return [Check("policy dir", Status.OK, f"{count} policy file(s) in {folder}")]
