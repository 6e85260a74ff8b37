"""The counts the loop caps decide on, on SQLite and PostgreSQL: acks per domain and
in all (outbox), new tickets per sender and per domain; LIKE wildcards in a domain
are literal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection

from inboxd.db import behind, tickets
from inboxd.db import outbox_queries as q
from inboxd.db.engine import make_engine, upgrade

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR_AGO = T0 - timedelta(hours=1)


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as connection:
        yield connection
    engine.dispose()


def ack(conn: Connection, rcpt: str, at: datetime, kind: str = "ack") -> None:
    q.enqueue(
        conn,
        ticket_id=None,
        kind=kind,
        message_id=f"{rcpt}-{at.isoformat()}-{kind}",
        mail_from="support@help.example",
        rcpts=[rcpt],
        raw=b"x",
        now=at,
    )


def ticket(conn: Connection, requester: str, at: datetime) -> None:
    tickets.create(
        conn,
        subject="s",
        normalized_subject="s",
        requester=requester,
        requester_name="",
        mailbox="support",
        now=at,
        source="test",
        actor="system",
    )


def test_acks_per_domain_and_in_all(conn: Connection) -> None:
    ack(conn, "a@x_y.example", T0)
    ack(conn, "B@X_Y.example", T0 - timedelta(minutes=59))
    ack(conn, "c@xzy.example", T0)  # "_" must not match "z"
    ack(conn, "d@x_y.example", T0 - timedelta(minutes=61))  # older than the hour
    ack(conn, "e@x_y.example", T0, kind="notify")  # not an ack
    ack(conn, "f@sub.x_y.example", T0)  # another domain
    assert q.count_kind(conn, kind="ack", since=HOUR_AGO, domain="X_Y.example") == 2
    assert q.count_kind(conn, kind="ack", since=HOUR_AGO, domain="%") == 0
    assert q.count_kind(conn, kind="ack", since=HOUR_AGO) == 4


def test_new_tickets_per_sender_and_domain(conn: Connection) -> None:
    ticket(conn, "a@flood.example", T0 - timedelta(hours=2))  # older than the hour
    ticket(conn, "a@flood.example", T0 - timedelta(minutes=30))
    ticket(conn, "a@flood.example", T0)
    ticket(conn, "b@flood.example", T0)
    ticket(conn, "", T0)  # a held ticket: nobody's
    ticket(conn, "c@floodXexample", T0)
    since = HOUR_AGO
    assert tickets.count_created(conn, since=since, requester="a@flood.example") == 2
    assert tickets.count_created(conn, since=since, domain="flood.example") == 3
    assert tickets.count_created(conn, since=since, domain="flood_example") == 0
    assert tickets.newest_open_ticket(conn, "a@flood.example") == 3
    assert tickets.newest_open_ticket(conn, "z@flood.example") is None



@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    """The SQL run on a SQLite ``conn`` inside (the driver's trace: the hot path's
    queries go to the driver's cursor); stays empty on PostgreSQL."""
    ran: list[str] = []
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        driver.set_trace_callback(ran.append)
    try:
        yield ran
    finally:
        if conn.dialect.name == "sqlite":
            driver.set_trace_callback(None)


def test_a_batch_reads_the_senders_ticket_counts_once_and_counts_as_the_query_does(
    conn: Connection,
) -> None:
    for at in (T0 - timedelta(hours=2), HOUR_AGO, T0 - timedelta(minutes=30)):
        ticket(conn, "a@flood.example", at)  # HOUR_AGO exactly: inside the window
    ticket(conn, "b@flood.example", T0 - timedelta(minutes=5))
    expected = {
        who: tickets.count_created(conn, since=HOUR_AGO, requester=who)
        for who in ("a@flood.example", "b@flood.example", "c@flood.example")
    }
    assert expected == {"a@flood.example": 2, "b@flood.example": 1, "c@flood.example": 0}
    with behind.batch(conn):
        with statements(conn) as ran:
            tickets.prefetch_created(conn, list(expected), since=HOUR_AGO)
            for who, count in expected.items():
                assert tickets.count_created(conn, since=HOUR_AGO, requester=who) == count
        assert len(ran) == (1 if conn.dialect.name == "sqlite" else 0)
        later = T0 + timedelta(minutes=1)  # a later mail's window: 08:00 is out, 08:30 in
        since = later - timedelta(hours=1)
        assert tickets.count_created(conn, since=since, requester="a@flood.example") == 1
        ticket(conn, "c@flood.example", T0)  # opened by the batch: counted
        assert tickets.count_created(conn, since=HOUR_AGO, requester="c@flood.example") == 1
        # a window before the one read (a clock stepped back) asks the database
        earlier = HOUR_AGO - timedelta(hours=2)
        assert tickets.count_created(conn, since=earlier, requester="a@flood.example") == 3
        # a key nobody read asks the database too
        assert tickets.count_created(conn, since=HOUR_AGO, requester="d@flood.example") == 0
        behind.drop(behind.mark())  # a mail rolled back: the memo is gone, SQL answers
        assert tickets.count_created(conn, since=HOUR_AGO, requester="c@flood.example") == 1


def test_a_batch_reads_the_recipients_ack_counts_once_and_adds_its_own_held_acks(
    conn: Connection,
) -> None:
    ack(conn, "a@x.example", T0 - timedelta(minutes=10))
    ack(conn, "A@x.example", T0 - timedelta(minutes=20))  # the key is case-blind
    ack(conn, "a@x.example", T0 - timedelta(minutes=70))  # out of the hour
    ack(conn, "a@x.example", T0, kind="notify")  # not an ack
    with behind.batch(conn):
        rcpts = ["a@X.example", "b@x.example"]
        with statements(conn) as ran:
            q.prefetch_to_recipients(conn, kind="ack", rcpts=rcpts, since=HOUR_AGO)
            assert q.count_to_recipient(conn, kind="ack", rcpt="a@x.example", since=HOUR_AGO) == 2
            assert q.count_to_recipient(conn, kind="ack", rcpt="b@x.example", since=HOUR_AGO) == 0
        assert len(ran) == (1 if conn.dialect.name == "sqlite" else 0)
        q.enqueue_held(
            conn,
            ticket_id=None,
            kind="ack",
            message_id="held-1",
            mail_from="",
            rcpts=["b@x.example"],
            intent="{}",
            now=T0,
        )
        assert q.count_to_recipient(conn, kind="ack", rcpt="b@x.example", since=HOUR_AGO) == 1
        # a kind nobody read asks the database
        assert q.count_to_recipient(conn, kind="notify", rcpt="a@x.example", since=HOUR_AGO) == 1
