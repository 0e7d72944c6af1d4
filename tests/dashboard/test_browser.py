"""The dashboard in a real browser (Debian's Chromium, headless) against a real Redis and
real worker processes: the page shows the numbers the queue has, and what is clicked in
the page happens to the queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from emailqueue.keys import GROUP, QueueKeys
from emailqueue.message import Email
from emailqueue.producer import Mailer
from emailqueue.sink import Sink
from tests.conftest import QUEUE, WorkerProcess, wait_sync
from tests.dashboard.conftest import TOKEN, DashboardProcess, Queue

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
expect = sync_api.expect


def login(page: Any, dash: DashboardProcess) -> None:
    page.goto(dash.url)
    page.get_by_test_id("login-token").fill(TOKEN)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("overview-table")).to_contain_text(QUEUE)


def open_queue(page: Any) -> None:
    page.locator(f'tr[data-queue="{QUEUE}"] a').click()
    expect(page.get_by_test_id("queue-name")).to_have_text(QUEUE)


def tile(page: Any, name: str) -> Any:
    return page.get_by_test_id(f"tile-{name}").locator(".value")


def dead_letters_of(mailer: Mailer, sink: Sink, worker: WorkerProcess, rclient: redis.Redis, n: int) -> list[str]:
    """``n`` emails that the sink rejects (554), dead-lettered by a real worker."""
    sink.state.mode = "permfail"
    ids = [mailer.send(Email(to=f"user{i}@example.com", subject=f"Order {i}", text=f"Body {i}")) for i in range(n)]
    wait_sync(lambda: rclient.xlen(QueueKeys(QUEUE).failed) == n, what=f"{n} dead letters")
    return ids


def test_the_page_shows_the_numbers_the_queue_has(
    page: Any, start_dashboard: Callable[..., DashboardProcess], queue: Queue
) -> None:
    mailer, sink, rclient, spawn_worker = queue.mailer, queue.sink, queue.rclient, queue.spawn_worker
    worker = spawn_worker()
    dead_letters_of(mailer, sink, worker, rclient, 2)
    worker.terminate()
    assert worker.wait() == 0
    rclient.hset(QueueKeys(QUEUE).control, "paused", "1")
    for i in range(5):
        mailer.send(Email(to=f"wait{i}@example.com", subject=f"Waiting {i}", text=f"Waiting body {i}"))
    later = datetime.now(UTC) + timedelta(hours=1)
    for i in range(2):
        mailer.send(Email(to=f"later{i}@example.com", subject=f"Later {i}", text="Scheduled", send_at=later))
    # A consumer that holds two entries, as a worker does mid-send.
    stream = QueueKeys(QUEUE).stream
    held = rclient.xreadgroup(GROUP, "probe-consumer", {stream: ">"}, count=2)
    assert len(held[0][1]) == 2
    expected = {"waiting": 3, "in_flight": 2, "delayed": 2, "failed": 2}

    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    login(page, dash)
    row = page.locator(f'tr[data-queue="{QUEUE}"]')
    for col, value in expected.items():
        expect(row.locator(f'td[data-col="{col}"]')).to_have_text(str(value))
    expect(row.locator('td[data-col="state"]')).to_have_text("paused")

    open_queue(page)
    for name, value in expected.items():
        expect(tile(page, name)).to_have_text(str(value))
    expect(page.get_by_test_id("queue-state")).to_have_text("paused")
    expect(tile(page, "consumer_count")).to_have_text(str(len(rclient.xinfo_consumers(stream, GROUP))))
    consumer = page.get_by_test_id("consumers").locator('tr[data-consumer="probe-consumer"]')
    expect(consumer.locator('td[data-col="pending"]')).to_have_text("2")
    expect(page.get_by_test_id("pending").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("pending")).to_contain_text("probe-consumer")
    letters = page.get_by_test_id("dead-letters").locator("tbody tr")
    expect(letters).to_have_count(2)
    expect(letters.first.locator('td[data-col="reason"]')).to_have_text("permanent")
    expect(letters.first.locator('td[data-col="smtp"]')).to_have_text("554")
    expect(page.get_by_test_id("messages").locator("tbody tr")).to_have_count(5)
    expect(page.get_by_test_id("delayed").locator("tbody tr")).to_have_count(2)
    # Sampled every 0.5 s: the charts draw lines once two samples exist.
    expect(page.get_by_test_id("chart-backlog").locator("path.line").first).to_be_attached()

    # A dead letter's record and decoded payload.
    letters.first.locator('td[data-col="message"] a').click()
    fields = page.get_by_test_id("letter-fields")
    expect(fields.locator('dd[data-field="reason"]')).to_have_text("permanent")
    expect(fields.locator('dd[data-field="smtp_code"]')).to_have_text("554")
    expect(page.get_by_test_id("email-fields").locator('dd[data-field="subject"]')).to_have_text("Order 1")
    page.go_back()

    # A waiting entry's decoded payload.
    page.get_by_test_id("messages").locator('tr:has-text("Waiting 4") td[data-col="entry"] a').click()
    expect(page.get_by_test_id("message-state")).to_contain_text("waiting for a worker")
    expect(page.get_by_test_id("text-body")).to_have_text("Waiting body 4")
    expect(page.get_by_test_id("email-fields").locator('dd[data-field="to"]')).to_have_text("wait4@example.com")


def test_a_retry_clicked_in_the_page_delivers_the_message(
    page: Any, start_dashboard: Callable[..., DashboardProcess], queue: Queue
) -> None:
    mailer, sink, rclient, spawn_worker = queue.mailer, queue.sink, queue.rclient, queue.spawn_worker
    ids = dead_letters_of(mailer, sink, spawn_worker(), rclient, 2)
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    login(page, dash)
    open_queue(page)
    expect(tile(page, "failed")).to_have_text("2")
    sink.state.mode = "ok"

    page.locator(f'tr[data-message-id="{ids[0]}"]').get_by_test_id("retry-one").click()
    wait_sync(lambda: ids[0] in sink.delivered_ids(), what="the retried message delivered")
    expect(tile(page, "failed")).to_have_text("1")
    expect(tile(page, "sent")).to_have_text("1")

    page.locator(f'tr[data-message-id="{ids[1]}"]').get_by_test_id("remove-one").click()  # confirm() accepted
    expect(tile(page, "failed")).to_have_text("0")
    expect(page.get_by_test_id("dead-letters")).to_contain_text("No dead letters.")
    assert rclient.xlen(QueueKeys(QUEUE).failed) == 0
    time.sleep(0.5)
    assert sink.delivered_ids() == [ids[0]]  # removed means never sent


def test_pause_and_resume_from_the_page(
    page: Any, start_dashboard: Callable[..., DashboardProcess], queue: Queue
) -> None:
    mailer, sink, rclient, spawn_worker = queue.mailer, queue.sink, queue.rclient, queue.spawn_worker
    spawn_worker()
    first = mailer.send(Email(to="first@example.com", subject="Before the pause", text="x"))
    assert sink.wait_for(1, timeout=20), "the worker never delivered"
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    login(page, dash)
    open_queue(page)

    page.get_by_test_id("pause").click()  # confirm() accepted
    expect(page.get_by_test_id("queue-state")).to_have_text("paused")
    assert rclient.hget(QueueKeys(QUEUE).control, "paused") == "1"
    time.sleep(1.5)  # the worker notices within its housekeeping tick
    held = mailer.send(Email(to="held@example.com", subject="During the pause", text="x"))
    # Queued, not sent: waiting, or held by a worker whose blocking read began before the pause.
    expect(page.get_by_test_id("messages")).to_contain_text("During the pause")
    time.sleep(1.5)
    assert sink.delivered_ids() == [first]
    assert rclient.xlen(QueueKeys(QUEUE).stream) == 1

    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("queue-state")).to_have_text("running")
    wait_sync(lambda: held in sink.delivered_ids(), what="delivery after resume")
    expect(tile(page, "waiting")).to_have_text("0")


def test_read_only_page_offers_no_actions(
    page: Any, start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis, mailer: Mailer
) -> None:
    mailer.send(Email(to="a@example.com", subject="x", text="y"))
    rclient.xadd(QueueKeys(QUEUE).failed, {"v": "1", "payload": "{}", "mid": "m-1", "reason": "invalid"})
    dash = start_dashboard("--read-only", EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    login(page, dash)
    expect(page.locator("#mode")).to_have_text("read-only")
    open_queue(page)
    expect(page.get_by_test_id("dead-letters").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("queue-state")).to_have_text("running")
    for testid in ("pause", "resume", "retry-one", "remove-one", "retry-all", "remove-all"):
        expect(page.get_by_test_id(testid)).to_have_count(0)
