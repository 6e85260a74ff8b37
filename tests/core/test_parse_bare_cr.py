"""Mail whose lines end in a bare CR (old Mac clients, some gateways) parses whole.

Issue 15, "Smaller": such a mail had an empty subject and body (the whole mail
read as one header line).
"""

from __future__ import annotations

from inboxd.core.parse import parse_message

RAW = (
    b"From: Carol <carol@customer.example>\rTo: support@help.example\r"
    b"Subject: Printer broken\rMessage-ID: <cr-1@customer.example>\r\r"
    b"It does not print.\rSecond line.\r"
)


def test_bare_cr_lines_are_lines() -> None:
    parsed = parse_message(RAW)
    assert parsed.subject == "Printer broken"
    assert parsed.message_id == "cr-1@customer.example"
    assert parsed.from_ is not None and parsed.from_.email == "carol@customer.example"
    assert parsed.text.splitlines()[:2] == ["It does not print.", "Second line."]


def test_crlf_mail_with_a_stray_cr_in_the_body_is_left_alone() -> None:
    raw = b"From: a@b.example\r\nSubject: x\r\nMessage-ID: <s@b.example>\r\n\r\nA\rB\r\n"
    parsed = parse_message(raw)
    assert parsed.subject == "x"
    assert "A\nB" not in parsed.text
