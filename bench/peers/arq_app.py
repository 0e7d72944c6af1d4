"""The arq peer: arq with aiosmtplib, default settings (max_jobs=10, results kept, asyncio loop).

The job builds the message with ``email.message.EmailMessage`` and sends it with
``aiosmtplib.send()`` (one connection per message: aiosmtplib's one-call API).
Run as ``arq arq_app.WorkerSettings``; ``python arq_app.py enqueue N`` enqueues N jobs.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiosmtplib
from arq import create_pool
from arq.connections import RedisSettings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mailpayload import build_std, email_dict

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
SMTP_PORT = int(os.environ.get("BENCH_SMTP_PORT", "2525"))


async def send_email(ctx: dict, d: dict) -> None:
    await aiosmtplib.send(build_std(d), hostname="127.0.0.1", port=SMTP_PORT, timeout=30)


class WorkerSettings:
    functions = [send_email]
    redis_settings = REDIS


async def _enqueue(n: int) -> None:
    pool = await create_pool(REDIS)
    for start in range(0, n, 200):
        await asyncio.gather(
            *(pool.enqueue_job("send_email", email_dict(i)) for i in range(start, min(n, start + 200)))
        )
    await pool.aclose()


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    asyncio.run(_enqueue(int(sys.argv[2])))
