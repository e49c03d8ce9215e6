"""Settings from the environment (and a ``.env`` file), built once at start.

Every role validates only what it needs: ``Settings.problems(role)`` lists one
line per missing or malformed variable. Secret values are ``SecretStr`` and are
never part of any message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["all", "bot", "dispatcher", "web"]
ROLES: tuple[Role, ...] = ("all", "bot", "dispatcher", "web")
SERVICE_ROLES: frozenset[Role] = frozenset({"bot", "dispatcher", "web"})

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_JOB_CONFIG = PACKAGE_DIR / "job_config.toml"
SHIPPED_WORKSPACE = PACKAGE_DIR / "workspace"

# What each role needs set (beyond what has a default).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "bot": (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_USERNAME",
        "SLACK_TECH_SUPPORT_CHANNEL",
    ),
    "dispatcher": (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_USERNAME",
        "SLACK_LOGS_CHANNEL",
        "SLACK_TECH_SUPPORT_CHANNEL",
        "WEBHOOK_ORIGIN",
        "EBMBOT_WEBHOOK_SECRET",
    ),
    "web": (
        "SLACK_BOT_TOKEN",
        "GITHUB_WEBHOOK_SECRET",
        "WEBHOOK_ORIGIN",
        "EBMBOT_WEBHOOK_SECRET",
    ),
}
_TOKEN_PREFIXES = {"SLACK_BOT_TOKEN": "xoxb-", "SLACK_APP_TOKEN": "xapp-"}
# Which roles read each variable that is not needed everywhere; a malformed
# value stops only those roles (a variable not listed here is read by all).
_USED_BY: dict[str, frozenset[str]] = {
    "SLACK_APP_TOKEN": frozenset({"bot"}),
    "SLACK_SIGNING_SECRET": frozenset({"bot"}),
    "BOT_CHECK_FILE": frozenset({"bot"}),
    "SLACK_APP_USERNAME": frozenset({"bot", "dispatcher"}),
    "SLACK_TECH_SUPPORT_CHANNEL": frozenset({"bot", "dispatcher"}),
    "SLACK_LOGS_CHANNEL": frozenset({"bot", "dispatcher"}),  # the bot checks it
    "DATA_TEAM_GITHUB_API_TOKEN": frozenset({"dispatcher"}),
    "GCP_CREDENTIALS_PATH": frozenset({"dispatcher"}),
    "LOGS_DIR": frozenset({"bot", "dispatcher"}),  # the bot reads logs (showlogs)
    "HOST_LOGS_DIR": frozenset({"bot", "dispatcher"}),
    "FAB_WORKSPACE_DIR": frozenset({"dispatcher"}),
    "WORKSPACE_DIR": frozenset({"dispatcher"}),
    "SSH_KEY_PATH": frozenset({"dispatcher"}),
    "SHUTDOWN_GRACE_SECONDS": frozenset({"dispatcher"}),
    "DISPATCHER_LEASE_SECONDS": frozenset({"dispatcher"}),
    "SSH_KNOWN_HOSTS": frozenset({"dispatcher"}),
    "WEBHOOK_ORIGIN": frozenset({"dispatcher", "web"}),
    "EBMBOT_WEBHOOK_SECRET": frozenset({"dispatcher", "web"}),
    "GITHUB_WEBHOOK_SECRET": frozenset({"web"}),
    "WEB_HOST": frozenset({"web"}),
    "WEB_PORT": frozenset({"web"}),
    "METRICS_TOKEN": frozenset({"web"}),
}


class SettingsError(Exception):
    """Settings are missing or malformed; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """The bot's configuration. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=True,
        hide_input_in_errors=True,
    )

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_USERNAME: str = ""
    SLACK_LOGS_CHANNEL: str = ""
    SLACK_TECH_SUPPORT_CHANNEL: str = ""
    GITHUB_WEBHOOK_SECRET: SecretStr | None = None
    WEBHOOK_ORIGIN: str = ""
    EBMBOT_WEBHOOK_SECRET: SecretStr | None = None
    DATA_TEAM_GITHUB_API_TOKEN: SecretStr | None = None
    GCP_CREDENTIALS_PATH: Path | None = None
    LOGS_DIR: Path = Path("logs")
    HOST_LOGS_DIR: str = ""
    DB_PATH: Path = Path("bennettbot.db")
    FAB_WORKSPACE_DIR: Path = Path("workspace-data")
    BOT_CHECK_FILE: Path = Path(".bot_startup_check")
    SLACK_API_URL: str = "https://slack.com/api/"
    JOB_CONFIG_PATH: Path = SHIPPED_JOB_CONFIG
    WORKSPACE_DIR: Path = SHIPPED_WORKSPACE
    WEB_HOST: str = "0.0.0.0"  # noqa: S104 - the webhook server is public by design
    WEB_PORT: int = Field(default=9999, ge=1, le=65535)
    SHUTDOWN_GRACE_SECONDS: float = Field(default=30.0, ge=0)
    # How long the dispatcher lease lasts without renewal; shorter only in tests.
    DISPATCHER_LEASE_SECONDS: float = Field(default=30.0, gt=0)
    SSH_KEY_PATH: Path = Path("~/.ssh/id_ed25519")
    SSH_KNOWN_HOSTS: Path = Path("~/.ssh/known_hosts")
    METRICS_TOKEN: SecretStr | None = None  # unset: no GET /metrics

    @field_validator("WEBHOOK_ORIGIN", "SLACK_API_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator(
        "LOGS_DIR",
        "DB_PATH",
        "FAB_WORKSPACE_DIR",
        "BOT_CHECK_FILE",
        "JOB_CONFIG_PATH",
        "WORKSPACE_DIR",
        "SSH_KEY_PATH",
        "SSH_KNOWN_HOSTS",
        "GCP_CREDENTIALS_PATH",
    )
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            return value.expanduser().absolute()
        except RuntimeError as exc:  # "~nosuchuser/…"
            raise ValueError(str(exc)) from None

    def for_jobs(self) -> dict[str, str]:
        """Every setting that has a value, as text, for the jobs whose
        namespace lists it in ``env`` (``.env`` values included; paths are
        absolute, since jobs run in their namespace's folder)."""
        values = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None and value != "":
                values[name] = str(value)
        return values

    @property
    def host_logs_dir(self) -> str:
        return self.HOST_LOGS_DIR or str(self.LOGS_DIR)

    @property
    def slack_api_url(self) -> str:
        return self.SLACK_API_URL.rstrip("/") + "/"

    def problems(self, *roles: Role) -> list[str]:
        """One line per variable that ``roles`` need but is missing or malformed."""
        services = tuple(sorted(_expand(roles)))  # "all" is every service role
        needed = dict.fromkeys(name for r in services for name in _REQUIRED[r])
        found = []
        for name in needed:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if not value:
                found.append(f"{name}: not set (needed by the {_who(name, services)})")
            elif name in _TOKEN_PREFIXES and not value.startswith(
                _TOKEN_PREFIXES[name]
            ):
                found.append(f"{name}: should start with {_TOKEN_PREFIXES[name]}")
        return found


def _who(name: str, roles: tuple[str, ...]) -> str:
    users = [r for r in roles if name in _REQUIRED[r]]
    return " and ".join(users) + (" role" if len(users) == 1 else " roles")


def _expand(roles: Role | Iterable[Role]) -> set[Role]:
    if isinstance(roles, str):
        roles = (roles,)
    return {r for role in roles for r in (SERVICE_ROLES if role == "all" else (role,))}


def load_settings(
    roles: Role | Iterable[Role] | None = None,
    *,
    require: bool = True,
    **overrides: object,
) -> Settings:
    """Build settings for ``roles``; raise ``SettingsError`` listing problems.

    Malformed values are problems only for variables those roles read (the
    others keep their defaults); with ``require``, so are variables they
    need that are not set. One line per variable, never a secret's value.
    Without ``roles``, every malformed value is a problem, nothing is required.
    """
    wanted = _expand("all" if roles is None else roles)
    for _ in range(2):
        try:
            settings = Settings(**overrides)  # type: ignore[arg-type]
            break
        except ValidationError as exc:
            errors = [(str(err["loc"][0]), err["msg"]) for err in exc.errors()]
        problems = [
            f"{name}: {message}"
            for name, message in errors
            if wanted & _USED_BY.get(name, SERVICE_ROLES)
        ]
        if problems:
            raise SettingsError(problems)
        defaults = {name: Settings.model_fields[name].default for name, _ in errors}
        overrides = {**overrides, **defaults}
    else:  # pragma: no cover - the defaults always validate
        raise SettingsError(["settings could not be built"])
    if require and roles is not None and (problems := missing(settings, roles)):
        raise SettingsError(problems)
    return settings


def missing(settings: Settings, roles: Role | Iterable[Role]) -> list[str]:
    """One line per variable that ``roles`` need but is unset or malformed."""
    return settings.problems(*_expand(roles))
