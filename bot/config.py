"""Settings: one validated model, read from a TOML file and overridden by the environment.

Precedence: built-in defaults < the TOML file (``--config``) < ``RCMOD_*`` environment variables.
With no file, the environment alone configures every command. Validation happens before any
connection opens; a bad value raises :class:`~bot.errors.ConfigError` whose one-line message names
the field (``server.url: ...``) and never echoes the value, because the value may be a secret.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from bot.errors import ConfigError
from bot.moderation import settings as core
from bot.moderation.durations import MAX_DURATION

# The core's sections, re-exported: callers read every setting from here.
from bot.moderation.settings import *  # noqa: F403

__all__ = ["COMMAND_CHANNELS", "ENV_OVERRIDES", "CommandChannel", "Credentials", "Settings", "load_settings"]
__all__ += core.__all__


class ServerSettings(core.Section):
    url: str | None = None
    user_id: str | None = None
    auth_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Seconds per REST request, and how many run at once (rocketchat_API is synchronous).
    rest_timeout: float = Field(default=30.0, gt=0)
    rest_threads: int = Field(default=8, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class RealtimeSettings(core.Section):
    ping_interval: float = Field(default=10.0, gt=0)
    pong_timeout: float = Field(default=15.0, gt=0)
    call_timeout: float = Field(default=30.0, gt=0)
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    # Per-room subscriptions are rate-limited by the server (about 40 per 40 s): pace them.
    room_sub_interval: float = Field(default=1.0, ge=0)
    # Events received and not yet handled, at most; beyond it the bot stops reading from the
    # server until it catches up (the server and TCP hold the rest) instead of growing memory.
    queue_size: int = Field(default=5000, ge=1)


class StorageSettings(core.Section):
    data_dir: Path = Path("data")
    # The store in PostgreSQL (postgresql://USER@HOST:PORT/DBNAME) instead of SQLite in data_dir;
    # data_dir still holds the audit signing key and checkpoints. A secret: it may carry the
    # password (or leave it out, and libpq reads PGPASSWORD or ~/.pgpass).
    url: SecretStr | None = None
    # Evidence is kept this long, then erased unless under legal hold.
    retention_days: int = Field(default=90, ge=1)
    # Below this much free space on the data folder's disk, the bot warns (log and metric
    # rcmod_data_free_bytes) before a full disk stops it. 0 turns the warning off.
    free_space_warning_mb: int = Field(default=500, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (leave it out for SQLite in storage.data_dir)")
        return value


class HttpSettings(core.Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    webhook_secret: SecretStr | None = None


CommandChannel = Literal["dm", "room", "app"]
COMMAND_CHANNELS: dict[str, str] = {
    "dm": "members and moderators send /report and /mod to the bot in a direct message; "
    "no workspace setting is needed (every edition)",
    "room": "as dm, and /report and /mod typed in any room reach the bot too; "
    "needs Message_AllowUnrecognizedSlashCommand on",
    "app": "as dm, and the companion Apps-Engine app registers real /report and /mod commands "
    "(Starter, Pro, Enterprise: Community Edition allows no private apps since 7.0); "
    "needs the webhook secret",
}


class CommandsSettings(core.Section):
    # How commands arrive besides DMs to the bot, which always work. `rcmod setup --commands`
    # writes it; `rcmod doctor` checks only what it needs.
    via: CommandChannel = "dm"


class ModerationSettings(core.Section):
    wordlists: list[Path] = Field(default_factory=list)
    # Usernames alerted by default; empty means the users holding the admin role.
    moderators: list[str] = Field(default_factory=list)
    # Join every public channel so deletions, pins and room roles are visible there too.
    autojoin: bool = False
    exempt_rooms: list[str] = Field(default_factory=list)
    exempt_roles: list[str] = Field(default_factory=lambda: ["bot"])
    # At most this many new alert DMs per moderator per hour; the excess waits for one hourly
    # digest DM instead (0: no cap). Bursts already coalesce into one DM before this counts.
    alert_cap_per_hour: int = Field(default=20, ge=0)
    # Seconds between sweeps of users.list (usernames, display names) and rooms.get (the bot's
    # rooms' names, topics, announcements) for changes no event announces; 0: off.
    name_sweep_interval: float = Field(default=900.0, ge=0)
    # Seconds between checks for accounts awaiting an admin's approval (when the workspace
    # requires approval, Accounts_ManuallyApproveNewUsers); a sign-up seen in a room checks at
    # once. 0: off.
    registration_poll_interval: float = Field(default=60.0, ge=0)


class ReportSettings(core.Section):
    """/report: dedupe, escalation and per-reporter rate limits."""

    # Distinct reporters of one message or user at which the report escalates (severity critical).
    escalate_at: int = Field(default=3, ge=1)
    # On escalation: "none", or "delete" the message (evidence is kept first).
    escalate_action: Literal["none", "delete"] = "none"
    # Whether `--anonymous` hides the reporter's name from the moderators' DM.
    allow_anonymous: bool = True
    # Per reporter: at most `per_window` reports in `window_seconds`, and `per_day` a day.
    per_window: int = Field(default=5, ge=1)
    window_seconds: float = Field(default=600.0, gt=0)
    per_day: int = Field(default=20, ge=1)
    # Seconds between polls of moderation.reportsByUsers (members' own "Report" action); 0: off.
    poll_interval: float = Field(default=60.0, ge=0)


class PolicySettings(core.Section):
    dir: Path | None = None
    # Seconds between reconciliations; unpins seen on the stream are repaired at once anyway.
    sync_interval: float = Field(default=600.0, gt=0)
    # DM a room's policies to a member who joins it (at most once per member and version).
    dm_on_join: bool = False


class SanctionSettings(core.Section):
    """Strikes and the ladder they climb."""

    # A strike stops counting after this many days.
    decay_days: float = Field(default=30.0, gt=0)
    # What the n-th live strike brings; counts past the last step repeat the last step.
    ladder: list[core.LadderStep] = Field(default_factory=core.default_ladder)
    # The longest mute a moderator may give (a longer one is refused, not shortened).
    max_mute: float = Field(default=30 * 86400.0, gt=0, le=MAX_DURATION)
    # Told to every sanctioned user, after the reason.
    appeal: str = "To appeal, answer here with `mod appeal` and why; a moderator will review it."

    _d = field_validator("max_mute", mode="before")(core.duration_seconds)

    @field_validator("ladder")
    @classmethod
    def _ladder_order(cls, steps: list[core.LadderStep]) -> list[core.LadderStep]:
        counts = [s.strikes for s in steps]
        if counts != sorted(set(counts)):
            raise ValueError("steps must have distinct strike counts in increasing order")
        return steps


class LoggingSettings(core.Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Credentials(BaseModel):
    """How the bot logs in. ``repr`` and ``str`` never show the secret (pydantic ``SecretStr``)."""

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    @property
    def uses_token(self) -> bool:
        return self.token is not None


class Settings(core.Section):
    server: ServerSettings = ServerSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    storage: StorageSettings = StorageSettings()
    http: HttpSettings = HttpSettings()
    commands: CommandsSettings = CommandsSettings()
    moderation: ModerationSettings = ModerationSettings()
    reports: ReportSettings = ReportSettings()
    policy: PolicySettings = PolicySettings()
    protections: core.ProtectionSettings = core.ProtectionSettings()
    sanctions: SanctionSettings = SanctionSettings()
    images: core.ImageSettings = core.ImageSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def has_server(self) -> bool:
        return self.server.url is not None

    def credentials(self) -> Credentials:
        """The login to use; a missing or half-given secret is a configuration error."""
        s = self.server
        if s.url is None:
            raise ConfigError("server.url: missing (set it in the config file or RCMOD_SERVER_URL)")
        if s.user_id or s.auth_token:
            if not (s.user_id and s.auth_token):
                missing = (
                    "server.auth_token (RCMOD_AUTH_TOKEN)" if s.user_id else "server.user_id (RCMOD_USER_ID)"
                )
                how = (
                    "pass the env file `rcmod setup` wrote (rcmod run --env-file FILE) "
                    "or set RCMOD_AUTH_TOKEN"
                    if s.user_id
                    else "set RCMOD_USER_ID"
                )
                raise ConfigError(
                    f"{missing}: missing; a personal access token needs both the user id and the token: {how}"
                )
            return Credentials(user_id=s.user_id, token=s.auth_token)
        if s.username or s.password:
            if not (s.username and s.password):
                missing = (
                    "server.password (RCMOD_PASSWORD)" if s.username else "server.username (RCMOD_USERNAME)"
                )
                raise ConfigError(
                    f"{missing}: missing; a password login needs both the username and the password"
                )
            return Credentials(username=s.username, password=s.password)
        raise ConfigError(
            "server.auth_token: missing; give RCMOD_USER_ID + RCMOD_AUTH_TOKEN (a personal access token; "
            "`rcmod setup` writes them: rcmod run --config FILE --env-file FILE) "
            "or RCMOD_USERNAME + RCMOD_PASSWORD"
        )


def _split_paths(value: str) -> list[str]:
    return [p for p in value.split(":") if p]


def _split_names(value: str) -> list[str]:
    return [n.strip().lstrip("@") for n in value.split(",") if n.strip()]


# The environment overrides PRODUCT.md promises: variable -> (section, key, parser).
ENV_OVERRIDES: dict[str, tuple[str, str, Any]] = {
    "RCMOD_SERVER_URL": ("server", "url", str),
    "RCMOD_USER_ID": ("server", "user_id", str),
    "RCMOD_AUTH_TOKEN": ("server", "auth_token", str),
    "RCMOD_USERNAME": ("server", "username", str),
    "RCMOD_PASSWORD": ("server", "password", str),
    "RCMOD_WORDLISTS": ("moderation", "wordlists", _split_paths),
    "RCMOD_DATA_DIR": ("storage", "data_dir", str),
    "RCMOD_STORAGE_URL": ("storage", "url", str),
    "RCMOD_HTTP_PORT": ("http", "port", str),
    "RCMOD_MODERATORS": ("moderation", "moderators", _split_names),
    "RCMOD_WEBHOOK_SECRET": ("http", "webhook_secret", str),
    "RCMOD_COMMANDS": ("commands", "via", str),
    "RCMOD_POLICY_DIR": ("policy", "dir", str),
    "RCMOD_LOG_LEVEL": ("logging", "level", str),
}


def load_settings(config_path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read the file (if any), apply the environment, validate. Raises ConfigError."""
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            with config_path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"--config: no such file: {config_path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            # tomllib parses nested arrays and inline tables recursively.
            raise ConfigError(f"{config_path}: not valid TOML: nested too deeply") from None
        except ValueError:
            # int() refuses more than 4300 digits (CVE-2020-10735); no option needs a number that long.
            raise ConfigError(f"{config_path}: not valid TOML: a number too long to read") from None
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
    for var, (section, key, parse) in ENV_OVERRIDES.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{section}: must be a table")
        target[key] = parse(raw)
    # Paths in a config file are relative to the file, so a config can travel with its lists.
    base = config_path.parent if config_path is not None else Path.cwd()
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None  # `from None`: the pydantic error echoes values
    return _resolve_paths(settings, base)


def _describe(exc: ValidationError) -> str:
    """One line per problem, naming the field; never the input, which may be a secret."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown option (check the spelling against deploy/config.example.toml)"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def rel(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(update={"data_dir": rel(settings.storage.data_dir)}),
            "moderation": settings.moderation.model_copy(
                update={"wordlists": [rel(p) for p in settings.moderation.wordlists]}
            ),
            "policy": settings.policy.model_copy(
                update={"dir": rel(settings.policy.dir) if settings.policy.dir else None}
            ),
            "images": settings.images.model_copy(
                update={
                    "hash_lists": [
                        h.model_copy(update={"path": rel(h.path)}) for h in settings.images.hash_lists
                    ]
                }
            ),
        }
    )
