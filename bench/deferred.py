"""Deferred writes on PostgreSQL: the client's cost of one write in psycopg's pipeline.

Runs ``rounds`` times, on a private server (tests/servers/postgres.py), N
single-row INSERTs of an event row inside one pipeline with a read after every
``--every`` writes (an ingest batch waits about once per mail, a few writes
apart), each way in turn:

(a) baseline: a new driver cursor for every write (what ``db.deferred.cursor``
    handed out before), then ``execute``;
(b) ``db.fastexec.Prepared.write``: the pipeline's one write cursor.

Prints microseconds per write (wall and process CPU) for each, side by side.
Usage: python bench/deferred.py [--writes 20000] [--every 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers.postgres import PostgresServer  # noqa: E402
from sqlalchemy import bindparam  # noqa: E402
from sqlalchemy import select as sa_select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from inboxd.db import deferred, tickets  # noqa: E402
from inboxd.db.engine import make_engine, upgrade  # noqa: E402
from inboxd.db.fastexec import Prepared, PreparedQuery  # noqa: E402
from inboxd.db.tables import Event, Ticket  # noqa: E402

_EVENT = Event.__table__  # type: ignore[attr-defined]
_INSERT = Prepared(lambda _d: _EVENT.insert())
_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_READ = PreparedQuery(
    lambda _n: sa_select(_TICKET.c.status).where(_TICKET.c.id == bindparam("tid"))
)


def _row(ticket_id: int, n: int) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "at": datetime.now(UTC), "actor": "system", "kind": "note",
            "data": {"n": n}}  # fmt: skip


def _timed(
    session: Session, ticket_id: int, writes: int, every: int, fresh_cursor: bool
) -> tuple[float, float]:
    conn = session.connection()
    rows = [_row(ticket_id, n) for n in range(writes)]
    wall, cpu = time.perf_counter(), time.process_time()
    for n, row in enumerate(rows, 1):
        if n % every == 0:
            _READ.all(conn, {"tid": ticket_id})
        if fresh_cursor:  # the baseline: the same statement and parameters, a new cursor
            compiled = _INSERT._compiled(conn, tuple(sorted(row)))
            deferred.cursor(conn)  # the pipeline, opened once
            driver: Any = conn.connection.driver_connection
            driver.cursor().execute(compiled.sql, _INSERT._params(compiled, row))
        else:
            _INSERT.write(conn, row)
    deferred.settle(conn)
    return (time.perf_counter() - wall) / writes * 1e6, (time.process_time() - cpu) / writes * 1e6


WAYS = (("(a) a new cursor per write", True), ("(b) Prepared.write", False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=20000)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = PostgresServer().start()
    try:
        engine = make_engine(server.create_database())
        upgrade(engine)
        with Session(engine) as session, session.begin():
            ticket_id = tickets.create(
                session, subject="bench", normalized_subject="bench", requester="",
                requester_name="", mailbox="", now=datetime.now(UTC), source="bench",
                actor="system",
            ).id  # fmt: skip
        for r in range(1, args.rounds + 1):
            for label, fresh in WAYS:
                with Session(engine) as session, session.begin():
                    wall, cpu = _timed(session, ticket_id, args.writes, args.every, fresh)
                print(f"round {r}: {label:28s} {wall:6.1f} us/write wall, {cpu:6.1f} us CPU")
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
