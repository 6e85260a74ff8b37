"""The report's reads: tickets and their events for a period, streamed in pages.

A report needs every ticket that did something since the period began (any
event at or after its start; ``ix_event_at_ticket`` makes that a range of an
index) with its whole log up to the period's end, and the open tickets that did
nothing since then (only their row: their status has not changed). Per page of
tickets it runs two queries (rows, then their events), so the cost follows the
tickets in the period, not the tickets in the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, select, type_coerce

from inboxd.core import jsontext
from inboxd.core.desk import events as ev
from inboxd.core.reports.compute import ReportBuilder
from inboxd.core.reports.facts import KINDS, WORKING
from inboxd.core.reports.model import Filters, TicketInfo
from inboxd.db.sql import DB, conn_of, utc
from inboxd.db.tables import Event, Ticket

_T = Ticket.__table__  # type: ignore[attr-defined]
_E = Event.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    _T.c.id,
    _T.c.status,
    _T.c.created_at,
    _T.c.mailbox,
    _T.c.team,
    _T.c.assignee,
    _T.c.tags,
    _T.c.sla_policy,
)
PAGE = 500


def _where(filters: Filters) -> list[Any]:
    """The filters SQL can apply (a tag lives in JSON: core checks it)."""
    out: list[Any] = []
    if filters.team is not None:
        out.append(_T.c.team == filters.team)
    if filters.agent is not None:
        out.append(_T.c.assignee == filters.agent)
    if filters.mailbox is not None:
        out.append(_T.c.mailbox == filters.mailbox)
    return out


def _info(row: Any) -> TicketInfo:
    created = utc(row.created_at)
    assert created is not None
    return TicketInfo(
        id=int(row.id),
        status=str(row.status),
        created_at=created,
        mailbox=row.mailbox or "",
        team=row.team,
        assignee=row.assignee,
        tags=tuple(row.tags or ()),
        sla_policy=row.sla_policy,
    )


def active_ticket_ids(db: DB, since: datetime) -> list[int]:
    """Tickets with any event at or after ``since``, by id.

    Deduplicated here: with DISTINCT, SQLite may walk ``ix_event_ticket_id`` whole
    (rows come out sorted by ticket) instead of the range of ``ix_event_at_ticket``."""
    stmt = select(_E.c.ticket_id).where(_E.c.at >= since)
    return sorted({int(r[0]) for r in conn_of(db).execute(stmt)})


def _instant(value: Any) -> datetime:
    """A stored time read raw: SQLite gives text, PostgreSQL a datetime."""
    when = utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
    assert when is not None
    return when


def _events(db: DB, ids: Sequence[int], end: datetime) -> dict[int, list[ev.Event]]:
    # read raw (no per-row type processing: the bulk of a report's read) and decode here
    stmt = (
        select(
            _E.c.ticket_id,
            type_coerce(_E.c.at, String),
            _E.c.actor,
            _E.c.kind,
            type_coerce(_E.c.data, String),
        )
        .where(_E.c.ticket_id.in_(ids), _E.c.at < end, _E.c.kind.in_(KINDS))
        .order_by(_E.c.ticket_id, _E.c.id)
    )
    out: dict[int, list[ev.Event]] = {}
    for tid, at, actor, kind, data in conn_of(db).execute(stmt):
        payload = jsontext.loads(data) if isinstance(data, str) else data
        event = ev.decode(kind, _instant(at), actor, payload)
        if event is not None:
            out.setdefault(int(tid), []).append(event)
    return out


def tickets_with_events(
    db: DB, ids: Sequence[int], end: datetime, filters: Filters, page: int = PAGE
) -> Iterator[tuple[TicketInfo, list[ev.Event]]]:
    """The tickets ``ids`` (those matching ``filters``) with their events before ``end``."""
    conn = conn_of(db)
    for i in range(0, len(ids), page):
        chunk = list(ids[i : i + page])
        rows = conn.execute(select(*_COLUMNS).where(_T.c.id.in_(chunk), *_where(filters))).all()
        infos = [_info(r) for r in rows]
        logs = _events(db, [t.id for t in infos], end) if infos else {}
        for t in sorted(infos, key=lambda t: t.id):
            yield t, logs.get(t.id, [])


def open_tickets(db: DB, filters: Filters) -> Iterator[TicketInfo]:
    """Every ticket whose stored status is a working one (the backlog's rows)."""
    stmt = select(*_COLUMNS).where(_T.c.status.in_(sorted(WORKING)), *_where(filters))
    for row in conn_of(db).execute(stmt.execution_options(yield_per=2000)):
        yield _info(row)


def feed(db: DB, builder: ReportBuilder) -> None:
    """Stream everything the builder's report needs into it."""
    period, filters = builder.period, builder.filters
    ids = active_ticket_ids(db, period.start)
    for ticket, events in tickets_with_events(db, ids, period.end, filters):
        builder.add(ticket, events)
    active = set(ids)
    for ticket in open_tickets(db, filters):
        if ticket.id not in active:
            builder.add_quiet(ticket)
