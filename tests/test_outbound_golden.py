"""The outbound mail of the full path, byte for byte, for a fixed clock and secret.

A desk (the real pipeline and flows, the default test rules) receives a new
ticket with an HTML part and an attachment, a follow-up, an agent's relayed
answer with an attachment, a note and a bad command; every queued mail is
compared with the bytes recorded in ``tests/data/outbound_golden``. How a mail
is queued may change (for speed); what goes on the wire may not. To record
again after a deliberate change of the mail: ``INBOXD_RECORD_GOLDEN=1 pytest
tests/test_outbound_golden.py`` and review the diff.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest
from mailflow_kit import T0, Desk, mail, make_desk, parse, reply_to_notification

GOLDEN = Path(__file__).parent / "data" / "outbound_golden"

HTML_WITH_ATTACHMENT = (
    "From: =?utf-8?q?Carol_M=C3=BCller?= <carol@customer.example>\r\n"
    "To: support@help.example\r\n"
    "Cc: Dave <dave@customer.example>\r\n"
    "Subject: =?utf-8?q?Drucker_kaputt_=E2=80=93_E42?=\r\n"
    "Message-ID: <c1@customer.example>\r\n"
    "Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="outer"\r\n'
    "\r\n"
    "--outer\r\n"
    'Content-Type: multipart/alternative; boundary="alt"\r\n'
    "\r\n"
    "--alt\r\n"
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "\r\n"
    "Hello,\r\n\r\nthe printer on floor 3 shows E42 – since Monday.\r\n\r\nCarol\r\n"
    "--alt\r\n"
    'Content-Type: text/html; charset="utf-8"\r\n'
    "\r\n"
    "<p>Hello,</p><p>the printer on <b>floor 3</b> shows E42 – since Monday.</p>"
    '<img src="https://tracker.example/pixel.gif"><p>Carol</p>\r\n'
    "--alt--\r\n"
    "--outer\r\n"
    "Content-Type: image/png\r\n"
    'Content-Disposition: attachment; filename="display.png"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n"
    "--outer--\r\n"
).encode()


def _with_attachment(raw: bytes) -> bytes:
    head, _, body = raw.decode().partition("\r\n\r\n")
    head = head.replace(
        'Content-Type: text/plain; charset="utf-8"',
        'Content-Type: multipart/mixed; boundary="b1"',
    )
    return (
        f"{head}\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        "--b1\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="manual.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b1--\r\n"
    ).encode()


def _scenario(desk: Desk) -> list[tuple[str, bytes]]:
    desk.deliver(HTML_WITH_ATTACHMENT)
    desk.clock.now = T0.replace(hour=10)
    desk.deliver(
        mail(
            sender="Carol Müller <carol@customer.example>",
            subject="Re: [#1] Drucker kaputt – E42",
            body="Any news?\n\n> older text\n",
            msgid="c2@customer.example",
            in_reply_to="c1@customer.example",
            references=["c1@customer.example"],
        )
    )
    desk.clock.now = T0.replace(hour=11)
    note = parse(_raw_notify(desk, "alice@help.example"))
    answer = reply_to_notification(note, body="#tag printer\n\nHello Carol,\nsee the manual.\n")
    desk.deliver(_with_attachment(answer))
    desk.clock.now = T0.replace(hour=12)
    note = parse(_raw_notify(desk, "bob@help.example"))
    desk.deliver(
        reply_to_notification(
            note,
            sender="Bob Agent <bob@help.example>",
            body="#note\nCalled her, it works now.\n",
            msgid="b1@help.example",
        )
    )
    desk.deliver(
        reply_to_notification(
            note,
            sender="Bob Agent <bob@help.example>",
            body="#clsoe\n\nDone.\n",
            msgid="b2@help.example",
        )
    )
    return _rows(desk)


def _raw_notify(desk: Desk, agent: str) -> bytes:
    """The latest notification queued to ``agent``."""
    for kind, raw in reversed(_rows(desk)):
        to = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
        if kind == "notify" and agent.encode() in to:
            return raw
    raise AssertionError(f"no notification to {agent}")


def _rows(desk: Desk) -> list[tuple[str, bytes]]:
    from sqlalchemy import select

    from inboxd.db.tables import Outbox

    table = Outbox.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        rows = conn.execute(select(table.c.kind, table.c.id).order_by(table.c.id)).all()
    return [(r.kind, desk.written(r.id)) for r in rows]


def _count_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Message-IDs from a counter from 1 instead of uuid4: the only random part of our mail."""
    counter = itertools.count(1)
    monkeypatch.setattr("inboxd.flows.mailflow.uuid.uuid4", lambda: uuid.UUID(int=next(counter)))


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    _count_ids(monkeypatch)


def test_outbound_mail_is_byte_for_byte_as_recorded(tmp_path: Path, fixed_ids: None) -> None:
    desk = make_desk(tmp_path)
    got = _scenario(desk)
    kinds = [kind for kind, _ in got]
    assert kinds.count("ack") == 1 and kinds.count("reply") == 1, kinds
    assert {"notify", "note_ack", "command_result"} <= set(kinds), kinds
    if os.environ.get("INBOXD_RECORD_GOLDEN"):
        for old in GOLDEN.glob("*.eml"):
            old.unlink()
        for n, (kind, raw) in enumerate(got, 1):
            (GOLDEN / f"{n:02d}-{kind}.eml").write_bytes(raw)
    recorded = sorted(GOLDEN.glob("*.eml"))
    assert [p.name for p in recorded] == [f"{n:02d}-{k}.eml" for n, (k, _) in enumerate(got, 1)]
    for path, (_, raw) in zip(recorded, got, strict=True):
        assert raw == path.read_bytes(), f"{path.name} differs"


def test_a_batch_queues_the_same_mail_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IMAP batch holds its rows and remembers what it read (agent numbers, each
    ticket's root) for the batch; what it queues is byte for byte what mail by mail
    queues: a new ticket and its follow-up in one batch, and in two deliveries."""
    from inboxd.ingest.sink import FetchedMail

    follow_up = mail(
        subject="Re: Drucker kaputt",
        body="Any news?\n",
        msgid="c2@customer.example",
        in_reply_to="c1@customer.example",
        references=["c1@customer.example"],
    )
    _count_ids(monkeypatch)
    one_by_one = make_desk(tmp_path / "a")
    one_by_one.deliver(HTML_WITH_ATTACHMENT)
    one_by_one.deliver(follow_up)
    expected = _rows(one_by_one)
    _count_ids(monkeypatch)  # the same Message-IDs again
    batched = make_desk(tmp_path / "b")
    batch = [FetchedMail(1, HTML_WITH_ATTACHMENT), FetchedMail(2, follow_up)]
    batched.pipeline.store_batch("support", "INBOX", 1, batch)
    assert [k for k, _ in expected] == ["ack", "notify", "notify", "notify", "notify"]
    assert _rows(batched) == expected
