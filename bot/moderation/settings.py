"""The settings the pure core reads: protections and the sanction ladder (validated data, no I/O).

They live here rather than in :mod:`bot.config` so the core depends on nothing above it;
``bot.config`` builds the whole ``Settings`` from these sections and re-exports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.moderation.durations import MAX_DURATION, DurationError, parse_duration

__all__ = [
    "FloodSettings",
    "HashListSettings",
    "ImagePolicy",
    "ImageRoomsSettings",
    "ImageSettings",
    "LadderAction",
    "LadderStep",
    "LinkSettings",
    "MentionSettings",
    "Mode",
    "ProtectionSettings",
    "RaidSettings",
    "RepeatSettings",
    "Section",
    "default_ladder",
    "duration_seconds",
]


class Section(BaseModel):
    # inf and nan are no durations: `ping_interval = inf` would never ping (TOML allows both).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Mode = Literal["off", "alert", "act"]


def duration_seconds(value: Any) -> Any:
    """Durations may be written as in chat (``10m``, ``24h``) or as a number of seconds."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None  # never echo the value
    return value


class _Protection(Section):
    """Each automatic protection: ``off``; ``alert`` (dry run: moderators are told what it would
    do, nothing is done); ``act`` (it acts, then tells them). ``/mod dryrun on`` turns every
    ``act`` into ``alert`` until it is turned off."""

    mode: Mode = "alert"


class FloodSettings(_Protection):
    # More than `messages` messages by one user in one room within `seconds` is a flood.
    messages: int = Field(default=10, ge=1, le=1000)
    seconds: float = Field(default=60.0, gt=0, le=3600)
    probation_messages: int = Field(default=5, ge=1, le=1000)  # the same, for accounts on probation
    mute: float = Field(default=600.0, gt=0, le=MAX_DURATION)  # how long `act` mutes (10m)

    _d = field_validator("mute", mode="before")(duration_seconds)


class RepeatSettings(_Protection):
    # The same (normalised) text in `rooms` different rooms, or `copies` times in one room,
    # within `seconds`, is repeated content. Shorter texts ("ok", "thanks") never count.
    rooms: int = Field(default=3, ge=2, le=1000)
    copies: int = Field(default=4, ge=2, le=1000)
    seconds: float = Field(default=300.0, gt=0, le=86400)
    min_length: int = Field(default=12, ge=1)


class MentionSettings(_Protection):
    # More than `max_mentions` distinct users mentioned in one message is mention spam, and so is
    # @all/@here from anyone holding none of `everyone_roles` (workspace or room roles).
    max_mentions: int = Field(default=10, ge=1)
    probation_mentions: int = Field(default=5, ge=1)
    everyone_roles: list[str] = Field(default_factory=lambda: ["admin", "owner", "moderator"])


class LinkSettings(_Protection):
    mode: Mode = "off"
    # Links to these domains (and their subdomains) are held for review; so is any link from an
    # account on probation when `hold_probation` is on.
    block_domains: list[str] = Field(default_factory=list)
    hold_probation: bool = True

    @field_validator("block_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        # A pasted link is fine (its host is used); a word without a dot is a mistake.
        for entry in domains:
            host = entry.strip().lower().split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
            host = host.split(":", 1)[0].lstrip("*").strip(".")
            if "." not in host or any(c.isspace() for c in host):
                raise ValueError("each entry must be a domain name like spam.example")
        return domains


class RaidSettings(_Protection):
    mode: Mode = "off"
    # More than `joins` members joining one room within `seconds` is a raid.
    joins: int = Field(default=10, ge=1, le=10000)
    seconds: float = Field(default=300.0, gt=0, le=86400)
    # With mode `act`: make the room read-only for members until `/mod unlock #room`.
    lock: bool = False


class ProtectionSettings(Section):
    """Automatic protections. Out of the box flood, repeated content and mention spam
    alert only; links and raids are off. Nothing acts until an admin sets a mode to ``act``."""

    # Accounts younger than this many days are on probation (stricter thresholds; 0: nobody).
    probation_days: float = Field(default=3.0, ge=0)
    exempt_rooms: list[str] = Field(default_factory=list)
    flood: FloodSettings = FloodSettings()
    repeat: RepeatSettings = RepeatSettings()
    mentions: MentionSettings = MentionSettings()
    links: LinkSettings = LinkSettings(mode="off")
    raid: RaidSettings = RaidSettings(mode="off")


ImagePolicy = Literal["off", "alert", "block"]


class HashListSettings(Section):
    """A known-bad hash list: one hex digest a line (``#`` comments). ``sha256`` matches the
    exact bytes; ``pdq`` matches near duplicates within ``max_distance`` bits (of 256)."""

    path: Path
    kind: Literal["sha256", "pdq"]
    # pdq: bits that may differ (31 is PDQ's authors' suggested match threshold); sha256: 0.
    max_distance: int | None = Field(default=None, ge=0, le=256)

    @model_validator(mode="after")
    def _distance(self) -> HashListSettings:
        if self.kind == "sha256" and self.max_distance:
            raise ValueError("max_distance applies to pdq lists only (a SHA-256 matches exactly)")
        return self

    @property
    def distance(self) -> int:
        return (31 if self.kind == "pdq" else 0) if self.max_distance is None else self.max_distance


class ImageRoomsSettings(Section):
    """A policy for some rooms, named as elsewhere (``general``, ``#general`` or a room id);
    names are bound to room ids when the bot starts, so renaming a room does not move it."""

    rooms: list[str] = Field(min_length=1)
    policy: ImagePolicy


class ImageSettings(Section):
    """Image checks on the bot's own host: the uploads of watched rooms are downloaded and
    checked against the hash lists and the local NSFW model; no picture leaves the machine.
    Out of the box nothing is downloaded: ``default`` is ``off`` and no room is listed.

    ``alert``: a score at or above ``alert_threshold`` alerts the moderators (the score and a
    link, never the picture). ``block``: as alert, and at or above ``block_threshold`` the
    message is deleted (evidence first) and its author told. A hash-list match blocks and
    alerts the critical route in every room whose policy is not ``off``."""

    default: ImagePolicy = "off"
    rooms: list[ImageRoomsSettings] = Field(default_factory=list)
    alert_threshold: float = Field(default=0.8, ge=0, le=1)
    block_threshold: float = Field(default=0.95, ge=0, le=1)
    hash_lists: list[HashListSettings] = Field(default_factory=list)
    # Critical alerts (hash-list matches) also go to this room (a name), besides the moderators.
    critical_room: str | None = None
    # Files are refused (counted, not checked) past these: bytes as downloaded, pixels as the
    # picture declares them before it is decoded, seconds per download.
    max_bytes: int = Field(default=20 * 2**20, ge=1, le=2**31)
    max_pixels: int = Field(default=50_000_000, ge=1)
    download_timeout: float = Field(default=30.0, gt=0, le=600)
    # Downloads and checks at once, and uploads waiting for one (then the stream waits).
    workers: int = Field(default=2, ge=1, le=16)
    queue_size: int = Field(default=100, ge=1, le=10_000)
    # Keep a flagged picture's bytes with its evidence (within the retention window); off: its
    # hashes only.
    keep_bytes: bool = True

    @model_validator(mode="after")
    def _thresholds(self) -> ImageSettings:
        if self.block_threshold < self.alert_threshold:
            raise ValueError("block_threshold must not be below alert_threshold")
        return self

    @property
    def watching(self) -> bool:
        """Whether any room's uploads are checked at all."""
        return self.default != "off" or any(r.policy != "off" for r in self.rooms)


LadderAction = Literal["warn", "mute", "kick", "ban", "notify_admins"]


class LadderStep(Section):
    strikes: int = Field(ge=1)
    action: LadderAction
    duration: float | None = Field(default=None, gt=0, le=MAX_DURATION)  # for `mute`

    _d = field_validator("duration", mode="before")(duration_seconds)

    @model_validator(mode="after")
    def _mute_needs_duration(self) -> LadderStep:
        if self.action == "mute" and self.duration is None:
            raise ValueError('a mute step needs a duration (for example duration = "10m")')
        return self


def default_ladder() -> list[LadderStep]:
    return [
        LadderStep(strikes=1, action="warn"),
        LadderStep(strikes=2, action="mute", duration=600),
        LadderStep(strikes=3, action="mute", duration=86400),
        LadderStep(strikes=4, action="notify_admins"),
    ]
