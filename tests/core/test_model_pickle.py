"""A parsed mail crosses from an ingest worker to the storing process unchanged."""

from __future__ import annotations

import pickle
from dataclasses import replace

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


def test_a_new_text_that_is_the_whole_text_is_not_sent_twice() -> None:
    """Most mail quotes nothing: its new text is its text stripped, and is made again
    on loading instead of crossing the pipe a second time. A reply's new text (its
    quote cut) and one that only looks like the text (not stripped) cross as they are."""
    body = "Hello, the printer is broken again. " * 200
    alone = parse_message(RAW.replace(b"Hello\r\n", body.encode() + b"\r\n"))
    assert alone.new_text == alone.text.strip() and len(alone.text) > 7000
    quoted = parse_message(
        RAW.replace(b"Hello\r\n", b"Thanks!\r\n\r\nOn Mon, 2 Mar 2026, Support wrote:\r\n> Hi\r\n")
    )
    assert quoted.new_text == "Thanks!"
    unstripped = replace(alone, new_text=alone.text)  # equal to the text, not stripped
    for mail in (alone, quoted, unstripped):
        back = pickle.loads(pickle.dumps(mail, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == mail and type(back.new_text) is str
    sent = len(pickle.dumps(alone, protocol=pickle.HIGHEST_PROTOCOL))
    assert sent < len(alone.text) * 1.2  # the body once, not twice
