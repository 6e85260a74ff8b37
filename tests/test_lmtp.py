"""LMTP inbound against the real aiosmtpd listener and a real SQLite file."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from inboxd.db import messages, sql, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message, Quarantine
from inboxd.ingest.lmtp import InboundController, InboundHandler, base_address, quarantine_to
from inboxd.ingest.pipeline import IngestContext, Outcome, Pipeline, Source

MAILBOXES = {"support@help.example": "support", "billing@help.example": "billing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lmtp.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"s",
        support_addresses=frozenset(MAILBOXES),
        mailbox_addresses={v: k for k, v in MAILBOXES.items()},
        rules=lambda: None,
        clock=lambda: datetime.now(UTC),
    )
    yield Pipeline(engine, ctx)
    engine.dispose()


def start(ingest: object, *, lmtp: bool = True) -> InboundController:
    handler = InboundHandler(MAILBOXES, ingest, lmtp=lmtp)  # type: ignore[arg-type]
    controller = InboundController(handler, "127.0.0.1", free_port(), 10 * 1024 * 1024)
    controller.start()
    return controller


MAIL = (
    b"From: Carol <carol@customer.example>\r\nTo: support@help.example, billing@help.example\r\n"
    b"Subject: Invoice question\r\nMessage-ID: <lmtp-1@customer.example>\r\n\r\nHello\r\n"
)


def test_base_address_strips_subaddress() -> None:
    assert base_address("<Support+12-0-abc@Help.Example>") == "support@help.example"


def test_lmtp_delivers_once_and_answers_per_recipient(pipeline: Pipeline) -> None:
    controller = start(pipeline.ingest)
    try:
        with smtplib.LMTP("127.0.0.1", controller.port, timeout=10) as client:
            refused = client.sendmail(
                "carol@customer.example",
                ["support@help.example", "billing+tok@help.example"],
                MAIL,
            )
            assert refused == {}
            # smtplib reads one DATA reply; LMTP sends one per recipient (RFC 2033)
            code, text = client.getreply()
            assert code == 250 and b"stored" in text
            client.mail("carol@customer.example")
            code, _ = client.rcpt("stranger@help.example")
            assert code == 550
            client.rset()
    finally:
        controller.stop()
    with Session(pipeline.engine) as s:
        assert sql.count_rows(s, Message) == 1
        [ticket] = tickets.list_rows(s)
        assert ticket.mailbox == "support" and ticket.subject == "Invoice question"


def test_storage_failure_answers_451_so_the_mta_retries(pipeline: Pipeline) -> None:
    def failing(raw: bytes, source: Source) -> Outcome:
        raise OSError("disk full")

    controller = start(failing, lmtp=False)
    try:
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as err:
                client.sendmail("carol@customer.example", ["support@help.example"], MAIL)
            assert err.value.smtp_code == 451
    finally:
        controller.stop()


def two_recipient_data(port: int, raw: bytes) -> list[tuple[int, bytes]]:
    """DATA of ``raw`` for two recipients: the replies to it, one per recipient (a
    missing one times out after 10 s), then a NOOP's, which shows the session is
    still in step."""
    with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.mail("carol@customer.example")[0] == 250
        for rcpt in ("support@help.example", "billing@help.example"):
            assert client.rcpt(rcpt)[0] == 250
        replies = [client.data(raw), client.getreply()]
        replies.append(client.noop())
    return replies


def test_a_mail_over_the_size_limit_is_refused_once_per_recipient() -> None:
    """RFC 2033: aiosmtpd refused the oversize DATA once, and an LMTP client waiting
    for the second recipient's answer hung (or took it for the next command's)."""

    def never(raw: bytes, source: Source) -> Outcome:  # pragma: no cover - refused before
        raise AssertionError("an oversize mail reached the pipeline")

    handler = InboundHandler(MAILBOXES, never, lmtp=True)
    controller = InboundController(handler, "127.0.0.1", free_port(), 2000)
    controller.start()
    try:
        many_lines = MAIL + b"Hello again, a line of text.\r\n" * 300
        one_line = MAIL + b"x" * 5000 + b"\r\n"  # one line longer than the whole limit
        for raw in (many_lines, one_line):
            first, second, noop = two_recipient_data(controller.port, raw)
            assert first[0] == second[0] == 552, (first, second)
            assert noop[0] == 250
    finally:
        controller.stop()


HUGE_HEADER = (
    b"From: Carol <carol@customer.example>\r\nTo: support@help.example\r\n"
    b"Subject: " + b"A" * 1_000_000 + b"\r\nMessage-ID: <long-1@customer.example>\r\n\r\nHello\r\n"
)
LONG_BODY_LINE = (
    b"From: Carol <carol@customer.example>\r\nTo: support@help.example\r\n"
    b"Subject: One long line\r\nMessage-ID: <long-2@customer.example>\r\n\r\n"
    + b"<p>html on one line</p>" * 5000
    + b"\r\n"
)


def test_long_lines_are_accepted_and_a_huge_header_line_is_quarantined(
    pipeline: Pipeline,
) -> None:
    """A line over RFC 5321's 1000 octets got a permanent 500 (the sender a bounce)
    while IMAP stored the same mail. Long body lines are stored as IMAP stores them;
    a header line longer than the store keeps whole is held in quarantine, with
    the reason, instead of being cut."""
    handler = InboundHandler(
        MAILBOXES, pipeline.ingest, lmtp=True, quarantine=quarantine_to(pipeline.engine)
    )
    controller = InboundController(handler, "127.0.0.1", free_port(), 10 * 1024 * 1024)
    controller.start()
    try:
        held, held_too, noop = two_recipient_data(controller.port, HUGE_HEADER)
        assert held[0] == held_too[0] == 250 and b"quarantined" in held[1], held
        assert noop[0] == 250
        kept, kept_too, _ = two_recipient_data(controller.port, LONG_BODY_LINE)
        assert kept[0] == kept_too[0] == 250 and b"stored" in kept[1], kept
    finally:
        controller.stop()
    with Session(pipeline.engine) as s:
        [message] = s.exec(select(Message)).all()
        assert message.message_id == "long-2@customer.example"
        [row] = s.exec(select(Quarantine)).all()
        assert "header line" in row.reason and row.source == "lmtp:support"
        assert messages.blob(s.connection(), row.raw_sha256) == HUGE_HEADER
