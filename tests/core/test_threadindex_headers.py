"""thread_index_in_headers: the Thread-Index of a stored raw mail, read by regex."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from inboxd.core.threadindex import thread_index_in_headers, thread_index_root

VALUE = base64.b64encode(
    thread_index_root("m1@x.example", datetime(2026, 3, 2, tzinfo=UTC)) + bytes(5)
).decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"From: a@b\r\nThread-Index: {VALUE}\r\nSubject: x\r\n\r\nbody\r\n", VALUE),
        (f"From: a@b\nthread-index :\n {VALUE[:10]}\n\t{VALUE[10:]}\nSubject: x\n\nb\n", VALUE),
        (f"Thread-Index: {VALUE}\r\nThread-Index: AQ==\r\n\r\n", VALUE),
        (f"From: a@b\r\n\r\nThread-Index: {VALUE}\r\n", ""),  # in the body
        (f"X-Thread-Index: {VALUE}\r\n\r\n", ""),
        ("Thread-Index: not base64 at all!\r\n\r\n", ""),
        (f"\r\nThread-Index: {VALUE}\r\n", ""),  # empty header block
        ("", ""),
    ],
)
def test_thread_index_in_headers(raw: str, expected: str) -> None:
    assert thread_index_in_headers(raw.encode()) == expected
