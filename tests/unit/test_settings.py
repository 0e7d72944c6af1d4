"""One settings model: env names are the contract; flags override env; secrets stay secret."""

from __future__ import annotations

import pytest

from emailqueue import ConfigError
from emailqueue.settings import Settings, load_settings

CONTRACT = [
    "EMAILQUEUE_REDIS_URL",
    "EMAILQUEUE_QUEUE",
    "MAILER_DSN",
    "MAILER_FROM_EMAIL",
    "MAILER_FROM_NAME",
    "EMAILQUEUE_CONCURRENCY",
    "EMAILQUEUE_MAX_RETRIES",
    "EMAILQUEUE_RETRY_DELAY_MS",
    "EMAILQUEUE_RETRY_MULTIPLIER",
    "EMAILQUEUE_RETRY_MAX_DELAY_MS",
    "EMAILQUEUE_CLAIM_IDLE_MS",
    "EMAILQUEUE_METRICS_PORT",
    "EMAILQUEUE_SHUTDOWN_GRACE_S",
]


def test_contract_env_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "EMAILQUEUE_REDIS_URL": "redis://r:6379/1",
        "EMAILQUEUE_QUEUE": "billing",
        "MAILER_DSN": "smtp://m:2525",
        "MAILER_FROM_EMAIL": "no@example.com",
        "MAILER_FROM_NAME": "Shop",
        "EMAILQUEUE_CONCURRENCY": "5",
        "EMAILQUEUE_MAX_RETRIES": "7",
        "EMAILQUEUE_RETRY_DELAY_MS": "10",
        "EMAILQUEUE_RETRY_MULTIPLIER": "3",
        "EMAILQUEUE_RETRY_MAX_DELAY_MS": "99",
        "EMAILQUEUE_CLAIM_IDLE_MS": "5000",
        "EMAILQUEUE_METRICS_PORT": "9999",
        "EMAILQUEUE_SHUTDOWN_GRACE_S": "12",
    }
    assert sorted(values) == sorted(CONTRACT)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    assert s.redis_url.get_secret_value() == "redis://r:6379/1"
    assert (s.queue, s.from_email, s.from_name, s.concurrency) == ("billing", "no@example.com", "Shop", 5)
    assert (s.max_retries, s.retry_delay_ms, s.retry_multiplier, s.retry_max_delay_ms) == (7, 10, 3.0, 99)
    assert (s.claim_idle_ms, s.metrics_port, s.shutdown_grace_s) == (5000, 9999, 12.0)
    assert s.smtp_target().port == 2525


def test_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAILQUEUE_CONCURRENCY", "5")
    assert load_settings(concurrency=9).concurrency == 9
    assert load_settings(concurrency=None).concurrency == 5


def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAILQUEUE_CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match="EMAILQUEUE_CONCURRENCY"):
        load_settings()
    monkeypatch.delenv("EMAILQUEUE_CONCURRENCY")
    monkeypatch.setenv("MAILER_DSN", "bogus://user:hunter22@x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "MAILER_DSN" in str(info.value) and "hunter22" not in str(info.value)
    monkeypatch.setenv("MAILER_DSN", "smtp://x")
    with pytest.raises(ConfigError, match="EMAILQUEUE_QUEUE"):
        load_settings(queue="bad{name}")


def test_secrets_are_hidden_and_password_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAILQUEUE_REDIS_URL", "redis://worker@r:6379/0")
    monkeypatch.setenv("EMAILQUEUE_REDIS_PASSWORD", "s3cr3t/pw")
    monkeypatch.setenv("MAILER_DSN", "smtp://u:hunter22@m:587")
    s = Settings()
    assert "hunter22" not in repr(s) and "s3cr3t" not in repr(s)
    assert s.redis_connection_url() == "redis://worker:s3cr3t%2Fpw@r:6379/0"
    assert set(s.secrets()) == {"hunter22", "s3cr3t/pw"}


def test_consumer_name_is_unique_per_process() -> None:
    import os

    assert load_settings(consumer_name="pod-a").consumer_name == f"pod-a-{os.getpid()}"
