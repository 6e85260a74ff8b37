"""Statements compiled once per dialect and run on the DB-API cursor.

Ingest writes about ten rows per mail. Through SQLAlchemy's execution
machinery each costs 35-70 us here even with a cached compiled form; run on
the driver's cursor with SQLAlchemy's own bind processors (so datetimes and
JSON are stored exactly as SQLAlchemy would store them) it costs about 10 us.
``PreparedQuery`` does the same for the few SELECTs on the hot path, applying
each result column's SQLAlchemy result processor (SQLite datetimes, JSON).
Both lean on SQLAlchemy's compiled form (``_bind_processors``,
``_result_columns``); tests round-trip every type we store through them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Connection, DateTime, bindparam, cast, func
from sqlalchemy import select as sa_select
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import TypeDecorator

from inboxd.db import deferred


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional order, None for named paramstyles
    processors: dict[str, Any]
    defaults: dict[str, Any]  # scalar column defaults for columns a row leaves out


class Prepared:
    """An INSERT compiled lazily for each (dialect, set of columns) it meets.

    ``make`` builds the statement for a dialect name, since ON CONFLICT and
    RETURNING constructs are dialect-specific.
    """

    def __init__(self, make: Callable[[str], Insert | Update]) -> None:
        self._make = make
        self._cache: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._unnest: dict[tuple[str, tuple[str, ...]], _Arrays | None] = {}

    def _compiled(self, conn: Connection, columns: tuple[str, ...]) -> _Compiled:
        dialect = conn.dialect
        key = (dialect.name, columns)
        found = self._cache.get(key)
        if found is None:
            stmt = self._make(dialect.name)
            compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
            processors = _memoized_datetimes(compiled)
            positional = compiled.positional and compiled.positiontup
            names = tuple(compiled.positiontup or ()) if positional else None
            table: Any = stmt.table
            defaults: dict[str, Any] = {}
            for name in names or compiled.binds:
                column = table.c.get(name)
                if name in columns or column is None:
                    continue
                default = column.default
                if default is not None and not default.is_scalar:
                    raise ValueError(f"{table.name}.{name}: only scalar defaults are supported")
                defaults[name] = default.arg if default is not None else None
            found = _Compiled(compiled.string, names, processors, defaults)
            self._cache[key] = found
        return found

    @staticmethod
    def _params(compiled: _Compiled, row: dict[str, Any]) -> Any:
        procs = compiled.processors
        if compiled.defaults:
            row = {**compiled.defaults, **row}
        if compiled.names is not None:
            return [procs[n](row[n]) if n in procs else row[n] for n in compiled.names]
        return {k: procs[k](v) if k in procs else v for k, v in row.items()}

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def run(self, conn: Connection, row: dict[str, Any]) -> Any:
        """Execute for one row; returns the cursor (fetch a RETURNING value from it)."""
        compiled = self._compiled(conn, tuple(sorted(row)))
        cursor = self._cursor(conn)
        cursor.execute(compiled.sql, self._params(compiled, row))
        return cursor

    def write(self, conn: Connection, row: dict[str, Any]) -> None:
        """Execute for one row whose answer nobody reads: on PostgreSQL it may wait
        in the connection's pipeline (``db.deferred``), its error raised later."""
        compiled = self._compiled(conn, tuple(sorted(row)))
        deferred.cursor(conn).execute(compiled.sql, self._params(compiled, row))

    def run_many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Execute for rows that all have the same keys (deferred, as ``write``).
        An INSERT on PostgreSQL goes as one statement whose columns are arrays
        (``unnest``): in psycopg's pipeline each row of an ``executemany`` is a
        statement of its own, with its client and server cost."""
        if not rows:
            return
        columns = tuple(sorted(rows[0]))
        compiled = self._compiled(conn, columns)
        if conn.dialect.name == "postgresql" and len(rows) > 1:
            arrays = self._arrays(conn, compiled, columns)
            if arrays is not None:
                self._run_arrays(conn, arrays, compiled, rows)
                return
        params = [self._params(compiled, r) for r in rows]
        deferred.cursor(conn).executemany(compiled.sql, params)

    def _arrays(
        self, conn: Connection, compiled: _Compiled, columns: tuple[str, ...]
    ) -> _Arrays | None:
        """The INSERT of these columns (and the defaulted ones) from one array per
        column, compiled once; None for a statement that is not an INSERT."""
        key = (conn.dialect.name, columns)
        if key in self._unnest:
            return self._unnest[key]
        stmt = self._make(conn.dialect.name)
        found = None
        if isinstance(stmt, Insert):
            table: Any = stmt.table
            names = (*columns, *(c for c in compiled.defaults if c not in columns))
            arrays = [
                func.unnest(
                    cast(bindparam(n, type_=ARRAY(table.c[n].type)), ARRAY(table.c[n].type))
                )
                for n in names
            ]
            many = stmt.from_select(list(names), sa_select(*arrays)).compile(dialect=conn.dialect)
            # an array goes through SQLAlchemy's processor only when its elements have one
            processors = {
                n: proc
                for n, proc in many._bind_processors.items()
                if table.c[n].type.bind_processor(conn.dialect) is not None
            }
            sql = many.string
            for n in names:  # binary arrays: psycopg's text form escapes each element
                sql = sql.replace(f"%({n})s", f"%({n})b")
            found = _Arrays(sql, names, processors)
        self._unnest[key] = found
        return found

    @staticmethod
    def _run_arrays(
        conn: Connection, arrays: _Arrays, compiled: _Compiled, rows: Sequence[dict[str, Any]]
    ) -> None:
        defaults = compiled.defaults
        params: dict[str, Any] = {}
        for name in arrays.names:
            values = (
                [r[name] for r in rows]
                if name not in defaults
                else [r.get(name, defaults[name]) for r in rows]
            )
            proc = arrays.processors.get(name)
            params[name] = proc(values) if proc is not None else values
        deferred.cursor(conn).execute(arrays.sql, params)


def _memoized_datetimes(compiled: Any) -> dict[str, Any]:
    """The statement's bind processors, those of datetimes through one memo per type.

    The rows one mail writes (its message, events, outbox rows, ticket) carry the
    same ``now`` object a dozen times, and a datetime's processors (UTC
    conversion, then SQLite's text form) cost more than the rest of a row's
    parameters. A datetime is immutable and every column of one type converts
    alike on one dialect, so all statements share the type's memo."""
    processors = dict(compiled._bind_processors)
    for name, proc in processors.items():
        bind = compiled.binds.get(name)
        kind = bind.type if bind is not None else None
        impl = kind.impl if isinstance(kind, TypeDecorator) else kind
        if isinstance(impl, DateTime):
            key = (compiled.dialect.name, repr(kind))
            processors[name] = _DATETIME_MEMOS.setdefault(key, _recent_values_memo(proc))
    return processors


def _recent_values_memo(proc: Callable[[Any], Any], size: int = 64) -> Callable[[Any], Any]:
    """``proc`` answering from a memo of the last ``size`` or so values it met (then it
    starts afresh). Equal datetimes are the same instant, converted alike."""
    memo: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        out = memo.get(value, memo)
        if out is memo:
            out = proc(value)
            if len(memo) >= size:
                memo.clear()
            memo[value] = out
        return out

    return process


# (dialect name, the type's repr) -> its processor with its recent values remembered
_DATETIME_MEMOS: dict[tuple[str, str], Callable[[Any], Any]] = {}


@dataclass(frozen=True)
class _Arrays:
    sql: str
    names: tuple[str, ...]
    processors: dict[str, Any]  # one per array: SQLAlchemy's, each element as its column


@dataclass(frozen=True)
class _CompiledQuery:
    sql: str
    names: tuple[str, ...] | None
    processors: dict[str, Any]
    results: tuple[Any, ...]  # one result processor (or None) per column


class PreparedQuery:
    """A SELECT built per (dialect, shape) by ``make(shape)``; ``shape`` is e.g.
    the number of values in an IN list, so each length compiles once."""

    def __init__(self, make: Callable[[int], Select[Any]]) -> None:
        self._make = make
        self._cache: dict[tuple[str, int], _CompiledQuery] = {}

    def _compiled(self, conn: Connection, shape: int) -> _CompiledQuery:
        dialect = conn.dialect
        key = (dialect.name, shape)
        found = self._cache.get(key)
        if found is None:
            compiled = self._make(shape).compile(dialect=dialect)
            positional = compiled.positional and compiled.positiontup
            names = tuple(compiled.positiontup or ()) if positional else None
            results = tuple(
                rc.type._cached_result_processor(dialect, None) for rc in compiled._result_columns
            )
            found = _CompiledQuery(compiled.string, names, _memoized_datetimes(compiled), results)
            self._cache[key] = found
        return found

    @staticmethod
    def _args(compiled: _CompiledQuery, params: dict[str, Any]) -> Any:
        procs = compiled.processors
        if compiled.names is not None:
            return [procs[n](params[n]) if n in procs else params[n] for n in compiled.names]
        return {k: procs[k](v) if k in procs else v for k, v in params.items()}

    def _run(self, conn: Connection, params: dict[str, Any], shape: int) -> tuple[Any, Any]:
        compiled = self._compiled(conn, shape)
        cursor = Prepared._cursor(conn)
        cursor.execute(compiled.sql, self._args(compiled, params))
        return cursor, compiled.results

    def all(
        self, conn: Connection, params: dict[str, Any], shape: int = 0
    ) -> list[tuple[Any, ...]]:
        cursor, results = self._run(conn, params, shape)
        return _processed(results, cursor.fetchall())

    def send(
        self, conn: Connection, params: dict[str, Any], shape: int = 0
    ) -> Callable[[], list[tuple[Any, ...]]]:
        """Send the query, read its rows later by calling the result: on PostgreSQL
        it goes into the connection's pipeline (``db.deferred``), so the queries
        sent before the first read are answered in one round trip."""
        compiled = self._compiled(conn, shape)
        cursor = deferred.reader(conn)
        cursor.execute(compiled.sql, self._args(compiled, params))
        return lambda: _processed(compiled.results, cursor.fetchall())

    def each(
        self, conn: Connection, params: dict[str, Any], shape: int = 0, size: int = 2000
    ) -> Iterator[tuple[Any, ...]]:
        """The rows in pages of ``size`` from the cursor (a report's thousands)."""
        cursor, results = self._run(conn, params, shape)
        while rows := cursor.fetchmany(size):
            yield from _processed(results, rows)


def _processed(results: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each column through its result processor; the rows as the driver gives them
    when no column has one (select ``type_coerce``d columns for that)."""
    if all(fn is None for fn in results):
        return rows
    return [
        tuple(fn(v) if fn is not None else v for fn, v in zip(results, row, strict=True))
        for row in rows
    ]
