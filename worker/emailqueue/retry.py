"""Retry policy: the backoff schedule as a pure function, and SMTP failure classification."""

from __future__ import annotations

import asyncio
import random
import ssl
from dataclasses import dataclass

import aiosmtplib

from .errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    delay_ms: int = 1000
    multiplier: float = 2.0
    max_delay_ms: int = 0  # 0 = no cap
    jitter: float = 0.0  # fraction, 0.1 = +/-10 %


def backoff_ms(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> int:
    """Delay before the retry that follows failed attempt number ``attempt`` (1-based).

    ``delay * multiplier ** (attempt - 1)``, capped at ``max_delay_ms`` when set, spread by
    ``jitter``: with the defaults, 1000, 2000, 4000 ms.
    """
    delay = policy.delay_ms * policy.multiplier ** max(attempt - 1, 0)
    if policy.max_delay_ms:
        delay = min(delay, policy.max_delay_ms)
    if policy.jitter:
        spread = delay * policy.jitter
        delay += (rng or random).uniform(-spread, spread)
    return max(int(delay), 0)


def should_retry(attempt: int, policy: RetryPolicy) -> bool:
    """After failed attempt ``attempt`` (1-based), is there a retry left?"""
    return attempt <= policy.max_retries


def classify(exc: BaseException) -> DeliveryError:
    """Sort one failed SMTP attempt into transient (retry) or permanent (dead-letter).

    5xx replies are permanent, except during the connection phase (greeting, EHLO, AUTH,
    STARTTLS): those are about the server or our credentials, not about this message, so
    they are retried and the message is not blamed at once.  4xx, timeouts and connection
    errors are transient.
    """
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        reply = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        refused = {r.recipient: r.code for r in exc.recipients}
        if any(400 <= c < 500 for c in codes):
            return TransientDeliveryError(f"recipient refused: {reply}", min(codes), refused)
        return PermanentDeliveryError(f"recipient refused: {reply}", max(codes) if codes else None, refused)
    if isinstance(
        exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError | aiosmtplib.SMTPAuthenticationError
    ):
        return TransientDeliveryError(f"SMTP connection refused: {exc.code} {exc.message}", exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = type(exc).__name__.removeprefix("SMTP").removesuffix("Error").removesuffix("Exception")
        text = f"{what}: {exc.code} {exc.message}"
        if 500 <= exc.code < 600:
            return PermanentDeliveryError(text, exc.code)
        return TransientDeliveryError(text, exc.code)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return TransientDeliveryError(f"SMTP timeout: {exc}")
    if isinstance(exc, ssl.SSLError):
        return TransientDeliveryError(f"TLS error: {exc}")
    if isinstance(exc, ConnectionError | OSError | aiosmtplib.SMTPException):
        return TransientDeliveryError(f"SMTP connection error: {exc}")
    return TransientDeliveryError(f"unexpected error: {type(exc).__name__}: {exc}")
