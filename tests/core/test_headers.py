"""Header decoding from raw compat32 strings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inboxd.core.headers import (
    codec_for,
    decode_bytes,
    decode_header,
    parse_addresses,
    parse_date,
    parse_message_id,
    parse_msgid_list,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain   folded\r\n\t value", "plain folded value"),
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        ("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
        ("=?iso-8859-1?q?caf=E9?= au lait", "café au lait"),
        # Adjacent words join without the whitespace between them (RFC 2047 6.2).
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        # A multibyte character split across two encoded words.
        ("=?utf-8?b?w6Q=?= =?utf-8?b?w7Y=?=", "äö"),
        ("=?utf-8?q?x?=\r\n =?utf-8?q?y?=", "xy"),
        ("Re: =?utf-8?q?=C3=A4?= und mehr", "Re: ä und mehr"),
        # Unknown charset: bytes decoded by guessing, never dropped.
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        # Broken base64 padding.
        ("=?utf-8?b?R3LDvMOfZQ?=", "Grüße"),
        # Not an encoded word at all.
        ("=?garbage", "=?garbage"),
        ("", ""),
    ],
)
def test_decode_header(raw: str, expected: str) -> None:
    assert decode_header(raw) == expected


def test_decode_header_raw_8bit() -> None:
    utf8 = "Grüße".encode().decode("ascii", "surrogateescape")
    assert decode_header(utf8) == "Grüße"
    latin = "Grüße".encode("latin-1").decode("ascii", "surrogateescape")
    assert decode_header(latin) == "Grüße"


def test_codec_aliases() -> None:
    assert codec_for("ks_c_5601-1987") == "cp949"
    assert codec_for("ISO-8859-1") == "cp1252"
    assert codec_for("rot13") == ""  # not a text encoding
    assert codec_for("no-such-charset") == ""
    assert codec_for(None) == ""


def test_decode_bytes_fallbacks() -> None:
    assert decode_bytes(b"abc", None) == ("abc", False)
    assert decode_bytes("é".encode(), "utf-8") == ("é", False)
    text, fell_back = decode_bytes("é".encode("latin-1"), "utf-8")
    assert fell_back and text == "é"
    text, fell_back = decode_bytes(bytes(range(256)), "bogus")
    assert fell_back and len(text) >= 200


def test_addresses() -> None:
    got = parse_addresses(
        ['"Müller, Anna" <Anna@Example.com>, bob@example.org', "=?utf-8?q?J=C3=BCrgen?= <j@x.de>"]
    )
    assert [(a.email, a.name) for a in got] == [
        ("anna@example.com", "Müller, Anna"),
        ("bob@example.org", ""),
        ("j@x.de", "Jürgen"),
    ]
    assert got[0].domain == "example.com" and got[0].local == "anna"


def test_addresses_odd_shapes() -> None:
    assert parse_addresses(["undisclosed-recipients:;"]) == ()
    assert [a.email for a in parse_addresses(["team: a@x.org, b@x.org;"])] == [
        "a@x.org",
        "b@x.org",
    ]
    assert [a.email for a in parse_addresses(["a@x.org (Anna A.)"])] == ["a@x.org"]
    # Duplicates collapse; a bare MAILER-DAEMON is kept for bounce detection.
    assert [a.email for a in parse_addresses(["a@x.org, A@X.ORG", "MAILER-DAEMON"])] == [
        "a@x.org",
        "mailer-daemon",
    ]
    assert parse_addresses(["<>"]) == ()


def test_msgid_list() -> None:
    assert parse_msgid_list("<a@x> <b@y>") == ["a@x", "b@y"]
    assert parse_msgid_list("<a@x>,<b@y>\r\n\t<a@x>") == ["a@x", "b@y"]
    assert parse_msgid_list("a@x b@y") == ["a@x", "b@y"]
    assert parse_msgid_list('<a@x> ("Bob\'s message of Monday")') == ["a@x"]
    assert parse_msgid_list("") == []
    assert parse_msgid_list("junk without ids") == []


def test_message_id_exact() -> None:
    assert parse_message_id("<CAF+x=Y@Mail.Gmail.COM>") == "CAF+x=Y@Mail.Gmail.COM"
    assert parse_message_id("  <a.b@c>  ") == "a.b@c"
    assert parse_message_id("<>") == ""
    assert parse_message_id("x") == ""
    assert parse_message_id(None) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tue, 02 Jan 2024 10:00:00 +0100", datetime(2024, 1, 2, 9, 0, tzinfo=UTC)),
        ("2 Jan 2024 10:00:00 -0000", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("Tue, 2 Jan 2024 10:00 GMT", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 +0100 (CET)", datetime(2024, 1, 2, 9, 0, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:60 +0000", datetime(2024, 1, 2, 10, 0, 59, tzinfo=UTC)),
        ("not a date", None),
        ("Tue, 31 Feb 2024 10:00:00 +0000", None),
        ("Tue, 02 Jan 1700 10:00:00 +0000", None),
        ("", None),
    ],
)
def test_parse_date(raw: str, expected: datetime | None) -> None:
    got = parse_date(raw)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC
