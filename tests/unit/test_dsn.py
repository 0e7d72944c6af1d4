"""MAILER_DSN in Symfony's style; secrets never appear in errors or repr."""

from __future__ import annotations

import pytest

from emailqueue import ConfigError
from emailqueue.dsn import parse_dsn, redact_url


@pytest.mark.parametrize(
    ("dsn", "host", "port", "tls", "user"),
    [
        ("smtp://localhost", "localhost", 25, "auto", None),
        ("smtp://mail.example.com:587", "mail.example.com", 587, "auto", None),
        ("smtp://u:p@mail.example.com:465", "mail.example.com", 465, "implicit", "u"),
        ("smtps://u:p@mail.example.com", "mail.example.com", 465, "implicit", "u"),
        ("smtp://h:2525?auto_tls=false", "h", 2525, "none", None),
        ("smtp://h:587?require_tls=true", "h", 587, "starttls", None),
        ("gmail+smtp://me%40gmail.com:app-pass@default", "smtp.gmail.com", 465, "implicit", "me@gmail.com"),
        ("gmail://me:pw@default", "smtp.gmail.com", 465, "implicit", "me"),
        (
            "ses+smtp://AKIA:secret@default?region=us-east-1",
            "email-smtp.us-east-1.amazonaws.com",
            465,
            "implicit",
            "AKIA",
        ),
        ("sendgrid+smtp://SG.key@default", "smtp.sendgrid.net", 465, "implicit", "apikey"),
        ("postmark+smtp://token@default", "smtp.postmarkapp.com", 587, "starttls", "token"),
        ("mailgun+smtp://u:p@default?region=eu", "smtp.eu.mailgun.org", 465, "implicit", "u"),
    ],
)
def test_parse(dsn: str, host: str, port: int, tls: str, user: str | None) -> None:
    t = parse_dsn(dsn)
    assert (t.host, t.port, t.tls, t.username) == (host, port, tls, user)


def test_provider_passwords() -> None:
    assert parse_dsn("sendgrid+smtp://SG.key@default").password == "SG.key"
    assert parse_dsn("postmark+smtp://token@default").password == "token"
    assert parse_dsn("smtp://u:p%2Fw@h").password == "p/w"


def test_null_transport() -> None:
    assert parse_dsn("null://null").null


def test_verify_peer_option() -> None:
    assert parse_dsn("smtps://h").verify_peer
    assert not parse_dsn("smtps://h?verify_peer=0").verify_peer


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("ftp://u:hunter22@h", "scheme 'ftp' is not supported"),
        ("sendgrid://key@default", "use sendgrid+smtp://"),
        ("smtp://", "has no host"),
        ("gmail+smtp://default", "needs credentials"),
        ("smtp://h?verify_peer=maybe", "verify_peer='maybe'"),
        ("smtp://u:hunter22@h:notaport", "not a valid URL"),
    ],
)
def test_errors_name_problem_without_secret(dsn: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dsn(dsn)
    assert message in str(info.value)
    assert "hunter22" not in str(info.value)


def test_repr_and_redaction_hide_secrets() -> None:
    t = parse_dsn("smtp://user:hunter22@mail.example.com:587")
    assert "hunter22" not in repr(t)
    assert "user" not in t.redacted()
    assert redact_url("redis://default:hunter22@r:6379/0") == "redis://***@r:6379/0"
    assert redact_url("see smtp://a:b@h and rediss://x@y") == "see smtp://***@h and rediss://***@y"
