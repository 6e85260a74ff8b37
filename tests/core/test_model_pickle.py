"""A parsed mail crosses from an ingest worker to the storing process unchanged."""

from __future__ import annotations

import pickle

from inboxd.core.model import Address, Bounce, ParseFailure
from inboxd.core.parse import parse_message
from inboxd.ingest.sink import FetchedMail

RAW = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
    b"To: support@help.example, Ops <ops@help.example>\r\n"
    b"Subject: Invoice\r\nMessage-ID: <a1@example.com>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    b"--b\r\nContent-Type: application/pdf; name=x.pdf\r\n"
    b"Content-Disposition: attachment; filename=x.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
)


def test_a_fetched_mail_round_trips_through_pickle_field_for_field() -> None:
    parsed = parse_message(RAW)
    assert parsed.attachments and parsed.from_ is not None
    mails = [
        FetchedMail(7, RAW, parsed, fetched_at=1.5),
        FetchedMail(8, b"x", ParseFailure("no header block"), oversize=10),
        FetchedMail(9, RAW),
    ]
    back = pickle.loads(pickle.dumps(mails, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == mails
    assert back[0].parsed.attachments[0].data == parsed.attachments[0].data
    assert pickle.loads(pickle.dumps(Address("a@b.c"))) == Address("a@b.c", "")
    bounce = Bounce("m@x", ("a@b.c",), "5.1.1", "failed", "no such user", True)
    assert pickle.loads(pickle.dumps(bounce)) == bounce


def test_pickled_as_constructor_and_values() -> None:
    """Not the slots default (state set field by field after a fields() lookup)."""
    cls, args = Address("a@b.c", "A").__reduce__()  # type: ignore[misc]
    assert cls is Address and args == ("a@b.c", "A")
    cls, args = ParseFailure("why").__reduce__()  # type: ignore[misc]
    assert cls is ParseFailure and args == ("why",)
