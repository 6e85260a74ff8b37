"""Slack notice rows: enqueue, claim, settle. One function each, in the caller's transaction.

The same life as an outbox row (see ``db.outbox_queries``): ``queued`` ->
(claim, a lease) ``sending`` -> ``sent`` | ``queued`` again | ``failed``. What
differs is ``dedupe_key``: it is unique, and ``enqueue`` is an INSERT ... ON
CONFLICT DO NOTHING (``repo._insert_ignore``, SQLite and PostgreSQL), so the
same alert queued twice (a mail processed again, the same broken rules edit
seen by SIGHUP and by the file watcher) is one row and one post.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import insert, select, update
from sqlalchemy.engine import CursorResult

from inboxd.db import repo
from inboxd.db import row_queue as rq
from inboxd.db.tables import SlackNotice

DB = rq.DB

_T = SlackNotice.__table__  # type: ignore[attr-defined]

QUEUED, SENDING, SENT, FAILED = rq.QUEUED, rq.SENDING, rq.SENT, rq.FAILED
_rowcount, _utc = rq.rowcount, rq.utc


@dataclass(frozen=True, slots=True)
class SlackPost:
    """A claimed row: everything the poster needs, detached from the session."""

    id: int
    ticket_id: int | None
    channel: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    dedupe_key: str | None
    attempts: int  # including the attempt this claim is for
    created_at: datetime


def find_id(db: DB, dedupe_key: str) -> int | None:
    return cast(
        "int | None",
        db.execute(select(_T.c.id).where(_T.c.dedupe_key == dedupe_key)).scalar_one_or_none(),
    )


def enqueue(
    db: DB,
    *,
    channel: str,
    text: str,
    blocks: Sequence[dict[str, Any]],
    now: datetime,
    ticket_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> int | None:
    """Queue one post; returns the new row id, or None when ``dedupe_key`` was queued before."""
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "channel": channel,
        "text": text,
        "blocks": list(blocks),
        "dedupe_key": dedupe_key,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": _utc(not_before or now),
        "last_error": "",
        "created_at": _utc(now),
    }
    if dedupe_key is None:  # NULLs never conflict: a plain insert
        result = db.execute(insert(_T).values(**values))
        key = cast(CursorResult[Any], result).inserted_primary_key
        assert key is not None
        return int(key[0])
    if find_id(db, dedupe_key) is not None:
        return None
    # Still ON CONFLICT DO NOTHING: a concurrent writer (PostgreSQL) may win the race.
    repo._insert_ignore(db, SlackNotice, [values])
    return find_id(db, dedupe_key)


def claim(db: DB, *, now: datetime, lease_until: datetime, limit: int) -> list[SlackPost]:
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
            _T.c.channel,
            _T.c.text,
            _T.c.blocks,
            _T.c.dedupe_key,
            _T.c.attempts,
            _T.c.created_at,
        ).where(_T.c.id.in_(claimed))
    ).all()
    order = {row_id: n for n, row_id in enumerate(claimed)}
    posts = [
        SlackPost(
            id=r.id,
            ticket_id=r.ticket_id,
            channel=r.channel,
            text=r.text,
            blocks=tuple(r.blocks or ()),
            dedupe_key=r.dedupe_key,
            attempts=r.attempts,
            created_at=_utc(r.created_at),
        )
        for r in rows
    ]
    return sorted(posts, key=lambda p: order[p.id])


def mark_sent(db: DB, row_id: int, *, now: datetime, note: str = "") -> None:
    rq.mark_sent(db, _T, row_id, now=now, note=note)


def reschedule(db: DB, row_id: int, *, next_attempt_at: datetime, error: str) -> None:
    rq.reschedule(db, _T, row_id, next_attempt_at=next_attempt_at, error=error)


def mark_failed(db: DB, row_id: int, *, error: str) -> None:
    rq.mark_failed(db, _T, row_id, error=error)


def release_stale(db: DB, *, now: datetime) -> int:
    """Rows left ``sending`` by a dead process become due now (daemon start)."""
    return rq.release_stale(db, _T, now=now)


def retry_now(db: DB, row_id: int, *, now: datetime) -> bool:
    """A failed or queued row is due now (for a CLI ``slack retry ID``)."""
    return rq.retry_now(db, _T, row_id, now=now)


def next_due(db: DB) -> datetime | None:
    return rq.next_due(db, _T)


def list_rows(
    db: DB,
    *,
    status: str | None = None,
    ticket_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, without the blocks (for a CLI listing and tests)."""
    stmt = select(
        _T.c.id,
        _T.c.ticket_id,
        _T.c.channel,
        _T.c.text,
        _T.c.dedupe_key,
        _T.c.status,
        _T.c.attempts,
        _T.c.next_attempt_at,
        _T.c.last_error,
        _T.c.created_at,
        _T.c.sent_at,
    ).order_by(_T.c.id.desc())
    if status:
        stmt = stmt.where(_T.c.status == status)
    if ticket_id is not None:
        stmt = stmt.where(_T.c.ticket_id == ticket_id)
    return [dict(r._mapping) for r in db.execute(stmt.limit(limit)).all()]


def counts(db: DB) -> dict[str, int]:
    return rq.counts(db, _T)


__all__ = [
    "FAILED",
    "QUEUED",
    "SENDING",
    "SENT",
    "SlackPost",
    "claim",
    "counts",
    "enqueue",
    "find_id",
    "list_rows",
    "mark_failed",
    "mark_sent",
    "next_due",
    "release_stale",
    "reschedule",
    "retry_now",
]
