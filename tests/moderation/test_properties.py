"""Property tests, bounded for CI: few examples, a deadline, derandomized (the same examples every
run, so a failure reproduces and CI never flakes on a new draw).

- DDP frames into the sans-I/O protocol core never raise: bad input becomes FrameRejected, whose
  reason never carries message text.
- Hook bodies never make the bot answer 500, signed or not.
- Config, wordlist and policy file parsers give a clean configuration error or a result.
- Alert text with member-chosen ids and names never holds a live mention and never leaves its
  code spans.
"""

from __future__ import annotations

import asyncio
import json
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_settings
from bot.errors import ConfigError
from bot.models import Room, UserRef
from bot.moderation.alerts import Incident, keyword_actions, render_alert
from bot.moderation.matcher import load_matcher
from bot.moderation.neutralize import excerpt
from bot.moderation.policy import PolicyError, parse_policy_file
from bot.moderation.wordlist import WordlistError, parse_options, parse_terms
from bot.realtime.events import FrameRejected
from bot.realtime.protocol import DDPProtocol
from bot.web.hook import sign

BOUNDED = settings(
    max_examples=60,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SECRET_TEXT = "SECRETTEXT"  # stands for harmful content: it must never reach a log line

# ---------------------------------------------------------------------------- JSON-ish values

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just(SECRET_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["_id", "rid", "msg", "u", "ts", "t", "$date", "x"]), inner, max_size=5
        ),
    ),
    max_leaves=20,
)
dates = st.one_of(
    st.builds(lambda ms: {"$date": ms}, st.integers(-(2**60), 2**60)), st.text(max_size=30), json_values
)
users = st.one_of(
    st.fixed_dictionaries({"_id": st.text(max_size=10), "username": st.text(max_size=10)}), json_values
)
messages = st.fixed_dictionaries(
    {
        "_id": st.one_of(st.text(max_size=17), json_values),
        "rid": st.one_of(st.text(max_size=17), json_values),
        "msg": st.one_of(st.just(SECRET_TEXT), st.text(max_size=40), json_values),
        "u": users,
        "ts": dates,
    },
    optional={
        "t": st.one_of(st.sampled_from(["rm", "uj", "e2e", "r", "room_changed_topic"]), json_values),
        "editedAt": dates,
        "editedBy": users,
        "tmid": json_values,
        "attachments": json_values,
        "mentions": json_values,
        "urls": json_values,
    },
)
event_names = st.one_of(
    st.sampled_from(["__my_messages__", "GENERAL", "GENERAL/deleteMessage", "GENERAL/deleteMessageBulk"]),
    st.sampled_from(["U1/subscriptions-changed", "U1/rooms-changed", "U1/message"]),
    st.text(max_size=20),
)
changed = st.fixed_dictionaries(
    {
        "msg": st.just("changed"),
        "collection": st.one_of(
            st.sampled_from(["stream-room-messages", "stream-notify-room", "stream-notify-user", "users"]),
            json_values,
        ),
        "id": st.just("id"),
        "fields": st.one_of(
            st.fixed_dictionaries(
                {
                    "eventName": st.one_of(event_names, json_values),
                    "args": st.one_of(
                        st.lists(
                            st.one_of(messages, st.lists(messages, max_size=2), json_values), max_size=3
                        ),
                        json_values,
                    ),
                }
            ),
            json_values,
        ),
    }
)
session_frames = st.one_of(
    st.builds(
        lambda kind, rest: {"msg": kind, **rest},
        st.sampled_from(
            ["connected", "failed", "ping", "pong", "result", "ready", "nosub", "error", "added"]
        ),
        st.dictionaries(st.sampled_from(["id", "session", "subs", "error", "result", "reason"]), json_values),
    ),
    st.builds(
        lambda cid, err: {"msg": "result", "id": cid, "error": err},
        st.sampled_from(["1", "2", "3"]),
        json_values,
    ),
)
frames = st.one_of(
    changed.map(json.dumps),
    session_frames.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


@BOUNDED
@given(st.lists(frames, min_size=1, max_size=6))
def test_ddp_frames_never_raise_out_of_the_protocol_core(batch: list[str | bytes]) -> None:
    proto = DDPProtocol(max_message_size=4096)
    proto.connect()
    proto.login_with_token("tok")
    proto.subscribe("stream-room-messages", "__my_messages__")
    proto.call("sendMessage", [{}])
    for data in batch:
        proto.receive_text(data)  # documented: never raises on bad input
        for event in proto.events_received():
            if isinstance(event, FrameRejected):
                assert SECRET_TEXT not in event.reason  # ids and shapes only, never content
        proto.data_to_send()


# ---------------------------------------------------------------------------- the hook


HOOK_SECRET = "s" * 40


class LiveBot:
    """The sandbox and the real bot on an event loop in a thread, so a sync property test can call
    the bot's HTTP endpoint like the companion app does."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.ids: dict[str, str] = {}
        self.url = ""

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)

    async def _start(self) -> None:
        from bot.sandbox import Sandbox
        from tests.conftest import bot_settings, start_bot

        self.sandbox = Sandbox()
        await self.sandbox.start()
        self.ids = {u["username"]: u["id"] for u in self.sandbox.seed_info()["users"]}
        settings = bot_settings(
            self.sandbox,
            self.tmp / "data",
            moderation={"moderators": ["mod1"]},
            http={"webhook_secret": HOOK_SECRET},
        )
        self.bot = await start_bot(settings)
        assert self.bot.app.web is not None
        self.url = f"http://127.0.0.1:{self.bot.app.web.port}/hooks/command"

    def stop(self) -> None:
        async def stop() -> None:
            await self.bot.stop()
            await self.sandbox.stop()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def live_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBot]:
    bot = LiveBot(tmp_path_factory.mktemp("hook-bot"))
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()


words = st.one_of(
    st.sampled_from(
        [
            "resolve",
            "delete",
            "dismiss",
            "allow",
            "deny",
            "warn",
            "mute",
            "strikes",
            "status",
            "help",
            "test",
            "spam",
            "other",
            "@alice",
            "@",
            "#general",
            "#",
            "1",
            "0",
            "-5",
            "99999999999999999999",
            "10m",
            "--anonymous",
            "http://127.0.0.1/channel/general?msg=x",
            '"',
            "`",
            "GENERAL",
        ]
    ),
    st.text(alphabet=string.printable, max_size=12),
    st.text(max_size=8),
)
args_text = st.lists(words, max_size=6).map(" ".join)


def body_strategy(ids: dict[str, str]) -> st.SearchStrategy[bytes]:
    """Mostly bodies of the contract's shape (so commands really run, as every member and
    moderator of the seed), some with a field of the wrong kind, some not JSON at all."""
    user_ids = st.one_of(st.sampled_from(sorted(ids.values())), st.text(max_size=12))
    usernames = st.one_of(st.sampled_from(sorted(ids)), st.text(max_size=10))
    fields: dict[str, st.SearchStrategy[Any]] = {
        "command": st.sampled_from(["report", "mod"]),
        "args": args_text,
        "user": st.fixed_dictionaries({"id": user_ids, "username": usernames}),
        "room": st.fixed_dictionaries(
            {
                "id": st.one_of(st.just("GENERAL"), st.text(max_size=12)),
                "name": st.one_of(st.none(), st.just("general"), st.text(max_size=10)),
            }
        ),
        "tmid": st.one_of(st.none(), st.text(max_size=12)),
        "trigger_id": st.one_of(st.none(), st.text(max_size=12)),
    }
    contract = st.fixed_dictionaries(fields)
    one_wrong = st.sampled_from(sorted(fields)).flatmap(
        lambda key: st.fixed_dictionaries({**fields, key: json_values})
    )
    return st.one_of(
        contract.map(lambda p: json.dumps(p).encode()),
        contract.map(lambda p: json.dumps(p).encode()),
        one_wrong.map(lambda p: json.dumps(p).encode()),
        st.binary(max_size=200),
    )


def post(url: str, raw: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read())  # the answer is JSON: {"text": ...}
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_hook_bodies_never_make_the_bot_answer_500(live_bot: LiveBot) -> None:
    statuses: set[int] = set()

    @settings(
        max_examples=40,
        deadline=None,  # a command may call the sandbox a few times; each request has its own timeout
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(raw=body_strategy(live_bot.ids), signed=st.booleans(), skew=st.sampled_from([0, 200, 400]))
    def check(raw: bytes, signed: bool, skew: int) -> None:
        ts = str(int(time.time()) - skew)
        headers = {"Content-Type": "application/json", "X-Rcmod-Timestamp": ts}
        headers["X-Rcmod-Signature"] = sign(HOOK_SECRET, ts, raw) if signed else "sha256=" + "0" * 64
        status = post(live_bot.url, raw, headers)
        statuses.add(status)
        assert status in (200, 400, 401, 413), status
        if not signed or skew > 300:
            assert status == 401

    check()
    assert {200, 400, 401} <= statuses  # commands did run, and bad bodies and signatures were met


# ---------------------------------------------------------------------------- configuration files

toml_keys = st.sampled_from(
    [
        "url",
        "user_id",
        "auth_token",
        "port",
        "host",
        "data_dir",
        "retention_days",
        "wordlists",
        "moderators",
        "mode",
        "messages",
        "seconds",
        "mute",
        "via",
        "level",
        "alert_cap_per_hour",
        "escalate_at",
        "nope",
    ]
)
toml_sections = st.sampled_from(
    [
        "server",
        "realtime",
        "storage",
        "http",
        "commands",
        "moderation",
        "reports",
        "policy",
        "protections",
        "protections.flood",
        "protections.links",
        "sanctions",
        "logging",
        "nope",
    ]
)
toml_values = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        [
            '"act"',
            '"alert"',
            '"off"',
            '"10m"',
            '"-5m"',
            '"http://x"',
            '"dm"',
            "true",
            "[]",
            "{}",
            '["a", 1]',
            '"DEBUG"',
            '"99999d"',
            '""',
        ]
    ),
    st.text(max_size=15).map(json.dumps),
    st.text(max_size=10),
)
toml_docs = st.lists(
    st.tuples(toml_sections, st.lists(st.tuples(toml_keys, toml_values), max_size=4)), max_size=4
).map(lambda secs: "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {v}" for k, v in kv) for s, kv in secs))
env_values = st.dictionaries(
    st.sampled_from(
        [
            "RCMOD_SERVER_URL",
            "RCMOD_HTTP_PORT",
            "RCMOD_MODERATORS",
            "RCMOD_COMMANDS",
            "RCMOD_LOG_LEVEL",
            "RCMOD_WORDLISTS",
            "RCMOD_DATA_DIR",
            "RCMOD_USER_ID",
        ]
    ),
    st.one_of(
        st.text(alphabet=string.printable, max_size=12), st.sampled_from(["0", "-1", "99999999", "x:y"])
    ),
    max_size=3,
)


@BOUNDED
@given(doc=st.one_of(toml_docs, st.text(max_size=80)), env=env_values)
def test_config_files_give_a_clean_error_or_settings(doc: str, env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "rcmod.toml"
    path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path, env)
    except ConfigError as exc:
        assert str(exc) and "Traceback" not in str(exc)


term_lines = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["*", "**", "a*b", "*bad*", "free crypto*", "#comment", "", "   ", "\u200b", "x" * 201]),
)
options_docs = st.one_of(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["kind", "action", "severity", "categories", "reveal_term", "rooms", "skip_rooms", "x"]
            ),
            st.sampled_from(
                ['"block"', '"notify"', '"allow"', '"censor"', '"high"', '["spam"]', "true", "3", '"?"']
            ),
        ),
        max_size=4,
    ).map(lambda kv: "\n".join(f"{k} = {v}" for k, v in kv)),
    st.sampled_from(
        ["[normalize]\nleet = false", "[notify]\nusers = ['mod1']\nroom = 'staff'", "[notify]\nx=1"]
    ),
    st.text(max_size=40),
)


@BOUNDED
@given(
    lines=st.lists(term_lines, max_size=8),
    raw=st.binary(max_size=40),
    options=options_docs,
)
def test_wordlist_files_give_a_clean_error_or_a_matcher(
    lines: list[str], raw: bytes, options: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("lists")
    for data in ("\n".join(lines).encode("utf-8", "surrogatepass"), raw):
        try:
            parse_terms(data, "x.txt")
        except WordlistError as exc:
            assert str(exc)
    try:
        parse_options(options, "x", "x.toml", "x.txt")
    except WordlistError as exc:
        assert str(exc)
    (folder / "watch.txt").write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    (folder / "watch.toml").write_text(options, encoding="utf-8", errors="surrogatepass")
    try:
        matcher = load_matcher([folder])
    except ConfigError as exc:  # WordlistError is a ConfigError
        assert str(exc)
    else:
        matcher.scan("some text to scan, free cryptos and *bad* words")


policy_docs = st.one_of(
    st.builds(
        lambda meta, text: f"---\n{meta}\n---\n{text}",
        st.one_of(
            st.sampled_from(
                [
                    "rooms: [general]",
                    'rooms: "*"',
                    "rooms: 5",
                    "banner: [1]",
                    "pattern: '['",
                    "delete_old: maybe",
                    "x: 1",
                    "rooms: ['#bad room']",
                    "- a",
                    "{",
                    "",
                ]
            ),
            st.text(max_size=30),
        ),
        st.text(max_size=30),
    ),
    st.text(max_size=60),
)


@BOUNDED
@given(content=policy_docs)
def test_policy_files_give_a_clean_error_or_a_spec(content: str) -> None:
    try:
        parse_policy_file("conduct", content, where="conduct.md")
    except PolicyError as exc:
        assert str(exc).startswith("conduct.md")


# ---------------------------------------------------------------------------- alert text

member_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "@all",
            "@here",
            "@alice",
            "`",
            "``` x ```",
            "](http://evil)",
            "[x](y)",
            "\n@all",
            ">@here",
            "\u202e@all",
            "http://evil.example/@x",
            "*bold*",
            "#general",
        ]
    ),
    st.lists(
        st.sampled_from(["@", "`", "all", "here", " ", "\n", "[", "]", "(", ")", ">", "\u200b"]), max_size=12
    ).map("".join),
)


def code_spans_hold(line: str) -> str:
    """The line with its code spans removed; fails if a span is left open."""
    assert line.count("`") % 2 == 0, line
    return "".join(part for i, part in enumerate(line.split("`")) if i % 2 == 0)


@BOUNDED
@given(
    mid=member_text,
    room_name=st.one_of(st.none(), member_text),
    room_type=st.sampled_from(["c", "p", "d"]),
    username=member_text,
    text=member_text,
    span=st.tuples(st.integers(0, 40), st.integers(0, 40)),
)
def test_alert_text_holds_no_live_mention_and_no_open_code_span(
    mid: str, room_name: str | None, room_type: str, username: str, text: str, span: tuple[int, int]
) -> None:
    start, end = sorted(span)

    def incident_of(text: str, username: str, start: int, end: int) -> Incident:
        return Incident(
            mid=mid,
            room=Room("R1", room_name, room_type),
            author=UserRef("U1", username),
            ts=datetime(2026, 1, 31, tzinfo=UTC),
            list="watch",
            term="badword",
            severity="medium",
            categories=("spam",),
            excerpt=excerpt(text, start, end),
        )

    incident = incident_of(text, username, start, end)
    plain = incident_of("plain words", "someone", 0, 5)
    site = "https://chat.example.org"
    for count in (1, 3):
        rendered = render_alert(7, incident, count=count, site_url=site)
        assert "@" not in rendered, rendered  # no @all, @here or @username can form anywhere
        # Rocket.Chat breaks lines on \n only. Outside the code spans, nothing depends on what
        # the member wrote or is called: their text and name cannot leave their spans.
        lines = rendered.split("\n")
        reference = render_alert(7, plain, count=count, site_url=site).split("\n")
        assert len(lines) == len(reference), rendered
        assert [code_spans_hold(x) for x in lines] == [code_spans_hold(x) for x in reference], rendered
    # A click sends a button's command as the moderator's own message: it must not mention anyone
    # or carry a member-chosen id the command parser would refuse anyway.
    for _label, command in keyword_actions(7, incident):
        assert "@" not in command and "`" not in command and "\n" not in command, command
