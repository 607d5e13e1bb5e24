"""Policy announcements as data: policy files, target rooms, and the reconciler (pure).

A *policy* is a name, Markdown text, an optional one-line banner and the rooms it targets. Each
change is a new *version*. The reconciler compares the desired state (the latest version of each
policy in each of its target rooms) with the actual state the shell read from the server (which
policy messages are pinned, the room's announcement) and returns actions as frozen data — post and
pin, re-pin, retire an old version's message, set the banner — plus problems to report per room.
It is idempotent: given the state that results from its own actions it plans nothing.

Nothing here touches the network, the store or the clock; :mod:`bot.services.policies` is the shell.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from bot.models import Room, UserRef
from bot.moderation.neutralize import shown_name

__all__ = [
    "BANNER_MAX",
    "TEXT_MAX",
    "Action",
    "JoinRoom",
    "PinPolicy",
    "Plan",
    "PolicyError",
    "PolicySpec",
    "PolicyVersion",
    "PostPolicy",
    "PostedPolicy",
    "RetirePolicyMessage",
    "RoomProblem",
    "RoomState",
    "SetBanner",
    "Targets",
    "describe",
    "desired_banner",
    "parse_policy_file",
    "reconcile",
    "resolve_targets",
    "room_name",
    "validate_spec",
]

# Rocket.Chat shows the announcement as a one-line bar over the room: keep it short.
BANNER_MAX = 200
# Rocket.Chat's default Message_MaxAllowedSize is 5000 characters.
TEXT_MAX = 5000
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_FILE_KEYS = frozenset({"rooms", "pattern", "banner", "delete_old"})

Source = Literal["file", "command"]


class PolicyError(ValueError):
    """A policy (file or command) cannot be used. The message names the file or field."""


@dataclass(frozen=True, slots=True)
class Targets:
    """Where a policy goes: named rooms, every public channel, and/or names matching a glob."""

    rooms: tuple[str, ...] = ()
    all_public: bool = False
    pattern: str | None = None

    def describe(self) -> str:
        parts = [f"#{r}" for r in self.rooms]
        if self.all_public:
            parts.append("all public channels")
        if self.pattern:
            parts.append(f"rooms matching {self.pattern!r}")
        return ", ".join(parts) or "no rooms"

    def as_dict(self) -> dict[str, Any]:
        return {"rooms": list(self.rooms), "all_public": self.all_public, "pattern": self.pattern}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Targets:
        return cls(
            rooms=tuple(str(r) for r in data.get("rooms") or ()),
            all_public=bool(data.get("all_public")),
            pattern=data.get("pattern") or None,
        )


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """What a file or a command says a policy is."""

    name: str
    text: str
    targets: Targets
    banner: str | None = None
    delete_old: bool = False


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One stored version. A removal is a version too (``removed``), so history is kept."""

    spec: PolicySpec
    version: int
    source: Source
    removed: bool = False
    created_by: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


def validate_spec(spec: PolicySpec, where: str) -> PolicySpec:
    """The spec, or PolicyError naming ``where`` and the field at fault."""
    if not _NAME.match(spec.name):
        raise PolicyError(
            f"{where}: name {spec.name!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'"
        )
    if not spec.text.strip():
        raise PolicyError(f"{where}: the policy has no text")
    if len(spec.text) > TEXT_MAX:
        raise PolicyError(f"{where}: the text is {len(spec.text)} characters; the limit is {TEXT_MAX}")
    if spec.banner is not None:
        if "\n" in spec.banner.strip():
            raise PolicyError(f"{where}: banner must be one line")
        if len(spec.banner) > BANNER_MAX:
            raise PolicyError(f"{where}: banner is {len(spec.banner)} characters; the limit is {BANNER_MAX}")
    t = spec.targets
    if not (t.rooms or t.all_public or t.pattern):
        raise PolicyError(f'{where}: no target rooms (give rooms: [...], rooms: "*" or pattern:)')
    for room in t.rooms:
        if not room or room.startswith("#") or any(c.isspace() for c in room):
            raise PolicyError(f"{where}: rooms: {room!r} is not a room name (no '#', no spaces)")
    return spec


def parse_policy_file(name: str, content: str, *, where: str) -> PolicySpec:
    """Parse ``NAME.md``: YAML front matter (``rooms``, ``pattern``, ``banner``, ``delete_old``)
    between ``---`` lines, then the Markdown text. Raises PolicyError naming ``where``."""
    match = _FRONT_MATTER.match(content)
    if match is None:
        raise PolicyError(f"{where}: no front matter; start the file with '---', the options, then '---'")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 2})" if mark is not None else ""
        raise PolicyError(f"{where}: front matter is not valid YAML{line}") from None
    except RecursionError:
        # PyYAML composes nested collections recursively: a few thousand '[' exhaust the stack.
        raise PolicyError(f"{where}: front matter is nested too deeply") from None
    except ValueError:
        # int() refuses more than 4300 digits (CVE-2020-10735); no option needs a number that long.
        raise PolicyError(f"{where}: front matter holds a number too long to read") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise PolicyError(f"{where}: front matter must be a mapping of options")
    unknown = sorted(str(k) for k in meta if k not in _FILE_KEYS)
    if unknown:
        raise PolicyError(
            f"{where}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(_FILE_KEYS))})"
        )
    rooms_value = meta.get("rooms")
    all_public = False
    rooms: tuple[str, ...] = ()
    if rooms_value == "*":
        all_public = True
    elif isinstance(rooms_value, list) and all(isinstance(r, str) for r in rooms_value):
        rooms = tuple(r.strip() for r in rooms_value)
    elif rooms_value is not None:
        raise PolicyError(f'{where}: rooms must be a list of room names or "*" (every public channel)')
    pattern = meta.get("pattern")
    if pattern is not None and (not isinstance(pattern, str) or not pattern.strip()):
        raise PolicyError(f"{where}: pattern must be a non-empty glob such as 'team-*'")
    banner = meta.get("banner")
    if banner is not None and not isinstance(banner, str):
        raise PolicyError(f"{where}: banner must be text")
    delete_old = meta.get("delete_old", False)
    if not isinstance(delete_old, bool):
        raise PolicyError(f"{where}: delete_old must be true or false")
    spec = PolicySpec(
        name=name,
        text=content[match.end() :].strip("\n"),
        targets=Targets(rooms=rooms, all_public=all_public, pattern=pattern),
        banner=banner.strip() if banner else None,
        delete_old=delete_old,
    )
    return validate_spec(spec, where)


# -- target rooms --------------------------------------------------------------------------------


def room_name(room: Room) -> str:
    """How a policy names a room: its name (the keeper always knows it), else its id."""
    return room.name or room.id


def resolve_targets(targets: Targets, known: Sequence[Room]) -> tuple[list[Room], list[str]]:
    """The rooms a policy targets among ``known`` (public channels ``c`` and private groups ``p``),
    and one problem per name or pattern that matches nothing (so one bad name does not stop the
    others)."""
    by_name = {room_name(r): r for r in known}
    out: dict[str, Room] = {}
    problems: list[str] = []
    for name in targets.rooms:
        room = by_name.get(name)
        if room is None:
            problems.append(f"#{name}: no such room, or the bot cannot see it")
        else:
            out[room.id] = room
    if targets.all_public:
        for room in known:
            if room.type == "c":
                out.setdefault(room.id, room)
    if targets.pattern:
        hits = [r for r in known if fnmatch.fnmatchcase(room_name(r), targets.pattern)]
        if not hits:
            problems.append(f"pattern {targets.pattern!r} matches no room the bot can see")
        for room in hits:
            out.setdefault(room.id, room)
    return sorted(out.values(), key=room_name), problems


# -- actual state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostedPolicy:
    """A policy message the store remembers in a room, with what the server says about it."""

    mid: str
    name: str
    version: int
    pinned: bool
    exists: bool = True
    unpinned_by: UserRef | None = None  # pinnedBy of an unpinned message: who unpinned it


@dataclass(frozen=True, slots=True)
class RoomState:
    room: Room
    member: bool  # the bot is subscribed (unpinning needs it; posting in a private group too)
    announcement: str = ""
    our_banner: str | None = None  # the announcement the bot last set here, if any
    messages: tuple[PostedPolicy, ...] = ()


# -- actions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: Room


@dataclass(frozen=True, slots=True)
class PostPolicy:
    """Post this version's text and pin the new message."""

    room: Room
    name: str
    version: int


@dataclass(frozen=True, slots=True)
class PinPolicy:
    """Pin the current version's message again (someone unpinned it, or a pin failed before)."""

    room: Room
    mid: str
    name: str
    version: int
    unpinned_by: UserRef | None = None


@dataclass(frozen=True, slots=True)
class RetirePolicyMessage:
    """An old version's (or a removed policy's) message: unpin it if pinned, delete it if asked,
    and forget it."""

    room: Room
    mid: str
    name: str
    version: int
    unpin: bool
    delete: bool


@dataclass(frozen=True, slots=True)
class SetBanner:
    room: Room
    text: str  # "" clears the banner the bot had set
    previous: str


Action = JoinRoom | PostPolicy | PinPolicy | RetirePolicyMessage | SetBanner


@dataclass(frozen=True, slots=True)
class RoomProblem:
    room: str  # a room name, or "" for a problem that is about no single room
    policy: str | None
    reason: str

    def __str__(self) -> str:
        where = f"#{self.room}" if self.room else "policies"
        return f"{where}{f' ({self.policy})' if self.policy else ''}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()
    problems: tuple[RoomProblem, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.actions


def desired_banner(policies: Iterable[PolicyVersion]) -> str | None:
    """A room has one announcement: the banners of its policies, by policy name, one per line."""
    banners = [p.spec.banner for p in sorted(policies, key=lambda p: p.name) if p.spec.banner]
    return "\n".join(banners) if banners else None


def reconcile(
    desired: Mapping[str, Sequence[PolicyVersion]],
    actual: Mapping[str, RoomState],
    *,
    pinning_allowed: bool = True,
) -> Plan:
    """Actions that bring every room to its desired policies.

    ``desired`` maps a room id to the latest version of each policy targeting it; ``actual`` has a
    state for every room that is desired *or* still holds a policy message (rooms no longer
    targeted must be cleaned up too). Order matters and is kept: joins first, then new pins, and
    old versions are retired only after, so a room is never left without its policy.
    """
    joins: list[Action] = []
    pins: list[Action] = []
    retires: list[Action] = []
    banners: list[Action] = []
    problems: list[RoomProblem] = []
    for rid in sorted(
        set(desired) | set(actual), key=lambda r: room_name(actual[r].room) if r in actual else r
    ):
        state = actual.get(rid)
        wanted = {p.name: p for p in desired.get(rid, ())}
        if state is None:
            problems.append(RoomProblem(rid, None, "room state could not be read"))
            continue
        room = state.room
        if not pinning_allowed:
            if wanted:
                problems.append(
                    RoomProblem(
                        room_name(room), None, "pinning is disabled on this workspace (Message_AllowPinning)"
                    )
                )
        else:
            room_pins, duplicates, posts = _current_versions(state, wanted)
            old, unpins = _older_messages(state, wanted)
            if (posts or unpins) and not state.member:
                if room.type != "c":
                    problems.append(
                        RoomProblem(
                            room_name(room), None, "the bot is not a member of this private group; invite it"
                        )
                    )
                    room_pins, duplicates, old = [], [], []
                else:
                    joins.append(JoinRoom(room))
            pins += room_pins
            retires += duplicates + old
        banner = _banner_change(state, wanted)
        if banner is not None:
            banners.append(banner)
    return Plan(tuple(joins + pins + retires + banners), tuple(problems))


def _current_versions(
    state: RoomState, wanted: Mapping[str, PolicyVersion]
) -> tuple[list[Action], list[Action], bool]:
    """Each wanted policy's current version in the room: pinned if it is not, posted if it is
    missing (True: something must be posted), and duplicates of it retired."""
    room = state.room
    pins: list[Action] = []
    retires: list[Action] = []
    posts = False
    for name, policy in sorted(wanted.items()):
        current = [m for m in state.messages if m.name == name and m.version == policy.version and m.exists]
        if current:
            head = current[0]
            if not head.pinned:
                pins.append(PinPolicy(room, head.mid, name, policy.version, head.unpinned_by))
            # Duplicates of the current version (a crash between post and record) are retired.
            for extra in current[1:]:
                retires.append(RetirePolicyMessage(room, extra.mid, name, extra.version, extra.pinned, True))
        else:
            pins.append(PostPolicy(room, name, policy.version))
            posts = True
    return pins, retires, posts


def _older_messages(state: RoomState, wanted: Mapping[str, PolicyVersion]) -> tuple[list[Action], bool]:
    """The room's policy messages that are not a wanted current version, retired (True: one of
    them is pinned, so unpinning it needs membership)."""
    room = state.room
    retires: list[Action] = []
    unpins = False
    for m in state.messages:
        newest = wanted.get(m.name)
        if newest is not None and m.version == newest.version and m.exists:
            continue
        if not m.exists:
            retires.append(RetirePolicyMessage(room, m.mid, m.name, m.version, unpin=False, delete=False))
            continue
        # A removed policy's messages are unpinned and kept; deleting is for replaced
        # versions only, where the newer text carries the same information.
        delete = newest.spec.delete_old if newest is not None else False
        retires.append(RetirePolicyMessage(room, m.mid, m.name, m.version, unpin=m.pinned, delete=delete))
        unpins = unpins or m.pinned
    return retires, unpins


def _banner_change(state: RoomState, wanted: Mapping[str, PolicyVersion]) -> Action | None:
    banner = desired_banner(wanted.values())
    if banner is not None and state.announcement != banner:
        return SetBanner(state.room, banner, state.announcement)
    if banner is None and state.our_banner and state.announcement == state.our_banner:
        return SetBanner(state.room, "", state.announcement)  # our banner, no policy left
    return None


def describe(action: Action) -> str:
    """One line for a plan (dry run, command replies)."""
    room = f"#{shown_name(room_name(action.room))}"
    if isinstance(action, JoinRoom):
        return f"{room}: join the room (needed to pin and unpin)"
    if isinstance(action, PostPolicy):
        return f"{room}: post {action.name} v{action.version} and pin it"
    if isinstance(action, PinPolicy):
        who = f" (unpinned by {shown_name(action.unpinned_by.username)})" if action.unpinned_by else ""
        return f"{room}: pin {action.name} v{action.version} again{who}"
    if isinstance(action, RetirePolicyMessage):
        steps = [s for s, on in (("unpin", action.unpin), ("delete", action.delete)) if on] or ["forget"]
        return f"{room}: {' and '.join(steps)} {action.name} v{action.version} (message {action.mid})"
    if action.text:
        return f"{room}: set the announcement banner"
    return f"{room}: clear the announcement banner rcmod had set"
