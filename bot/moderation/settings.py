"""The settings the pure core reads: protections and the sanction ladder (validated data, no I/O).

They live here rather than in :mod:`bot.config` so the core depends on nothing above it;
``bot.config`` builds the whole ``Settings`` from these sections and re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.moderation.durations import MAX_DURATION, DurationError, parse_duration

__all__ = [
    "FloodSettings",
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
