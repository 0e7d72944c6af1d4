"""Optional DKIM signing (dkimpy), for setups that send directly rather than through a
provider that signs.  The private key comes from ``EMAILQUEUE_DKIM_PRIVATE_KEY`` (PEM) or
the file named by ``EMAILQUEUE_DKIM_PRIVATE_KEY_FILE`` (a mounted Secret)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError

DEFAULT_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)


@dataclass(frozen=True, slots=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes = field(repr=False)
    headers: tuple[str, ...] = DEFAULT_HEADERS

    def __post_init__(self) -> None:
        try:
            import dkim  # noqa: F401
        except ImportError:
            raise ConfigError(
                "EMAILQUEUE_DKIM_DOMAIN is set but dkimpy is not installed: pip install 'emailqueue[dkim]'"
            ) from None
        if b"PRIVATE KEY" not in self.private_key:
            raise ConfigError("EMAILQUEUE_DKIM_PRIVATE_KEY is not a PEM private key")

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
        import dkim

        present = [h.encode() for h in self.headers if _has_header(message, h)]
        signature = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=present,
        )
        return bytes(signature) + message


def _has_header(message: bytes, name: str) -> bool:
    head = message.split(b"\r\n\r\n", 1)[0].lower()
    needle = name.lower().encode() + b":"
    return head.startswith(needle) or b"\r\n" + needle in head
