"""Rate-limit settings and the 'slow down' reply detection."""

from __future__ import annotations

import pytest

from emailqueue import ConfigError
from emailqueue.ratelimit import Limit, is_slow_down, parse_domain_limits, parse_limit
from emailqueue.settings import load_settings


def test_parse_limits() -> None:
    assert parse_limit("20/s", "X") == Limit(20, 1000, 1)
    assert parse_limit(" 500 / d ", "X") == Limit(500, 86_400_000, 1)
    assert parse_limit("20/s:5", "X").tolerance_ms == pytest.approx(200.0)
    assert parse_domain_limits("gmail.com=20/s, Yahoo.com=5/m") == {
        "gmail.com": Limit(20, 1000),
        "yahoo.com": Limit(5, 60_000),
    }


@pytest.mark.parametrize("text", ["20", "0/s", "20/w", "fast", "-1/s"])
def test_bad_limits_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match="EMAILQUEUE_RATE_LIMIT"):
        parse_limit(text, "EMAILQUEUE_RATE_LIMIT")


def test_settings_reject_bad_rates() -> None:
    with pytest.raises(ConfigError, match="EMAILQUEUE_DOMAIN_RATE_LIMITS"):
        load_settings(domain_rate_limits="gmail.com:20/s")
    with pytest.raises(ConfigError, match="EMAILQUEUE_RATE_LIMIT"):
        load_settings(rate_limit="lots")


def test_slow_down_replies() -> None:
    assert is_slow_down(421, "4.7.0 too many connections")
    assert is_slow_down(451, "4.7.1 rate limit exceeded")
    assert not is_slow_down(451, "4.7.1 greylisted, come back later")
    assert not is_slow_down(450, "mailbox busy")
    assert not is_slow_down(None, "connection refused")
