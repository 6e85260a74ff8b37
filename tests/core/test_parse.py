"""parse_message from bytes: headers, bodies, attachments, ids, digests, robustness."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
from datetime import UTC, datetime

import pytest

from inboxd.core.model import MessageKind, ParseError
from inboxd.core.parse import parse_message, parse_message_slow


def mail(headers: str, body: str | bytes = "Hello\n") -> bytes:
    head = headers.strip("\n").replace("\n", "\r\n").encode("utf-8", "surrogateescape")
    data = body if isinstance(body, bytes) else body.replace("\n", "\r\n").encode("utf-8")
    return head + b"\r\n\r\n" + data


BASIC = """\
From: "Müller, Anna" <Anna.Mueller@Example.COM>
To: Support <support@example.com>, billing@example.com
Cc: =?utf-8?q?J=C3=BCrgen?= <j@example.org>
Reply-To: anna@home.example
Subject: =?UTF-8?B?UHJvYmxlbSBtaXQgZGVyIFLDvGNrZXJzdGF0dHVuZw==?=
Date: Tue, 02 Jan 2024 10:00:00 +0100
Message-ID: <AbC.123@Mail.Example.COM>
In-Reply-To: <x1@example.com>
References: <x0@example.com> <x1@example.com>
"""


def test_basic_fields() -> None:
    m = parse_message(mail(BASIC, "Hi there\n"))
    assert m.message_id == "AbC.123@Mail.Example.COM"
    assert not m.message_id_synthesized
    assert m.in_reply_to == ("x1@example.com",)
    assert m.references == ("x0@example.com", "x1@example.com")
    assert m.from_ is not None
    assert m.from_.email == "anna.mueller@example.com"
    assert m.from_.name == "Müller, Anna"
    assert [a.email for a in m.to] == ["support@example.com", "billing@example.com"]
    assert m.cc[0].name == "Jürgen"
    assert m.reply_to[0].email == "anna@home.example"
    assert m.subject == "Problem mit der Rückerstattung"
    assert m.normalized_subject == "problem mit der rückerstattung"
    assert m.date == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    assert m.text == "Hi there\n"
    assert m.new_text == "Hi there"
    assert m.kind is MessageKind.NORMAL
    assert m.bounce is None
    assert m.header("subject") == "Problem mit der Rückerstattung"
    assert m.headers[0][0] == "from"


def test_raw_sha_and_size() -> None:
    raw = mail(BASIC)
    m = parse_message(raw)
    assert m.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert m.size == len(raw)


def test_digest_ignores_transport_headers() -> None:
    a = parse_message(mail("Received: from a by b\nDelivered-To: support@x\n" + BASIC))
    b = parse_message(mail("Return-Path: <s@y>\nX-Spam: 1\nDelivered-To: billing@x\n" + BASIC))
    assert a.content_digest == b.content_digest
    assert a.raw_sha256 != b.raw_sha256


def test_digest_differs_for_reused_message_id() -> None:
    a = parse_message(mail(BASIC, "first mail\n"))
    b = parse_message(mail(BASIC, "second mail\n"))
    assert a.message_id == b.message_id
    assert a.content_digest != b.content_digest


def test_digest_same_for_crlf_and_lf() -> None:
    crlf = mail(BASIC, "line one\nline two\n")
    lf = crlf.replace(b"\r\n", b"\n")
    assert parse_message(crlf).content_digest == parse_message(lf).content_digest


def test_missing_message_id_is_synthesized_stably() -> None:
    headers = "From: a@example.com\nSubject: hi\nDate: Tue, 02 Jan 2024 10:00:00 +0000"
    a = parse_message(mail(headers, "body one\n"))
    again = parse_message(mail("Received: by relay\n" + headers, "body one\n"))
    other = parse_message(mail(headers, "body two\n"))
    assert a.message_id_synthesized
    assert a.message_id.startswith("synth.") and a.message_id.endswith("@inboxd.invalid")
    assert len(a.message_id.split("@")[0]) == len("synth.") + 24
    assert a.message_id == again.message_id
    assert a.message_id != other.message_id


@pytest.mark.parametrize("value", ["", "<>", "   ", "<@>", "junk"])
def test_garbage_message_id_is_synthesized(value: str) -> None:
    m = parse_message(mail(f"From: a@example.com\nMessage-ID: {value}\nSubject: x"))
    assert m.message_id_synthesized
    assert m.message_id.endswith("@inboxd.invalid")


def test_message_id_without_brackets_kept_exact() -> None:
    m = parse_message(mail("From: a@b.c\nMessage-Id: CAF=Xy_Q@Mail.Gmail.com"))
    assert m.message_id == "CAF=Xy_Q@Mail.Gmail.com"
    assert not m.message_id_synthesized


def test_references_tolerate_junk_and_keep_the_root_and_the_last_100() -> None:
    refs = " ".join(f"<r{i}@x>" for i in range(150))
    m = parse_message(mail(f"From: a@b.c\nReferences: {refs}\nIn-Reply-To: r149@x (junk)"))
    assert len(m.references) == 101
    assert m.references[:2] == ("r0@x", "r50@x") and m.references[-1] == "r149@x"
    assert m.in_reply_to == ("r149@x",)
    m2 = parse_message(mail("From: a@b.c\nReferences: <a@x>,<b@x>, c@x\n  <d@x>"))
    assert m2.references == ("a@x", "b@x", "d@x")


def test_date_absent_or_garbage_is_none() -> None:
    assert parse_message(mail("From: a@b.c")).date is None
    assert parse_message(mail("From: a@b.c\nDate: yesterday-ish")).date is None
    m = parse_message(mail("From: a@b.c\nDate: Mon, 1 Jan 2024 23:30:00 -0500"))
    assert m.date == datetime(2024, 1, 2, 4, 30, tzinfo=UTC)


def test_raw_8bit_headers() -> None:
    raw = mail("From: Jos\xe9 <jose@example.com>\nSubject: Caf\xe9 cr\xe8me").replace(
        "\xe9".encode("utf-8", "surrogateescape"), b"\xe9"
    )
    # Latin-1 raw bytes in headers.
    raw = (
        b"From: Jos\xe9 <jose@example.com>\r\nSubject: Caf\xe9 cr\xe8me\r\n\r\nx\r\n"
    )
    m = parse_message(raw)
    assert m.subject == "Café crème"
    assert m.from_ is not None and m.from_.name == "José"
    utf8 = "Subject: Grüße aus Köln\r\nFrom: a@b.c\r\n\r\nx".encode()
    assert parse_message(utf8).subject == "Grüße aus Köln"


def test_unknown_charset_falls_back_without_losing_text() -> None:
    body = "Größe: 5 €".encode()
    raw = mail(
        "From: a@b.c\nContent-Type: text/plain; charset=x-klingon\n"
        "Content-Transfer-Encoding: 8bit",
        body,
    )
    m = parse_message(raw)
    assert m.text == "Größe: 5 €"
    assert "CharsetFallback" in m.defects


def test_wrong_charset_declared() -> None:
    body = "naïve café — ok".encode()
    raw = mail("From: a@b.c\nContent-Type: text/plain; charset=us-ascii", body)
    assert parse_message(raw).text == "naïve café — ok"
    latin = "déjà vu".encode("latin-1")
    raw = mail("From: a@b.c\nContent-Type: text/plain; charset=utf-8", latin)
    assert "vu" in parse_message(raw).text
    assert parse_message(raw).text.startswith("d")


def test_iso_8859_1_is_read_as_windows_1252() -> None:
    raw = mail("From: a@b.c\nContent-Type: text/plain; charset=iso-8859-1", b"\x93quoted\x94")
    assert parse_message(raw).text == "\u201cquoted\u201d"


MULTI = """\
From: a@example.com
To: support@example.com
Subject: with attachment
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"
"""


def multipart(*parts: str) -> bytes:
    body = "".join(f"--XX\n{p}\n" for p in parts) + "--XX--\n"
    return mail(MULTI, body)


def test_alternative_text_and_html() -> None:
    alt = (
        'Content-Type: multipart/alternative; boundary="YY"\n\n'
        "--YY\nContent-Type: text/plain; charset=utf-8\n\nPlain body\n"
        "--YY\nContent-Type: text/html; charset=utf-8\n\n<p>HTML <b>body</b></p>\n--YY--"
    )
    m = parse_message(multipart(alt))
    assert m.text.strip() == "Plain body"
    assert "<b>body</b>" in m.html


def test_html_only_text_is_derived() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><p>Hello&nbsp;World</p><div>Line two<br>Line three</div></body></html>"
    )
    m = parse_message(mail("From: a@b.c\nContent-Type: text/html; charset=utf-8", html))
    assert m.html.startswith("<html>")
    assert m.text == "Hello World\n\nLine two\nLine three"
    assert "alert" not in m.text and "color" not in m.text
    assert m.new_text == m.text


def test_attachments_with_rfc2231_and_rfc2047_names() -> None:
    pdf = b"%PDF-1.4 fake"
    png = b"\x89PNG fake"
    parts = (
        "Content-Type: text/plain\n\nsee attached",
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\n"
        "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(pdf).decode(),
        'Content-Type: image/png; name="=?utf-8?q?B=C3=BCro.png?="\n'
        "Content-Disposition: inline\nContent-ID: <img1@x>\n"
        "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(png).decode(),
        "Content-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="C:\\\\Users\\\\x\\\\evil.bin"\n\nabc',
    )
    m = parse_message(multipart(*parts))
    assert m.text.strip() == "see attached"
    names = [a.filename for a in m.attachments]
    assert names == ["Rechnung März.pdf", "Büro.png", "evil.bin"]
    pdf_att, png_att, _ = m.attachments
    assert pdf_att.data == pdf and pdf_att.sha256 == hashlib.sha256(pdf).hexdigest()
    assert pdf_att.content_type == "application/pdf" and not pdf_att.inline
    assert png_att.inline and png_att.content_id == "img1@x"
    assert png_att.size == len(png)


def test_broken_base64_and_qp_do_not_raise() -> None:
    parts = (
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Gr=C3=BC=C3=9Fe =ZZ broken=\nsoft break",
        "Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
        "Content-Transfer-Encoding: base64\n\nJVBERi0x!!!LjQ=garbage=",
    )
    m = parse_message(multipart(*parts))
    assert m.text.startswith("Grüße =ZZ broken")
    assert m.attachments[0].filename == "a.pdf"


def test_missing_boundary_keeps_body_text() -> None:
    raw = mail(
        "From: a@b.c\nContent-Type: multipart/mixed",
        "--abc\nContent-Type: text/plain\n\nrecovered text\n--abc--\n",
    )
    m = parse_message(raw)
    assert "recovered text" in m.text
    raw2 = mail("From: a@b.c\nContent-Type: multipart/mixed; boundary=nothere", "just text\n")
    assert "just text" in parse_message(raw2).text


def test_nested_message_rfc822_is_an_attachment() -> None:
    inner = "From: x@y.z\nSubject: Inner one\nMessage-ID: <in@y.z>\n\ninner body\n"
    parts = ("Content-Type: text/plain\n\nforwarding", "Content-Type: message/rfc822\n\n" + inner)
    m = parse_message(multipart(*parts))
    assert m.text.strip() == "forwarding"
    att = m.attachments[0]
    assert att.content_type == "message/rfc822"
    assert att.filename == "Inner one.eml"
    assert b"inner body" in att.data
    nested = parse_message(att.data)
    assert nested.message_id == "in@y.z"


def _tnef_attr(level: int, attr: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attr, len(data)) + data + struct.pack("<H", checksum)


def make_tnef(name: bytes, payload: bytes) -> bytes:
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attr(1, 0x00089006, b"\x00\x00\x01\x00")  # version (message level)
    out += _tnef_attr(2, 0x00069002, b"\x01\x00\x00\x00" + b"\x00" * 10)  # attachment start
    out += _tnef_attr(2, 0x00018010, name + b"\x00")  # title
    out += _tnef_attr(2, 0x0006800F, payload)  # data
    return out


def test_tnef_attachments_are_exposed() -> None:
    tnef = make_tnef(b"report.txt", b"quarterly numbers")
    part = (
        'Content-Type: application/ms-tnef; name="winmail.dat"\n'
        'Content-Disposition: attachment; filename="winmail.dat"\n'
        "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(tnef).decode()
    )
    m = parse_message(multipart("Content-Type: text/plain\n\nsee winmail", part))
    assert [(a.filename, a.data) for a in m.attachments] == [("report.txt", b"quarterly numbers")]


def test_broken_tnef_kept_as_winmail_dat() -> None:
    part = (
        "Content-Type: application/ms-tnef\n"
        'Content-Disposition: attachment; filename="winmail.dat"\n\nnot really tnef'
    )
    m = parse_message(multipart("Content-Type: text/plain\n\nx", part))
    assert [a.filename for a in m.attachments] == ["winmail.dat"]
    assert "TNEFError" in m.defects


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "no header"),
        (b"just some words, no header\n\nbody", "no header"),
        # a binary file behind a header-like first line (one stray NUL is still a mail)
        (b"Subject: a" + b"\x00\x01" * 40 + b"\r\n\r\nx", "NUL"),
    ],
)
def test_hopeless_input_raises_parse_error(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    assert reason in info.value.reason


def test_over_max_bytes() -> None:
    raw = mail("From: a@b.c", "x" * 2000)
    with pytest.raises(ParseError, match="too large"):
        parse_message(raw, max_bytes=1000)
    assert parse_message(raw, max_bytes=10_000).size == len(raw)


def test_headers_only_message() -> None:
    m = parse_message(b"From: a@b.c\r\nSubject: only headers\r\n")
    assert m.subject == "only headers" and m.text == ""


def test_huge_header_and_many_parts() -> None:
    huge = "X-Junk: " + "a" * 300_000
    m = parse_message(mail(f"From: a@b.c\n{huge}", "ok"))
    assert m.text == "ok"
    parts = tuple(f"Content-Type: text/plain\n\npart {i}" for i in range(3000))
    m2 = parse_message(multipart(*parts))
    assert "TooManyParts" in m2.defects


def test_deep_nesting_does_not_crash() -> None:
    body = ""
    for i in range(300):
        body += f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n'
    raw = mail('From: a@b.c\nContent-Type: multipart/mixed; boundary="b0"', body)
    with contextlib.suppress(ParseError):
        m = parse_message(raw)
        assert m.from_ is not None


def test_mbox_from_line_and_leading_newlines() -> None:
    m = parse_message(b"\r\nFrom a@b.c Mon Jan  1 00:00:00 2024\r\nSubject: hi\r\n\r\nbody")
    assert m.subject == "hi"


# --- NUL characters (issues 14, 15): PostgreSQL text cannot hold U+0000 ---------------------


def _strings(value: object, depth: int = 0) -> list[str]:
    """Every str inside a parsed value (dataclasses, tuples), bytes left out."""
    assert depth < 10
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [s for v in value for s in _strings(v, depth + 1)]
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is None:
        return []
    return [s for name in fields for s in _strings(getattr(value, name), depth + 1)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NAME_B64 = _b64(b"Eve\x00Evil")
NOW_B64 = _b64(b"\x00now")
BODY_B64 = _b64(b"see\x00attached")
FILE_B64 = _b64(b"re\x00port.pdf")
PDF_B64 = _b64(b"%PDF\x00\x00")

NUL_CASES = {
    "raw header and body bytes": (
        b"From: Eve\x00 <eve@ex\x00ample.com>\r\nTo: support@example.com\r\n"
        b"Subject: hi\x00there\r\nMessage-ID: <n\x001@example.com>\r\n"
        b"X-Odd: a\x00b\r\n\r\nbody\x00text\r\n"
    ),
    "RFC 2047 subject and display name": mail(
        f"From: =?utf-8?b?{NAME_B64}?= <eve@example.com>\n"
        "To: support@example.com\n"
        f"Subject: =?utf-8?q?Invoice=00due?= =?utf-8?b?{NOW_B64}?=\n"
        "Message-ID: <n2@example.com>\n"
    ),
    "RFC 2047 attachment filename and a base64 body": mail(
        "From: eve@example.com\nTo: support@example.com\nSubject: file\n"
        "Message-ID: <n3@example.com>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        f"{BODY_B64}\n"
        "--b\nContent-Type: application/pdf\n"
        f'Content-Disposition: attachment; filename="=?utf-8?b?{FILE_B64}?="\n'
        f"Content-Transfer-Encoding: base64\n\n{PDF_B64}\n--b--\n",
    ),
    "RFC 2231 filename": mail(
        "From: eve@example.com\nTo: support@example.com\nSubject: rfc2231\n"
        "Message-ID: <n4@example.com>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        "--b\nContent-Type: text/plain; charset=utf-8\n\nhello\n"
        "--b\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*=utf-8''a%00b.bin\n\nxx\n--b--\n",
    ),
}


@pytest.mark.parametrize("raw", NUL_CASES.values(), ids=NUL_CASES.keys())
def test_no_nul_in_any_text_field(raw: bytes) -> None:
    for parse in (parse_message, parse_message_slow):
        m = parse(raw)
        texts = _strings(m)
        assert texts, "the walk found nothing"
        assert not [t for t in texts if "\x00" in t], parse.__name__


def test_nul_is_removed_and_the_rest_kept() -> None:
    m = parse_message(NUL_CASES["raw header and body bytes"])
    assert m.subject == "hithere"
    assert m.from_ is not None and m.from_.email == "eve@example.com"
    assert m.message_id == "n1@example.com"
    assert m.text.startswith("bodytext")
    m = parse_message(NUL_CASES["RFC 2047 subject and display name"])
    assert m.subject == "Invoiceduenow"
    assert m.from_ is not None and m.from_.name == "EveEvil"
    m = parse_message(NUL_CASES["RFC 2047 attachment filename and a base64 body"])
    assert [a.filename for a in m.attachments] == ["report.pdf"]
    assert m.attachments[0].data == b"%PDF\x00\x00"  # bytes are kept as sent
    assert m.text.strip() == "seeattached"


    m = parse_message(NUL_CASES["RFC 2231 filename"])
    assert [a.filename for a in m.attachments] == ["ab.bin"]
