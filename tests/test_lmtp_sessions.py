"""Concurrent LMTP sessions are capped, so their DATA buffers bound the memory.

Issue 15, "Poison mail stalls a mailbox": each session may hold a whole mail
(up to the size limit, several copies while it is stored), and sessions were
unbounded. Over ``max_sessions`` a new connection is answered 421 (the MTA
retries later); a closed session frees its place.
"""

from __future__ import annotations

import smtplib
import socket
import time

import pytest

from inboxd.ingest.lmtp import InboundController, InboundHandler
from inboxd.ingest.pipeline import Outcome, Source

MAILBOXES = {"support@help.example": "support"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored(raw: bytes, source: Source) -> Outcome:
    return Outcome("stored", 1, 1)


@pytest.mark.timeout(60)
def test_sessions_over_the_cap_are_told_to_come_back_later() -> None:
    handler = InboundHandler(MAILBOXES, stored, lmtp=True)
    port = free_port()
    controller = InboundController(handler, "127.0.0.1", port, 1024 * 1024, max_sessions=2)
    controller.start()
    open_ones: list[smtplib.LMTP] = []
    try:
        for _ in range(2):
            client = smtplib.LMTP("127.0.0.1", port, timeout=10)
            open_ones.append(client)
            assert client.noop()[0] == 250
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.LMTP("127.0.0.1", port, timeout=10)
        assert refused.value.smtp_code == 421
        open_ones.pop().quit()
        for _attempt in range(50):  # the server notices the QUIT within a few polls
            try:
                again = smtplib.LMTP("127.0.0.1", port, timeout=10)
            except smtplib.SMTPConnectError:
                time.sleep(0.05)
                continue
            open_ones.append(again)
            break
        assert len(open_ones) == 2 and open_ones[-1].noop()[0] == 250
    finally:
        for client in open_ones:
            client.close()
        controller.stop()
