"""The read behind ``inboxd sla replay``: tickets created in a period, with their logs.

Streamed in pages of ticket ids (walking the primary key from the last id seen),
two queries a page: the rows, then the events of the page's tickets that carry
a policy (``tickets.typed_events_of``). Never a query per ticket, and one page
in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import select

from inboxd.core.sla.replay import ReplayTicket
from inboxd.db.sql import DB, conn_of
from inboxd.db.tables import Ticket
from inboxd.db.tickets import typed_events_of

_T = Ticket.__table__  # type: ignore[attr-defined]
PAGE = 500


def tickets_created(
    db: DB, since: datetime, until: datetime, page: int = PAGE
) -> Iterator[ReplayTicket]:
    """Tickets created in ``[since, until]``, by id, each with its policy name and log
    (no events for a ticket without a policy: nothing is computed for it)."""
    conn = conn_of(db)
    last = 0
    while True:
        rows = conn.execute(
            select(_T.c.id, _T.c.sla_policy)
            .where(
                _T.c.id > last,
                _T.c.created_at >= since.astimezone(UTC),
                _T.c.created_at <= until.astimezone(UTC),
            )
            .order_by(_T.c.id)
            .limit(page)
        ).all()
        if not rows:
            return
        with_policy = [int(r.id) for r in rows if r.sla_policy]
        logs = typed_events_of(conn, with_policy) if with_policy else {}
        for r in rows:
            yield ReplayTicket(int(r.id), r.sla_policy or None, logs.get(int(r.id), []))
        last = int(rows[-1].id)
