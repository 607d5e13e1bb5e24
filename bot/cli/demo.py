"""``rcmod demo``: the sandbox and the bot in one process, a scripted conversation, narrated.

It shows the foundation at work: members chat, someone edits and deletes, pictures are checked
on this host, the connection drops while people keep talking, and the bot catches up — every
message handled exactly once. The demo checks that claim itself and exits 1 if it does not hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.app import BotApp, Extras
from bot.config import Settings
from bot.realtime.events import (
    Connected,
    Disconnected,
    EditedMessage,
    Event,
    MessageDeleted,
    MessageEvent,
    NewMessage,
    SubscriptionChanged,
    SystemMessage,
    ThreadReply,
)
from bot.sandbox import Sandbox

__all__ = ["run_demo"]


class Narrator:
    """A handler that tells what the bot sees, in ids and names (never message bodies)."""

    def __init__(self, out: TextIO, names: dict[str, str], quiet: bool, started: float) -> None:
        self.out = out
        self.names = names
        self.quiet = quiet
        self.started = started
        self.handled: Counter[tuple[str, str]] = Counter()
        self.deleted: Counter[str] = Counter()
        self.connects = 0
        self.disconnects = 0
        self.muted = False  # during a flood, count instead of narrating every message

    def say(self, line: str) -> None:
        if not self.quiet and not self.muted:
            print(f"[{time.monotonic() - self.started:5.2f}s] {line}", file=self.out, flush=True)

    async def __call__(self, event: Event) -> None:
        if isinstance(event, Connected):
            self.connects += 1
            self.say(
                f"bot: {'reconnected' if event.reconnect else 'connected'}, "
                f"logged in as {self.names.get(event.user_id, event.user_id)}, "
                "subscribed; catching up on every room"
            )
        elif isinstance(event, Disconnected):
            self.disconnects += 1
            self.say(f"bot: connection lost ({event.reason}); reconnecting with backoff")
        elif isinstance(event, MessageDeleted):
            self.deleted[event.mid] += 1
            room = self.names.get(event.rid, event.rid)
            self.say(f"bot: message {event.mid} deleted in #{room} (seen via {event.via})")
        elif isinstance(event, MessageEvent):
            m = event.message
            kind = {
                NewMessage: "new message",
                EditedMessage: "edit",
                ThreadReply: "thread reply",
                SystemMessage: f"system message ({m.type})",
            }.get(type(event), type(event).__name__)
            self.handled[(m.id, kind)] += 1
            self.say(
                f"bot: {kind} {m.id} by {m.author.username} in #{self.names.get(m.rid, m.rid)} "
                f"({len(m.text)} chars) — handled"
            )
        elif isinstance(event, SubscriptionChanged):
            if event.room_type == "d" and event.action == "inserted":
                # A DM's subscription is named after the other person: say so, not "#mod1".
                self.say(f"bot: joined a direct message with {event.name or 'someone'}")
            elif event.room_type != "d":
                self.say(f"bot: subscription {event.action} for #{event.name or event.rid}")


async def _until(predicate: Callable[[], bool], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


WATCHLIST = """# demo notify list: phrases the moderators want to hear about
free crypto
kill
"""
WATCHLIST_OPTIONS = """kind = "notify"
severity = "high"
categories = ["spam", "violence"]

[notify]
users = ["mod1", "mod2"]
"""
ALLOWLIST = "# false positives fixed by the admin\nkill the build\n"
POLICY_BANNER = "Be kind. Report abuse with /report."
POLICY = f"""---
rooms: [general, random]
banner: "{POLICY_BANNER}"
---
**Code of conduct.** Be kind; no harassment, spam or scams. Moderators may remove messages.
"""
ALLOWLIST_OPTIONS = 'kind = "allow"\n'


def picture(kind: str) -> bytes:
    """A generated, benign PNG: ``listed`` (the one on the demo's hash list), ``view`` (a
    different landscape) or ``skin`` (a flat skin-coloured square, which open_nsfw scores ~0.21).
    The image journey posts the same pictures."""
    # Imported here: Pillow is needed by the demo's pictures only.
    import io

    from PIL import Image, ImageDraw

    if kind == "skin":
        img = Image.new("RGB", (640, 480), (224, 172, 140))
    else:
        shift = 0 if kind == "listed" else 7
        img = Image.new("RGB", (800, 600), (30, 90, 160))
        draw = ImageDraw.Draw(img)
        for i in range(0, 800, 40):
            top = (i * 7 + shift * 53) % 600
            draw.rectangle([i, top, i + 30, top + 80], fill=((i * 3 + shift) % 255, 200, (i * 5) % 255))
        draw.ellipse([200 + shift, 150, 600, 450], fill=(240, 200, 40))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _known_bad_list(tmp: Path) -> Path:
    """The operator's known-bad list: the SHA-256 of one (benign) picture."""
    path = tmp / "known-bad.sha256"
    path.write_text(f"# demo: one picture\n{hashlib.sha256(picture('listed')).hexdigest()}\n")
    return path


async def _act_pictures(
    sandbox: Sandbox, app: BotApp, say: Callable[[str], None], check: Callable[[bool, str], None]
) -> None:
    say("-- act 2d: pictures, checked on this host (a hash list and the open_nsfw model) --")

    def upload(user: str, room: str, kind: str) -> str:
        msg = sandbox.upload_as(user, room, picture(kind), filename=f"{kind}.png", content_type="image/png")
        say(f"{user} uploads a picture in #{room} ({kind}.png)")
        return str(msg["_id"])

    mods_before = len(_dms(sandbox, "admin"))
    listed = upload("carol", "general", "listed")
    check(
        await _until(
            lambda: (
                listed not in sandbox.workspace.messages
                and "not allowed here" in _dm_text(sandbox, "carol")
                and "known-bad image" in _dm_text(sandbox, "admin")
            )
        ),
        "the picture on the hash list was deleted, carol told, the moderators (here: the admin) alerted",
    )
    upload("mod2", "general", "view")
    skin = upload("alice", "random", "skin")
    check(
        await _until(lambda: "Alert only" in _dm_text(sandbox, "admin")),
        "the picture scored past the (demo's low) alert threshold: the moderators (here: the admin) alerted",
    )
    check(skin in sandbox.workspace.messages, "an alert only: alice's picture stays")
    clean = app.metrics.image_files.labels("clean")
    check(
        await _until(lambda: clean._value.get() >= 1) and len(_dms(sandbox, "admin")) == mods_before + 2,
        "the landscape was checked and alerted nobody",
    )
    alerts = [m["msg"] for m in _dms(sandbox, "admin") if "Alert only" in m["msg"]]
    for line in (alerts or [""])[-1].splitlines()[:2]:
        say(f"   admin's DM | {line}")


def _dms(sandbox: Sandbox, username: str) -> list[dict[str, Any]]:
    ws = sandbox.workspace
    bot, other = ws.user_by_username("rcmod.bot"), ws.user_by_username(username)
    if bot is None or other is None:
        return []
    rid = "".join(sorted({bot.id, other.id}))
    return [m for m in ws.messages.values() if m["rid"] == rid and m["u"]["_id"] == bot.id]


async def run_demo(out: TextIO, *, quiet: bool = False) -> int:
    started = time.monotonic()
    sandbox = Sandbox()
    url = await sandbox.start()
    info = sandbox.seed_info()
    bot_user = next(u for u in info["users"] if u["username"] == "rcmod.bot")
    names = {r["id"]: r["name"] for r in info["rooms"]}
    names[bot_user["id"]] = bot_user["username"]
    narrator = Narrator(out, names, quiet, started)
    say = narrator.say
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        say(f"check: {what}: {'ok' if ok else 'FAILED'}")
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="rcmod-demo-") as tmp:
        lists = Path(tmp) / "wordlists"
        lists.mkdir()
        (lists / "watch.txt").write_text(WATCHLIST)
        (lists / "watch.toml").write_text(WATCHLIST_OPTIONS)
        policies = Path(tmp) / "policies"
        policies.mkdir()
        settings = Settings.model_validate(
            {
                "server": {"url": url, "user_id": bot_user["id"], "auth_token": bot_user["token"]},
                "storage": {"data_dir": str(Path(tmp) / "data")},
                "http": {"port": 0},
                "moderation": {"wordlists": [str(lists)]},
                "policy": {"dir": str(policies)},
                # Pictures in #general and #random are checked on this host. The alert threshold
                # is low on purpose: only benign generated pictures are shown, and open_nsfw
                # scores a flat skin-coloured square about 0.21, a landscape of blocks ~0.0002.
                "images": {
                    "rooms": [{"rooms": ["general", "random"], "policy": "block"}],
                    "alert_threshold": 0.1,
                    "block_threshold": 0.9,
                    "hash_lists": [{"path": str(_known_bad_list(Path(tmp))), "kind": "sha256"}],
                },
                # The flood protection acts here (a new install only alerts); the seed accounts
                # are minutes old, so probation is off to show the ordinary threshold.
                "protections": {"probation_days": 0, "flood": {"mode": "act", "messages": 10, "seconds": 60}},
                "realtime": {
                    "backoff_initial": 0.2,
                    "backoff_max": 1.0,
                    "room_sub_interval": 0.05,
                    "ping_interval": 5.0,
                    "pong_timeout": 5.0,
                },
            }
        )
        app = BotApp(settings, Extras(handlers=[("narrator", (object,), narrator)]))
        say(
            f"sandbox workspace at {url}; bot {bot_user['username']} starting with list 'watch' "
            "(notify mod1 and mod2)"
        )
        task = asyncio.create_task(app.run())
        try:
            if not await _until(lambda: narrator.connects >= 1 or task.done()):
                say("the bot did not connect")
                return 1
            if task.done():
                task.result()
            posted: list[str] = []

            def post(user: str, room: str, text: str, **kw: Any) -> str:
                msg = sandbox.post_as(user, room, text, **kw)
                say(f"{user} writes in #{room}: {text!r}")
                posted.append(msg["_id"])
                return str(msg["_id"])

            def seen(mid: str) -> bool:
                return any(k[0] == mid for k in narrator.handled)

            say("-- act 1: members chat, edit and delete --")
            first = post("alice", "general", "Good morning everyone!")
            post("bob", "random", "Has anyone seen the release notes?")
            post("carol", "general", "Replying in a thread", tmid=first)
            await _until(lambda: all(seen(mid) for mid in posted))
            sandbox.edit_as("alice", first, "Good morning, everyone!")
            say("alice edits her message")
            doomed = post("bob", "general", "oops, wrong room")
            await _until(lambda: seen(doomed))
            sandbox.delete_as("bob", doomed)
            say("bob deletes his message")
            await _until(lambda: doomed in narrator.deleted and (first, "edit") in narrator.handled)

            say("-- act 2: keyword alerts --")
            post("bob", "random", "Get FREE Crypto now, @all click here https://scam.example")
            check(
                await _until(lambda: len(_dms(sandbox, "mod1")) == 1 and len(_dms(sandbox, "mod2")) == 1),
                "mod1 and mod2 each got one alert DM",
            )
            for line in (_dms(sandbox, "mod1") or [{"msg": ""}])[0]["msg"].splitlines():
                say(f"   mod1's DM | {line}")
            say("bob posts 8 more copies in #random (not narrated one by one)")
            narrator.muted = True
            for i in range(8):
                sandbox.post_as("bob", "random", f"free crypto giveaway #{i}")
            burst = await _until(lambda: "*9 matching messages*" in _dm_text(sandbox, "mod1"), within=15)
            narrator.muted = False
            check(
                burst and len(_dms(sandbox, "mod1")) == 1,
                "the burst became one DM, updated to 9, not 9 DMs",
            )
            post("carol", "general", "Please don't kill the build tonight")
            check(
                await _until(lambda: "kill" in _dm_text(sandbox, "mod1") and len(_dms(sandbox, "mod1")) == 2),
                "a false positive: 'kill the build' alerted",
            )
            (lists / "allow.txt").write_text(ALLOWLIST)
            (lists / "allow.toml").write_text(ALLOWLIST_OPTIONS)
            say("the admin adds 'kill the build' to an allow list and reloads (SIGHUP)")
            check(await app.reload_wordlists(), "wordlists reloaded")
            quiet_mid = post("carol", "general", "Again: don't kill the build")
            await _until(lambda: seen(quiet_mid))
            await asyncio.sleep(0.3)
            check(len(_dms(sandbox, "mod1")) == 2, "the allowed phrase no longer alerts")

            say("-- act 2b: a policy announcement, pinned and kept pinned --")
            (policies / "conduct.md").write_text(POLICY)
            say("the admin adds policies/conduct.md (rooms: general, random; banner: one line)")
            assert app.services is not None
            app.services.policies.request_sync()
            check(
                await _until(
                    lambda: all(
                        len(_pinned(sandbox, room)) == 1 and _announcement(sandbox, room) == POLICY_BANNER
                        for room in ("general", "random")
                    )
                ),
                "the policy is pinned in #general and #random with its banner",
            )
            [pin] = _pinned(sandbox, "general") or [{"_id": ""}]
            sandbox.unpin_as("mod1", pin["_id"])
            say(f"mod1 unpins the policy message {pin['_id']} in #general")
            check(
                await _until(lambda: [m["_id"] for m in _pinned(sandbox, "general")] == [pin["_id"]]),
                "the bot pinned it again at once",
            )
            check(
                await _until(lambda: "unpinned" in _dm_text(sandbox, "admin")),
                "the moderators (here: the admin) were told mod1 unpinned it",
            )
            for line in _dm_text(sandbox, "admin").splitlines():
                say(f"   admin's DM | {line}")

            say(
                "-- act 2c: a flood, stopped (flood protection in act mode: more than 10 messages in 60 s) --"
            )
            sandbox.create_user("mallory", join_default_channels=False)
            sandbox.add_member("general", "mallory")
            say("mallory, a new member, fires 40 messages into #general, 20 a second (not narrated)")
            narrator.muted = True
            delivered = refused = 0
            for i in range(40):
                try:
                    sandbox.post_as("mallory", "general", f"JOIN MY SERVER NOW {i}")
                    delivered += 1
                except Exception:  # the server refuses a muted member's post
                    refused += 1
                await asyncio.sleep(0.05)
            narrator.muted = False
            say(f"the server accepted {delivered} and refused {refused} (mallory was muted)")
            check(
                "mallory" in _muted(sandbox, "general") and refused > 0 and delivered < 40,
                "the flood was stopped: mallory muted in #general, the rest refused",
            )
            check(
                await _until(lambda: "protection — flood" in _dm_text(sandbox, "admin")),
                "the moderators (here: the admin) were told, with what was done",
            )
            flood_dm = [m["msg"] for m in _dms(sandbox, "admin") if "protection — flood" in m["msg"]]
            for line in (flood_dm or [""])[-1].splitlines()[:3]:
                say(f"   admin's DM | {line}")

            await _act_pictures(sandbox, app, say, check)

            say("-- act 3: the network drops; members keep talking while the bot is away --")
            sandbox.refuse_connections(True)
            await sandbox.drop_connections()
            await _until(lambda: narrator.disconnects >= 1, within=5)
            during = [
                post("alice", "general", "Did the bot just go offline?"),
                post("bob", "random", "Posting while it is away"),
                post("mod1", "staff", "Staff note during the outage"),
            ]
            sandbox.edit_as("bob", during[1], "Posting while it is away (edited)")
            say("bob edits his message while the bot is away")
            await asyncio.sleep(0.3)
            sandbox.refuse_connections(False)
            say("-- the network is back --")
            ok = await _until(
                lambda: (
                    narrator.connects >= 2
                    and all(seen(mid) for mid in during)
                    and (during[1], "edit") in narrator.handled
                )
            )
            await asyncio.sleep(0.3)  # let any duplicate re-emits arrive, so the check below sees them
            duplicates = {k: n for k, n in narrator.handled.items() if n > 1}
            missing = [mid for mid in posted if not seen(mid)]
            check(
                ok and not missing and not duplicates, "every message handled exactly once, across the outage"
            )
            print(
                f"summary: {len(posted)} messages narrated, {sum(narrator.handled.values())} message events "
                f"handled, {len(narrator.deleted)} deletion(s), {narrator.connects - 1} reconnect(s), "
                f"{int(app.metrics.alerts.labels('raised')._value.get())} alerts raised, "
                f"{int(app.metrics.alerts.labels('coalesced')._value.get())} coalesced, "
                f"missing {len(missing)}, handled twice {len(duplicates)}",
                file=out,
                flush=True,
            )
            if failures:
                print(f"demo FAILED: {'; '.join(failures)}", file=out)
                return 1
            print("demo ok", file=out)
            return 0
        finally:
            app.stop()
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            await sandbox.stop()


def _dm_text(sandbox: Sandbox, username: str) -> str:
    return "\n".join(m["msg"] for m in _dms(sandbox, username))


def _pinned(sandbox: Sandbox, room_name: str) -> list[dict[str, Any]]:
    room = sandbox.workspace.room_by_id_or_name(name=room_name)
    rid = room["_id"] if room else ""
    return [m for m in sandbox.workspace.messages.values() if m["rid"] == rid and m.get("pinned")]


def _muted(sandbox: Sandbox, room_name: str) -> list[str]:
    room = sandbox.workspace.room_by_id_or_name(name=room_name)
    return list((room or {}).get("muted") or [])


def _announcement(sandbox: Sandbox, room_name: str) -> str:
    room = sandbox.workspace.room_by_id_or_name(name=room_name)
    return str((room or {}).get("announcement") or "")
