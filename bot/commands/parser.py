"""Parse the text after ``/report`` or ``/mod`` into a frozen :class:`Invocation`, or a
:class:`UsageError` saying what was wrong and how the command is used. Pure code.

The grammar comes from the declarations in :mod:`bot.commands.spec`: arguments in order, an
optional argument taken only when the next token fits its kind (so ``/report spam`` and
``/report <link> spam`` both work), ``--flag`` switches anywhere, and a TEXT argument keeping the
rest of the line as typed. A double-quoted token may hold spaces (``/mod deny "scam link"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from bot.commands.spec import Arg, ArgKind, Command, find
from bot.moderation.durations import DurationError, looks_like_duration, parse_duration

__all__ = [
    "MAX_ARGS",
    "Invocation",
    "MessageRef",
    "RoomName",
    "UsageError",
    "UserName",
    "addressed_to_bot",
    "parse",
    "parse_message_ref",
    "split_command",
]

# Longer argument text is refused outright: nothing legitimate needs it, and it must not reach
# the matcher, the store or a DM (the hook's body limit is larger, 64 KiB).
MAX_ARGS = 4000

# Rocket.Chat's Random.id(): 17 characters; a digit or capital is required so an ordinary
# 17-letter word in a description is not mistaken for an id.
_MESSAGE_ID = re.compile(r"^(?=.*[0-9A-Z])[0-9A-Za-z]{17}$")
_USERNAME = re.compile(r"^@([0-9A-Za-z._-]{1,80})$")
_ROOM = re.compile(r"^#([^\s#@]{1,100})$")
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


@dataclass(frozen=True, slots=True)
class MessageRef:
    mid: str
    room_name: str | None = None  # from a permalink: /channel/<name>, /group/<name>
    rid: str | None = None  # from a permalink: /direct/<rid>
    room_type: str | None = None  # from a permalink's route: c, p or d


@dataclass(frozen=True, slots=True)
class UserName:
    username: str


@dataclass(frozen=True, slots=True)
class RoomName:
    name: str


Value = str | int | MessageRef | UserName | RoomName | None


@dataclass(frozen=True, slots=True)
class Invocation:
    command: Command
    values: tuple[tuple[str, Value], ...]
    flags: frozenset[str] = frozenset()

    def get(self, name: str) -> Value:
        return dict(self.values).get(name)

    @property
    def everywhere(self) -> bool:
        """Whether this invocation acts in every room (its privilege: see ``Command.needs``)."""
        c = self.command
        if c.scope_from is not None and self.get(c.scope_from) == "everywhere":
            return True
        return c.no_room_is_everywhere and c.room_from is not None and self.get(c.room_from) is None

    def text(self, name: str) -> str:
        value = self.get(name)
        return value if isinstance(value, str) else ""

    def number(self, name: str) -> int:
        value = self.get(name)
        if not isinstance(value, int):
            raise KeyError(name)
        return value

    def __repr__(self) -> str:  # arguments may quote message text: never in a log
        return (
            f"Invocation({self.command.name!r}, args={[k for k, _ in self.values]}, flags={set(self.flags)})"
        )


@dataclass(frozen=True, slots=True)
class UsageError:
    message: str
    usage: str = ""

    @property
    def text(self) -> str:
        return f"{self.message}\nUsage: `{self.usage}`" if self.usage else self.message


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    start: int
    end: int


def split_command(text: str, *, slash_required: bool) -> tuple[str | None, str]:
    """The command root (``report`` or ``mod``) and its argument text, or (None, "") when the
    text is no command. In a DM the slash is optional and a bare ``help`` means ``mod help``."""
    if slash_required and not text.lstrip().startswith("/"):
        return None, ""  # most messages: asked of every one, so answered before any splitting
    head, _, rest = text.strip().partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    word = head.lower()
    if word.startswith("/"):
        word = word[1:]
    elif slash_required:
        return None, ""
    if word in ("report", "mod"):
        return word, rest
    if word == "help" and not slash_required:
        return "mod", "help " + rest
    return None, ""


def addressed_to_bot(text: str, room_type: str | None) -> bool:
    """Whether a message is said to the bot rather than to people: a DM with the bot (the only
    direct messages the bot receives are its own conversations), or ``/report``/``/mod`` typed in
    a room (the bot removes it at once). Neither is moderation material: a moderator's
    ``mod test`` or ``mod allow`` quotes the very terms the lists match, and a member's DM to the
    bot is read by nobody else, so there is nobody to protect from it."""
    return room_type == "d" or split_command(text, slash_required=True)[0] is not None


def parse(root: str, args: str, *, site_url: str = "") -> Invocation | UsageError:
    """``root`` is ``report`` or ``mod``; ``args`` is what followed it. ``site_url`` is this
    workspace's address, against which message links are checked."""
    if len(args) > MAX_ARGS:
        return UsageError(f"That is too long ({len(args)} characters; at most {MAX_ARGS}).")
    if any(ch in args for ch in "\x00"):
        return UsageError("The command contains a NUL character.")
    if root == "report":
        command = find("report")
        assert command is not None
        return _parse_args(command, args, site_url)
    if root != "mod":
        return UsageError(f"Unknown command /{root[:40]}. Commands: /report, /mod.")
    stripped = args.strip()
    if not stripped:
        return UsageError("Which /mod command? `/mod help` lists the ones you may use.", "/mod COMMAND ...")
    sub, _, rest = stripped.partition(" ")
    command = find("mod", sub.lower())
    if command is None:
        return UsageError(f"Unknown command `/mod {_shown(sub)}`. `/mod help` lists the ones you may use.")
    return _parse_args(command, rest, site_url)


def _parse_args(command: Command, raw: str, site_url: str) -> Invocation | UsageError:
    tokens = [
        _Token(m.group(1) if m.group(1) is not None else m.group(2), m.start(), m.end())
        for m in _TOKEN.finditer(raw)
    ]
    flags: set[str] = set()
    kept: list[_Token] = []
    for tok in tokens:
        if tok.value.startswith("--") and tok.value[2:] in command.flags:
            flags.add(tok.value[2:])
        else:
            kept.append(tok)
    # The TEXT argument keeps the line as typed, minus the flags.
    text_source = raw
    for tok in tokens:
        if tok not in kept:
            text_source = text_source[: tok.start] + " " * (tok.end - tok.start) + text_source[tok.end :]
    values: list[tuple[str, Value]] = []
    i = 0
    for arg in command.args:
        if arg.kind is ArgKind.TEXT:
            rest = text_source[kept[i].start :].strip() if i < len(kept) else ""
            if not rest and not arg.optional:
                return UsageError(f"Missing {arg.name.upper()}.", command.usage)
            values.append((arg.name, rest or arg.default))
            i = len(kept)
            continue
        if i >= len(kept):
            if not arg.optional:
                return UsageError(f"Missing {arg.usage}.", command.usage)
            values.append((arg.name, arg.default))
            continue
        value = _convert(arg, kept[i].value, site_url)
        if isinstance(value, UsageError):
            if arg.optional and not value.message.startswith("!"):
                values.append((arg.name, arg.default))
                continue
            return UsageError(value.message.lstrip("!"), command.usage)
        values.append((arg.name, value))
        i += 1
    if i < len(kept):
        return UsageError(f"Unexpected argument `{_shown(kept[i].value)}`.", command.usage)
    found = dict(values)
    scope, room = command.scope_from, command.room_from
    if scope and room and found.get(scope) == "everywhere" and found.get(room) is not None:
        # Which one was meant cannot be guessed, and the answer decides whose privilege counts.
        return UsageError("Say #room or everywhere, not both.", command.usage)
    return Invocation(command, tuple(values), frozenset(flags))


def _convert(arg: Arg, token: str, site_url: str) -> Value | UsageError:
    """The token as the argument's kind, or a UsageError. A message starting with ``!`` is a
    definite error even for an optional argument (a link to another workspace is not a word)."""
    kind = arg.kind
    if kind is ArgKind.WORD:
        return token
    if kind is ArgKind.INT:
        digits = token.removeprefix("#")
        if digits.isdigit() and 0 < len(digits) <= 12 and int(digits) > 0:
            return int(digits)
        return UsageError(f"{arg.name.upper()} must be a number, not `{_shown(token)}`.")
    if kind is ArgKind.CHOICE:
        if token.lower() in arg.choices:
            return token.lower()
        return UsageError(f"{arg.name.upper()} must be one of {', '.join(arg.choices)}.")
    if kind is ArgKind.USER:
        m = _USERNAME.match(token)
        return UserName(m.group(1)) if m else UsageError(f"Expected @username, not `{_shown(token)}`.")
    if kind is ArgKind.ROOM:
        m = _ROOM.match(token)
        return RoomName(m.group(1)) if m else UsageError(f"Expected #room, not `{_shown(token)}`.")
    if kind is ArgKind.MESSAGE:
        return parse_message_ref(token, site_url)
    if kind is ArgKind.DURATION:
        if not looks_like_duration(token):
            return UsageError(f"{arg.name.upper()} must be a duration like 10m, 24h or 7d.")
        try:
            return int(parse_duration(token))
        except DurationError as exc:  # meant as a duration, and a bad one: say so, apply nothing
            return UsageError("!" + str(exc).replace(repr(token), f"`{_shown(token)}`"))
    if kind is ArgKind.TARGET:
        m = _USERNAME.match(token)
        if m:
            return UserName(m.group(1))
        return parse_message_ref(token, site_url)
    raise AssertionError(kind)  # TEXT is handled by the caller


def parse_message_ref(token: str, site_url: str) -> MessageRef | UsageError:
    """A message id, or a permalink ``<site>/(channel|group)/<name>?msg=<id>`` /
    ``<site>/direct/<rid>?msg=<id>`` on this workspace (protocol reference E.4)."""
    if _MESSAGE_ID.match(token):
        return MessageRef(token)
    if not token.lower().startswith(("http://", "https://")):
        return UsageError(f"`{_shown(token)}` is not a message link or id.")
    try:
        url = urlsplit(token)
    except ValueError:
        return UsageError("!That link is not a valid URL.")
    site = urlsplit(site_url) if site_url else None
    if site is None or url.netloc.lower() != site.netloc.lower():
        return UsageError("!That link is not on this workspace; only its own messages can be reported here.")
    mids = parse_qs(url.query).get("msg", [])
    parts = [unquote(p) for p in url.path[len(site.path.rstrip("/")) :].split("/") if p]
    if len(mids) != 1 or not _MESSAGE_ID.match(mids[0]) or len(parts) < 2:
        return UsageError("!That link does not point at a message (it needs ?msg=<id>).")
    route, where = parts[0], parts[1]
    if route in ("channel", "group"):
        return MessageRef(mids[0], room_name=where, room_type="c" if route == "channel" else "p")
    if route == "direct":
        return MessageRef(mids[0], rid=where, room_type="d")
    return UsageError("!That link does not point at a message in a room.")


def _shown(token: str) -> str:
    """A user's token echoed back inside a code span: short, and unable to close the span."""
    clipped = token if len(token) <= 40 else token[:40] + "…"
    return clipped.replace("`", "ˋ").replace("@", "＠")
