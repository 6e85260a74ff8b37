"""Outbound rendering: headers, threading, Thread-Index, injection, MIME structure."""

from __future__ import annotations

import base64
import email
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest

from inboxd.core import compose
from inboxd.core.compose import (
    AUTO_RESPONSE_SUPPRESS,
    REFERENCES_CAP,
    ComposeError,
    OutboundKind,
    OutboundMail,
    build_references,
    header_safe,
    render_message,
    subject_with_tag,
    thread_index_for,
)
from inboxd.core.model import Address, Attachment
from inboxd.core.threadindex import (
    decode_thread_index,
    filetime,
    from_filetime,
    thread_index_child,
    thread_index_root,
)

DATE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STARTED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def outbound(**overrides: object) -> OutboundMail:
    base = OutboundMail(
        kind=OutboundKind.ACK,
        ticket_id=12,
        from_addr=Address("support@help.example", "Example Support"),
        to=(Address("carol@customer.example", "Carol"),),
        subject="Re: [#12] Printer broken",
        text="We got your mail.\n",
        message_id="ibx.12.abc.sig@help.example",
        in_reply_to="m1@customer.example",
        references=(),
        thread_topic="Printer broken",
        thread_root_id="m1@customer.example",
        thread_started=STARTED,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    """Parse as a mail store would keep it: LF line ends."""
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1] not in " \t"]


# --- basic headers -------------------------------------------------------------------------


def test_ack_headers_and_threading() -> None:
    raw = render_message(outbound(), date=DATE)
    msg = parse(raw)
    assert msg["Message-ID"] == "<ibx.12.abc.sig@help.example>"
    assert msg["In-Reply-To"] == "<m1@customer.example>"
    assert msg["References"] == "<m1@customer.example>"
    assert msg["Subject"] == "Re: [#12] Printer broken"
    assert msg["From"].addresses[0].addr_spec == "support@help.example"
    assert msg["From"].addresses[0].display_name == "Example Support"
    assert msg["To"].addresses[0].addr_spec == "carol@customer.example"
    assert msg["Date"].datetime == DATE
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == AUTO_RESPONSE_SUPPRESS
    assert "NDR" not in AUTO_RESPONSE_SUPPRESS and "OOF" in AUTO_RESPONSE_SUPPRESS
    assert msg["Precedence"] == "bulk"
    assert msg["Thread-Topic"] == "Printer broken"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == "We got your mail.\n"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (OutboundKind.ACK, "auto-replied"),
        (OutboundKind.COMMAND_RESULT, "auto-replied"),
        (OutboundKind.NOTE_ACK, "auto-replied"),
        (OutboundKind.NOTIFY, "auto-generated"),
        (OutboundKind.SLA_REMINDER, "auto-generated"),
        (OutboundKind.SLA_BREACH, "auto-generated"),
        (OutboundKind.BOUNCE_ALERT, "auto-generated"),
    ],
)
def test_automatic_kinds_are_marked(kind: OutboundKind, expected: str) -> None:
    msg = parse(render_message(outbound(kind=kind), date=DATE))
    assert msg["Auto-Submitted"] == expected
    assert msg["Precedence"] == "bulk"
    assert msg["X-Auto-Response-Suppress"] == AUTO_RESPONSE_SUPPRESS


def test_relayed_reply_is_not_marked_automatic() -> None:
    msg = parse(render_message(outbound(kind=OutboundKind.REPLY), date=DATE))
    for name in ("Auto-Submitted", "Precedence", "X-Auto-Response-Suppress"):
        assert msg[name] is None


def test_explicit_auto_submitted_overrides_and_is_validated() -> None:
    msg = parse(
        render_message(
            outbound(kind=OutboundKind.REPLY, auto_submitted="auto-generated"), date=DATE
        )
    )
    assert msg["Auto-Submitted"] == "auto-generated"
    with pytest.raises(ComposeError):
        outbound(auto_submitted="yes please")


def test_cc_reply_to_and_recipients() -> None:
    mail = outbound(
        kind=OutboundKind.REPLY,
        to=(Address("carol@customer.example"),),
        cc=(Address("dave@customer.example", "Dave"), Address("carol@customer.example")),
        reply_to=Address("support+12-0-abc@help.example"),
    )
    msg = parse(render_message(mail, date=DATE))
    assert [a.addr_spec for a in msg["Cc"].addresses] == [
        "dave@customer.example",
        "carol@customer.example",
    ]
    assert msg["Reply-To"].addresses[0].addr_spec == "support+12-0-abc@help.example"
    assert mail.recipients == ("carol@customer.example", "dave@customer.example")


def test_requires_recipient_aware_date_and_valid_message_id() -> None:
    with pytest.raises(ComposeError):
        render_message(outbound(to=()), date=DATE)
    with pytest.raises(ComposeError):
        render_message(outbound(), date=datetime(2026, 3, 2, 12, 0))
    for bad in ("<x@y>", "no-at-sign", "a b@c", ""):
        with pytest.raises(ComposeError):
            render_message(outbound(message_id=bad), date=DATE)


def test_unusable_address_is_refused() -> None:
    for bad in ("not an address", "a@b@c", "x<y>@z"):
        with pytest.raises(ComposeError):
            render_message(outbound(to=(Address(bad),)), date=DATE)


def test_idn_domain_is_punycoded() -> None:
    raw = render_message(outbound(to=(Address("kunde@bücher.example"),)), date=DATE)
    assert parse(raw)["To"].addresses[0].domain == "xn--bcher-kva.example"


# --- injection ---------------------------------------------------------------------------


def test_header_values_cannot_inject_headers() -> None:
    evil = "Printer\r\nBcc: victim@evil.example\nX-Injected: 1\r"
    mail = outbound(
        subject=f"Re: [#12] {evil}",
        thread_topic=evil,
        to=(Address("carol@customer.example", f"Carol{evil}"),),
        from_addr=Address("support@help.example", "Alice\r\nX-Injected: 2"),
        extra_headers=(("X-Inboxd-Ticket", f"12{evil}"),),
        in_reply_to="m1@customer.example>\r\nX-Injected: 3",
        references=("ok@x.example", "bad\r\nX-Injected: 4@x"),
    )
    raw = render_message(mail, date=DATE)
    names = header_names(raw)
    assert "bcc" not in names
    assert "x-injected" not in names
    msg = parse(raw)
    assert msg["Subject"] == "Re: [#12] Printer Bcc: victim@evil.example X-Injected: 1"
    assert "\n" not in msg["X-Inboxd-Ticket"]
    assert msg["In-Reply-To"] is None  # not a usable Message-ID, so dropped
    assert msg["References"] == "<ok@x.example>"


def test_header_safe_strips_all_control_characters() -> None:
    assert header_safe("a\r\nb\x00c\x1bd\x7fe\u2028f\tg") == "a b c d e f g"
    assert header_safe("  many   spaces  ") == "many spaces"


def test_extra_headers_cannot_override_structural_ones() -> None:
    for name in ("Bcc", "From", "message-id", "Content-Type", "Bad Name", "X:Y", ""):
        with pytest.raises(ComposeError):
            render_message(outbound(extra_headers=((name, "x"),)), date=DATE)
    msg = parse(render_message(outbound(extra_headers=(("X-Inboxd-Ticket", "12"),)), date=DATE))
    assert msg["X-Inboxd-Ticket"] == "12"


# --- References -------------------------------------------------------------------------


def test_references_chain_appends_parent_and_dedupes() -> None:
    assert build_references(("a@x", "b@x"), "c@x") == ("a@x", "b@x", "c@x")
    assert build_references(("a@x", "b@x", "a@x"), "b@x") == ("a@x", "b@x")
    assert build_references((), "") == ()
    assert build_references(("<a@x>", " b@x "), "") == ("a@x", "b@x")


def test_references_cap_keeps_root_and_newest() -> None:
    chain = tuple(f"m{i}@x" for i in range(50))
    refs = build_references(chain, "parent@x")
    assert len(refs) == REFERENCES_CAP
    assert refs[0] == "m0@x"
    assert refs[-1] == "parent@x"
    assert refs[1:-1] == chain[-(REFERENCES_CAP - 2) :]


def test_long_references_fold_without_encoding() -> None:
    chain = tuple(f"{'x' * 40}.{i}@customer.example" for i in range(30))
    msg = parse(render_message(outbound(references=chain), date=DATE))
    ids = msg["References"].split()
    assert len(ids) == REFERENCES_CAP
    assert ids[-1] == "<m1@customer.example>"
    assert "=?" not in str(msg["References"])


# --- subject tag ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer broken", "[#12] Printer broken"),
        ("Re: Printer broken", "Re: [#12] Printer broken"),
        ("Re: [#12] Re: [#12] Printer broken", "Re: [#12] Printer broken"),
        ("RE: AW: Re: [#12] Printer", "Re: [#12] Printer"),
        ("AW: WG: Printer", "Re: [#12] Printer"),
        ("Fwd: Printer", "Fwd: [#12] Printer"),
        ("Printer [#12] broken", "[#12] Printer broken"),
        ("[#12] [#12] Printer", "[#12] Printer"),
        ("Re: [#7] merged one", "Re: [#12] [#7] merged one"),
        ("", "[#12]"),
        ("Re:", "Re: [#12]"),
        ("Printer\r\nBcc: x@y", "[#12] Printer Bcc: x@y"),
    ],
)
def test_subject_with_tag(subject: str, expected: str) -> None:
    assert subject_with_tag(subject, 12) == expected


def test_subject_with_tag_custom_format_is_guarded_by_digits() -> None:
    assert subject_with_tag("Re: Ticket 1: hi", 1, "Ticket {id}:") == "Re: Ticket 1: hi"
    assert subject_with_tag("#12 is not #1", 1, "#{id}") == "#1 #12 is not"
    assert subject_with_tag("[#12] Printer", 1) == "[#1] [#12] Printer"


def test_subject_with_tag_is_idempotent() -> None:
    once = subject_with_tag("AW: Re: Printer [#12]", 12)
    assert subject_with_tag(once, 12) == once
    assert subject_with_tag("Re: " + once, 12) == once


_TAG_SUBJECTS = (
    "Printer broken",
    "Re: [#12] Printer",
    "AW: printer [#12]",
    "[#123] not ours [#1]",
    "Ticket 12: TICKET 12: ticket 12 again",
    "re: [ticket-12] [TICKET-12] [Ticket-12]",
    "re: [ticket-12] printer, ticket 1: hi",
    "#12#12",
    "\u0661[#12]\u0662 arabic digits around",
    "Fwd:",
    "",
)
_TAG_FORMATS = ("[#{id}]", "#{id}", "{id}", "Ticket {id}:", "[TICKET-{id}]", "[{id}|{id}]")


@pytest.mark.parametrize("tag_format", _TAG_FORMATS)
def test_subject_with_tag_shortcut_changes_nothing(
    tag_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skipping the tag regex when the tag cannot occur gives what the regex gives."""
    fast = [subject_with_tag(s, n, tag_format) for s in _TAG_SUBJECTS for n in (1, 12)]
    monkeypatch.setattr(compose, "_may_hold_tag", lambda _subject, _tag: True)
    slow = [subject_with_tag(s, n, tag_format) for s in _TAG_SUBJECTS for n in (1, 12)]
    assert fast == slow


def test_non_ascii_subject_and_name_are_encoded() -> None:
    mail = outbound(
        subject="Re: [#12] Drucker kaputt – Grüße 🖨",
        from_addr=Address("support@help.example", "Jürgen Müller"),
    )
    raw = render_message(mail, date=DATE)
    assert raw.isascii()
    msg = parse(raw)
    assert msg["Subject"] == "Re: [#12] Drucker kaputt – Grüße 🖨"
    assert msg["From"].addresses[0].display_name == "Jürgen Müller"


# --- bodies and attachments ------------------------------------------------------------------


def test_html_makes_multipart_alternative_and_utf8_roundtrips() -> None:
    mail = outbound(text="Grüße\r\nline two", html="<p>Grüße</p>")
    raw = render_message(mail, date=DATE)
    assert raw.isascii()
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Grüße\nline two\n"
    assert html.get_content() == "<p>Grüße</p>\n"
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"


def test_very_long_ascii_line_is_encoded_not_truncated() -> None:
    long_line = "x" * 3000
    msg = parse(render_message(outbound(text=long_line), date=DATE))
    assert msg.get_content() == long_line + "\n"


@pytest.mark.parametrize("code", range(128))
def test_7bit_only_without_control_characters(code: int) -> None:
    """Every ASCII character: controls other than TAB and line ends force quoted-printable."""
    char = chr(code)
    text = f"a{char}b\nsecond line\n" * 100  # longer than 998: the line check runs too
    msg = parse(render_message(outbound(text=text), date=DATE))
    expect_7bit = char in "\t\n\r" or 0x20 <= code < 0x7F
    assert msg["Content-Transfer-Encoding"] == ("7bit" if expect_7bit else "quoted-printable")
    assert msg.get_content() == text.replace("\r", "\n")


@pytest.mark.parametrize(("length", "cte"), [(998, "7bit"), (999, "quoted-printable")])
def test_7bit_line_limit_is_998(length: int, cte: str) -> None:
    text = "short\n" + "x" * length + "\nshort\n"
    msg = parse(render_message(outbound(text=text), date=DATE))
    assert msg["Content-Transfer-Encoding"] == cte
    assert msg.get_content() == text


def test_attachments_and_inline_images() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    mail = outbound(
        html='<p>see <img src="cid:logo@x"></p>',
        attachments=(
            Attachment("logo.png", "image/png", png, content_id="logo@x", inline=True),
            Attachment("Rechnung März.pdf", "application/pdf", b"%PDF-1.4 data"),
            Attachment("weird", "not a type", b"\x00\x01"),
        ),
    )
    msg = parse(render_message(mail, date=DATE))
    assert msg.get_content_type() == "multipart/mixed"
    atts = list(msg.iter_attachments())
    assert [a.get_filename() for a in atts] == ["Rechnung März.pdf", "weird"]
    assert atts[0].get_content() == b"%PDF-1.4 data"
    assert atts[1].get_content_type() == "application/octet-stream"
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo@x>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png


def test_attached_mail_is_message_rfc822_without_base64() -> None:
    inner = b"From: a@b.example\r\nSubject: inner\r\n\r\nhello\r\n"
    mail = outbound(attachments=(Attachment("fwd.eml", "message/rfc822", inner),))
    msg = parse(render_message(mail, date=DATE))
    part = next(msg.iter_attachments())
    assert part.get_content_type() == "message/rfc822"
    assert part.get("Content-Transfer-Encoding", "7bit") != "base64"
    assert part.get_content()["Subject"] == "inner"


# --- Thread-Index ---------------------------------------------------------------------------


def test_filetime_known_values() -> None:
    assert filetime(datetime(1601, 1, 1, tzinfo=UTC)) == 0
    # 1970-01-01 is 11644473600 seconds after 1601-01-01
    assert filetime(datetime(1970, 1, 1, tzinfo=UTC)) == 116444736000000000
    assert from_filetime(116444736000000000) == datetime(1970, 1, 1, tzinfo=UTC)


def test_thread_index_root_layout() -> None:
    root = thread_index_root("m1@customer.example", STARTED)
    assert len(root) == 22
    assert root[0] == 0x01
    assert int.from_bytes(root[1:6], "big") == filetime(STARTED) >> 24
    assert root[6:22] == thread_index_root("M1@Customer.Example", STARTED)[6:22]
    assert root[6:22] != thread_index_root("m2@customer.example", STARTED)[6:22]
    # the way real Outlook values of this decade start: 0x01 0x01 0xDx
    assert base64.b64encode(root).startswith(b"AQH")


def test_thread_index_header_decodes_and_is_shared_by_the_ticket() -> None:
    ack = parse(render_message(outbound(), date=DATE))
    later = DATE + timedelta(days=3, hours=4)
    reply = parse(
        render_message(
            outbound(kind=OutboundKind.REPLY, message_id="ibx.12.def.sig@help.example"),
            date=later,
        )
    )
    a = decode_thread_index(ack["Thread-Index"])
    b = decode_thread_index(reply["Thread-Index"])
    assert a is not None and b is not None
    assert a.guid == b.guid  # one conversation in Outlook
    assert a.header_filetime == b.header_filetime
    assert abs(a.started - STARTED) < timedelta(seconds=2)  # 24 bits dropped: ~1.7 s
    assert len(a.children) == len(b.children) == 1
    # child times land within the resolution of delta code 0 (2**18 * 100 ns)
    assert abs(a.child_times()[0] - DATE) < timedelta(seconds=2)
    assert abs(b.child_times()[0] - later) < timedelta(seconds=2)
    assert a.children[0].delta < b.children[0].delta


def test_thread_index_is_deterministic() -> None:
    assert thread_index_for(outbound(), DATE) == thread_index_for(outbound(), DATE)


def test_thread_index_child_uses_delta_code_1_for_long_gaps() -> None:
    root = thread_index_root("m1@x", STARTED)
    far = STARTED + timedelta(days=800)  # more than 2**49 FILETIME units (~1.78 years)
    value = thread_index_child(root, far, "salt")
    assert value[22] & 0x80
    decoded = decode_thread_index(base64.b64encode(value).decode())
    assert decoded is not None
    assert abs(decoded.child_times()[0] - far) < timedelta(seconds=2)


def test_thread_index_keeps_a_customers_outlook_root() -> None:
    theirs = thread_index_root("outlook-original@customer.example", STARTED) + bytes(5)
    mail = outbound(thread_root_index=base64.b64encode(theirs).decode())
    ours = decode_thread_index(thread_index_for(mail, DATE))
    assert ours is not None
    assert ours.guid == theirs[6:22]
    assert len(ours.children) == 1


def test_invalid_customer_thread_index_falls_back_to_our_root() -> None:
    mail = outbound(thread_root_index="not base64 at all!")
    ours = decode_thread_index(thread_index_for(mail, DATE))
    assert ours is not None
    assert ours.guid == thread_index_root("m1@customer.example", STARTED)[6:22]


@pytest.mark.parametrize(
    "value", ["", "AQ==", "!!!", base64.b64encode(b"\x02" + bytes(21)).decode()]
)
def test_decode_thread_index_rejects_garbage(value: str) -> None:
    assert decode_thread_index(value) is None


def test_no_thread_root_means_no_thread_index() -> None:
    msg = parse(render_message(outbound(thread_root_id="", thread_topic=""), date=DATE))
    assert msg["Thread-Index"] is None
    assert msg["Thread-Topic"] is None


# --- internationalised addresses (RFC 6530-6532) -----------------------------------------------


def test_idn_domain_is_written_and_enveloped_as_an_a_label() -> None:
    mail = outbound(to=(Address("kunde@bücher.example", "Kunde"),))
    raw = render_message(mail, date=DATE)
    assert raw.isascii()
    assert parse(raw)["To"].addresses[0].addr_spec == "kunde@xn--bcher-kva.example"
    assert mail.recipients == ("kunde@xn--bcher-kva.example",)
    assert not compose.needs_smtputf8("", mail.recipients)


def test_non_ascii_local_part_is_utf8_and_needs_smtputf8() -> None:
    mail = outbound(to=(Address("jörg.müller@bücher.example", "Jörg Müller"),))
    raw = render_message(mail, date=DATE)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert "<jörg.müller@xn--bcher-kva.example>".encode() in head  # RFC 6532, not quoted
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body.isascii()  # only the address is 8-bit
    msg = email.message_from_bytes(raw, policy=policy.SMTPUTF8)
    assert msg["To"].addresses[0].display_name == "Jörg Müller"
    assert mail.recipients == ("jörg.müller@xn--bcher-kva.example",)
    assert compose.needs_smtputf8("", mail.recipients)


def test_unusable_address_is_a_compose_error() -> None:
    with pytest.raises(ComposeError, match="not a usable address"):
        render_message(outbound(to=(Address("no at sign", ""),)), date=DATE)


@pytest.mark.parametrize("tag_format", ["", "  "])
def test_an_empty_tag_format_is_refused_not_looped_on(tag_format: str) -> None:
    with pytest.raises(ValueError, match="empty subject tag"):
        subject_with_tag("Re: Printer", 1, tag_format)


def test_envelope_address_is_remembered_but_an_unusable_one_fails_every_time() -> None:
    from inboxd.core.compose import envelope_address

    assert envelope_address("jörg@bücher.example") == "jörg@xn--bcher-kva.example"
    assert envelope_address("jörg@bücher.example") == "jörg@xn--bcher-kva.example"
    assert envelope_address("") == ""
    for _ in range(2):
        with pytest.raises(ComposeError):
            envelope_address("not an address")
