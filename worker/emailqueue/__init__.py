"""emailqueue: asynchronous email delivery over Redis Streams.

>>> from emailqueue import Mailer
>>> mailer = Mailer.from_url("redis://localhost:6379/0")
>>> mailer.send({"from": "app@example.com", "to": "user@example.com", "subject": "Hi", "text": "Hello"})
"""

from .errors import (
    ConfigError,
    EmailQueueError,
    InvalidEmail,
    MalformedEntry,
    PermanentDeliveryError,
    QueueFull,
    QueueUnavailable,
    TransientDeliveryError,
)
from .message import Address, Attachment, Email
from .producer import AsyncMailer, Mailer

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AsyncMailer",
    "Attachment",
    "ConfigError",
    "Email",
    "EmailQueueError",
    "InvalidEmail",
    "Mailer",
    "MalformedEntry",
    "PermanentDeliveryError",
    "QueueFull",
    "QueueUnavailable",
    "TransientDeliveryError",
]
