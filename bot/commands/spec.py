"""The chat commands, each declared once: name, arguments, minimum privilege, help line.

Parsing (:mod:`bot.commands.parser`), the privilege check (:mod:`bot.commands.privilege`) and
``/mod help`` (:mod:`bot.commands.help`) are all generated from :data:`COMMANDS`; a handler gets
a parsed, permitted :class:`~bot.commands.parser.Invocation` and neither parses nor checks.
Adding a command (``/mod purge``, ``/mod block``, ``/mod policy``) is one more entry here plus
its handler. Pure code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "COMMANDS",
    "REPORT_CATEGORIES",
    "Arg",
    "ArgKind",
    "Command",
    "Privilege",
    "find",
    "subcommands",
]


class Privilege(enum.IntEnum):
    """Ordered: each level may do everything the ones below may."""

    MEMBER = 0
    ROOM_MODERATOR = 1
    ROOM_OWNER = 2
    BOT_MODERATOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


class ArgKind(enum.Enum):
    WORD = "word"  # one token (a double-quoted token may hold spaces)
    INT = "int"  # a positive number; a leading # is allowed (report #12)
    CHOICE = "choice"  # one of Arg.choices
    USER = "user"  # @username
    ROOM = "room"  # #room
    MESSAGE = "message"  # a message link on this workspace, or a message id
    DURATION = "duration"  # 90s, 10m, 24h, 7d, 1h30m: seconds; a bad one (0, -5m) is an error
    TARGET = "target"  # a message (link or id) or a user (@username)
    TEXT = "text"  # the rest of the line, as typed


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    kind: ArgKind
    optional: bool = False
    choices: tuple[str, ...] = ()
    default: str | None = None

    @property
    def usage(self) -> str:
        shown = self.name.upper()
        if self.kind is ArgKind.CHOICE and len(self.choices) <= 4:
            shown = "|".join(self.choices)
        elif self.kind is ArgKind.TARGET:
            shown = "LINK|MSGID|@USER"
        elif self.kind is ArgKind.USER:
            shown = "@USER"
        elif self.kind is ArgKind.ROOM:
            shown = "#ROOM"
        elif self.kind is ArgKind.DURATION:
            shown = "DURATION"
        return f"[{shown}]" if self.optional else shown


@dataclass(frozen=True, slots=True)
class Command:
    root: str  # "report" or "mod": the slash command
    sub: str  # "" for /report; the subcommand for /mod
    args: tuple[Arg, ...]
    privilege: Privilege
    help: str
    flags: tuple[str, ...] = ()  # --name switches, allowed anywhere
    # The argument naming the room whose roles count for the privilege check (a message's room,
    # or #room); without it, the room the command was typed in.
    room_from: str | None = None
    # Who help lists it for, when that differs from ``privilege``: a command whose handler
    # checks the privilege itself (per room) is declared MEMBER for dispatch, but a member who
    # reads help should not be offered what will only be refused.
    listed_for: Privilege | None = None

    @property
    def shown_from(self) -> Privilege:
        return self.listed_for if self.listed_for is not None else self.privilege

    # The argument whose value ``everywhere`` makes the command act in every room the bot is in:
    # then no single room's roles can vouch for the caller, and it needs a bot moderator (or an
    # admin) whatever its declared minimum — Rocket.Chat has no global moderator role.
    scope_from: str | None = None
    # Without the ``room_from`` room the command acts everywhere (a warning's ladder may mute).
    no_room_is_everywhere: bool = False

    def needs(self, *, everywhere: bool) -> Privilege:
        """The minimum privilege for one invocation (``everywhere``: it acts in every room)."""
        return max(self.privilege, Privilege.BOT_MODERATOR) if everywhere else self.privilege

    @property
    def name(self) -> str:
        return f"{self.root} {self.sub}".strip()

    @property
    def usage(self) -> str:
        parts = [f"/{self.name}", *(a.usage for a in self.args), *(f"[--{f}]" for f in self.flags)]
        return " ".join(parts)


# Categories of the acceptable-use policy; "other" when none is given.
REPORT_CATEGORIES = (
    "harassment",
    "hate",
    "sexual",
    "violence",
    "illegal",
    "spam",
    "impersonation",
    "privacy",
    "ip",
    "other",
)

P = Privilege
K = ArgKind

# `#room` or `everywhere`: where a block or a mute applies.
WHERE = (Arg("scope", K.CHOICE, optional=True, choices=("everywhere",)), Arg("room", K.ROOM, optional=True))
REASON = Arg("reason", K.TEXT, optional=True)


def _user_in_room(name: str, help: str, *more: Arg) -> Command:
    """``/mod NAME @user #room ...``: a room moderator's action on one user in one room."""
    return Command(
        "mod",
        name,
        (Arg("user", K.USER), Arg("room", K.ROOM), *more),
        P.ROOM_MODERATOR,
        help,
        room_from="room",
    )


def _user_where(name: str, help: str, *more: Arg, flags: tuple[str, ...] = ()) -> Command:
    """``/mod NAME @user [everywhere] [#room] ...``: in #room a moderator of that room may;
    `everywhere` needs a bot moderator or an admin (scope_from), even when a #room is named too."""
    return Command(
        "mod",
        name,
        (Arg("user", K.USER), *WHERE, *more),
        P.ROOM_MODERATOR,
        help,
        flags=flags,
        room_from="room",
        scope_from="scope",
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "report",
        "",
        (
            Arg("category", K.CHOICE, optional=True, choices=REPORT_CATEGORIES, default="other"),
            Arg("target", K.TARGET, optional=True),
            Arg("description", K.TEXT, optional=True),
        ),
        P.MEMBER,
        "report a message (link or id; in its thread: the thread's message) or a user (@name)",
        flags=("anonymous",),
    ),
    Command("mod", "help", (Arg("command", K.WORD, optional=True),), P.MEMBER, "the commands you may use"),
    Command(
        "mod",
        "status",
        (),
        P.BOT_MODERATOR,
        "connection, lists, rooms watched, encrypted rooms, open reports, queued alerts, dry run",
    ),
    Command(
        "mod", "test", (Arg("text", K.TEXT),), P.ROOM_MODERATOR, "which list terms a text matches, and why"
    ),
    Command("mod", "reports", (), P.BOT_MODERATOR, "the open reports"),
    Command(
        "mod",
        "resolve",
        (
            Arg("id", K.INT),
            Arg("action", K.CHOICE, choices=("dismiss", "delete", "purge", "block")),
            Arg("note", K.TEXT, optional=True),
        ),
        P.BOT_MODERATOR,
        "close a report; its reporters are told it was handled",
    ),
    Command(
        "mod",
        "delete",
        (Arg("msgid", K.MESSAGE), Arg("reason", K.TEXT, optional=True)),
        P.ROOM_MODERATOR,
        "delete a message (its evidence is kept first)",
        room_from="msgid",
    ),
    Command("mod", "dismiss", (Arg("alert", K.INT),), P.BOT_MODERATOR, "close an alert as a false alarm"),
    Command(
        "mod", "allow", (Arg("term", K.TEXT),), P.BOT_MODERATOR, "never match TERM again (runtime allow list)"
    ),
    Command(
        "mod",
        "deny",
        (Arg("term", K.WORD), Arg("list", K.WORD, optional=True, default="runtime")),
        P.BOT_MODERATOR,
        'alert on TERM (quote a phrase: "scam link"), in LIST (default runtime)',
    ),
    Command(
        "mod",
        "allowimage",
        (Arg("image", K.INT),),
        P.BOT_MODERATOR,
        "never flag this picture again (a false positive; the number in an image alert)",
    ),
    Command("mod", "reload", (), P.BOT_MODERATOR, "reload the wordlists"),
    Command(
        "mod",
        "appoint",
        (Arg("user", K.USER), Arg("room", K.ROOM)),
        P.ROOM_OWNER,
        "make a user a moderator of a room",
        room_from="room",
    ),
    _user_where(
        "block",
        "remove a user's new messages on arrival, in #room or everywhere",
        Arg("reason", K.TEXT, optional=True),
        flags=("deactivate", "confirm"),
    ),
    _user_where("unblock", "lift a block (in #room or everywhere)"),
    Command(
        "mod",
        "purge",
        (
            Arg("kind", K.CHOICE, choices=("user", "term")),
            Arg("target", K.WORD),
            Arg("scope", K.TEXT, optional=True),
        ),
        # A purge names several rooms (or everywhere), which one declared room cannot express:
        # the purger checks the moderator's privilege in every room it touches (a room
        # moderator purges only their rooms; everywhere needs a bot moderator or an admin).
        P.MEMBER,
        'preview a purge: user @x|term "text" [#room ...|everywhere] [since 30d] [until DATE]',
        flags=("include-pinned", "purge-threads", "dry-run"),
        listed_for=P.ROOM_MODERATOR,
    ),
    Command(
        "mod",
        "confirm",
        (Arg("job", K.INT), Arg("token", K.WORD, optional=True)),
        P.MEMBER,  # only the moderator whose preview passed the purger's checks may confirm it
        "run a previewed purge (the preview gives the token when one is needed)",
        listed_for=P.ROOM_MODERATOR,
    ),
    Command(
        "mod",
        "policy",
        (
            Arg("action", K.CHOICE, choices=("list", "show", "set", "rooms", "remove", "sync")),
            Arg("name", K.WORD, optional=True),
            Arg("text", K.TEXT, optional=True),  # set: the text; rooms: #room ... or *
        ),
        P.BOT_MODERATOR,
        "the pinned policies: list, show NAME, set NAME TEXT, rooms NAME #room ...|*, remove NAME, "
        "sync (re-pin and re-set banners now)",
    ),
    # Sanctions. A sanction in #room needs a moderator of that room; `everywhere` needs a bot
    # moderator or an admin (scope_from, no_room_is_everywhere).
    Command(
        "mod",
        "warn",
        (Arg("user", K.USER), Arg("room", K.ROOM, optional=True), Arg("reason", K.TEXT, optional=True)),
        P.ROOM_MODERATOR,
        "warn a user privately; it is a strike, and the strike ladder may mute (in #room or everywhere)",
        room_from="room",
        no_room_is_everywhere=True,
    ),
    _user_where(
        "mute",
        "mute a user in #room or everywhere, for DURATION (10m, 24h, 7d) or until unmuted",
        Arg("duration", K.DURATION, optional=True),
        Arg("reason", K.TEXT, optional=True),
    ),
    _user_where("unmute", "lift a mute in #room or everywhere"),
    _user_in_room("kick", "remove a user from #room (they may rejoin a public channel)", REASON),
    _user_in_room(
        "ban",
        "ban a user from #room: removed, and kept out (no rejoining, no invitation) until unbanned",
        REASON,
    ),
    _user_in_room("unban", "lift a ban from #room; the user may join again"),
    Command(
        "mod",
        "strikes",
        (Arg("user", K.USER), Arg("action", K.CHOICE, optional=True, choices=("pardon",))),
        P.BOT_MODERATOR,
        "a user's strikes and sanctions; `pardon` clears the live strikes",
    ),
    Command(
        "mod",
        "unlock",
        (Arg("room", K.ROOM),),
        P.ROOM_MODERATOR,
        "make a room the raid protection locked writable again",
        room_from="room",
    ),
    Command(
        "mod",
        "restore",
        (Arg("held", K.INT),),
        P.BOT_MODERATOR,
        "repost a message the link protection held, attributed to its author",
    ),
    Command(
        "mod",
        "appeal",
        (Arg("text", K.TEXT),),
        P.MEMBER,
        "ask the moderators to review a warning or mute you were given",
    ),
    Command(
        "mod",
        "dryrun",
        (Arg("state", K.CHOICE, choices=("on", "off")),),
        P.ADMIN,
        "with dry run on, the bot records what it would delete instead of deleting",
    ),
)


def find(root: str, sub: str = "") -> Command | None:
    return next((c for c in COMMANDS if c.root == root and c.sub == sub), None)


def subcommands(root: str) -> tuple[Command, ...]:
    return tuple(c for c in COMMANDS if c.root == root and c.sub)
