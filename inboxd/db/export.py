"""Streaming reads for ``inboxd export``: every ticket with its messages, people and events.

Tickets come in id order, a page at a time, with one query per page for each
of messages, participants and events, so memory stays flat however large the
desk is; raw mails are read one at a time, only when an mbox is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from inboxd.db.messages import blob
from inboxd.db.tables import Event, Message, Participant, Ticket


@dataclass(frozen=True, slots=True)
class TicketDump:
    ticket: Ticket
    messages: list[Message]
    participants: list[Participant]
    events: list[Event]


def tickets(
    session: Session,
    *,
    since: datetime | None = None,
    ticket_id: int | None = None,
    page: int = 200,
) -> Iterator[TicketDump]:
    """Tickets created or touched since ``since`` (or just ``ticket_id``), oldest id first."""
    after = 0
    while True:
        stmt = select(Ticket).where(col(Ticket.id) > after).order_by(col(Ticket.id)).limit(page)
        if since is not None:
            stmt = stmt.where(Ticket.updated_at >= since)
        if ticket_id is not None:
            stmt = stmt.where(Ticket.id == ticket_id)
        rows = list(session.exec(stmt))
        if not rows:
            return
        ids = [t.id for t in rows]
        by_ticket_msgs: dict[int | None, list[Message]] = {i: [] for i in ids}
        for m in session.exec(
            select(Message).where(col(Message.ticket_id).in_(ids)).order_by(col(Message.id))
        ):
            by_ticket_msgs[m.ticket_id].append(m)
        people: dict[int | None, list[Participant]] = {i: [] for i in ids}
        for p in session.exec(
            select(Participant)
            .where(col(Participant.ticket_id).in_(ids))
            .order_by(col(Participant.id))
        ):
            people[p.ticket_id].append(p)
        log: dict[int | None, list[Event]] = {i: [] for i in ids}
        for e in session.exec(
            select(Event).where(col(Event.ticket_id).in_(ids)).order_by(col(Event.id))
        ):
            log[e.ticket_id].append(e)
        for t in rows:
            yield TicketDump(t, by_ticket_msgs[t.id], people[t.id], log[t.id])
        session.expunge_all()  # what was yielded is done with: keep the session small
        after = int(rows[-1].id or 0)


def raw_mail(session: Session, message: Message) -> bytes | None:
    """The mail as it arrived (None when its bytes were purged or forgotten)."""
    return blob(session, message.raw_sha256)
