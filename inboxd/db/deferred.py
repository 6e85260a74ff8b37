"""Writes sent without waiting, on PostgreSQL, until the connection next needs an answer.

A mail's ticket updates, participants, thread keys and events are writes whose
answers nobody reads; each was a round trip to the server. ``cursor(conn)``
puts the connection in psycopg's pipeline mode (once) and returns a cursor to
write on: the statements go out without waiting. The pipeline ends, and every
answer is read (the first error raised), before anything that needs the server's
answer or state: a statement SQLAlchemy runs, a savepoint's release, a commit
(``watch`` hooks these on the engine); a read through ``fastexec`` inside it
syncs on its own. A rollback ends it throwing the answers away. On SQLite
nothing is deferred: ``cursor`` is the plain cursor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

# id(driver connection) -> its open pipeline and the one cursor its writes go on;
# emptied by flush and discard (the pool discards before it resets a connection it
# takes back)
_OPEN: dict[int, tuple[Any, Any]] = {}


def cursor(conn: Connection) -> Any:
    """A cursor on ``conn``'s driver connection whose writes may wait for the next
    sync. On PostgreSQL every write of a pipeline goes on the same cursor: nobody
    reads their results, and making a cursor is a good part of a write's cost on
    the client (``bench/deferred.py`` prints both)."""
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name != "postgresql":
        return driver.cursor()
    return _open(driver)[1]


def reader(conn: Connection) -> Any:
    """A cursor of its own for a query whose rows are read later (``fastexec``'s
    ``send``), in the pipeline on PostgreSQL like the writes before it."""
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        _open(driver)
    return driver.cursor()


def _open(driver: Any) -> tuple[Any, Any]:
    found = _OPEN.get(id(driver))
    if found is None:
        pipeline = driver.pipeline()
        pipeline.__enter__()
        found = _OPEN[id(driver)] = (pipeline, driver.cursor())
    return found


def flush(driver: Any) -> None:
    """End the deferred writes of a driver connection: wait for their answers,
    raising the first error among them."""
    found = _OPEN.pop(id(driver), None) if _OPEN else None
    if found is not None:
        found[0].__exit__(None, None, None)


def settle(conn: Connection) -> None:
    """``flush`` for a SQLAlchemy connection: its waiting writes answered now."""
    flush(conn.connection.driver_connection)


def discard(driver: Any) -> None:
    """End the deferred writes without caring how they went (a rollback follows)."""
    found = _OPEN.pop(id(driver), None) if _OPEN else None
    if found is not None:
        abandoned = _Abandoned()
        found[0].__exit__(_Abandoned, abandoned, None)


class _Abandoned(Exception):
    """Thrown into the pipeline's block when its answers are thrown away."""


def watch(engine: Engine) -> None:
    """Flush before each statement SQLAlchemy runs and each commit; discard before
    a rollback, and before the pool resets a connection it takes back."""

    def before_statement(conn: Connection, *_args: Any) -> None:
        settle(conn)

    def before_rollback(conn: Connection) -> None:
        discard(conn.connection.driver_connection)

    def before_reset(dbapi_conn: Any, *_args: Any) -> None:
        discard(dbapi_conn)

    def closed(dbapi_conn: Any, *_args: Any) -> None:
        _OPEN.pop(id(dbapi_conn), None)  # its pipeline went with it

    event.listen(engine, "before_cursor_execute", before_statement)
    event.listen(engine, "commit", settle)
    event.listen(engine, "rollback", before_rollback)
    event.listen(engine, "reset", before_reset)
    for gone in ("close", "close_detached", "invalidate"):
        event.listen(engine, gone, closed)
