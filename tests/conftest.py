"""Shared pytest fixtures. Each block is owned by one area; append, don't reorder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count

import pytest
from servers.dovecot import DovecotFactory, DovecotServer, dovecot_available

# ---------------------------------------------------------------------------
# Dovecot (real IMAP server) fixtures -- owner: IMAP fetcher
#
# Skip policy: without Dovecot installed, tests that need it are skipped with
# the reason, except when INBOXD_REQUIRE_SERVERS=1 (set by CI): then they fail.
# Mark such tests ``@pytest.mark.server``.
# ---------------------------------------------------------------------------


def require_dovecot() -> None:
    reason = dovecot_available()
    if reason is None:
        return
    if os.environ.get("INBOXD_REQUIRE_SERVERS") == "1":
        pytest.fail(f"INBOXD_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One started Dovecot for the session; give each test its own user (``imap_user``)."""
    require_dovecot()
    server = DovecotServer().start()
    try:
        yield server
    finally:
        server.stop()


_user_seq = count(1)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> str:
    """A fresh user on the shared server (password = user name), so tests never share mail."""
    name = f"user{next(_user_seq)}"
    dovecot.add_user(name, name)
    return name


@pytest.fixture
def make_dovecot() -> Iterator[DovecotFactory]:
    """Factory for private servers a test may crash, restart or run with TLS
    (``make_dovecot(tls=True)``); all are stopped at teardown."""
    require_dovecot()
    servers: list[DovecotServer] = []

    def make(*, tls: bool = False) -> DovecotServer:
        server = DovecotServer(tls=tls)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# --- end of Dovecot fixtures ------------------------------------------------
