"""The counts the loop caps decide on, on SQLite and PostgreSQL: acks per domain and
in all (outbox), new tickets per sender and per domain; LIKE wildcards in a domain
are literal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from inboxd.db import outbox_queries as q
from inboxd.db import tickets
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
