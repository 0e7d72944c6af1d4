"""The dashboard's own settings (``EMAILQUEUE_DASHBOARD_*``); Redis comes from ``Settings``."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from emailqueue.errors import ConfigError
from emailqueue.keys import validate_queue_name


class DashboardConfig(BaseSettings):
    """Read from ``EMAILQUEUE_DASHBOARD_<FIELD>``; secrets may also come from files in
    ``EMAILQUEUE_SECRETS_DIR`` (a mounted Secret), as the worker's do."""

    model_config = SettingsConfigDict(
        env_prefix="EMAILQUEUE_DASHBOARD_",
        extra="ignore",
        case_sensitive=False,
        secrets_dir=os.environ.get("EMAILQUEUE_SECRETS_DIR"),
    )

    token: SecretStr | None = Field(None, description="Bearer token that unlocks the dashboard and its actions.")
    user: str | None = Field(None, description="Basic-auth user name (with password).")
    password: SecretStr | None = Field(None, description="Basic-auth password (with user).")
    read_only: bool = Field(False, description="Show everything, change nothing (no retry, remove, pause).")
    queues: str = Field("", description="Comma-separated queues to show; empty = every queue found in Redis.")
    sample_s: float = Field(5.0, ge=0.1, le=300, description="Seconds between two samples of the queues' figures.")
    history_s: int = Field(3600, ge=60, le=86400, description="Seconds of samples kept in memory for the charts.")
    rediscover_s: float = Field(60.0, ge=1, description="Seconds between two SCANs for new queues.")
    session_ttl_s: int = Field(43200, ge=60, description="Lifetime of a login session (cookie).")

    @field_validator("token", "password")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> DashboardConfig:
        if (self.user is None) != (self.password is None):
            raise ValueError("set both EMAILQUEUE_DASHBOARD_USER and EMAILQUEUE_DASHBOARD_PASSWORD, or neither")
        return self

    @field_validator("queues")
    @classmethod
    def _queues(cls, value: str) -> str:
        for name in value.split(","):
            if name.strip():
                validate_queue_name(name.strip())
        return value

    @property
    def queue_list(self) -> list[str]:
        return [q.strip() for q in self.queues.split(",") if q.strip()]

    @property
    def auth_configured(self) -> bool:
        return self.token is not None or self.user is not None

    @property
    def can_act(self) -> bool:
        """Actions exist only behind authentication and outside read-only mode."""
        return self.auth_configured and not self.read_only

    @property
    def samples_kept(self) -> int:
        return max(int(self.history_s / self.sample_s), 2)

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.token, self.password) if s is not None]


def load_dashboard_config(**overrides: object) -> DashboardConfig:
    """From the environment, with CLI ``overrides`` (None = not given); ``ConfigError`` names the variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return DashboardConfig(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = err.get("loc", ())
        where = f"EMAILQUEUE_DASHBOARD_{str(loc[0]).upper()}" if loc else "dashboard settings"
        raise ConfigError(f"{where}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}") from None
