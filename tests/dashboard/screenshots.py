"""Take the screenshots of docs/dashboard.md from a live run (not part of the test suite).

    .venv/bin/python -m tests.dashboard.screenshots [--out docs/img] [--seconds 60]

Starts a local Redis, an SMTP sink and three real workers on two queues, sends traffic
(with recipients the sink rejects, and greylisted ones) for ``--seconds``, runs the
dashboard with a 1 s sample interval and photographs it in Debian's Chromium.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from emailqueue.localserver import RedisServer, free_port
from emailqueue.message import Email
from emailqueue.producer import Mailer
from emailqueue.sink import Sink
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, TOKEN, wait_http

ROOT = Path(__file__).resolve().parents[2]
QUEUES = {"transactional": 2, "newsletters": 1}


def _worker(url: str, dsn: str, queue: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "EMAILQUEUE_REDIS_URL": url,
            "EMAILQUEUE_QUEUE": queue,
            "MAILER_DSN": dsn,
            "MAILER_FROM_EMAIL": "noreply@shop.example",
            "EMAILQUEUE_METRICS_PORT": "0",
            "EMAILQUEUE_CONCURRENCY": "4",
            "EMAILQUEUE_RETRY_DELAY_MS": "3000",
        }
    )
    return subprocess.Popen([sys.executable, "-m", "emailqueue", "worker"], env=env, stderr=subprocess.DEVNULL)


def _traffic(url: str, stop: threading.Event) -> None:
    rnd = random.Random(7)
    with Mailer.from_url(url, "transactional") as shop, Mailer.from_url(url, "newsletters") as news:
        n = 0
        while not stop.is_set():
            n += 1
            burst = 30 + int(25 * abs((n % 40) - 20) / 20)
            emails = []
            for i in range(burst):
                who = rnd.choice(["jane", "omar", "li", "sam", "ana"]) + str(rnd.randint(1, 999))
                if rnd.random() < 0.01:
                    who = f"reject-{who}"
                elif rnd.random() < 0.03:
                    who = f"greylist-{who}"
                emails.append(
                    Email(
                        to=f"{who}@example.com",
                        subject=f"Your order #{10000 + n * 100 + i} has shipped",
                        text=f"Hello {who},\n\nYour parcel is on its way.\n",
                        html=f"<p>Hello {who},</p><p>Your parcel is on its way.</p>",
                        metadata={"order": str(10000 + n * 100 + i)},
                    )
                )
            shop.send_many(emails)
            if n % 10 == 0:
                news.send_many(
                    Email(to=f"reader{j}@example.com", subject="Spring newsletter", text="What's new this spring.")
                    for j in range(300)
                )
            stop.wait(1.0)


def shoot(out: Path, seconds: float) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with RedisServer() as server, Sink() as sink:
        sink.state.delay_s = 0.03
        workers = [_worker(server.url, sink.dsn, q) for q, n in QUEUES.items() for _ in range(n)]
        port = free_port()
        env = dict(os.environ, EMAILQUEUE_REDIS_URL=server.url, EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
        env["EMAILQUEUE_DASHBOARD_SAMPLE_S"] = "1"
        dash = subprocess.Popen(
            [sys.executable, "-m", "emailqueue.dashboard", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
        )
        stop = threading.Event()
        producer = threading.Thread(target=_traffic, args=(server.url, stop), daemon=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz")
            producer.start()
            time.sleep(seconds)
            with Mailer.from_url(server.url, "newsletters") as news:
                news.redis.hset("emailqueue:{newsletters}:control", "paused", "1")
                time.sleep(1.5)
                news.send_many(
                    Email(to=f"reader{j}@example.com", subject="Summer newsletter", text="Summer is here.")
                    for j in range(120)
                )
            time.sleep(2)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="en-GB")
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_test_id("login-token").fill(TOKEN)
                page.get_by_test_id("login-submit").click()
                expect(page.locator('tr[data-queue="transactional"]')).to_be_visible()
                page.wait_for_timeout(2500)
                page.screenshot(path=str(out / "dashboard-overview.png"))
                page.locator('tr[data-queue="transactional"] a').click()
                expect(page.get_by_test_id("chart-throughput").locator("path.line").first).to_be_attached()
                page.wait_for_timeout(2500)
                page.set_viewport_size({"width": 1400, "height": 1250})
                page.screenshot(path=str(out / "dashboard-queue.png"))
                page.set_viewport_size({"width": 1400, "height": 900})
                page.get_by_test_id("dead-letters").locator("tbody tr a").first.click()
                expect(page.get_by_test_id("letter-fields")).to_be_visible()
                page.screenshot(path=str(out / "dashboard-dead-letter.png"), full_page=True)
                page.goto(f"http://127.0.0.1:{port}/#/q/newsletters")
                page.get_by_test_id("messages").locator("tbody tr a").first.click()
                expect(page.get_by_test_id("payload")).to_be_visible()
                page.screenshot(path=str(out / "dashboard-message.png"), full_page=True)
                browser.close()
        finally:
            stop.set()
            producer.join(5)
            dash.send_signal(signal.SIGTERM)
            dash.wait(10)
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(30)
    for png in sorted(out.glob("dashboard-*.png")):
        print(f"wrote {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    shoot(args.out, args.seconds)


if __name__ == "__main__":
    main()
