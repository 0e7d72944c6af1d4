"""The fast MIME writer, checked by parsing its output back with the standard library."""

from __future__ import annotations

import email.parser
import email.policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from emailqueue import Address, Attachment, Email
from emailqueue.mime import build, build_stdlib

SENDER = Address(email="shop@example.com", name="Shop")


def parse(data: bytes) -> EmailMessage:
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def body_of(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def _squash(name: str | None) -> str:
    return "".join((name or "").split())


def norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


def check_roundtrip(e: Email) -> None:
    data = build(e, SENDER).data
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = parse(data)
    assert not msg.defects, msg.defects
    assert msg["Subject"] == e.subject
    sender = e.sender or SENDER
    assert msg["From"].addresses[0].addr_spec == sender.email
    assert (msg["From"].addresses[0].display_name or None) == sender.name
    if e.to:
        assert [a.addr_spec for a in msg["To"].addresses] == [a.email for a in e.to]
        # RFC 2047 6.2: blanks between adjacent encoded words are to be ignored; CPython's parser
        # keeps one (it does the same to the stdlib's own output), so compare without blanks
        assert [_squash(a.display_name) for a in msg["To"].addresses] == [_squash(a.name) for a in e.to]
    if e.cc:
        assert [a.addr_spec for a in msg["Cc"].addresses] == [a.email for a in e.cc]
    assert msg["Bcc"] is None  # envelope only
    assert msg["Message-ID"] == f"<{e.id}@{sender.email.rpartition('@')[2]}>"
    for name, value in e.headers.items():
        assert msg[name] == value
    if e.text is not None:
        assert norm(body_of(msg, "plain") or "") == norm(e.text)
    if e.html is not None:
        assert norm(body_of(msg, "html") or "") == norm(e.html)
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == [a.filename for a in e.attachments]
    assert [a.get_content_type() for a in attachments] == [a.content_type for a in e.attachments]
    assert [a.get_payload(decode=True) for a in attachments] == [a.data() for a in e.attachments]


def test_typical_email() -> None:
    check_roundtrip(
        Email(
            **{
                "from": "Shop <shop@example.com>",
                "to": ["Jane Doe <jane@example.com>", "bob@example.com"],
                "cc": "Ops, Team <ops@example.com>",
                "reply_to": "help@example.com",
                "subject": "Your order #1042 has shipped",
                "text": "Hello Jane,\n\nIt shipped.\n",
                "html": "<p>Hello <b>Jane</b></p>",
                "headers": {"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@e.com>"},
            }
        )
    )


def test_unicode_everywhere_and_long_lines() -> None:
    check_roundtrip(
        Email(
            **{
                "from": {"email": "shop@example.com", "name": "Bäckerei Müller — 🥐"},
                "to": {"email": "kunde@example.com", "name": 'Zoë "Z" Ñúñez'},
                "subject": "Ihre Bestellung: Brötchen & Croissants 🥐 " * 4,
                "text": "Grüße!\n" + "x" * 2000 + "\n.leading dot\n",
                "html": "<p>日本語のテキスト</p>" * 50,
                "headers": {"X-Note": "naïve café"},
            }
        )
    )


def test_attachments_with_unicode_names() -> None:
    check_roundtrip(
        Email(
            **{
                "from": "shop@example.com",
                "to": "a@example.com",
                "subject": "Invoice",
                "text": "See attached.",
                "attachments": [
                    Attachment.from_bytes("invoice.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 10, "application/pdf"),
                    Attachment.from_bytes("résumé 2026.txt", "héllo".encode(), "text/plain"),
                    Attachment.from_bytes("empty.bin", b""),
                ],
            }
        )
    )


def test_html_only_and_attachment_only() -> None:
    check_roundtrip(Email(to="a@example.com", subject="h", html="<p>only html</p>"))
    check_roundtrip(Email(to="a@example.com", subject="", attachments=[Attachment.from_bytes("a.txt", b"x")]))


def test_non_ascii_local_part_falls_back_to_stdlib() -> None:
    e = Email(**{"from": "shop@example.com", "to": "jöhn@example.com", "subject": "s", "text": "t"})
    assert build(e, None).data == build(e, None).data.replace(b"\r\n", b"\r\n")  # builds
    assert b"SMTPUTF8" not in build_stdlib(e, SENDER)


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)
_name = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200),
    text=_text,
    html=st.one_of(st.none(), _text),
    name=_name,
    hval=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=100),
)
def test_any_content_roundtrips(subject: str, text: str, html: str | None, name: str | None, hval: str) -> None:
    if name is not None and not name.strip():
        name = None
    e = Email(
        **{
            "from": SENDER,
            "to": {"email": "a@example.com", "name": name},
            "subject": subject,
            "text": text,
            "html": html,
            "headers": {"X-Value": hval} if hval.strip() == hval and hval else {},
        }
    )
    check_roundtrip(e)


def test_date_header_matches_the_stdlib_across_seconds_and_offsets() -> None:
    from datetime import UTC, datetime, timedelta, timezone
    from email.utils import format_datetime

    from emailqueue.mime import date_header

    base = datetime(2026, 12, 4, 19, 59, 59, 999_000, tzinfo=UTC)
    cest = timezone(timedelta(hours=2))
    for when in (
        base,
        base + timedelta(microseconds=500),  # same second
        base + timedelta(milliseconds=2),  # the next second
        base.astimezone(cest),  # the same instant, another offset
        base,  # back again
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before the epoch
    ):
        assert date_header(when) == format_datetime(when)
