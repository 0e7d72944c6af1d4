"""``POST /forgot-password``: the endpoint that waited 2-5 s on SMTP, and the same one on emailqueue.

    RESET_MAIL_MODE=queue EMAILQUEUE_REDIS_URL=redis://localhost:6379/0 \\
        uvicorn examples.password_reset.app:app          # enqueue; an `emailqueue worker` delivers
    RESET_MAIL_MODE=smtp SMTP_HOST=localhost SMTP_PORT=2525 \\
        uvicorn examples.password_reset.app:app          # send inline: the request waits for SMTP

Both modes answer 202 with the same body whether or not the account exists, so the answer does
not tell who has an account.  For an existing account the app creates a reset token, keeps only
its SHA-256 with an expiry, and emails a link carrying the token.  The token is never logged.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Final, Literal, get_args
from urllib.parse import urlencode

import aiosmtplib
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emailqueue import Address, AsyncMailer, EmailQueueError

Mode = Literal["smtp", "queue"]
MODES: Final = get_args(Mode)
ACCEPTED: Final = {"status": "If an account exists for that address, a reset link is on its way."}
DEFAULT_USERS: Final = ("alice@example.com", "bob@example.com", "carol@example.com")
SUBJECT: Final = "Reset your password"

log = logging.getLogger("password_reset")


def seeded_users(n: int) -> list[str]:
    """``user0@example.com`` ... ``user{n-1}@example.com``: accounts for a benchmark."""
    return [f"user{i}@example.com" for i in range(n)]


class Accounts:
    """The account store: an in-memory stand-in for the users table, looked up case-insensitively."""

    def __init__(self, emails: Iterable[str]) -> None:
        self._by_key = {email.lower(): email for email in emails}

    def find(self, email: str) -> str | None:
        """The address on file for ``email``, or ``None`` when there is no such account."""
        return self._by_key.get(email.lower())

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass(frozen=True, slots=True)
class _Pending:
    email: str
    expires_at: float  # time.monotonic()


class ResetTokens:
    """Reset tokens by their SHA-256: a leak of this store does not leak a usable link."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._by_digest: dict[str, _Pending] = {}

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(self, email: str) -> str:
        token = secrets.token_urlsafe(32)
        self._by_digest[self._digest(token)] = _Pending(email, time.monotonic() + self.ttl_s)
        return token

    def lookup(self, token: str) -> str | None:
        """The account a valid, unexpired ``token`` resets, else ``None`` (expired ones are dropped)."""
        digest = self._digest(token)
        pending = self._by_digest.get(digest)
        if pending is None:
            return None
        if pending.expires_at <= time.monotonic():
            del self._by_digest[digest]
            return None
        return pending.email


def reset_email(sender: str, to: str, link: str, ttl_s: float) -> dict[str, str]:
    """The reset email as emailqueue's dict: from, to, subject, text and HTML parts."""
    minutes = round(ttl_s / 60)
    text = (
        "Someone asked to reset the password of your account.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n"
        "If it was not you, ignore this email: your password stays as it is.\n"
    )
    body = (
        "<p>Someone asked to reset the password of your account.</p>"
        f'<p><a href="{html.escape(link)}">Choose a new password</a> (the link works for {minutes} minutes).</p>'
        "<p>If it was not you, ignore this email: your password stays as it is.</p>"
    )
    return {"from": sender, "to": to, "subject": SUBJECT, "text": text, "html": body}


def mime_message(email: Mapping[str, str]) -> EmailMessage:
    """``reset_email()`` as a MIME message for a direct SMTP send."""
    message = EmailMessage()
    message["From"] = email["from"]
    message["To"] = email["to"]
    message["Subject"] = email["subject"]
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(email["from"])[1].rpartition("@")[2] or None)
    message.set_content(email["text"])
    message.add_alternative(email["html"], subtype="html")
    return message


class SendFailed(Exception):
    """The reset email could not be sent or enqueued; the request should be retried."""


@dataclass
class PasswordReset:
    """What ``POST /forgot-password`` does, in either mode."""

    mode: Mode
    accounts: Accounts
    tokens: ResetTokens
    sender: str
    base_url: str
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_timeout_s: float = 30.0
    mailer: AsyncMailer | None = field(default=None, repr=False)

    async def request(self, email: str) -> None:
        """Issue a token and send the link if ``email`` has an account; do nothing otherwise."""
        account = self.accounts.find(email)
        if account is None:
            return
        token = self.tokens.issue(account)
        link = f"{self.base_url}/reset?{urlencode({'token': token})}"
        message = reset_email(self.sender, account, link, self.tokens.ttl_s)
        try:
            if self.mailer is not None:
                await self.mailer.send({**message, "priority": "high"})
            else:
                await aiosmtplib.send(
                    mime_message(message), hostname=self.smtp_host, port=self.smtp_port, timeout=self.smtp_timeout_s
                )
        except (EmailQueueError, aiosmtplib.SMTPException, OSError) as exc:
            # the exception names the server and its reply, never the message or its token
            log.warning("reset email not sent (%s mode): %s: %s", self.mode, type(exc).__name__, exc)
            raise SendFailed from None

    async def close(self) -> None:
        if self.mailer is not None:
            await self.mailer.close()


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": "email"}, status_code=400)


async def forgot_password(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return _bad_request('the body must be JSON: {"email": "you@example.com"}')
    if not isinstance(body, dict) or "email" not in body:
        return _bad_request('"email" is required: {"email": "you@example.com"}')
    value = body["email"]
    if not isinstance(value, str):
        return _bad_request(f'"email" must be a string, not {type(value).__name__}')
    try:
        address = Address(email=value).email  # emailqueue's own check: what it accepts, the queue accepts
    except ValueError:
        return _bad_request('"email" is not a valid email address')
    service: PasswordReset = request.app.state.reset
    try:
        await service.request(address)
    except SendFailed:
        return JSONResponse({"error": "the email could not be sent right now; try again in a minute"}, status_code=503)
    return JSONResponse(ACCEPTED, status_code=202)


def create_app(
    mode: Mode,
    *,
    users: Iterable[str] = DEFAULT_USERS,
    redis_url: str = "redis://localhost:6379/0",
    queue: str = "default",
    smtp_host: str = "localhost",
    smtp_port: int = 25,
    sender: str = "Example App <no-reply@app.example.com>",
    base_url: str = "https://app.example.com",
    token_ttl_s: float = 1800.0,
) -> Starlette:
    """The app.  ``mode="smtp"``: each request sends over SMTP itself; ``"queue"``: it enqueues."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    service = PasswordReset(
        mode=mode,
        accounts=Accounts(users),
        tokens=ResetTokens(token_ttl_s),
        sender=sender,
        base_url=base_url.rstrip("/"),
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        # the client connects on first use, so the app also works without its lifespan having run
        mailer=AsyncMailer.from_url(redis_url, queue) if mode == "queue" else None,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await service.close()

    app = Starlette(routes=[Route("/forgot-password", forgot_password, methods=["POST"])], lifespan=lifespan)
    app.state.reset = service
    return app


def app_from_env(env: Mapping[str, str] = os.environ) -> Starlette:
    """``create_app`` configured by RESET_MAIL_MODE, EMAILQUEUE_REDIS_URL, SMTP_HOST, SMTP_PORT and friends."""
    mode = env.get("RESET_MAIL_MODE", "queue")
    if mode not in MODES:
        raise ValueError(f"RESET_MAIL_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    return create_app(
        "smtp" if mode == "smtp" else "queue",
        users=[*DEFAULT_USERS, *seeded_users(int(env.get("RESET_SEED_USERS", "0")))],
        redis_url=env.get("EMAILQUEUE_REDIS_URL", "redis://localhost:6379/0"),
        queue=env.get("EMAILQUEUE_QUEUE", "default"),
        smtp_host=env.get("SMTP_HOST", "localhost"),
        smtp_port=int(env.get("SMTP_PORT", "25")),
        sender=env.get("RESET_MAIL_FROM", "Example App <no-reply@app.example.com>"),
        base_url=env.get("RESET_BASE_URL", "https://app.example.com"),
    )


app = app_from_env()
