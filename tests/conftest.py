"""Shared pytest fixtures. Each block is owned by one area; append, don't reorder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from servers.dovecot import DovecotFactory, DovecotServer, dovecot_available
from servers.postgres import PostgresServer, postgres_available

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


# ---------------------------------------------------------------------------
# Databases -- every test taking ``db_url`` runs on SQLite and on PostgreSQL.
#
# PostgreSQL is a private server started once per session in a temp dir
# (tests/servers/postgres.py); each test gets a fresh database. Without the
# server binaries the PostgreSQL half skips with the reason, except under
# INBOXD_REQUIRE_SERVERS=1 (CI), where it fails.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    reason = postgres_available()
    if reason is not None:
        if os.environ.get("INBOXD_REQUIRE_SERVERS") == "1":
            pytest.fail(f"INBOXD_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind (the schema is the test's to create)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inboxd.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


# --- end of database fixtures ------------------------------------------------
