"""The surveys' reads and writes: which solved tickets are due a survey, and the surveys.

``ticket.survey_due_at`` is the time of a ticket's latest solve (``db.tickets.save``
sets it); ``take_due`` is a range of ``ix_ticket_survey_due_at``, so the job's cost
follows the tickets solved lately, not every closed ticket. ``claim`` is the
at-most-once gate: the unique ``survey.ticket_id`` lets one insert win, whichever
daemon or restart tries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from inboxd.db.fastexec import Prepared
from inboxd.db.sql import DB, conn_of, utc
from inboxd.db.tables import Survey, Ticket

_T = Ticket.__table__  # type: ignore[attr-defined]
_S = Survey.__table__  # type: ignore[attr-defined]


class SurveyRow(NamedTuple):
    id: int
    ticket_id: int
    recipient: str
    sent_at: datetime


def take_due(db: DB, solved_before: datetime, *, limit: int = 200) -> list[int]:
    """Tickets whose latest solve is before ``solved_before`` and not looked at yet,
    oldest first; locked with SKIP LOCKED on PostgreSQL so daemons share the work."""
    stmt = (
        select(_T.c.id)
        .where(_T.c.survey_due_at.is_not(None), _T.c.survey_due_at <= solved_before)
        .order_by(_T.c.survey_due_at)
        .limit(limit)
    )
    if conn_of(db).dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [int(r[0]) for r in db.execute(stmt)]


def clear_due(db: DB, ticket_ids: Sequence[int]) -> None:
    """The job has decided about these tickets' latest solve (sent or not)."""
    if ticket_ids:
        db.execute(update(_T).where(_T.c.id.in_(list(ticket_ids))).values(survey_due_at=None))


def _insert(dialect: str) -> Any:
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return maker(_S).on_conflict_do_nothing(index_elements=["ticket_id"]).returning(_S.c.id)


_CLAIM = Prepared(_insert)


def claim(db: DB, ticket_id: int, recipient: str, now: datetime) -> int | None:
    """The new survey's number for the one caller that records it first, else None
    (the ticket has had its survey)."""
    row = {"ticket_id": ticket_id, "recipient": recipient, "message_id": "", "sent_at": now}
    found = _CLAIM.run(conn_of(db), row).fetchone()
    return int(found[0]) if found is not None else None


def set_message_id(db: DB, survey_id: int, message_id: str) -> None:
    db.execute(update(_S).where(_S.c.id == survey_id).values(message_id=message_id))


def get(db: DB, survey_id: int) -> SurveyRow | None:
    row = db.execute(
        select(_S.c.id, _S.c.ticket_id, _S.c.recipient, _S.c.sent_at).where(_S.c.id == survey_id)
    ).first()
    if row is None:
        return None
    sent = utc(row.sent_at)
    assert sent is not None
    return SurveyRow(int(row.id), int(row.ticket_id), str(row.recipient), sent)
