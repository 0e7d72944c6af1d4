"""Fixtures: a real Redis/Valkey process, a real SMTP server (aiosmtpd), real workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from emailqueue.localserver import RedisServer
from emailqueue.producer import AsyncMailer, Mailer
from emailqueue.settings import Settings
from emailqueue.sink import Sink
from emailqueue.stats import QueueStats, read_queue_stats
from emailqueue.worker import Worker

QUEUE = "test"
FROM = "sender@example.com"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(data_dir=str(tmp_path / "redis"))
    server.start()
    yield server
    server.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def worker_env(redis_server: RedisServer, sink: Sink) -> dict[str, str]:
    """Environment for a worker: fast retries and reclaiming, so tests take seconds."""
    return {
        "EMAILQUEUE_REDIS_URL": redis_server.url,
        "EMAILQUEUE_QUEUE": QUEUE,
        "MAILER_DSN": sink.dsn,
        "MAILER_FROM_EMAIL": FROM,
        "EMAILQUEUE_RETRY_DELAY_MS": "200",
        "EMAILQUEUE_RETRY_MULTIPLIER": "2",
        "EMAILQUEUE_MAX_RETRIES": "3",
        "EMAILQUEUE_CLAIM_IDLE_MS": "1500",
        "EMAILQUEUE_METRICS_PORT": "0",
        "EMAILQUEUE_SHUTDOWN_GRACE_S": "10",
        "EMAILQUEUE_CONCURRENCY": "8",
    }


@pytest.fixture
def settings_for(worker_env: dict[str, str]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        from emailqueue.settings import env_name

        return Settings(**{**worker_env, **{env_name(k): v for k, v in overrides.items()}})

    return make


@pytest.fixture
def mailer(redis_server: RedisServer) -> Iterator[Mailer]:
    m = Mailer.from_url(redis_server.url, QUEUE)
    yield m
    m.close()


@pytest.fixture
async def amailer(redis_server: RedisServer) -> AsyncIterator[AsyncMailer]:
    m = AsyncMailer.from_url(redis_server.url, QUEUE)
    yield m
    await m.close()


@pytest.fixture
def rclient(redis_server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield c
    c.close()


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Worker]:
    """A worker in this event loop; stopped (gracefully) when the block ends."""
    worker = Worker(settings)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield worker
    finally:
        worker.request_stop("test done")
        assert await asyncio.wait_for(task, 30) == 0


async def stats_of(url: str, queue: str = QUEUE) -> QueueStats:
    from emailqueue.redisconn import async_client

    client = async_client(url)
    try:
        return await read_queue_stats(client, queue)
    finally:
        await client.aclose()


async def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_sync(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerProcess:
    """``emailqueue worker`` as a real OS process, its log captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *extra: str) -> None:
        full_env = dict(os.environ)
        full_env.update(env)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emailqueue", "worker", *extra],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def spawn_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    procs: list[WorkerProcess] = []

    def spawn(*extra: str, **env: str) -> WorkerProcess:
        p = WorkerProcess({**worker_env, **env}, tmp_path / f"worker-{len(procs)}.log", *extra)
        procs.append(p)
        return p

    yield spawn
    for p in procs:
        if p.proc.poll() is None:
            p.kill()
