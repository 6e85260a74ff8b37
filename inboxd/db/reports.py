"""The report's reads: tickets and their events for a period, streamed in pages.

A report needs every ticket that did something since the period began (any
event at or after its start; ``ix_event_at_ticket`` makes that a range of an
index) with its whole log up to the period's end, and the open tickets that did
nothing since then (only their row: their status has not changed). Per page of
tickets it runs two queries (rows, then their events), so the cost follows the
tickets in the period, not the tickets in the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, literal_column, select, type_coerce

from inboxd.core import jsontext
from inboxd.core.desk import events as ev
from inboxd.core.reports.compute import ReportBuilder
from inboxd.core.reports.facts import KINDS, WORKING
from inboxd.core.reports.model import Filters, TicketInfo
from inboxd.db.fastexec import PreparedQuery
from inboxd.db.sql import DB, conn_of, in_values, one_of, utc
from inboxd.db.tables import Event, Ticket

_T = Ticket.__table__  # type: ignore[attr-defined]
_E = Event.__table__  # type: ignore[attr-defined]
# read raw (no per-row type processing: the bulk of a report's read) and parsed here
_COLUMNS = (
    _T.c.id,
    _T.c.status,
    type_coerce(_T.c.created_at, String),
    _T.c.mailbox,
    _T.c.team,
    _T.c.assignee,
    type_coerce(_T.c.tags, String),
    _T.c.sla_policy,
)
PAGE = 500


def _words(values: Iterable[str]) -> list[Any]:
    """Our own constant names (event kinds, statuses) written into the SQL."""
    out: list[Any] = []
    for v in sorted(values):
        if not re.fullmatch(r"\w+", v):
            raise ValueError(f"not a plain name: {v!r}")
        out.append(literal_column(f"'{v}'"))
    return out


_ACTIVE = PreparedQuery(lambda _n: select(_E.c.ticket_id).where(_E.c.at >= bindparam("since")))
_TICKETS = PreparedQuery(lambda n: select(*_COLUMNS).where(one_of(_T.c.id, n)))
_OPEN = PreparedQuery(lambda _n: select(*_COLUMNS).where(_T.c.status.in_(_words(WORKING))))
_EVENTS = PreparedQuery(
    lambda n: select(
        _E.c.ticket_id,
        type_coerce(_E.c.at, String),
        _E.c.actor,
        _E.c.kind,
        type_coerce(_E.c.data, String),
    )
    .where(
        one_of(_E.c.ticket_id, n),
        _E.c.at < bindparam("end"),
        _E.c.kind.in_(_words(KINDS)),
    )
    .order_by(_E.c.ticket_id, _E.c.id)
)


class _Instants:
    """Stored times read raw (SQLite gives text, PostgreSQL a datetime), each text
    parsed once: a ticket's first events share one instant."""

    def __init__(self) -> None:
        self._seen: dict[Any, datetime] = {}

    def __call__(self, value: Any) -> datetime:
        when = self._seen.get(value)
        if when is None:
            parsed = utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
            assert parsed is not None
            if len(self._seen) >= 4096:
                self._seen.clear()
            when = self._seen[value] = parsed
        return when


def _info(row: Any, instant: _Instants) -> TicketInfo:
    tid, status, created, mailbox, team, assignee, tags, policy = row
    if isinstance(tags, str):
        tags = jsontext.loads(tags)
    return TicketInfo(
        id=int(tid),
        status=str(status),
        created_at=instant(created),
        mailbox=mailbox or "",
        team=team,
        assignee=assignee,
        tags=tuple(tags or ()),
        sla_policy=policy,
    )


def active_ticket_ids(db: DB, since: datetime) -> list[int]:
    """Tickets with any event at or after ``since``, by id.

    Deduplicated here: with DISTINCT, SQLite may walk ``ix_event_ticket_id`` whole
    (rows come out sorted by ticket) instead of the range of ``ix_event_at_ticket``."""
    return sorted({int(r[0]) for r in _ACTIVE.each(conn_of(db), {"since": since})})


def _events(
    db: DB, ids: Sequence[int], end: datetime, instant: _Instants
) -> dict[int, list[ev.Event]]:
    params, shape = in_values(ids, conn_of(db))
    params["end"] = end
    out: dict[int, list[ev.Event]] = {}
    decode, loads = ev.decode, jsontext.loads
    for tid, at, actor, kind, data in _EVENTS.each(conn_of(db), params, shape):
        payload = loads(data) if isinstance(data, str) else data
        event = decode(kind, instant(at), actor, payload)
        if event is not None:
            out.setdefault(int(tid), []).append(event)
    return out


def tickets_with_events(
    db: DB, ids: Sequence[int], end: datetime, filters: Filters, page: int = PAGE
) -> Iterator[tuple[TicketInfo, list[ev.Event]]]:
    """The tickets ``ids`` (those matching ``filters``) with their events before ``end``."""
    conn = conn_of(db)
    instant = _Instants()
    for i in range(0, len(ids), page):
        chunk = list(ids[i : i + page])
        rows = _TICKETS.all(conn, *in_values(chunk, conn))
        infos = sorted(
            (t for t in (_info(r, instant) for r in rows) if filters.match(t)), key=lambda t: t.id
        )
        logs = _events(db, [t.id for t in infos], end, instant) if infos else {}
        for t in infos:
            yield t, logs.get(t.id, [])


def open_tickets(db: DB, filters: Filters) -> Iterator[TicketInfo]:
    """Every ticket whose stored status is a working one (the backlog's rows)."""
    instant = _Instants()
    for row in _OPEN.each(conn_of(db), {}):
        ticket = _info(row, instant)
        if filters.match(ticket):
            yield ticket


def feed(db: DB, builder: ReportBuilder) -> None:
    """Stream everything the builder's report needs into it."""
    ids = active_ticket_ids(db, builder.period.start)
    feed_share(db, builder, ids)
    feed_quiet(db, builder, ids)


def feed_share(db: DB, builder: ReportBuilder, ids: Sequence[int]) -> None:
    """The tickets ``ids`` of ``active_ticket_ids`` (all, or the share of one process)
    with their events."""
    period = builder.period
    for ticket, events in tickets_with_events(db, ids, period.end, builder.filters):
        builder.add(ticket, events)


def feed_quiet(db: DB, builder: ReportBuilder, active: Iterable[int]) -> None:
    """The open tickets with no event since the period began (not in ``active``)."""
    seen = set(active)
    for ticket in open_tickets(db, builder.filters):
        if ticket.id not in seen:
            builder.add_quiet(ticket)
