"""Outbox rows: enqueue, claim, settle. One function each, in the caller's transaction.

Row life: ``queued`` -> (claim) ``sending`` -> ``sent`` | ``queued`` again (retry
later) | ``failed``. A claim is a lease: it sets ``next_attempt_at`` to the end of
the lease, so a row left in ``sending`` by a process that died is claimable again
once its lease is over (or at once via ``release_stale``, at daemon start). The
claim is a conditional UPDATE (status and time unchanged since read), so two
drainers never both own a row, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlmodel import Session

from inboxd.db import row_queue as rq
from inboxd.db.fastexec import Prepared, PreparedQuery
from inboxd.db.tables import Outbox

DB = rq.DB

_T = Outbox.__table__  # type: ignore[attr-defined]

QUEUED, SENDING, SENT, FAILED = rq.QUEUED, rq.SENDING, rq.SENT, rq.FAILED
_rowcount, _utc = rq.rowcount, rq.utc


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A claimed row: everything the sender needs, detached from the session."""

    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes
    attempts: int  # including the attempt this claim is for
    created_at: datetime


def _conn(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


# enqueue runs for every ack and notification inside ingest: on the DB-API cursor
# (fastexec) it costs ~15 us instead of ~150 us through SQLAlchemy's execute
_INSERT = Prepared(lambda _d: _T.insert().returning(_T.c.id))
_COUNT_TO = PreparedQuery(
    lambda _n: select(func.count()).where(
        _T.c.rcpt_key == bindparam("rcpt"),
        _T.c.kind == bindparam("kind"),
        _T.c.created_at >= bindparam("since"),
    )
)


def enqueue(
    db: DB,
    *,
    ticket_id: int | None,
    kind: str,
    message_id: str,
    mail_from: str,
    rcpts: Sequence[str],
    raw: bytes,
    now: datetime,
    not_before: datetime | None = None,
) -> int:
    """Queue one rendered mail; returns the row id. Call inside the state change's transaction."""
    row = {
        "ticket_id": ticket_id,
        "kind": kind,
        "message_id": message_id,
        "mail_from": mail_from,
        "rcpts": list(rcpts),
        "rcpt_key": rcpts[0].lower() if rcpts else "",
        "raw": raw,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": _utc(not_before or now),
        "last_error": "",
        "created_at": _utc(now),
        "sent_at": None,
    }
    return int(_INSERT.run(_conn(db), row).fetchone()[0])


def claim(db: DB, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMail]:
    """Take up to ``limit`` due rows (queued, or sending with an expired lease)."""
    now, lease_until = _utc(now), _utc(lease_until)
    due = db.execute(
        select(_T.c.id, _T.c.status, _T.c.next_attempt_at)
        .where(_T.c.status.in_((QUEUED, SENDING)), _T.c.next_attempt_at <= now)
        .order_by(_T.c.next_attempt_at, _T.c.id)
        .limit(limit)
    ).all()
    claimed: list[int] = []
    for row_id, status, next_at in due:
        result = db.execute(
            update(_T)
            .where(_T.c.id == row_id, _T.c.status == status, _T.c.next_attempt_at == next_at)
            .values(status=SENDING, attempts=_T.c.attempts + 1, next_attempt_at=lease_until)
        )
        if _rowcount(result) == 1:
            claimed.append(row_id)
    if not claimed:
        return []
    rows = db.execute(
        select(
            _T.c.id,
            _T.c.ticket_id,
            _T.c.kind,
            _T.c.message_id,
            _T.c.mail_from,
            _T.c.rcpts,
            _T.c.raw,
            _T.c.attempts,
            _T.c.created_at,
        )
        .where(_T.c.id.in_(claimed))
        .order_by(_T.c.id)
    ).all()
    order = {row_id: n for n, row_id in enumerate(claimed)}
    mails = [
        OutboxMail(
            id=r.id,
            ticket_id=r.ticket_id,
            kind=r.kind,
            message_id=r.message_id,
            mail_from=r.mail_from,
            rcpts=tuple(r.rcpts),
            raw=bytes(r.raw),
            attempts=r.attempts,
            created_at=_utc(r.created_at),
        )
        for r in rows
    ]
    return sorted(mails, key=lambda m: order[m.id])


def mark_sent(db: DB, row_id: int, *, now: datetime, note: str = "") -> None:
    rq.mark_sent(db, _T, row_id, now=now, note=note)


def reschedule(
    db: DB,
    row_id: int,
    *,
    next_attempt_at: datetime,
    error: str,
    rcpts: Sequence[str] | None = None,
) -> None:
    """Due again at ``next_attempt_at``; ``rcpts`` narrows a partly delivered mail."""
    extra = {"rcpts": list(rcpts)} if rcpts is not None else {}
    rq.reschedule(db, _T, row_id, next_attempt_at=next_attempt_at, error=error, **extra)


def mark_failed(db: DB, row_id: int, *, error: str) -> None:
    rq.mark_failed(db, _T, row_id, error=error)


def release_stale(db: DB, *, now: datetime) -> int:
    """Rows left ``sending`` by a dead process become due now (daemon start)."""
    return rq.release_stale(db, _T, now=now)


def retry_now(db: DB, row_id: int, *, now: datetime) -> bool:
    """``inboxd outbox retry ID``: a failed or queued row is due now."""
    return rq.retry_now(db, _T, row_id, now=now)


def next_due(db: DB) -> datetime | None:
    return rq.next_due(db, _T)


def count_to_recipient(db: DB, *, kind: str, rcpt: str, since: datetime) -> int:
    """Mails of ``kind`` queued to ``rcpt`` (their first recipient) since ``since``.

    For the hourly ack cap: an ack has exactly one recipient, so "first" is "the".
    One range of ``ix_outbox_rcpt_kind_created``, however many acks went out.
    """
    params = {"rcpt": rcpt.lower(), "kind": kind, "since": _utc(since)}
    return int(_COUNT_TO.all(_conn(db), params)[0][0])


def find_by_message_id(db: DB, message_id: str) -> list[dict[str, Any]]:
    """Outbox rows that sent ``message_id`` (a bounce names it): id, ticket, kind, status."""
    rows = db.execute(
        select(_T.c.id, _T.c.ticket_id, _T.c.kind, _T.c.status, _T.c.rcpts).where(
            _T.c.message_id == message_id
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def list_rows(db: DB, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """For ``inboxd outbox ls``: newest first, without the raw bytes."""
    stmt = select(
        _T.c.id,
        _T.c.ticket_id,
        _T.c.kind,
        _T.c.message_id,
        _T.c.rcpts,
        _T.c.status,
        _T.c.attempts,
        _T.c.next_attempt_at,
        _T.c.last_error,
        _T.c.created_at,
        _T.c.sent_at,
    ).order_by(_T.c.id.desc())
    if status:
        stmt = stmt.where(_T.c.status == status)
    return [dict(r._mapping) for r in db.execute(stmt.limit(limit)).all()]


def counts(db: DB) -> dict[str, int]:
    return rq.counts(db, _T)


__all__ = [
    "FAILED",
    "QUEUED",
    "SENDING",
    "SENT",
    "OutboxMail",
    "claim",
    "count_to_recipient",
    "counts",
    "enqueue",
    "find_by_message_id",
    "list_rows",
    "mark_failed",
    "mark_sent",
    "next_due",
    "release_stale",
    "reschedule",
    "retry_now",
]
