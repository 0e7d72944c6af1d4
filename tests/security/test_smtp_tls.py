"""SMTP: STARTTLS and implicit TLS with certificate verification on by default; AUTH only over TLS."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis

from emailqueue import Mailer
from emailqueue.keys import QueueKeys
from emailqueue.settings import Settings
from tests.conftest import QUEUE, running_worker, wait_until

from .conftest import Certs, SmtpServer

K = QueueKeys(QUEUE)
EMAIL = {"from": "app@example.com", "to": "jane@example.com", "subject": "s", "text": "t"}
FAST_FAIL = {"EMAILQUEUE_MAX_RETRIES": "1", "EMAILQUEUE_RETRY_DELAY_MS": "50", "EMAILQUEUE_SMTP_TIMEOUT_S": "5"}


async def _deliver(settings: Settings, server: SmtpServer) -> None:
    async with running_worker(settings):
        await wait_until(lambda: server.log.count() == 1, what="delivery over TLS")


async def _dead_letter(settings: Settings, rclient: redis.Redis) -> dict[str, str]:
    async with running_worker(settings):
        await wait_until(lambda: rclient.xlen(K.failed) == 1, what="the message to be dead-lettered")
    [(_, dead)] = rclient.xrange(K.failed)
    return dict(dead)


async def test_starttls_verified_against_a_custom_ca(
    smtp_server: Callable[..., SmtpServer], certs: Certs, settings_for: Callable[..., Settings], mailer: Mailer
) -> None:
    server = smtp_server("starttls")
    mailer.send(EMAIL)
    await _deliver(settings_for(MAILER_DSN=f"smtp://127.0.0.1:{server.port}?ca_file={certs.ca}"), server)
    assert server.log.deliveries[0]["tls"] is True


async def test_require_tls_uses_starttls(
    smtp_server: Callable[..., SmtpServer], certs: Certs, settings_for: Callable[..., Settings], mailer: Mailer
) -> None:
    server = smtp_server("starttls")
    mailer.send(EMAIL)
    dsn = f"smtp://localhost:{server.port}?require_tls=true&ca_file={certs.ca}"
    await _deliver(settings_for(MAILER_DSN=dsn), server)
    assert server.log.deliveries[0]["tls"] is True


async def test_implicit_tls_verified_against_a_custom_ca(
    smtp_server: Callable[..., SmtpServer], certs: Certs, settings_for: Callable[..., Settings], mailer: Mailer
) -> None:
    server = smtp_server("implicit")
    mailer.send(EMAIL)
    await _deliver(settings_for(MAILER_DSN=f"smtps://127.0.0.1:{server.port}?ca_file={certs.ca}"), server)
    assert server.log.deliveries[0]["tls"] is True


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
async def test_verification_is_on_by_default_unknown_ca_is_refused(
    mode: str,
    smtp_server: Callable[..., SmtpServer],
    settings_for: Callable[..., Settings],
    mailer: Mailer,
    rclient: redis.Redis,
) -> None:
    """No ca_file: the system CAs do not know the test CA, so the send fails (and never falls back to plain)."""
    server = smtp_server(mode)
    mailer.send(EMAIL)
    scheme = "smtps" if mode == "implicit" else "smtp"
    dead = await _dead_letter(settings_for(MAILER_DSN=f"{scheme}://127.0.0.1:{server.port}", **FAST_FAIL), rclient)
    assert server.log.count() == 0
    assert dead["reason"] == "exhausted"
    assert "CERTIFICATE_VERIFY_FAILED" in dead["error"] or "certificate verify failed" in dead["error"]


async def test_certificate_for_another_host_is_refused(
    smtp_server: Callable[..., SmtpServer],
    certs: Certs,
    settings_for: Callable[..., Settings],
    mailer: Mailer,
    rclient: redis.Redis,
) -> None:
    server = smtp_server("implicit", wrong_host=True)  # signed by our CA, but for mail.example.net
    mailer.send(EMAIL)
    dsn = f"smtps://127.0.0.1:{server.port}?ca_file={certs.ca}"
    dead = await _dead_letter(settings_for(MAILER_DSN=dsn, **FAST_FAIL), rclient)
    assert server.log.count() == 0
    assert "match" in dead["error"] or "mismatch" in dead["error"], dead["error"]


async def test_verify_peer_0_is_an_explicit_opt_out_that_logs_a_warning(
    smtp_server: Callable[..., SmtpServer],
    settings_for: Callable[..., Settings],
    mailer: Mailer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = smtp_server("implicit")
    mailer.send(EMAIL)
    with caplog.at_level(logging.WARNING):
        await _deliver(settings_for(MAILER_DSN=f"smtps://127.0.0.1:{server.port}?verify_peer=0"), server)
    assert any("NOT verified" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


async def test_auth_over_starttls(
    smtp_server: Callable[..., SmtpServer], certs: Certs, settings_for: Callable[..., Settings], mailer: Mailer
) -> None:
    server = smtp_server("starttls", user="mailer", password="s3cret-Pa55")
    mailer.send(EMAIL)
    dsn = f"smtp://mailer:s3cret-Pa55@127.0.0.1:{server.port}?ca_file={certs.ca}"
    await _deliver(settings_for(MAILER_DSN=dsn), server)
    assert server.log.auth_attempts == [("mailer", True, True)]
    assert server.log.deliveries[0]["auth"] is True


async def test_auth_is_refused_without_tls(
    smtp_server: Callable[..., SmtpServer],
    settings_for: Callable[..., Settings],
    mailer: Mailer,
    rclient: redis.Redis,
) -> None:
    """A server that offers AUTH but no STARTTLS never sees the password."""
    server = smtp_server("plain", user="mailer", password="s3cret-Pa55", auth_require_tls=False)
    mailer.send(EMAIL)
    dsn = f"smtp://mailer:s3cret-Pa55@127.0.0.1:{server.port}"
    dead = await _dead_letter(settings_for(MAILER_DSN=dsn, **FAST_FAIL), rclient)
    assert server.log.auth_attempts == []
    assert server.log.count() == 0
    assert "refusing to send the password in clear text" in dead["error"]
    assert "s3cret-Pa55" not in str(dead)


async def test_plain_auth_only_when_explicitly_allowed(
    smtp_server: Callable[..., SmtpServer], settings_for: Callable[..., Settings], mailer: Mailer
) -> None:
    server = smtp_server("plain", user="mailer", password="s3cret-Pa55", auth_require_tls=False)
    mailer.send(EMAIL)
    dsn = f"smtp://mailer:s3cret-Pa55@127.0.0.1:{server.port}?allow_plain_auth=true"
    await _deliver(settings_for(MAILER_DSN=dsn), server)
    assert server.log.auth_attempts == [("mailer", True, False)]
