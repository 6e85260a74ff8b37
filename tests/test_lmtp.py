"""LMTP inbound against the real aiosmtpd listener and a real SQLite file."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from inboxd.db import sql, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message
from inboxd.ingest.lmtp import InboundController, InboundHandler, base_address
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
