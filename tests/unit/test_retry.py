"""The backoff schedule and the classification of SMTP failures."""

from __future__ import annotations

import random

import aiosmtplib
import pytest

from emailqueue import PermanentDeliveryError, TransientDeliveryError
from emailqueue.retry import RetryPolicy, backoff_ms, classify, should_retry


def test_default_schedule_is_1_2_4_seconds_then_give_up() -> None:
    policy = RetryPolicy()
    assert [backoff_ms(a, policy) for a in (1, 2, 3)] == [1000, 2000, 4000]
    assert [should_retry(a, policy) for a in (1, 2, 3, 4)] == [True, True, True, False]


def test_cap_and_jitter() -> None:
    policy = RetryPolicy(delay_ms=1000, multiplier=3, max_delay_ms=5000)
    assert [backoff_ms(a, policy) for a in (1, 2, 3, 4)] == [1000, 3000, 5000, 5000]
    jittered = RetryPolicy(delay_ms=1000, jitter=0.1)
    rng = random.Random(1)
    values = {backoff_ms(1, jittered, rng) for _ in range(50)}
    assert min(values) >= 900 and max(values) <= 1100 and len(values) > 1


def test_zero_retries() -> None:
    assert not should_retry(1, RetryPolicy(max_retries=0))


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (aiosmtplib.SMTPDataError(554, "rejected"), PermanentDeliveryError, 554),
        (aiosmtplib.SMTPDataError(451, "try later"), TransientDeliveryError, 451),
        (aiosmtplib.SMTPSenderRefused(550, "no", "a@b.c"), PermanentDeliveryError, 550),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "unknown", "a@b.c")]),
            PermanentDeliveryError,
            550,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "x", "a@b.c"),
                    aiosmtplib.SMTPRecipientRefused(452, "full", "d@b.c"),
                ]
            ),
            TransientDeliveryError,
            452,
        ),
        (aiosmtplib.SMTPAuthenticationError(535, "bad creds"), TransientDeliveryError, 535),
        (aiosmtplib.SMTPConnectError("refused"), TransientDeliveryError, None),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientDeliveryError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientDeliveryError, None),
        (ConnectionResetError(), TransientDeliveryError, None),
    ],
)
def test_classify(exc: BaseException, kind: type, code: int | None) -> None:
    result = classify(exc)
    assert type(result) is kind
    assert result.code == code
