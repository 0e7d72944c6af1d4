"""One settings model for the CLI, the worker and operator-rendered pods.

Read from environment variables (names below are the contract with the operator and with
users' deployments; docs/configuration.md documents each) and overridden by CLI flags.
Secrets are ``SecretStr``: they print as ``**********``.
"""

from __future__ import annotations

import os
import socket
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .crypto import ENV_KEY_ID, ENV_KEYS, PayloadCipher
from .dkimsign import DkimSigner
from .dsn import SmtpTarget, parse_dsn, redact_url
from .errors import ConfigError
from .keys import validate_queue_name
from .ratelimit import Limit, parse_domain_limits, parse_limit
from .wire import DEFAULT_MAX_PAYLOAD_BYTES


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def default_consumer_name() -> str:
    """Unique per process: pod (host) name + pid."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every setting; field docs become docs/configuration.md."""

    model_config = SettingsConfigDict(
        populate_by_name=True,
        extra="ignore",
        case_sensitive=False,
        secrets_dir=os.environ.get("EMAILQUEUE_SECRETS_DIR"),
    )

    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        validation_alias=_env("EMAILQUEUE_REDIS_URL", "redis_url"),
        description="Redis URL: redis:// or rediss://, with optional ACL user and password.",
    )
    redis_password: SecretStr | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_REDIS_PASSWORD", "redis_password"),
        description="Redis password, merged into the URL (so the URL itself need not hold a secret).",
    )
    queue: str = Field("default", validation_alias=_env("EMAILQUEUE_QUEUE", "queue"), description="Queue name.")
    mailer_dsn: SecretStr = Field(
        SecretStr("smtp://localhost:25"),
        validation_alias=_env("MAILER_DSN", "mailer_dsn"),
        description="SMTP transport, Symfony style: smtp://, smtps://, gmail+smtp://user:pass@default, null://null.",
    )
    from_email: str | None = Field(
        None, validation_alias=_env("MAILER_FROM_EMAIL", "from_email"), description="Default sender address."
    )
    from_name: str | None = Field(
        None, validation_alias=_env("MAILER_FROM_NAME", "from_name"), description="Default sender display name."
    )
    concurrency: int = Field(
        16,
        ge=1,
        le=1024,
        validation_alias=_env("EMAILQUEUE_CONCURRENCY", "concurrency"),
        description="Deliveries in flight per worker process (= pooled SMTP connections).",
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=100,
        validation_alias=_env("EMAILQUEUE_MAX_RETRIES", "max_retries"),
        description="Retries after the first attempt for transient failures.",
    )
    retry_delay_ms: int = Field(
        1000,
        ge=0,
        validation_alias=_env("EMAILQUEUE_RETRY_DELAY_MS", "retry_delay_ms"),
        description="Delay before the first retry.",
    )
    retry_multiplier: float = Field(
        2.0,
        ge=1.0,
        le=100.0,
        validation_alias=_env("EMAILQUEUE_RETRY_MULTIPLIER", "retry_multiplier"),
        description="Each further retry waits this many times longer.",
    )
    retry_max_delay_ms: int = Field(
        0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_RETRY_MAX_DELAY_MS", "retry_max_delay_ms"),
        description="Cap on the retry delay; 0 means no cap.",
    )
    retry_jitter: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        validation_alias=_env("EMAILQUEUE_RETRY_JITTER", "retry_jitter"),
        description="Random spread of each delay, as a fraction (0.1 = +/-10%).",
    )
    claim_idle_ms: int = Field(
        120_000,
        ge=100,
        validation_alias=_env("EMAILQUEUE_CLAIM_IDLE_MS", "claim_idle_ms"),
        description="Entries held this long by a consumer are reclaimed (XAUTOCLAIM) by another.",
    )
    payload_keys: SecretStr | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_PAYLOAD_KEYS", "payload_keys"),
        description="Payload encryption keys, 'id:BASE64KEY,...' (AES-GCM); unset = payloads in the clear.",
    )
    payload_key_id: str | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_PAYLOAD_KEY_ID", "payload_key_id"),
        description="The key id new payloads are sealed with (may be left out when there is one key).",
    )
    suppress_hard_bounces: bool = Field(
        True,
        validation_alias=_env("EMAILQUEUE_SUPPRESS_HARD_BOUNCES", "suppress_hard_bounces"),
        description="Record recipients refused with 5xx at RCPT and stop sending to them.",
    )
    status_ttl_s: int = Field(
        86_400,
        ge=0,
        validation_alias=_env("EMAILQUEUE_STATUS_TTL_S", "status_ttl_s"),
        description="How long a message's status (emailqueue status ID) is kept; 0 = no status tracking.",
    )
    rate_limit: str | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_RATE_LIMIT", "rate_limit"),
        description="Sends per period for the whole queue, across all workers: '50/s', '500/d', '20/s:5' (burst 5).",
    )
    domain_rate_limits: str | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_DOMAIN_RATE_LIMITS", "domain_rate_limits"),
        description="Per recipient domain, across all workers: 'gmail.com=20/s,yahoo.com=5/s'.",
    )
    rate_pause_ms: int = Field(
        30_000,
        ge=0,
        validation_alias=_env("EMAILQUEUE_RATE_PAUSE_MS", "rate_pause_ms"),
        description="With rate limits on: how long a domain is paused after a 'slow down' reply (421, 451 rate).",
    )
    dkim_domain: str | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_DKIM_DOMAIN", "dkim_domain"),
        description="Sign outgoing mail with DKIM for this domain (d=); needs emailqueue[dkim].",
    )
    dkim_selector: str = Field(
        "emailqueue",
        validation_alias=_env("EMAILQUEUE_DKIM_SELECTOR", "dkim_selector"),
        description="DKIM selector (s=): the key is published at <selector>._domainkey.<domain>.",
    )
    dkim_private_key: SecretStr | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_DKIM_PRIVATE_KEY", "dkim_private_key"),
        description="DKIM private key, PEM.",
    )
    dkim_private_key_file: str | None = Field(
        None,
        validation_alias=_env("EMAILQUEUE_DKIM_PRIVATE_KEY_FILE", "dkim_private_key_file"),
        description="File holding the DKIM private key (a mounted Secret), instead of the variable.",
    )
    events_maxlen: int = Field(
        0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_EVENTS_MAXLEN", "events_maxlen"),
        description="Publish delivery events to emailqueue:{<queue>}:events, keeping about this many; 0 = off.",
    )
    max_deliveries: int = Field(
        5,
        ge=0,
        validation_alias=_env("EMAILQUEUE_MAX_DELIVERIES", "max_deliveries"),
        description="An entry reclaimed more often than this (its workers keep dying) is dead-lettered; 0 = never.",
    )
    metrics_port: int = Field(
        8080,
        ge=0,
        le=65535,
        validation_alias=_env("EMAILQUEUE_METRICS_PORT", "metrics_port"),
        description="Port of /healthz, /readyz and /metrics; 0 disables the endpoint.",
    )
    metrics_host: str = Field(
        "0.0.0.0",  # noqa: S104 - a pod must be reachable by probes and Prometheus
        validation_alias=_env("EMAILQUEUE_METRICS_HOST", "metrics_host"),
        description="Address the metrics endpoint binds to.",
    )
    shutdown_grace_s: float = Field(
        25.0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_SHUTDOWN_GRACE_S", "shutdown_grace_s"),
        description="On SIGTERM, how long in-flight sends may take before the worker exits.",
    )
    smtp_timeout_s: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("EMAILQUEUE_SMTP_TIMEOUT_S", "smtp_timeout_s"),
        description="Timeout of each SMTP command.",
    )
    max_payload_bytes: int = Field(
        DEFAULT_MAX_PAYLOAD_BYTES,
        ge=1024,
        validation_alias=_env("EMAILQUEUE_MAX_PAYLOAD_BYTES", "max_payload_bytes"),
        description="Size cap of one encoded email (default 10 MiB).",
    )
    sent_marker_ttl_s: int = Field(
        86_400,
        ge=60,
        validation_alias=_env("EMAILQUEUE_SENT_TTL_S", "sent_marker_ttl_s"),
        description="How long the idempotency marker of a delivered message is kept.",
    )
    consumer_name: str = Field(
        default_factory=default_consumer_name,
        validation_alias=_env("EMAILQUEUE_CONSUMER_NAME", "consumer_name"),
        description="Consumer name in the group; unique per process (the pid is always appended).",
    )
    limit: int = Field(
        0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_LIMIT", "limit"),
        description="Exit after this many messages handled; 0 = no limit.",
    )
    time_limit_s: float = Field(
        0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_TIME_LIMIT_S", "time_limit_s"),
        description="Exit after running this long; 0 = no limit.",
    )
    memory_limit_mb: int = Field(
        0,
        ge=0,
        validation_alias=_env("EMAILQUEUE_MEMORY_LIMIT_MB", "memory_limit_mb"),
        description="Exit when RSS exceeds this; 0 = no limit.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=_env("EMAILQUEUE_LOG_FORMAT", "log_format"), description="text or json."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("EMAILQUEUE_LOG_LEVEL", "log_level"), description="Log level."
    )

    @field_validator("queue")
    @classmethod
    def _check_queue(cls, value: str) -> str:
        return validate_queue_name(value)

    @field_validator("consumer_name")
    @classmethod
    def _unique_consumer(cls, value: str) -> str:
        pid = str(os.getpid())
        return value if value.endswith(f"-{pid}") else f"{value}-{pid}"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        parse_dsn(self.mailer_dsn.get_secret_value())  # raises ConfigError naming MAILER_DSN
        self.cipher()  # raises ConfigError naming EMAILQUEUE_PAYLOAD_KEYS
        self.limits()  # raises ConfigError naming the rate setting
        self.dkim_signer()  # raises ConfigError naming the DKIM setting
        url = self.redis_url.get_secret_value()
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"EMAILQUEUE_REDIS_URL must start with redis://, rediss:// or unix://: {redact_url(url)}")
        return self

    def cipher(self) -> PayloadCipher | None:
        """The payload cipher, or ``None`` when encryption is off."""
        keys = self.payload_keys.get_secret_value() if self.payload_keys is not None else ""
        return PayloadCipher.from_env({ENV_KEYS: keys, ENV_KEY_ID: self.payload_key_id or ""})

    def limits(self) -> tuple[Limit | None, dict[str, Limit]]:
        """The queue-wide limit and the per-domain limits (both may be absent)."""
        queue_limit = parse_limit(self.rate_limit, "EMAILQUEUE_RATE_LIMIT") if self.rate_limit else None
        domains = parse_domain_limits(self.domain_rate_limits) if self.domain_rate_limits else {}
        return queue_limit, domains

    def dkim_signer(self) -> DkimSigner | None:
        """The DKIM signer, or ``None`` when ``EMAILQUEUE_DKIM_DOMAIN`` is unset."""
        if not self.dkim_domain:
            return None
        if self.dkim_private_key is not None:
            key = self.dkim_private_key.get_secret_value().encode()
        elif self.dkim_private_key_file:
            try:
                with open(self.dkim_private_key_file, "rb") as fh:
                    key = fh.read()
            except OSError as exc:
                raise ConfigError(f"EMAILQUEUE_DKIM_PRIVATE_KEY_FILE: cannot read it: {exc.strerror}") from None
        else:
            raise ConfigError("EMAILQUEUE_DKIM_DOMAIN is set: set EMAILQUEUE_DKIM_PRIVATE_KEY(_FILE) too")
        return DkimSigner(self.dkim_domain, self.dkim_selector, key)

    def smtp_target(self) -> SmtpTarget:
        return parse_dsn(self.mailer_dsn.get_secret_value())

    def redis_connection_url(self) -> str:
        """The Redis URL with ``EMAILQUEUE_REDIS_PASSWORD`` merged in (secret: never log it)."""
        url = self.redis_url.get_secret_value()
        if self.redis_password is None:
            return url
        parts = urlsplit(url)
        user = quote(parts.username or "", safe="")
        host = parts.hostname or "localhost"
        netloc = f"{user}:{quote(self.redis_password.get_secret_value(), safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def redis_display(self) -> str:
        return redact_url(self.redis_url.get_secret_value())

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        out: list[str] = []
        target = self.smtp_target()
        if target.password:
            out.append(target.password)
        parts = urlsplit(self.redis_url.get_secret_value())
        if parts.password:
            out.append(parts.password)
        if self.redis_password is not None:
            out.append(self.redis_password.get_secret_value())
        if self.dkim_private_key is not None:
            out.append(self.dkim_private_key.get_secret_value().strip())
        if self.payload_keys is not None:
            for item in self.payload_keys.get_secret_value().replace("\n", ",").split(","):
                out.append(item.partition(":")[2].strip())
        return [s for s in out if len(s) >= 4]


def env_name(field: str) -> str:
    """The environment variable of a settings field, for error messages."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return field


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with CLI ``overrides``; ``ConfigError`` names the setting."""
    from pydantic import ValidationError

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = err.get("loc", ())
        field = str(loc[0]) if loc else ""
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        where = env_name(field) if field else "settings"
        raise ConfigError(f"{where}: {redact_url(msg)}") from None
