"""Slack alerts held for the quiet-hours summary (``slackdeferred``).

``hold`` keeps an alert until its opening (once per dedupe key); ``claim``
takes a channel's due alerts for one summary in one UPDATE that only sets rows
nobody claimed yet: on PostgreSQL a second daemon's UPDATE waits for the first's
commit and then finds them taken, on SQLite writers take turns. Either way each
alert is in exactly one summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import delete, func, select, update

from inboxd.core.quiet_hours import Deferred
from inboxd.db.sql import DB, insert_ignore, utc
from inboxd.db.tables import SlackDeferred

_Q = SlackDeferred.__table__  # type: ignore[attr-defined]


def held(db: DB, dedupe_key: str) -> bool:
    """This alert is (or was) held for a summary."""
    found = db.execute(select(_Q.c.id).where(_Q.c.dedupe_key == dedupe_key)).first()
    return found is not None


def hold(
    db: DB,
    *,
    channel: str,
    kind: str,
    text: str,
    dedupe_key: str,
    now: datetime,
    due_at: datetime,
    ticket_id: int | None = None,
) -> bool:
    """Hold the alert until ``due_at``; False when it was held before."""
    if held(db, dedupe_key):
        return False
    row = {
        "ticket_id": ticket_id,
        "channel": channel,
        "kind": kind,
        "text": text,
        "dedupe_key": dedupe_key,
        "created_at": utc(now),
        "due_at": utc(due_at),
        "claim": None,
        "summarized_at": None,
    }
    insert_ignore(db, SlackDeferred, [row])  # a concurrent writer may have won the race
    return True


def due_channels(db: DB, now: datetime) -> list[str]:
    """Channels with held alerts whose opening has come."""
    stmt = (
        select(_Q.c.channel)
        .where(_Q.c.claim.is_(None), _Q.c.due_at <= utc(now))
        .group_by(_Q.c.channel)
        .order_by(_Q.c.channel)
    )
    return [str(r[0]) for r in db.execute(stmt)]


def claim(db: DB, channel: str, token: str, now: datetime) -> list[Deferred]:
    """Take the channel's due alerts for the summary ``token`` names; oldest first.
    Empty when another summary took them."""
    db.execute(
        update(_Q)
        .where(_Q.c.channel == channel, _Q.c.claim.is_(None), _Q.c.due_at <= utc(now))
        .values(claim=token, summarized_at=utc(now))
    )
    rows = db.execute(
        select(_Q.c.created_at, _Q.c.kind, _Q.c.text)
        .where(_Q.c.claim == token)
        .order_by(_Q.c.created_at, _Q.c.id)
    )
    return [Deferred(cast(datetime, utc(r[0])), str(r[1]), str(r[2])) for r in rows]


def waiting(db: DB) -> int:
    """Alerts still held (for tests and status)."""
    stmt = select(func.count()).select_from(_Q).where(_Q.c.claim.is_(None))
    return int(db.execute(stmt).scalar_one())


def prune(db: DB, before: datetime) -> int:
    """Forget alerts summarized before ``before`` (their dedupe keys do not come back)."""
    result = db.execute(delete(_Q).where(_Q.c.summarized_at < utc(before)))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["claim", "due_channels", "held", "hold", "prune", "waiting"]
