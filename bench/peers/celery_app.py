"""The Celery peer: Celery 5 with the Redis broker, sending with smtplib (the typical Python setup).

Default Celery settings (prefork pool, prefetch multiplier 4, acks on receipt, JSON, no result
backend).  The bench starts ``celery -A celery_app worker --pool prefork --concurrency 2``
(= the default on this 2-core machine, spelled out).  Each task builds the message with
``email.message.EmailMessage`` and opens one SMTP connection for it, as Django's
``send_mail`` / ``EmailMessage.send()`` and Flask-Mail do per call.

``python celery_app.py enqueue N`` enqueues N tasks with ``send_email.delay()``.
"""

from __future__ import annotations

import os
import smtplib
import sys

from celery import Celery

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mailpayload import build_std, email_dict

app = Celery("benchmail", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.broker_connection_retry_on_startup = True  # silences a deprecation warning; the default's value
SMTP_PORT = int(os.environ.get("BENCH_SMTP_PORT", "2525"))


@app.task(name="send_email")
def send_email(d: dict) -> None:
    msg = build_std(d)
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
        smtp.send_message(msg)


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    n = int(sys.argv[2])
    for i in range(n):
        send_email.delay(email_dict(i))
