"""Deferred writes (db.deferred): on PostgreSQL a write whose answer nobody reads
waits in the connection's pipeline; whatever needs the server's state reads it
first, and a failed write fails where it would have failed before: inside its
savepoint, or before the commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, bindparam, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.fastexec import Prepared, PreparedQuery
from inboxd.db.sql import savepoint
from inboxd.db.tables import Event

_EVENT = Event.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = Prepared(lambda _d: _EVENT.insert())
_COUNT = PreparedQuery(lambda _n: sa_select(func.count()).select_from(_EVENT))


def _new_ticket(db: Session) -> int:
    return tickets.create(
        db,
        subject="s",
        normalized_subject="s",
        requester="",
        requester_name="",
        mailbox="",
        now=datetime.now(UTC),
        source="test",
        actor="system",
    ).id


def _event(ticket_id: int, n: int) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "at": datetime.now(UTC), "actor": "system", "kind": "note",
            "data": {"n": n}}  # fmt: skip


def _in_pipeline(conn: Connection) -> bool:
    driver: Any = conn.connection.driver_connection
    return conn.dialect.name == "postgresql" and (
        driver.pgconn.pipeline_status == psycopg.pq.PipelineStatus.ON
    )


def _errors(engine: Engine) -> tuple[type[BaseException], ...]:
    driver = engine.dialect.dbapi
    assert driver is not None
    return (driver.IntegrityError, IntegrityError)


def test_deferred_writes_are_read_back_by_every_kind_of_read(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        conn = s.connection()
        tid = _new_ticket(s)
        _INSERT_EVENT.write(conn, _event(tid, 1))
        # on PostgreSQL the write waits in the pipeline; a query through fastexec reads it
        assert _in_pipeline(conn) == (conn.dialect.name == "postgresql")
        before = _COUNT.all(conn, {})[0][0]
        _INSERT_EVENT.run_many(conn, [_event(tid, 2), _event(tid, 3)])
        # a statement SQLAlchemy runs ends the pipeline first, and sees every write
        assert s.exec(select(Event).where(Event.ticket_id == tid)).all()[-1].data == {"n": 3}
        assert not _in_pipeline(conn)
        assert before + 2 == _COUNT.all(conn, {})[0][0]
        _INSERT_EVENT.write(conn, _event(tid, 4))
    with Session(engine) as s:  # the commit ended the pipeline: the last write is kept
        assert s.exec(select(Event).where(Event.ticket_id == tid)).all()[-1].data == {"n": 4}
    engine.dispose()


def test_a_deferred_write_that_fails_fails_inside_its_savepoint(db_url: str) -> None:
    """A mail's savepoint: its failing write (a foreign key) raises inside it, so
    only that mail's writes go; the mails before and after it stay."""
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        conn = s.connection()
        tid = _new_ticket(s)
        with savepoint(conn):
            _INSERT_EVENT.write(conn, _event(tid, 1))
        with pytest.raises(_errors(engine)), savepoint(conn):
            _INSERT_EVENT.write(conn, _event(tid, 2))
            _INSERT_EVENT.write(conn, _event(tid + 1000, 3))
            _INSERT_EVENT.write(conn, _event(tid, 4))
        with savepoint(conn):
            _INSERT_EVENT.write(conn, _event(tid, 5))
    with Session(engine) as s:
        rows = s.exec(select(Event).where(Event.ticket_id == tid, Event.kind == "note")).all()
        assert [e.data for e in rows] == [{"n": 1}, {"n": 5}]
    engine.dispose()


def test_a_deferred_write_that_fails_stops_the_commit(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        tid = _new_ticket(s)
    with pytest.raises(_errors(engine)), engine.begin() as conn:
        _INSERT_EVENT.write(conn, _event(tid, 1))
        _INSERT_EVENT.write(conn, _event(tid + 1000, 2))
    with engine.connect() as conn:  # nothing of it was committed; the pool's connection works
        n = conn.execute(text("SELECT count(*) FROM event WHERE kind = 'note'")).scalar_one()
        assert n == 0
    engine.dispose()


def test_queries_sent_together_each_read_their_own_rows(db_url: str) -> None:
    """``send`` twice, then read: on PostgreSQL both wait in the pipeline and one
    sync answers them (a ticket's snapshot is its row and its people)."""
    table = Event.__table__  # type: ignore[attr-defined]
    by_kind = PreparedQuery(
        lambda _n: sa_select(table.c.data).where(table.c.kind == bindparam("k"))
    )
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        conn = s.connection()
        tid = _new_ticket(s)
        _INSERT_EVENT.run_many(conn, [_event(tid, 1), {**_event(tid, 2), "kind": "other"}])
        notes = by_kind.send(conn, {"k": "note"})
        others = by_kind.send(conn, {"k": "other"})
        assert _in_pipeline(conn) == (conn.dialect.name == "postgresql")
        assert others() == [({"n": 2},)] and notes() == [({"n": 1},)]
    engine.dispose()
