"""Ops alerts that last (a tag's spike, a mailbox outage): state and their message.

An alert's Slack message is a ``slackthread`` row with no ticket, so the Slack
drain posts it as a root (recording its ts), updates it and threads replies
under it as it does for a ticket's living message; ``open_alert`` queues the
root in the caller's transaction, ``close`` the chat.update that says it is
over. ``routing_thread`` is how alerts about tickets join a spike's (or an
outage's) thread while it is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import CursorResult

from inboxd.core.slack_text import SlackMessage
from inboxd.core.spikes import Spike
from inboxd.db import slack_queries as sq
from inboxd.db.sql import DB, insert_ignore, utc
from inboxd.db.tables import OpsAlert, SlackThread

_O = OpsAlert.__table__  # type: ignore[attr-defined]
_T = SlackThread.__table__  # type: ignore[attr-defined]

SPIKE, OUTAGE = "spike", "outage"


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    subject: str
    channel: str
    thread_id: int | None
    started_at: datetime
    ended_at: datetime | None
    baseline: float
    peak: int
    detail: str

    @property
    def spike(self) -> Spike:
        return Spike(self.started_at, self.baseline, self.peak, self.ended_at)


_COLUMNS = (
    _O.c.id,
    _O.c.kind,
    _O.c.subject,
    _O.c.channel,
    _O.c.thread_id,
    _O.c.started_at,
    _O.c.ended_at,
    _O.c.baseline,
    _O.c.peak,
    _O.c.detail,
)


def _alert(row: Any) -> Alert:
    return Alert(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        row[4],
        utc(row[5]),  # type: ignore[arg-type]
        utc(row[6]),
        float(row[7]),
        int(row[8]),
        str(row[9]),
    )


def last(db: DB, kind: str, subject: str) -> Alert | None:
    """The newest alert of this kind about ``subject`` (on or over)."""
    row = db.execute(
        select(*_COLUMNS)
        .where(_O.c.kind == kind, _O.c.subject == subject)
        .order_by(_O.c.started_at.desc(), _O.c.id.desc())
        .limit(1)
    ).first()
    return _alert(row) if row is not None else None


def active(db: DB, kind: str | None = None) -> list[Alert]:
    query = select(*_COLUMNS).where(_O.c.ended_at.is_(None))
    if kind is not None:
        query = query.where(_O.c.kind == kind)
    return [_alert(r) for r in db.execute(query.order_by(_O.c.id))]


def open_alert(
    db: DB,
    *,
    kind: str,
    subject: str,
    channel: str,
    message: SlackMessage,
    now: datetime,
    key: str,
    baseline: float = 0.0,
    peak: int = 0,
    detail: str = "",
    started_at: datetime | None = None,
) -> Alert | None:
    """Record the alert and queue its message; None when ``key`` was opened before.
    ``started_at``: when the condition began, if before ``now`` (an outage)."""
    if db.execute(select(_O.c.id).where(_O.c.key == key)).first() is not None:
        return None
    values = {
        "key": key,
        "kind": kind,
        "subject": subject,
        "channel": channel,
        "thread_id": None,
        "started_at": utc(started_at or now),
        "ended_at": None,
        "baseline": baseline,
        "peak": peak,
        "detail": detail[:500],
        "updated_at": utc(now),
    }
    insert_ignore(db, OpsAlert, [values])  # a second daemon may have won: then it is theirs
    row = db.execute(select(*_COLUMNS).where(_O.c.key == key)).first()
    assert row is not None
    alert = _alert(row)
    if alert.thread_id is not None:
        return None
    thread_values = {
        "ticket_id": None,
        "channel": channel,
        "channel_id": "",
        "ts": None,
        "digest": "",
        "created_at": utc(now),
        "updated_at": utc(now),
    }
    made = cast(CursorResult[Any], db.execute(insert(_T).values(**thread_values)))
    assert made.inserted_primary_key is not None
    thread_id = int(made.inserted_primary_key[0])
    db.execute(update(_O).where(_O.c.id == alert.id).values(thread_id=thread_id))
    sq.enqueue(
        db,
        channel=channel,
        text=message.text,
        blocks=message.blocks,
        now=now,
        dedupe_key=f"ops:{key}",
        call=sq.ROOT,
        thread_id=thread_id,
        digest="on",
    )
    return Alert(**{**_fields(alert), "thread_id": thread_id})


def _fields(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in Alert.__slots__}


def raise_peak(db: DB, alert_id: int, peak: int, now: datetime) -> None:
    db.execute(
        update(_O)
        .where(_O.c.id == alert_id, _O.c.peak < peak)
        .values(peak=peak, updated_at=utc(now))
    )


def close(db: DB, alert: Alert, message: SlackMessage, now: datetime) -> bool:
    """Mark the alert over and queue the update of its message; False when another
    daemon closed it first."""
    done = db.execute(
        update(_O)
        .where(_O.c.id == alert.id, _O.c.ended_at.is_(None))
        .values(ended_at=utc(now), updated_at=utc(now))
    )
    if not cast(CursorResult[Any], done).rowcount:
        return False
    if alert.thread_id is not None and _thread_exists(db, alert.thread_id):
        sq.enqueue(
            db,
            channel=alert.channel,
            text=message.text,
            blocks=message.blocks,
            now=now,
            dedupe_key=f"ops-over:{alert.id}",
            call=sq.UPDATE,
            thread_id=alert.thread_id,
            digest="over",
        )
    return True


def _thread_exists(db: DB, thread_id: int) -> bool:
    return db.execute(select(_T.c.id).where(_T.c.id == thread_id)).first() is not None


def routing_thread(db: DB, *, channel: str, tags: Sequence[str], mailbox: str = "") -> Alert | None:
    """The alert on now whose thread takes alerts about a ticket with these tags (a
    spike) or from this mailbox (an outage) in ``channel``; None: post as usual."""
    clauses = []
    if tags:
        clauses.append((_O.c.kind == SPIKE) & _O.c.subject.in_(list(tags)))
    if mailbox:
        clauses.append((_O.c.kind == OUTAGE) & (_O.c.subject == mailbox))
    if not clauses:
        return None
    rows = db.execute(
        select(*_COLUMNS)
        .join(_T, _T.c.id == _O.c.thread_id)
        .where(_O.c.ended_at.is_(None), _O.c.channel == channel, or_(*clauses))
        .order_by(_O.c.started_at, _O.c.id)
        .limit(1)
    ).first()
    return _alert(rows) if rows is not None else None


__all__ = [
    "OUTAGE",
    "SPIKE",
    "Alert",
    "active",
    "close",
    "last",
    "open_alert",
    "raise_peak",
    "routing_thread",
]
