"""One queue of side-effect rows (the mail outbox, the Slack notices): claim, settle, retry.

Row life: ``queued`` -> (claim) ``sending`` -> ``sent`` | ``queued`` again (retry
later) | ``failed``. A claim is a lease: it sets ``next_attempt_at`` to the end of
the lease, so a row left in ``sending`` by a process that died is claimable again
once its lease is over (or at once via ``release_stale``, at daemon start). The
claim is a conditional UPDATE (status and time unchanged since read), so two
drainers never both own a row, on SQLite and PostgreSQL alike.

A ``RowQueue`` is made of a table and the frozen dataclass a claimed row
becomes (its fields name the columns read; ``convert`` fixes a value's type).
The per-queue modules (``outbox_queries``, ``slack_queries``) add what differs:
what a row carries, enqueue, lookups and listings. Every method runs in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, func, select, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session

from inboxd.db.sql import conn_of

DB = Session | Connection

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"


class QueuedRow(Protocol):
    """What a drain needs of any claimed row."""

    @property
    def id(self) -> int: ...
    @property
    def attempts(self) -> int: ...  # including the attempt this claim is for
    @property
    def created_at(self) -> datetime: ...  # aware UTC; retry_for counts from it


R = TypeVar("R", bound=QueuedRow)


def rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def utc(value: datetime) -> datetime:
    """Aware UTC, whichever way the driver hands a stored time back (or we get one)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


_STANDING = ("status", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at")


def _same(value: Any) -> object:
    return value


def _error(text: str) -> str:
    return text[:2000]


class RowQueue(Generic[R]):
    """The queue over ``table``; ``claim`` returns ``row_type`` values (times in UTC)."""

    def __init__(self, table: Table, row_type: type[R], **convert: Callable[[Any], object]) -> None:
        self.table = table
        self.row_type = row_type
        self._names = [f.name for f in fields(cast(Any, row_type))]
        self._convert: dict[str, Callable[[Any], object]] = {"created_at": utc, **convert}

    def _decode(self, row: RowMapping) -> R:
        return self.row_type(
            **{name: self._convert.get(name, _same)(row[name]) for name in self._names}
        )

    def get(self, db: DB, row_id: int) -> R | None:
        """Row ``row_id`` as the claim would hand it out (whatever its status)."""
        columns = [self.table.c[name] for name in self._names if name != "attempts"]
        row = (
            db.execute(
                select(*columns, (self.table.c.attempts + 1).label("attempts")).where(
                    self.table.c.id == row_id
                )
            )
            .mappings()
            .first()
        )
        return self._decode(row) if row is not None else None

    @staticmethod
    def fresh(*, now: datetime, not_before: datetime | None = None) -> dict[str, Any]:
        """The queue's columns of a new row: queued, due at ``not_before`` (or now)."""
        return {
            "status": QUEUED,
            "attempts": 0,
            "next_attempt_at": utc(not_before or now),
            "last_error": "",
            "created_at": utc(now),
        }

    def claim(self, db: DB, *, now: datetime, lease_until: datetime, limit: int) -> list[R]:
        """Take up to ``limit`` due rows (queued, or sending with an expired lease), due first.

        Each row is taken by a compare-and-set on its status and due time, so two
        claimers never both get it; on PostgreSQL the candidates are also locked
        with SKIP LOCKED, so daemons claiming at once take different rows instead
        of queueing behind each other."""
        t = self.table
        now, lease_until = utc(now), utc(lease_until)
        candidates = (
            select(t.c.id, t.c.status, t.c.next_attempt_at)
            .where(t.c.status.in_((QUEUED, SENDING)), t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit)
        )
        if conn_of(db).dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        due = db.execute(candidates).all()
        claimed: list[int] = []
        for row_id, status, next_at in due:
            result = db.execute(
                update(t)
                .where(t.c.id == row_id, t.c.status == status, t.c.next_attempt_at == next_at)
                .values(status=SENDING, attempts=t.c.attempts + 1, next_attempt_at=lease_until)
            )
            if rowcount(result) == 1:
                claimed.append(row_id)
        if not claimed:
            return []
        columns = [t.c[name] for name in self._names]
        found = db.execute(select(*columns).where(t.c.id.in_(claimed))).mappings().all()
        order = {row_id: n for n, row_id in enumerate(claimed)}
        return sorted((self._decode(r) for r in found), key=lambda row: order[row.id])

    def mark_sent(self, db: DB, row_id: int, *, now: datetime, note: str = "") -> None:
        """Delivered; ``note`` keeps what went partly wrong (a refused recipient)."""
        self._set(db, row_id, status=SENT, sent_at=utc(now), last_error=_error(note))

    def reschedule(self, db: DB, row_id: int, *, next_attempt_at: datetime, error: str) -> None:
        """Due again at ``next_attempt_at`` (backoff, Retry-After, or now: handed back)."""
        self._set(
            db,
            row_id,
            status=QUEUED,
            next_attempt_at=utc(next_attempt_at),
            last_error=_error(error),
        )

    def mark_failed(self, db: DB, row_id: int, *, error: str) -> None:
        """Failed for good: never claimed again unless ``retry_now``."""
        self._set(db, row_id, status=FAILED, last_error=_error(error))

    def _set(self, db: DB, row_id: int, **values: Any) -> None:
        db.execute(update(self.table).where(self.table.c.id == row_id).values(**values))

    def release_stale(self, db: DB, *, now: datetime) -> int:
        """Rows left ``sending`` by a dead process become due now (daemon start)."""
        t = self.table
        result = db.execute(
            update(t).where(t.c.status == SENDING).values(status=QUEUED, next_attempt_at=utc(now))
        )
        return rowcount(result)

    def retry_now(self, db: DB, row_id: int, *, now: datetime) -> bool:
        """A failed or queued row is due now (the CLI's ``retry ID``)."""
        t = self.table
        result = db.execute(
            update(t)
            .where(t.c.id == row_id, t.c.status.in_((FAILED, QUEUED)))
            .values(status=QUEUED, next_attempt_at=utc(now))
        )
        return rowcount(result) > 0

    def next_due(self, db: DB) -> datetime | None:
        """When the earliest queued row is due (a drain can sleep until then)."""
        t = self.table
        value = db.execute(
            select(func.min(t.c.next_attempt_at)).where(t.c.status.in_((QUEUED, SENDING)))
        ).scalar()
        return utc(value) if value is not None else None

    def listing(
        self,
        db: DB,
        columns: Sequence[str],
        *,
        status: str | None = None,
        limit: int = 100,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> list[dict[str, Any]]:
        """Newest first: ``id``, the queue's own ``columns``, then where each row stands."""
        t = self.table
        names = ("id", *columns, *_STANDING)
        stmt = select(*(t.c[name] for name in names)).where(*where).order_by(t.c.id.desc())
        if status:
            stmt = stmt.where(t.c.status == status)
        return [dict(r) for r in db.execute(stmt.limit(limit)).mappings().all()]

    def waiting(self, db: DB, kind_column: str | None = None) -> list[tuple[str, int, datetime]]:
        """(kind, rows waiting, the oldest one's creation) of rows not sent or failed yet;
        one kind ``""`` when the queue has no kind column."""
        t = self.table
        kind = t.c[kind_column] if kind_column else None
        columns = [kind] if kind is not None else []
        stmt = select(*columns, func.count(), func.min(t.c.created_at)).where(
            t.c.status.in_((QUEUED, SENDING))
        )
        if kind is not None:
            stmt = stmt.group_by(kind)
        out = []
        for row in db.execute(stmt).all():
            name, count, oldest = (row[0], row[1], row[2]) if kind is not None else ("", *row)
            if count:
                out.append((str(name), int(count), utc(oldest)))
        return out

    def counts(self, db: DB) -> dict[str, int]:
        """Rows per status."""
        t = self.table
        rows = db.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
        return {status: int(n) for status, n in rows}
