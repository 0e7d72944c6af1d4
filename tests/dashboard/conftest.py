"""Fixtures of the dashboard tests: the dashboard as a real process, and Debian's Chromium.

The browser is the system's ``/usr/bin/chromium`` (``apt-get install chromium``), driven by
Playwright's Python package; no browser is ever downloaded. Without it the browser tests
skip and say so; the API tests run anyway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from emailqueue.localserver import RedisServer, free_port
from emailqueue.producer import Mailer
from emailqueue.sink import Sink
from tests.conftest import WorkerProcess

CHROMIUM = os.environ.get("EMAILQUEUE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "dashboard-test-token-0123456789"
SKIP_NO_BROWSER = (
    f"no Chromium at {CHROMIUM}: install Debian's browser with "
    "`apt-get install -y chromium` (the dashboard's browser tests never download one)"
)


@dataclass
class DashboardProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - http://127.0.0.1 only
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def start_dashboard(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    """Start ``python -m emailqueue.dashboard`` (the same code as ``emailqueue dashboard``)."""
    started: list[DashboardProcess] = []

    def start(*args: str, **env: str) -> DashboardProcess:
        port = free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILQUEUE_DASHBOARD_")}
        full_env.update(
            {
                "EMAILQUEUE_REDIS_URL": redis_server.url,
                "EMAILQUEUE_DASHBOARD_SAMPLE_S": "0.5",
                **env,
            }
        )
        log_path = tmp_path / f"dashboard-{len(started)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "emailqueue.dashboard", "--port", str(port), *args],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        dash = DashboardProcess(proc, f"http://127.0.0.1:{port}", log_path)
        started.append(dash)
        wait_http(f"{dash.url}/readyz")
        return dash

    yield start
    for dash in started:
        dash.stop()


@dataclass
class Queue:
    """The queue under test and what drives it: a producer, the SMTP sink, real workers, Redis."""

    mailer: Mailer
    sink: Sink
    rclient: redis.Redis
    spawn_worker: Callable[..., WorkerProcess]


@pytest.fixture
def queue(mailer: Mailer, sink: Sink, rclient: redis.Redis, spawn_worker: Callable[..., WorkerProcess]) -> Queue:
    return Queue(mailer, sink, rclient, spawn_worker)


@pytest.fixture(scope="module")  # not session: sync Playwright runs an event loop in this thread until closed,
def chromium() -> Iterator[Any]:  # and the asyncio tests that follow need the thread free
    if not os.path.exists(CHROMIUM):
        pytest.skip(SKIP_NO_BROWSER)
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("dialog", lambda dialog: dialog.accept())
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        pg.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
