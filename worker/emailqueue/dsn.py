"""``MAILER_DSN`` parsing in the style of Symfony Mailer, and URL redaction.

Accepted forms (see docs/configuration.md):

- ``smtp://[user:pass@]host[:port]`` — STARTTLS when the server offers it (port 25
  default); port 465 means implicit TLS, as in Symfony.
- ``smtps://[user:pass@]host[:port]`` — implicit TLS (port 465 default).
- ``<provider>+smtp://user:pass@default`` (and ``<provider>+smtps://``, and
  ``gmail://``) for the providers in ``PROVIDERS``; ``default`` means the provider's host.
- ``null://null`` — accept and discard (dry runs, benchmarks of the queue itself).

Query options: ``verify_peer=0`` (do not verify the server certificate; logged as a
warning), ``auto_tls=false`` (never STARTTLS), ``require_tls=true`` (fail unless STARTTLS
succeeds), ``local_domain=NAME`` (EHLO name), ``ca_file=PATH``, ``allow_plain_auth=true``
(AUTH without TLS), ``pipelining=false`` (never pipeline, even where the server offers
it), ``region=...`` (ses, mailgun), ``pool_size`` is not a DSN option:
use ``EMAILQUEUE_CONCURRENCY``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ConfigError

TlsMode = Literal["implicit", "starttls", "auto", "none"]


@dataclass(frozen=True, slots=True)
class Provider:
    host: str
    port: int
    tls: TlsMode
    fixed_username: str | None = None  # e.g. sendgrid's literal "apikey"
    user_is_password: bool = False  # e.g. postmark: the server token is user and password


PROVIDERS: dict[str, Provider] = {
    "gmail": Provider("smtp.gmail.com", 465, "implicit"),
    "ses": Provider("email-smtp.{region}.amazonaws.com", 465, "implicit"),
    "sendgrid": Provider("smtp.sendgrid.net", 465, "implicit", fixed_username="apikey"),
    "mailgun": Provider("smtp.mailgun.org", 465, "implicit"),
    "mailjet": Provider("in-v3.mailjet.com", 465, "implicit"),
    "postmark": Provider("smtp.postmarkapp.com", 587, "starttls", user_is_password=True),
    "brevo": Provider("smtp-relay.brevo.com", 465, "implicit"),
    "mandrill": Provider("smtp.mandrillapp.com", 587, "starttls"),
}
_REGION_DEFAULTS = {"ses": "eu-west-1", "mailgun": "us"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to deliver; ``password`` never appears in ``repr``."""

    host: str
    port: int
    tls: TlsMode
    username: str | None = None
    password: str | None = None
    verify_peer: bool = True
    ca_file: str | None = None
    local_domain: str | None = None
    allow_plain_auth: bool = False
    pipelining: bool = True
    null: bool = False

    def __repr__(self) -> str:
        return f"SmtpTarget({self.redacted()})"

    def redacted(self) -> str:
        user = "***@" if self.username else ""
        scheme = "null" if self.null else "smtps" if self.tls == "implicit" else "smtp"
        return f"{scheme}://{user}{self.host}:{self.port}"


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    if name not in query:
        return default
    value = query[name][-1].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"MAILER_DSN: option {name}={value!r} must be true or false")


def parse_dsn(dsn: str) -> SmtpTarget:
    """Parse ``MAILER_DSN``; raises ``ConfigError`` naming the problem (never the password)."""
    try:
        parts = urlsplit(dsn.strip())
        port_value = parts.port
    except ValueError:
        raise ConfigError(f"MAILER_DSN is not a valid URL: {_redact_dsn(dsn)}") from None
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname or ""
    options = {
        "verify_peer": _flag(query, "verify_peer", True),
        "ca_file": query.get("ca_file", [None])[-1],
        "local_domain": query.get("local_domain", [None])[-1],
        "allow_plain_auth": _flag(query, "allow_plain_auth", False),
        "pipelining": _flag(query, "pipelining", True),
    }
    if scheme == "null":
        return SmtpTarget(host="null", port=0, tls="none", null=True)
    if scheme in ("smtp", "smtps"):
        if not host:
            raise ConfigError(f"MAILER_DSN has no host: {_redact_dsn(dsn)}")
        port = port_value or (465 if scheme == "smtps" else 25)
        tls: TlsMode
        if scheme == "smtps" or port == 465:
            tls = "implicit"
        elif _flag(query, "require_tls", False):
            tls = "starttls"
        elif not _flag(query, "auto_tls", True):
            tls = "none"
        else:
            tls = "auto"
        return SmtpTarget(host=host, port=port, tls=tls, username=username, password=password, **options)  # type: ignore[arg-type]
    match = re.match(r"^([a-z0-9]+)(?:\+(smtps?))?$", scheme)
    provider = PROVIDERS.get(match.group(1)) if match else None
    if match is None or provider is None:
        known = ", ".join(f"{name}+smtp://" for name in PROVIDERS)
        raise ConfigError(
            f"MAILER_DSN scheme {scheme!r} is not supported: use smtp://, smtps://, null:// or one of {known}"
        )
    name, transport = match.group(1), match.group(2)
    if transport is None and name != "gmail":
        raise ConfigError(
            f"MAILER_DSN: {name}:// is the provider's HTTP API; emailqueue sends over SMTP: use {name}+smtp://"
        )
    region = query.get("region", [_REGION_DEFAULTS.get(name, "")])[-1]
    prov_host = provider.host.format(region=region)
    if name == "mailgun" and region == "eu":
        prov_host = "smtp.eu.mailgun.org"
    if provider.fixed_username:
        password = password or username
        username = provider.fixed_username
    elif provider.user_is_password:
        password = password or username
    if not username or not password:
        raise ConfigError(f"MAILER_DSN: {name}+smtp:// needs credentials: {name}+smtp://USER:PASSWORD@default")
    host = prov_host if host in ("", "default") else host
    return SmtpTarget(
        host=host,
        port=port_value or provider.port,
        tls=provider.tls,
        username=username,
        password=password,
        **options,  # type: ignore[arg-type]
    )


def _redact_dsn(dsn: str) -> str:
    """Everything between ``://`` and the last ``@`` of one DSN value: unencoded passwords too."""
    return re.sub(r"^([^:/]*://).*@", r"\1***@", dsn.strip(), flags=re.DOTALL)


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^@/?#\s]*)@")


def redact_url(url: str) -> str:
    """``smtp://user:secret@host`` -> ``smtp://***@host``; anything else unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", url)
