"""Queries and writes, one function each, all inside a caller's Session.

Hot-path writes use SQL expression inserts rather than ORM objects: ingest
writes several rows per mail and the ORM's unit of work would be the slowest
part of the pipeline (about 6,000 rows/s against 49,000 here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from inboxd.core.model import TicketStatus
from inboxd.core.thread import KnownKey, ThreadKeys, ThreadLookup, TicketSnapshot
from inboxd.db.tables import (
    AgentIdentity,
    AssignmentCursor,
    Blob,
    Event,
    MailboxState,
    Message,
    Participant,
    Quarantine,
    ThreadKey,
    Ticket,
)

OPEN_STATUSES = (TicketStatus.NEW.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value)


def _insert_ignore(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = model.__table__
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    session.execute(stmt, list(rows))


# --- messages and blobs -------------------------------------------------------------


def put_blob(session: Session, sha256: str, data: bytes) -> None:
    _insert_ignore(session, Blob, [{"sha256": sha256, "size": len(data), "data": data}])


def get_blob(session: Session, sha256: str) -> bytes | None:
    return session.execute(select(Blob.data).where(Blob.sha256 == sha256)).scalar_one_or_none()


def find_message(session: Session, message_id: str, digest: str) -> tuple[int, int | None] | None:
    """(row id, ticket id) of a stored mail with this identity."""
    row = session.execute(
        select(Message.id, Message.ticket_id).where(
            Message.message_id == message_id, Message.content_digest == digest
        )
    ).first()
    return (int(row[0]), row[1]) if row else None


def add_message(session: Session, values: dict[str, Any]) -> int:
    result = session.execute(insert(Message).values(**values).returning(col(Message.id)))
    return int(result.scalar_one())


def add_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), list(rows))


# --- threading ------------------------------------------------------------------------


def thread_lookup(session: Session, keys: ThreadKeys) -> ThreadLookup:
    """Everything ``core.thread.choose`` needs, in at most three queries plus merges."""
    known: dict[str, KnownKey] = {}
    ids = list(keys.lookup_ids)
    if ids:
        for key, ticket_id, origin in session.execute(
            select(ThreadKey.key, ThreadKey.ticket_id, ThreadKey.origin).where(
                col(ThreadKey.key).in_(ids)
            )
        ):
            known[key] = KnownKey(ticket_id, origin)
    wanted = {k.ticket_id for k in known.values()} | set(keys.candidate_tickets)
    snapshots = ticket_snapshots(session, wanted)
    # follow merges: pull in the tickets others were merged into
    for _ in range(16):
        missing = {s.merged_into for s in snapshots.values() if s.merged_into} - set(snapshots)
        if not missing:
            break
        snapshots.update(ticket_snapshots(session, {m for m in missing if m is not None}))
    return ThreadLookup(known, snapshots)


def ticket_snapshots(session: Session, ticket_ids: Iterable[int]) -> dict[int, TicketSnapshot]:
    ids = sorted(set(ticket_ids))
    if not ids:
        return {}
    people: dict[int, set[str]] = {i: set() for i in ids}
    for ticket_id, email in session.execute(
        select(Participant.ticket_id, Participant.email).where(col(Participant.ticket_id).in_(ids))
    ):
        people[ticket_id].add(email)
    out: dict[int, TicketSnapshot] = {}
    for tid, status, changed, merged in session.execute(
        select(Ticket.id, Ticket.status, Ticket.status_changed_at, Ticket.merged_into).where(
            col(Ticket.id).in_(ids)
        )
    ):
        out[tid] = TicketSnapshot(tid, status, changed, frozenset(people[tid]), merged)
    return out


def add_thread_keys(session: Session, ticket_id: int, own: str, cited: Iterable[str]) -> None:
    """Record the mail's own id (origin self) and the ids it cites (origin ref).

    A key already pointing at a ticket keeps its ticket (first come wins); a
    ``ref`` key is upgraded to ``self`` when the cited mail itself arrives.
    """
    rows = [{"key": own, "ticket_id": ticket_id, "origin": "self"}]
    rows += [{"key": c, "ticket_id": ticket_id, "origin": "ref"} for c in cited if c != own]
    _insert_ignore(session, ThreadKey, rows)
    session.execute(
        update(ThreadKey)
        .where(col(ThreadKey.key) == own, col(ThreadKey.origin) == "ref")
        .values(origin="self")
    )


def find_group_ticket(
    session: Session, requester: str, normalized_subject: str, since: datetime
) -> int | None:
    """An open ticket of the same sender and subject touched since ``since``."""
    return session.execute(
        select(Ticket.id)
        .where(
            Ticket.requester == requester,
            Ticket.normalized_subject == normalized_subject,
            col(Ticket.status).in_(OPEN_STATUSES),
            Ticket.updated_at >= since,
            col(Ticket.merged_into).is_(None),
        )
        .order_by(col(Ticket.id).desc())
        .limit(1)
    ).scalar_one_or_none()


# --- tickets ------------------------------------------------------------------------


def create_ticket(session: Session, values: dict[str, Any]) -> int:
    result = session.execute(insert(Ticket).values(**values).returning(col(Ticket.id)))
    return int(result.scalar_one())


def update_ticket(session: Session, ticket_id: int, values: dict[str, Any]) -> None:
    if values:
        session.execute(update(Ticket).where(col(Ticket.id) == ticket_id).values(**values))


def get_ticket(session: Session, ticket_id: int) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def add_participants(
    session: Session, ticket_id: int, people: Iterable[tuple[str, str, str]]
) -> None:
    """(email, name, role) rows; an address already on the ticket keeps its role."""
    rows = [{"ticket_id": ticket_id, "email": e, "name": n, "role": r} for e, n, r in people if e]
    _insert_ignore(session, Participant, rows)


def participants(session: Session, ticket_id: int) -> list[Participant]:
    return list(
        session.execute(
            select(Participant)
            .where(Participant.ticket_id == ticket_id)
            .order_by(col(Participant.id))
        ).scalars()
    )


def add_event(
    session: Session,
    ticket_id: int,
    at: datetime,
    actor: str,
    kind: str,
    data: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(Event).values(ticket_id=ticket_id, at=at, actor=actor, kind=kind, data=data or {})
    )


def events(session: Session, ticket_id: int) -> list[Event]:
    return list(
        session.execute(
            select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id))
        ).scalars()
    )


def list_tickets(session: Session, status: str | None = None, limit: int = 1000) -> list[Ticket]:
    stmt = select(Ticket).order_by(col(Ticket.id))
    if status:
        stmt = stmt.where(Ticket.status == status)
    return list(session.execute(stmt.limit(limit)).scalars())


def ticket_messages(session: Session, ticket_id: int) -> list[Message]:
    return list(
        session.execute(
            select(Message).where(Message.ticket_id == ticket_id).order_by(col(Message.id))
        ).scalars()
    )


def count_rows(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# --- assignment -----------------------------------------------------------------------


def open_ticket_counts(session: Session, agents: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(agents, 0)
    for assignee, n in session.execute(
        select(Ticket.assignee, func.count())
        .where(
            col(Ticket.assignee).in_(list(agents)),
            col(Ticket.status).in_(OPEN_STATUSES),
        )
        .group_by(Ticket.assignee)
    ):
        counts[assignee] = int(n)
    return counts


def round_robin_next(session: Session, team: str, agents: Sequence[str]) -> str | None:
    """The agent after the team's last pick, advancing the cursor in this transaction."""
    if not agents:
        return None
    last = session.execute(
        select(AssignmentCursor.last_agent).where(AssignmentCursor.team == team)
    ).scalar_one_or_none()
    nxt = agents[(agents.index(last) + 1) % len(agents)] if last in agents else agents[0]
    _insert_ignore(session, AssignmentCursor, [{"team": team, "last_agent": nxt}])
    session.execute(
        update(AssignmentCursor).where(col(AssignmentCursor.team) == team).values(last_agent=nxt)
    )
    return nxt


def agent_number(session: Session, email: str, name: str = "") -> int:
    """A stable positive number for an agent address (bound into reply tokens)."""
    email = email.lower()
    _insert_ignore(session, AgentIdentity, [{"email": email, "name": name}])
    return int(
        session.execute(select(AgentIdentity.id).where(AgentIdentity.email == email)).scalar_one()
    )


def agent_email_by_number(session: Session, number: int) -> str | None:
    return session.execute(
        select(AgentIdentity.email).where(AgentIdentity.id == number)
    ).scalar_one_or_none()


# --- quarantine and mailbox state ------------------------------------------------------


def add_quarantine(session: Session, values: dict[str, Any]) -> int:
    result = session.execute(insert(Quarantine).values(**values).returning(col(Quarantine.id)))
    return int(result.scalar_one())


def list_quarantine(session: Session, include_released: bool = False) -> list[Quarantine]:
    stmt = select(Quarantine).order_by(col(Quarantine.id))
    if not include_released:
        stmt = stmt.where(col(Quarantine.released_at).is_(None))
    return list(session.execute(stmt).scalars())


def get_checkpoint(session: Session, mailbox: str, folder: str) -> tuple[int, int] | None:
    row = session.execute(
        select(MailboxState.uidvalidity, MailboxState.last_uid).where(
            MailboxState.mailbox == mailbox, MailboxState.folder == folder
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else None


def set_checkpoint(
    session: Session, mailbox: str, folder: str, uidvalidity: int, last_uid: int, now: datetime
) -> None:
    _insert_ignore(
        session,
        MailboxState,
        [
            {
                "mailbox": mailbox,
                "folder": folder,
                "uidvalidity": uidvalidity,
                "last_uid": last_uid,
                "updated_at": now,
            }
        ],
    )
    session.execute(
        update(MailboxState)
        .where(col(MailboxState.mailbox) == mailbox, col(MailboxState.folder) == folder)
        .values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
    )
