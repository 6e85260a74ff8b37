"""Daemons claiming one queue at once take different rows and never wait on each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from servers.postgres import PostgresServer
from sqlalchemy import text

from inboxd.db import outbox_queries as q
from inboxd.db.engine import make_engine, upgrade

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_concurrent_claims_on_postgresql_skip_each_others_rows(postgres: PostgresServer) -> None:
    engine = make_engine(postgres.create_database())
    upgrade(engine)
    with engine.begin() as conn:
        for n in range(10):
            q.enqueue(
                conn,
                ticket_id=None,
                kind="ack",
                message_id=f"m{n}@x",
                mail_from="",
                rcpts=[f"r{n}@x.example"],
                raw=b"x",
                now=T0,
            )
    lease = T0 + timedelta(minutes=10)
    first = engine.connect()
    second = engine.connect()
    try:
        first.begin()
        taken = q.claim(first, now=T0, lease_until=lease, limit=6)
        second.begin()
        # without SKIP LOCKED this claim would wait for the first transaction
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        other = q.claim(second, now=T0, lease_until=lease, limit=6)
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert len(taken) == 6 and len(other) == 4
    assert {m.id for m in taken}.isdisjoint({m.id for m in other})
    engine.dispose()
