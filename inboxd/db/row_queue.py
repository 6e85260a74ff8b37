"""The life of a side-effect row, shared by the mail outbox and the Slack notices.

``queued`` -> (claimed under a lease) ``sending`` -> ``sent`` | ``queued`` again
(backoff) | ``failed``. Each function takes the table it works on; the
per-queue modules (``outbox_queries``, ``slack_queries``) add what differs:
what a row carries, how it is enqueued and claimed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session

DB = Session | Connection

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"


def rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def utc(value: datetime) -> datetime:
    """Aware UTC, whichever way the driver hands a stored time back (or we get one)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def mark_sent(db: DB, table: Table, row_id: int, *, now: datetime, note: str = "") -> None:
    db.execute(
        update(table)
        .where(table.c.id == row_id)
        .values(status=SENT, sent_at=utc(now), last_error=note[:2000])
    )


def reschedule(
    db: DB,
    table: Table,
    row_id: int,
    *,
    next_attempt_at: datetime,
    error: str,
    **extra: Any,
) -> None:
    values = {"status": QUEUED, "next_attempt_at": utc(next_attempt_at), "last_error": error[:2000]}
    db.execute(update(table).where(table.c.id == row_id).values(**values, **extra))


def mark_failed(db: DB, table: Table, row_id: int, *, error: str) -> None:
    db.execute(
        update(table).where(table.c.id == row_id).values(status=FAILED, last_error=error[:2000])
    )


def release_stale(db: DB, table: Table, *, now: datetime) -> int:
    """Rows left ``sending`` by a dead process become due now (daemon start)."""
    result = db.execute(
        update(table)
        .where(table.c.status == SENDING)
        .values(status=QUEUED, next_attempt_at=utc(now))
    )
    return rowcount(result)


def retry_now(db: DB, table: Table, row_id: int, *, now: datetime) -> bool:
    """A failed or queued row is due now (the CLI's ``retry ID``)."""
    result = db.execute(
        update(table)
        .where(table.c.id == row_id, table.c.status.in_((FAILED, QUEUED)))
        .values(status=QUEUED, next_attempt_at=utc(now))
    )
    return rowcount(result) > 0


def next_due(db: DB, table: Table) -> datetime | None:
    """When the earliest queued row is due (a drain can sleep until then)."""
    value = db.execute(
        select(func.min(table.c.next_attempt_at)).where(table.c.status.in_((QUEUED, SENDING)))
    ).scalar()
    return utc(value) if value is not None else None


def counts(db: DB, table: Table) -> dict[str, int]:
    rows = db.execute(select(table.c.status, func.count()).group_by(table.c.status)).all()
    return {status: int(n) for status, n in rows}
