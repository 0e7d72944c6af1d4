"""examples/password_reset against real servers: Redis, an aiosmtpd SMTP server and a worker.

The app runs in-process behind httpx's ASGI transport, with its lifespan; nothing is mocked.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage

import httpx
import pytest
from starlette.applications import Starlette

from emailqueue.localserver import RedisServer
from emailqueue.settings import Settings
from emailqueue.sink import Delivery, Sink
from examples.password_reset.app import ACCEPTED, SUBJECT, Mode, PasswordReset, create_app
from tests.conftest import QUEUE, running_worker, stats_of, wait_until

KNOWN = "alice@example.com"
UNKNOWN = "mallory@example.com"
LINK = re.compile(r"https://app\.example\.com/reset\?token=([A-Za-z0-9_-]+)")


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and a client that talks to it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as client,
    ):
        yield client


@pytest.fixture
def make_app(redis_server: RedisServer, sink: Sink) -> Callable[[Mode], Starlette]:
    def make(mode: Mode) -> Starlette:
        return create_app(mode, redis_url=redis_server.url, queue=QUEUE, smtp_host=sink.hostname, smtp_port=sink.port)

    return make


def forgot(client: httpx.AsyncClient, address: str) -> Awaitable[httpx.Response]:
    return client.post("/forgot-password", json={"email": address})


def reset_service(app: Starlette) -> PasswordReset:
    service: PasswordReset = app.state.reset
    return service


def check_reset_email(delivery: Delivery, app: Starlette) -> str:
    """The email went to the account with a text and an HTML part; returns the token of its link."""
    assert delivery.recipients == (KNOWN,) and delivery.subject == SUBJECT
    message = email.message_from_bytes(delivery.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text, body = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and body is not None
    match = LINK.search(text.get_content())
    assert match, text.get_content()
    token = match.group(1)
    assert f"/reset?token={token}" in body.get_content()
    assert reset_service(app).tokens.lookup(token) == KNOWN
    return token


def assert_not_logged(token: str, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the app nor emailqueue (producer, worker) logged the token; the test's SMTP server may."""
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert logged and token not in logged


async def settled(url: str) -> bool:
    stats = await stats_of(url)
    return stats.waiting == 0 and stats.in_flight == 0


@pytest.mark.parametrize("mode", ["smtp", "queue"])
async def test_same_answer_for_existing_and_unknown_accounts(mode: Mode, make_app: Callable[[Mode], Starlette]) -> None:
    async with serving(make_app(mode)) as client:
        known, unknown = await forgot(client, KNOWN), await forgot(client, UNKNOWN)
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.json() == ACCEPTED
    assert known.headers["content-type"] == unknown.headers["content-type"]


async def test_queue_mode_one_email_for_the_account_none_for_the_unknown(
    make_app: Callable[[Mode], Starlette],
    settings_for: Callable[..., Settings],
    sink: Sink,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app("queue")
    async with serving(app) as client:
        assert (await forgot(client, KNOWN)).status_code == 202
        assert (await forgot(client, UNKNOWN)).status_code == 202
        assert sink.count() == 0  # the request did not wait for SMTP: the worker is not even running yet
        async with running_worker(settings_for()):
            await wait_until(lambda: sink.count() >= 1, what="the reset email")
            await wait_until(lambda: settled(redis_server.url), what="the queue to settle")
    stats = await stats_of(redis_server.url)
    assert stats.counters["enqueued"] == 1 and stats.counters["sent"] == 1  # the unknown address was never queued
    [delivery] = sink.deliveries()
    token = check_reset_email(delivery, app)
    assert_not_logged(token, caplog)


async def test_smtp_mode_one_email_for_the_account_none_for_the_unknown(
    make_app: Callable[[Mode], Starlette], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app("smtp")
    async with serving(app) as client:
        assert (await forgot(client, KNOWN)).status_code == 202
        assert sink.count() == 1  # sent before the answer: the request waited for the SMTP transaction
        assert (await forgot(client, UNKNOWN)).status_code == 202
    [delivery] = sink.deliveries()
    token = check_reset_email(delivery, app)
    assert_not_logged(token, caplog)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{}", '"email" is required'),
        (b'{"mail": "alice@example.com"}', '"email" is required'),
        (b'{"email": "not-an-email"}', '"email" is not a valid email address'),
        (b'{"email": "alice@example.com\\r\\nBcc: x@example.com"}', '"email" is not a valid email address'),
        (b'{"email": 42}', '"email" must be a string'),
        (b'["alice@example.com"]', '"email" is required'),
        (b"email=alice@example.com", "the body must be JSON"),
        (b"", "the body must be JSON"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_then_good_requests_work(
    body: bytes, says: str, make_app: Callable[[Mode], Starlette], sink: Sink
) -> None:
    app = make_app("smtp")
    async with serving(app) as client:
        bad = await client.post("/forgot-password", content=body, headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["field"] == "email" and says in bad.json()["error"]
        good = await forgot(client, KNOWN)
    assert good.status_code == 202 and good.json() == ACCEPTED
    [delivery] = sink.deliveries()
    check_reset_email(delivery, app)
