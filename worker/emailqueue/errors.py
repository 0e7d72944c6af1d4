"""One exception hierarchy for the package.

``EmailQueueError`` is the base of everything the package raises on purpose:

- ``InvalidEmail`` (also a ``ValueError``): the email cannot be sent; names the field.
- ``QueueUnavailable``: Redis cannot be reached (nothing was enqueued).
- ``QueueFull``: Redis refused the write (out of memory with ``noeviction``).
- ``ConfigError``: a setting is wrong (bad DSN, bad URL).
- ``DeliveryError`` -> ``TransientDeliveryError`` / ``PermanentDeliveryError``: the
  worker's classification of one SMTP attempt.
- ``MalformedEntry``: a stream entry someone else wrote cannot be decoded.
"""

from __future__ import annotations


class EmailQueueError(Exception):
    """Base class of every error the package raises on purpose."""


class InvalidEmail(EmailQueueError, ValueError):
    """An email that cannot be sent.  ``field`` is the path of the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid email: {field}: {reason}")


class QueueUnavailable(EmailQueueError):
    """Redis could not be reached; the email was not enqueued."""


class QueueFull(EmailQueueError):
    """Redis refused the write (maxmemory reached with noeviction); not enqueued."""


class ConfigError(EmailQueueError, ValueError):
    """A setting is invalid; the message names the setting."""


class MalformedEntry(EmailQueueError):
    """A stream entry that cannot be decoded into an email."""


class DeliveryError(EmailQueueError):
    """One failed delivery attempt, with the SMTP reply code when there was one."""

    def __init__(self, message: str, code: int | None = None, refused: dict[str, int] | None = None) -> None:
        self.code = code
        self.refused = refused or {}  # recipient -> reply code, when RCPT was refused
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """4xx, timeout, connection error: retry later."""


class PermanentDeliveryError(DeliveryError):
    """5xx: retrying cannot help; dead-letter at once."""
