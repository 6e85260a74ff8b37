"""Read-only queries for ``inboxd rules replay``: recent tickets with their inbound raw mail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from inboxd.core.model import Direction
from inboxd.db.tables import Blob, Message, Ticket


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    raw: bytes
    mailbox: str
    received_at: datetime  # aware, UTC


@dataclass(slots=True)
class StoredTicket:
    id: int
    fields: dict[str, Any]  # routing fields as stored now
    messages: list[StoredMessage] = field(default_factory=list)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def tickets_since(engine: Engine, since: datetime, batch: int = 500) -> Iterator[StoredTicket]:
    """Tickets created at or after ``since`` (not merged away), oldest first, each with
    its inbound messages in arrival order. Streams: one ticket batch in memory."""
    with Session(engine) as session:
        last_id = 0
        while True:
            tickets = session.exec(
                select(Ticket)
                .where(
                    col(Ticket.created_at) >= since.astimezone(UTC),
                    col(Ticket.merged_into).is_(None),
                    col(Ticket.id) > last_id,
                )
                .order_by(col(Ticket.id))
                .limit(batch)
            ).all()
            if not tickets:
                return
            by_id: dict[int, StoredTicket] = {}
            for t in tickets:
                assert t.id is not None
                by_id[t.id] = StoredTicket(
                    t.id,
                    {
                        "team": t.team,
                        "assignee": t.assignee,
                        "priority": t.priority,
                        "vip": t.vip,
                        "sla_policy": t.sla_policy,
                        "status": t.status,
                        "tags": list(t.tags or []),
                    },
                )
            rows = session.execute(
                sa_select(
                    col(Message.id),
                    col(Message.ticket_id),
                    col(Message.mailbox),
                    col(Message.received_at),
                    col(Blob.data),
                )
                .join(Blob, col(Blob.sha256) == col(Message.raw_sha256))
                .where(
                    col(Message.ticket_id).in_(list(by_id)),
                    col(Message.direction) == Direction.INBOUND.value,
                )
                .order_by(col(Message.ticket_id), col(Message.received_at), col(Message.id))
            ).all()
            for mid, tid, mailbox, received_at, data in rows:
                by_id[tid].messages.append(
                    StoredMessage(mid, bytes(data), mailbox, _aware(received_at))
                )
            yield from by_id.values()
            last_id = max(by_id)
