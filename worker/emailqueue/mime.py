"""Turn an ``Email`` into the bytes sent in SMTP DATA, and its envelope."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from .errors import PermanentDeliveryError
from .message import Address, Email

_POLICY = policy.SMTP


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipients: list[str]
    data: bytes


def build(email: Email, default_from: Address | None) -> Envelope:
    """The message as RFC 5322 bytes (CRLF line endings) plus envelope sender/recipients."""
    sender = email.sender or default_from
    if sender is None:
        raise PermanentDeliveryError("email has no 'from' and the worker has no MAILER_FROM_EMAIL default")
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender.formatted()
    if email.to:
        msg["To"] = ", ".join(a.formatted() for a in email.to)
    if email.cc:
        msg["Cc"] = ", ".join(a.formatted() for a in email.cc)
    if email.reply_to:
        msg["Reply-To"] = ", ".join(a.formatted() for a in email.reply_to)
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(email.created_at)
    domain = sender.email.rpartition("@")[2]
    msg["Message-ID"] = f"<{email.id}@{domain}>"
    for name, value in email.headers.items():
        msg[name] = value
    if email.text is not None:
        msg.set_content(email.text)
        if email.html is not None:
            msg.add_alternative(email.html, subtype="html")
    elif email.html is not None:
        msg.set_content(email.html, subtype="html")
    for att in email.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data(), maintype=maintype, subtype=subtype, filename=att.filename)
    return Envelope(sender=sender.email, recipients=email.recipients(), data=msg.as_bytes(policy=_POLICY))
