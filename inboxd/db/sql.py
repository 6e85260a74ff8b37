"""Small SQL helpers every aggregate module uses: connections, IN lists, upserts, savepoints.

Ingest passes a Core ``Connection`` and runs statements built once at import
with bound parameters (``db.fastexec``); the CLI's reads take a Session.
Both are accepted wherever a function only runs statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, any_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from inboxd.db import deferred
from inboxd.db.fastexec import Prepared

DB = Session | Connection


def conn_of(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC, whichever way the driver hands a stored time back."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


ARRAY_SHAPE = -1  # the shape of a query whose list is one array (PostgreSQL)


def in_list(n: int) -> list[Any]:
    """``n`` bound parameters for an IN (...) of a prepared query's shape ``n``."""
    if n < 0:
        raise ValueError("an array shape: build the query with one_of")
    return [bindparam(f"v{i}") for i in range(n)]


def one_of(column: Any, shape: int) -> Any:
    """``column`` is one of the values of a prepared query of ``shape`` (``in_values``):
    an IN list, or on PostgreSQL ``= ANY`` of one array parameter. A statement with
    hundreds of parameters is parsed again by psycopg each time it runs (its cache
    takes statements of up to 50); the array's is one statement whatever the count."""
    if shape == ARRAY_SHAPE:
        return column == any_(cast(bindparam("vs", type_=ARRAY(column.type)), ARRAY(column.type)))
    return column.in_(in_list(shape))


def in_shape(n: int) -> int:
    """The IN list length that ``n`` values are sent as: a power of two past 8, so
    a query whose lists vary from batch to batch compiles a handful of times, not
    once for every length it meets."""
    return n if n <= 8 else 1 << (n - 1).bit_length()


IN_CHUNK = 500  # values per IN list: SQLite's bound-parameter limit stays far away


def in_chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in slices of ``IN_CHUNK``: one query each for a batch's look-ups."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def in_values(values: Sequence[Any], conn: Connection) -> tuple[dict[str, Any], int]:
    """The parameters of a query built with ``one_of(column, shape)`` for ``values``,
    and that shape. On PostgreSQL one array; else ``in_list(shape)``, padded with
    its last value (IN is a set, a repeat changes nothing)."""
    if conn.dialect.name == "postgresql":
        return {"vs": list(values)}, ARRAY_SHAPE
    shape = in_shape(len(values))
    params = {f"v{i}": v for i, v in enumerate(values)}
    if values:
        params.update({f"v{i}": values[-1] for i in range(len(values), shape)})
    return params, shape


_IGNORE: dict[str, Prepared] = {}


def _upsert_ignore(table: Any) -> Prepared:
    def make(dialect: str) -> Any:
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    return Prepared(make)


def insert_ignore(db: DB, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if not rows:
        return
    prepared = _IGNORE.get(model.__tablename__)
    if prepared is None:
        prepared = _IGNORE[model.__tablename__] = _upsert_ignore(model.__table__)
    if len(rows) == 1:
        prepared.write(conn_of(db), rows[0])
    else:
        prepared.run_many(conn_of(db), rows)


def add_rows(db: DB, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(model.__table__.insert(), list(rows))


def count_rows(db: DB, model: Any) -> int:
    return int(db.execute(select(func.count()).select_from(model)).scalar_one())


@contextmanager
def savepoint(conn: Connection, name: str = "mail") -> Iterator[None]:
    """A plain SQL savepoint on the driver cursor, far cheaper than ``begin_nested()``.

    Used per mail inside a batch transaction so one failing mail rolls back
    alone. ORM objects are not used inside it, so no Session state goes stale.
    """
    driver: Any = conn.connection.driver_connection
    deferred.flush(driver)
    cursor = driver.cursor()
    cursor.execute(f"SAVEPOINT {name}")
    try:
        yield
        deferred.flush(driver)  # a deferred write that failed fails inside, as any other
    except BaseException:
        deferred.discard(driver)
        cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
        cursor.execute(f"RELEASE SAVEPOINT {name}")
        raise
    cursor.execute(f"RELEASE SAVEPOINT {name}")
