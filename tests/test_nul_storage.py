"""Mail with NUL characters through the real pipeline (issues 14, 15): stored, not
quarantined, on SQLite and on PostgreSQL (whose text cannot hold U+0000); the
raw bytes are kept as they came."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from inboxd.db import messages
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Attachment, Message, Quarantine, Ticket
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def pipeline(db_url: str) -> Iterator[Pipeline]:
    engine = make_engine(db_url)
    upgrade(engine)
    ctx = IngestContext(
        secret=b"nul-secret",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: T0,
    )
    yield Pipeline(engine, ctx)
    engine.dispose()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NAME = _b64(b"Eve\x00Evil")
SUBJECT = _b64(b"Invoice\x00due")
FILE = _b64(b"re\x00port.pdf")
BODY = _b64(b"see\x00attached")
NUL_MAIL = (
    "From: =?utf-8?b?" + NAME + "?= <eve@customer.example>\r\n"
    "To: support@help.example\r\n"
    "Subject: =?utf-8?b?" + SUBJECT + "?= and\x00raw\r\n"
    "Message-ID: <nul-1@customer.example>\r\n"
    "Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
    "X-Odd: a\x00b\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + BODY
    + "\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nraw\x00line\r\n"
    "--b\r\nContent-Type: application/pdf\r\n"
    'Content-Disposition: attachment; filename="=?utf-8?b?' + FILE + '?="\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\n" + _b64(b"%PDF\x00") + "\r\n--b--\r\n"
).encode()


# NULs only inside RFC 2047 words and base64 (SQLite stored these, PostgreSQL refused)
ENCODED_ONLY = (
    NUL_MAIL.replace(b" and\x00raw", b"")
    .replace(b"X-Odd: a\x00b\r\n", b"")
    .replace(b"raw\x00line", b"rawline")
)


@pytest.mark.parametrize(
    ("raw", "subject"),
    [(NUL_MAIL, "Invoicedue andraw"), (ENCODED_ONLY, "Invoicedue")],
    ids=["raw-and-encoded", "encoded-only"],
)
def test_mail_with_nuls_is_stored_without_them(
    pipeline: Pipeline, raw: bytes, subject: str
) -> None:
    assert b"\x00" not in ENCODED_ONLY
    out = pipeline.ingest(raw, Source("lmtp", "support"))
    assert out.status == "stored", out.reason
    with Session(pipeline.engine) as s:
        assert s.exec(select(Quarantine)).all() == []
        ticket = s.exec(select(Ticket)).one()
        row = s.exec(select(Message)).one()
        files = s.exec(select(Attachment)).all()
        stored = messages.blob(s, row.raw_sha256)
    assert ticket.subject == subject
    assert row.from_name == "EveEvil"
    assert "\x00" not in (row.text or "") and "seeattached" in (row.text or "")
    assert [f.filename for f in files] == ["report.pdf"]
    assert stored == raw  # the bytes as they came, NULs and all
