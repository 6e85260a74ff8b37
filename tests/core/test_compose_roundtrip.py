"""Every kind of outbound mail parsed back with Python's ``email`` (policy.default).

render_message writes RFC 5322/MIME by hand (for speed), so these tests hold it to
what a standard parser reads back: headers (RFC 2047 words, folding, RFC 2231
filenames), bodies (7bit, quoted-printable, base64) and the MIME tree.
"""

from __future__ import annotations

import email
import email.utils
import random
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest

from inboxd.core.compose import (
    AUTO_RESPONSE_SUPPRESS,
    OutboundKind,
    OutboundMail,
    auto_submitted_for,
    header_safe,
    render_message,
)
from inboxd.core.model import Address, Attachment

DATE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STARTED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LONG_SUBJECT = "Re: [#12] " + " ".join(f"word{i}" for i in range(60))
NAMES = [
    "Carol",
    "Jürgen Müller",
    'Zoë "Z" O\'Neil, Jr.',
    "bob@x.example via Support",
    "Back\\slash (and parens) <angle>",
    "=?utf-8?q?not_an_encoded_word?=",
    "李小龍 の サポート",
    "Ελληνικά " * 12,
]
SUBJECTS = [
    "Re: [#12] Printer broken",
    "Re: [#12] Drucker kaputt – Grüße 🖨",
    LONG_SUBJECT,
    "[#12] " + "ü" * 300,
    "[#12] " + "x" * 200 + " tail",
    "[#12] =?utf-8?q?looks_encoded?= but is not",
    "[#12] tabs\tand   spaces  collapse",
    "",
]


def parse(raw: bytes) -> EmailMessage:
    """Parse as a mail store keeps it (LF line ends); check_wire_format checks CRLF."""
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def rfc2047_display_names(raw: bytes, header: str) -> list[str]:
    """Display names decoded strictly by RFC 2047 (6.2: white space between adjacent
    encoded words is dropped). policy.default keeps it as a space inside a phrase
    (a CPython quirk), so long non-ASCII names are checked exactly this way."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    pairs = email.utils.getaddresses([str(msg[header])])
    return [str(make_header(decode_header(name))) for name, _ in pairs]


def mail(**overrides: object) -> OutboundMail:
    values: dict[str, object] = {
        "kind": OutboundKind.NOTIFY,
        "ticket_id": 12,
        "from_addr": Address("support+12-1-abcdefghijkl@help.example", "Carol via Support"),
        "to": (Address("alice@help.example", "Alice Agent"),),
        "subject": "Re: [#12] Printer broken",
        "text": "Hello,\n\nthe printer is broken.\n",
        "message_id": "ibx.12.abc.sig@help.example",
        "in_reply_to": "m2@customer.example",
        "references": ("m1@customer.example",),
        "thread_topic": "Printer broken",
        "thread_root_id": "m1@customer.example",
        "thread_started": STARTED,
        "extra_headers": (("X-Inboxd-Ticket", "12"),),
    }
    values.update(overrides)
    return OutboundMail(**values)  # type: ignore[arg-type]


def check_wire_format(raw: bytes) -> None:
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in head), [line for line in head if len(line) > 78]


@pytest.mark.parametrize("kind", list(OutboundKind))
@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_kind_and_subject_round_trips(kind: OutboundKind, subject: str) -> None:
    raw = render_message(mail(kind=kind, subject=subject), date=DATE)
    check_wire_format(raw)
    msg = parse(raw)
    assert msg["Subject"] == header_safe(subject)
    assert msg["Message-ID"] == "<ibx.12.abc.sig@help.example>"
    assert msg["In-Reply-To"] == "<m2@customer.example>"
    assert msg["References"] == "<m1@customer.example> <m2@customer.example>"
    assert msg["Date"].datetime == DATE
    assert msg["Thread-Topic"] == "Printer broken"
    assert msg["Thread-Index"]
    assert msg["X-Inboxd-Ticket"] == "12"
    assert msg["MIME-Version"] == "1.0"
    auto = auto_submitted_for(kind)
    if auto:
        assert msg["Auto-Submitted"] == auto
        assert msg["X-Auto-Response-Suppress"] == AUTO_RESPONSE_SUPPRESS
        assert msg["Precedence"] == "bulk"
    else:
        assert msg["Auto-Submitted"] is None and msg["Precedence"] is None
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == "Hello,\n\nthe printer is broken.\n"
    assert not msg.defects


@pytest.mark.parametrize("name", NAMES)
def test_display_names_round_trip_in_every_address_header(name: str) -> None:
    m = mail(
        from_addr=Address("support@help.example", name),
        to=(Address("a@customer.example", name), Address("b@customer.example", "B")),
        cc=(Address("c@customer.example", name), Address("d@customer.example")),
        reply_to=Address("support+12-0-abcdefghijkl@help.example", name),
    )
    raw = render_message(m, date=DATE)
    check_wire_format(raw)
    msg = parse(raw)
    expected = header_safe(name)
    for header, emails in (
        ("From", ["support@help.example"]),
        ("To", ["a@customer.example", "b@customer.example"]),
        ("Cc", ["c@customer.example", "d@customer.example"]),
        ("Reply-To", ["support+12-0-abcdefghijkl@help.example"]),
    ):
        addresses = msg[header].addresses
        assert [a.addr_spec for a in addresses] == emails, header
        assert rfc2047_display_names(raw, header)[0] == expected, header
        if len(expected.encode()) <= 30:  # one encoded word: policy.default reads it exactly
            assert addresses[0].display_name == expected, header
        else:
            assert addresses[0].display_name.replace(" ", "") == expected.replace(" ", "")
    assert msg["To"].addresses[1].display_name == "B"
    assert msg["Cc"].addresses[1].display_name == ""
    assert not msg.defects


def test_random_unicode_subjects_and_names_round_trip() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ 019 ,.;:\"'\\()<>[]@=?_-–äöüßéøł€李龍😀🖨\u200b"
    for n in range(150):
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 180)))
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        raw = render_message(
            mail(subject=subject, thread_topic=subject, from_addr=Address("s@h.example", name)),
            date=DATE,
        )
        check_wire_format(raw)
        msg = parse(raw)
        assert msg["Subject"] == header_safe(subject), (n, subject)
        assert msg["Thread-Topic"] == header_safe(subject) or not header_safe(subject)
        assert rfc2047_display_names(raw, "From") == [header_safe(name)], (n, name)
        assert msg["From"].addresses[0].addr_spec == "s@h.example"


def test_html_inline_images_attachments_and_forwarded_mail_round_trip() -> None:
    png = bytes(range(256)) * 40
    pdf = b"%PDF-1.4\n" + bytes(rng_bytes(3000))
    inner = b"From: a@b.example\r\nSubject: inner\r\n\r\nhello\r\n"
    long_name = "Rechnung März 2026 – " + "sehr langer Dateiname " * 8 + ".pdf"
    text = "Grüße\nline two with = sign\n" + "long " * 60 + "\n\tTab\n"
    html = '<p>Grüße <img src="cid:logo@x"></p>\n'
    m = mail(
        kind=OutboundKind.REPLY,
        subject="Re: [#12] Angebot für Müller & Söhne",
        text=text,
        html=html,
        attachments=(
            Attachment("logo.png", "image/png", png, content_id="logo@x", inline=True),
            Attachment(long_name, "application/pdf", pdf),
            Attachment('we"ird\\name.txt', "text/plain", "plain ä\n".encode()),
            Attachment("fwd.eml", "message/rfc822", inner),
            Attachment("x", "not a type", b"\x00\x01"),
        ),
    )
    raw = render_message(m, date=DATE)
    check_wire_format(raw)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    plain = msg.get_body(("plain",))
    body_html = msg.get_body(("html",))
    assert plain is not None and body_html is not None
    assert plain.get_content() == text
    assert body_html.get_content() == html
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo@x>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png
    atts = list(msg.iter_attachments())
    assert [a.get_filename() for a in atts] == [
        header_safe(long_name),
        'we"ird_name.txt',
        "fwd.eml",
        "x",
    ]
    assert atts[0].get_content() == pdf
    assert atts[1].get_payload(decode=True) == "plain ä\n".encode()
    assert atts[2].get_content_type() == "message/rfc822"
    assert atts[2].get_content()["Subject"] == "inner"
    assert atts[3].get_content_type() == "application/octet-stream"
    assert atts[3].get_content() == b"\x00\x01"
    for part in msg.walk():
        assert not part.defects, part.get_content_type()


def test_bodies_choose_a_7bit_safe_transfer_encoding() -> None:
    cases = {
        "plain ascii\n": "7bit",
        "x" * 3000 + "\n": "quoted-printable",
        "nul \x00 and bell \x07\n": "quoted-printable",
        "Grüße\n": "quoted-printable",
        "trailing space \nand =3D\n": "7bit",
        ".\n..leading dots\nFrom here\n": "7bit",
    }
    for text, cte in cases.items():
        msg = parse(render_message(mail(text=text), date=DATE))
        assert msg["Content-Transfer-Encoding"] == cte, text
        assert msg.get_content() == text


def test_a_body_that_quotes_our_boundary_does_not_break_the_tree() -> None:
    first = render_message(mail(html="<p>x</p>"), date=DATE)
    boundary = parse(first).get_boundary()
    assert boundary is not None
    text = f"--{boundary}\nContent-Type: text/html\n\nfake\n--{boundary}--\n"
    msg = parse(render_message(mail(text=text, html="<p>x</p>"), date=DATE))
    assert msg.get_boundary() != boundary
    plain = msg.get_body(("plain",))
    assert plain is not None and plain.get_content() == text
    assert len(list(msg.iter_parts())) == 2


def rng_bytes(n: int) -> list[int]:
    rng = random.Random(n)
    return [rng.randrange(256) for _ in range(n)]
