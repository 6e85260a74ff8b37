"""Rows written through the DB-API fast path read back through the ORM unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from sqlmodel import Session, select

from inboxd.core.desk import Change
from inboxd.db import fastexec, messages, sql, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.fastexec import Prepared
from inboxd.db.sql import savepoint
from inboxd.db.tables import Event, ThreadKey, Ticket

_INSERT_EVENT = Prepared(lambda _d: Event.__table__.insert())  # type: ignore[attr-defined]


def _new(db: Session, now: datetime, subject: str = "") -> int:
    return tickets.create(
        db,
        subject=subject,
        normalized_subject=subject,
        requester="",
        requester_name="",
        mailbox="",
        now=now,
        source="test",
        actor="system",
    ).id


def test_fast_insert_and_query_round_trip_types(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    berlin = timezone(timedelta(hours=1))
    created = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=berlin)
    with Session(engine) as s, s.begin():
        tid = _new(s, created, "Grüße ✓")
        tagged = tickets.load(s, tid)
        assert tagged is not None
        tickets.save(s, Change(tagged, replace(tagged, tags=("vip", "ä"))))
        _INSERT_EVENT.run(
            s.connection(),
            {
                "ticket_id": tid,
                "at": created,
                "actor": "system",
                "kind": "test",
                "data": {"nested": {"x": [1, None]}},
            },
        )
        before = tickets.load(s, tid)
        assert before is not None and before.tags == ("vip", "ä")
        after = replace(before, priority="urgent", tags=("b",), assignee=None)
        tickets.save(s, Change(before, after))
        routing = tickets.load(s, tid)
        snaps = messages.ticket_snapshots(s, [tid, 999])
    assert routing is not None
    assert routing.tags == ("b",) and routing.priority == "urgent"
    assert routing.status == "new"  # scalar default filled in by the fast path
    assert set(snaps) == {tid}
    assert snaps[tid].status_changed_at == created.astimezone(UTC)
    with Session(engine) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        assert ticket.subject == "Grüße ✓" and ticket.vip is False
        assert ticket.created_at == created.astimezone(UTC)
        [created_event, event] = tickets.event_rows(s, tid)
        assert created_event.kind == "created"
        assert isinstance(event, Event) and event.data == {"nested": {"x": [1, None]}}
    engine.dispose()


def test_savepoint_rolls_back_only_its_own_writes(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        conn = s.connection()
        kept = _new(s, now)
        try:
            with savepoint(conn):
                _new(s, now)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    with Session(engine) as s:
        assert [t.id for t in tickets.list_rows(s)] == [kept]
    engine.dispose()


def test_in_lists_of_every_length_answer_exactly_and_compile_a_few_shapes(db_url: str) -> None:
    """A batch's IN lists vary in length; each length is sent padded to a power of
    two, so the query compiles for a few shapes and still matches only the values.
    On PostgreSQL the list is one array: one shape, a statement of a few parameters
    (psycopg parses a statement with more than 50 again each time it runs)."""
    from sqlalchemy import select as sa_select

    from inboxd.db.fastexec import PreparedQuery
    from inboxd.db.sql import ARRAY_SHAPE, in_values, one_of

    table = Ticket.__table__  # type: ignore[attr-defined]
    by_id = PreparedQuery(lambda n: sa_select(table.c.id).where(one_of(table.c.id, n)))
    by_subject = PreparedQuery(lambda n: sa_select(table.c.id).where(one_of(table.c.subject, n)))
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with Session(engine) as s, s.begin():
        ids = [_new(s, now, f"s{n}") for n in range(40)]
        conn = s.connection()
        for n in range(1, 41):
            wanted = ids[:n:2] + ids[n - 1 : n]  # a gap in the middle, a repeat at the end
            found = {row[0] for row in by_id.all(conn, *in_values(wanted, conn))}
            assert found == set(wanted)
        subjects = [f"s{n}" for n in range(0, 40, 3)] + ["nobody's"]
        found = {row[0] for row in by_subject.all(conn, *in_values(subjects, conn))}
        assert found == {ids[n] for n in range(0, 40, 3)}
        sql_of_many = by_id._compiled(conn, in_values(ids, conn)[1]).sql
        if engine.dialect.name == "postgresql":
            assert in_values([1, 2], conn) == ({"vs": [1, 2]}, ARRAY_SHAPE)
            assert len(by_id._cache) == 1 and sql_of_many.count("%(") == 1
        else:
            assert len(by_id._cache) <= 11  # 1..8, 16, 32, 64 (nothing per length past 8)
            assert in_values([], conn) == ({}, 0)
            assert in_values(list(range(9)), conn)[1] == 16
            assert in_values(list(range(9)), conn)[0]["v15"] == 8
    engine.dispose()


def test_many_rows_keep_their_order_and_values_in_few_statements(db_url: str) -> None:
    """300 event rows in one ``run_many``: each reads back exactly, in the order given
    (ids ascending, as the event log is read). On PostgreSQL they go as one INSERT of
    an array per column: fails without it."""
    engine = make_engine(db_url)
    upgrade(engine)
    berlin = timezone(timedelta(hours=1))
    at = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=berlin)
    many = Prepared(lambda _d: Event.__table__.insert())  # type: ignore[attr-defined]
    with Session(engine) as s, s.begin():
        tid = _new(s, at)
        rows = [
            {
                "ticket_id": tid,
                "at": at + timedelta(seconds=i),
                "actor": f"agent:{i}",
                "kind": "test",
                "data": {"n": i, "text": "ä" * (i % 3)},
            }
            for i in range(300)
        ]
        many.run_many(s.connection(), rows)
    with Session(engine) as s:
        _created, *events = tickets.event_rows(s, tid)
    assert [(e.actor, e.data) for e in events] == [(r["actor"], r["data"]) for r in rows]
    assert [e.at for e in events] == [r["at"].astimezone(UTC) for r in rows]
    assert [e.id for e in events] == sorted(e.id for e in events)
    as_arrays = [key for key, arrays in many._unnest.items() if arrays is not None]
    assert len(as_arrays) == (1 if engine.dialect.name == "postgresql" else 0)
    engine.dispose()


def test_many_rows_ignoring_conflicts_keep_the_first_of_repeated_keys(db_url: str) -> None:
    """ON CONFLICT DO NOTHING over many rows, some repeating a key of the same call or
    one stored before: the first stays, the rest are dropped, nothing fails."""
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        one, two = _new(s, now), _new(s, now)
        messages.add_thread_keys(s, one, "old@x", ())
        rows = [{"key": f"k{i % 5}@x", "ticket_id": one if i < 5 else two} for i in range(12)]
        rows.append({"key": "old@x", "ticket_id": two})
        sql.insert_ignore(s, ThreadKey, [{**r, "origin": "ref"} for r in rows])
    with Session(engine) as s:
        found = {k.key: k.ticket_id for k in s.exec(select(ThreadKey))}
    assert found == {**{f"k{i}@x": one for i in range(5)}, "old@x": one}
    engine.dispose()


def test_datetimes_convert_once_per_instant_and_each_reads_back_its_own(db_url: str) -> None:
    """One mail's rows bind the same ``now`` many times: each instant is converted
    once, and no row gets another's value, whichever order the values come in
    (equal instants in another zone included)."""
    engine = make_engine(db_url)
    upgrade(engine)
    a = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=UTC)
    b = a + timedelta(microseconds=1)
    a_in_berlin = a.astimezone(timezone(timedelta(hours=1)))
    ats = [a, b, a, b, b, a_in_berlin, a, datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=UTC)]
    insert = Prepared(lambda _d: Event.__table__.insert())  # type: ignore[attr-defined]
    with Session(engine) as s, s.begin():
        tid = _new(s, a)
        compiled = insert._compiled(s.connection(), ("actor", "at", "data", "kind", "ticket_id"))
        converted: list[datetime] = []
        real = fastexec._DATETIME_MEMOS[(engine.dialect.name, "UTCDateTime()")]
        fastexec._DATETIME_MEMOS.clear()  # a fresh memo, so its conversions are counted
        try:
            counting = fastexec._recent_values_memo(lambda v: converted.append(v) or real(v))
            compiled.processors["at"] = counting
            rows = [
                {"ticket_id": tid, "at": at, "actor": "t", "kind": f"k{n}", "data": {}}
                for n, at in enumerate(ats)
            ]
            for row in rows:
                insert.run(s.connection(), row)
        finally:
            fastexec._DATETIME_MEMOS.clear()
            insert._cache.clear()
        stored = {e.kind: e.at for e in tickets.event_rows(s, tid) if e.kind.startswith("k")}
    assert stored == {f"k{n}": at.astimezone(UTC) for n, at in enumerate(ats)}
    assert converted == [a, b]  # one conversion per instant
    engine.dispose()
