"""The one payload every system in the benchmark sends, and the stdlib MIME builder the peers use.

Standard library only: imported by the bench driver (project venv) and by the Celery and arq
peers (their own venvs).  A realistic transactional email: a short subject, a text part of
~0.5 KB and an HTML part of ~1 KB; on the wire (MIME, CRLF) about 2 KB.
"""

from __future__ import annotations

import time
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

FROM = "Shop <shop@example.com>"

TEXT = (
    "Hello Jane,\n\n"
    "Thanks for your order #{n}. We have received it and will let you know as soon as it ships.\n\n"
    "  1 x Espresso beans, 1 kg ......... 24.90 EUR\n"
    "  2 x Filter papers (100) ........... 7.80 EUR\n"
    "  Shipping .......................... 4.90 EUR\n"
    "  Total ............................ 37.60 EUR\n\n"
    "You can follow your order at https://shop.example.com/orders/{n}\n"
    "If you did not place this order, reply to this email and we will sort it out.\n\n"
    "-- \nThe Example Shop team\n"
)

HTML = (
    '<!doctype html><html><body style="font-family:sans-serif">'
    "<p>Hello Jane,</p>"
    "<p>Thanks for your order <b>#{n}</b>. We have received it and will let you know as soon as it ships.</p>"
    '<table cellpadding="4" style="border-collapse:collapse">'
    '<tr><td>1 &times; Espresso beans, 1&nbsp;kg</td><td align="right">24.90&nbsp;EUR</td></tr>'
    '<tr><td>2 &times; Filter papers (100)</td><td align="right">7.80&nbsp;EUR</td></tr>'
    '<tr><td>Shipping</td><td align="right">4.90&nbsp;EUR</td></tr>'
    '<tr><td><b>Total</b></td><td align="right"><b>37.60&nbsp;EUR</b></td></tr></table>'
    '<p><a href="https://shop.example.com/orders/{n}">Follow your order</a></p>'
    "<p>If you did not place this order, reply to this email and we will sort it out.</p>"
    '<p style="color:#888">The Example Shop team</p></body></html>'
)


def email_dict(i: int, headers: dict[str, str] | None = None) -> dict:
    """The email as an application hands it over (emailqueue's wire names; peers take the same dict)."""
    n = 100000 + i
    d = {
        "from": FROM,
        "to": [f"customer{i}@example.net"],
        "subject": f"Your order #{n} is confirmed",
        "text": TEXT.format(n=n),
        "html": HTML.format(n=n),
    }
    if headers:
        d["headers"] = headers
    return d


def build_std(d: dict) -> EmailMessage:
    """The stdlib way: ``email.message.EmailMessage`` (SMTP policy: CRLF) with a text + HTML alternative."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = d["from"]
    msg["To"] = ", ".join(d["to"])
    msg["Subject"] = d["subject"]
    msg["Date"] = formatdate(time.time(), localtime=False)
    msg["Message-ID"] = f"<{time.time_ns()}.{id(msg)}@example.com>"
    for k, v in (d.get("headers") or {}).items():
        msg[k] = v
    msg.set_content(d["text"])
    msg.add_alternative(d["html"], subtype="html")
    return msg


def envelope(d: dict) -> tuple[str, list[str]]:
    return "shop@example.com", list(d["to"])
