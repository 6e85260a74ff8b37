"""Where each ticket's living Slack message is, and which roots may be out of date.

A thread row is made (``ensure``) in the transaction of the first alert about a
ticket in a channel; its ``ts`` is filled in by the Slack drain when the root
is posted (``posted``, in the settle transaction). ``stale_candidates`` are the
threads whose ticket may show something else now: live tickets (their SLA line
moves with time) and tickets changed since the root was last posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from inboxd.core.desk import OPEN_STATUSES
from inboxd.db import row_queue as rq
from inboxd.db.sql import DB, insert_ignore, utc
from inboxd.db.tables import Message, SlackNotice, SlackThread, Ticket, shown_new_text

_T = SlackThread.__table__  # type: ignore[attr-defined]
_N = SlackNotice.__table__  # type: ignore[attr-defined]
_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_MSG = Message.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Thread:
    id: int
    ticket_id: int | None  # None: the message of an ops alert (db.ops_alerts)
    channel: str
    channel_id: str
    ts: str | None
    digest: str

    @property
    def target(self) -> str:
        """The channel to call: Slack's id once known, else the configured name."""
        return self.channel_id or self.channel


_COLUMNS = (_T.c.id, _T.c.ticket_id, _T.c.channel, _T.c.channel_id, _T.c.ts, _T.c.digest)


def _thread(row: Any) -> Thread:
    ticket = int(row[1]) if row[1] is not None else None
    return Thread(int(row[0]), ticket, str(row[2]), str(row[3] or ""), row[4], str(row[5]))


def find(db: DB, ticket_id: int, channel: str) -> Thread | None:
    row = db.execute(
        select(*_COLUMNS).where(_T.c.ticket_id == ticket_id, _T.c.channel == channel)
    ).first()
    return _thread(row) if row is not None else None


def ensure(db: DB, ticket_id: int, channel: str, now: datetime) -> tuple[Thread, bool]:
    """The ticket's thread in ``channel``; ``True`` when this call made it."""
    found = find(db, ticket_id, channel)
    if found is not None:
        return found, False
    values = {
        "ticket_id": ticket_id,
        "channel": channel,
        "channel_id": "",
        "ts": None,
        "digest": "",
        "created_at": utc(now),
        "updated_at": utc(now),
    }
    insert_ignore(db, SlackThread, [values])  # a concurrent writer may win: then it is theirs
    made = find(db, ticket_id, channel)
    assert made is not None
    return made, True


def get(db: DB, thread_id: int) -> Thread | None:
    row = db.execute(select(*_COLUMNS).where(_T.c.id == thread_id)).first()
    return _thread(row) if row is not None else None


def of_tickets(db: DB, ticket_ids: Sequence[int]) -> list[Thread]:
    if not ticket_ids:
        return []
    rows = db.execute(
        select(*_COLUMNS).where(_T.c.ticket_id.in_(list(ticket_ids))).order_by(_T.c.id)
    )
    return [_thread(r) for r in rows]


def posted(db: DB, thread_id: int, *, channel_id: str, ts: str, digest: str, now: datetime) -> None:
    """The root is in Slack at ``ts`` showing ``digest`` (posted, re-posted or updated)."""
    values: dict[str, Any] = {"ts": ts, "digest": digest, "updated_at": utc(now)}
    if channel_id:
        values["channel_id"] = channel_id
    db.execute(update(_T).where(_T.c.id == thread_id).values(**values))


def drop(db: DB, thread_id: int) -> None:
    """The root could not be posted for good: forget the thread, so the next alert
    about the ticket tries a new one (after the channel was fixed)."""
    db.execute(delete(_T).where(_T.c.id == thread_id))


def stale_candidates(db: DB, *, limit: int = 500) -> list[Thread]:
    """Posted roots whose ticket is live, or changed after the root was last posted."""
    changed = or_(
        _TICKET.c.status.in_([s.value for s in OPEN_STATUSES]),
        _TICKET.c.updated_at > _T.c.updated_at,
        _TICKET.c.status_changed_at > _T.c.updated_at,
    )
    rows = db.execute(
        select(*_COLUMNS)
        .join(_TICKET, _TICKET.c.id == _T.c.ticket_id)
        .where(_T.c.ts.is_not(None), changed)
        .order_by(_T.c.updated_at)
        .limit(limit)
    )
    return [_thread(r) for r in rows]


def with_pending_update(db: DB, thread_ids: Sequence[int]) -> set[int]:
    """Threads that have a root post or update not yet delivered (queue no second one)."""
    if not thread_ids:
        return set()
    rows = db.execute(
        select(_N.c.thread_id).where(
            _N.c.thread_id.in_(list(thread_ids)),
            _N.c.call.in_(("root", "update")),
            _N.c.status.in_((rq.QUEUED, rq.SENDING)),
        )
    )
    return {int(r[0]) for r in rows}


def root_due(db: DB, thread_id: int) -> datetime | None:
    """When the thread's root (or the update that re-posts it) is next tried."""
    value = db.execute(
        select(func.min(_N.c.next_attempt_at)).where(
            _N.c.thread_id == thread_id,
            _N.c.call.in_(("root", "update")),
            _N.c.status.in_((rq.QUEUED, rq.SENDING)),
        )
    ).scalar()
    return utc(value) if value is not None else None


def last_customer_texts(db: DB, ticket_ids: Sequence[int]) -> dict[int, str]:
    """The new text of each ticket's newest inbound mail (for the root's excerpt)."""
    if not ticket_ids:
        return {}
    newest = (
        select(func.max(_MSG.c.id))
        .where(_MSG.c.ticket_id.in_(list(ticket_ids)), _MSG.c.direction == "in")
        .where(_MSG.c.kind == "normal")
        .group_by(_MSG.c.ticket_id)
    )
    rows = db.execute(
        select(_MSG.c.ticket_id, _MSG.c.text, _MSG.c.new_text).where(_MSG.c.id.in_(newest))
    )
    return {int(t): shown_new_text(new, text or "") for t, text, new in rows}


__all__ = [
    "Thread",
    "drop",
    "ensure",
    "find",
    "get",
    "last_customer_texts",
    "of_tickets",
    "posted",
    "root_due",
    "stale_candidates",
    "with_pending_update",
]
