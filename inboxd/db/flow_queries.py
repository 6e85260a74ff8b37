"""Reads and small writes the outbound mail flows need (acks, notifications, relays).

Kept apart from ``repo`` (the ingest hot path) so each side can change alone.
Every function takes a Session or a Connection and returns plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlmodel import Session

from inboxd.db.tables import Attachment, Blob, Event, Message, Participant, Ticket

DB = Session | Connection

_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_PART = Participant.__table__  # type: ignore[attr-defined]
_ATT = Attachment.__table__  # type: ignore[attr-defined]
_BLOB = Blob.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def ticket(db: DB, ticket_id: int) -> dict[str, Any] | None:
    row = db.execute(select(_TICKET).where(_TICKET.c.id == ticket_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["tags"] = list(out.get("tags") or [])
    for key in ("created_at", "updated_at", "status_changed_at"):
        out[key] = _utc(out[key])
    return out


def ticket_exists(db: DB, ticket_id: int) -> bool:
    return db.execute(select(_TICKET.c.id).where(_TICKET.c.id == ticket_id)).first() is not None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    row_id: int
    message_id: str
    direction: str
    kind: str
    from_email: str
    from_name: str
    raw_sha256: str
    received_at: datetime


def _stored(row: Any) -> StoredMessage:
    received = _utc(row.received_at)
    assert received is not None
    return StoredMessage(
        row.id,
        row.message_id,
        row.direction,
        row.kind,
        row.from_email,
        row.from_name,
        row.raw_sha256,
        received,
    )


_MSG_COLUMNS = (
    _MESSAGE.c.id,
    _MESSAGE.c.message_id,
    _MESSAGE.c.direction,
    _MESSAGE.c.kind,
    _MESSAGE.c.from_email,
    _MESSAGE.c.from_name,
    _MESSAGE.c.raw_sha256,
    _MESSAGE.c.received_at,
)


def first_message(db: DB, ticket_id: int) -> StoredMessage | None:
    """The mail that opened the ticket (the thread root)."""
    row = db.execute(
        select(*_MSG_COLUMNS).where(_MESSAGE.c.ticket_id == ticket_id).order_by(_MESSAGE.c.id)
    ).first()
    return _stored(row) if row is not None else None


def last_customer_message(db: DB, ticket_id: int) -> StoredMessage | None:
    """The newest mail a customer (a person, not a machine) sent on the ticket."""
    row = db.execute(
        select(*_MSG_COLUMNS)
        .where(
            _MESSAGE.c.ticket_id == ticket_id,
            _MESSAGE.c.direction == "in",
            _MESSAGE.c.kind == "normal",
        )
        .order_by(_MESSAGE.c.id.desc())
    ).first()
    return _stored(row) if row is not None else None


def customer_participants(db: DB, ticket_id: int) -> list[tuple[str, str, str]]:
    """(email, name, role) of the requester and customer-side participants, oldest first."""
    rows = db.execute(
        select(_PART.c.email, _PART.c.name, _PART.c.role)
        .where(_PART.c.ticket_id == ticket_id, _PART.c.role.in_(("requester", "customer")))
        .order_by(_PART.c.id)
    ).all()
    return [(r.email, r.name, r.role) for r in rows]


def message_attachments(db: DB, message_row_id: int) -> list[dict[str, Any]]:
    """Attachments of a stored message, with their bytes."""
    rows = db.execute(
        select(
            _ATT.c.filename,
            _ATT.c.content_type,
            _ATT.c.content_id,
            _ATT.c.inline,
            _ATT.c.sha256,
            _BLOB.c.data,
        )
        .join(_BLOB, _BLOB.c.sha256 == _ATT.c.sha256)
        .where(_ATT.c.message_row_id == message_row_id)
        .order_by(_ATT.c.id)
    ).all()
    return [dict(r._mapping) for r in rows]


def blob(db: DB, sha256: str) -> bytes | None:
    value = db.execute(select(_BLOB.c.data).where(_BLOB.c.sha256 == sha256)).scalar()
    return bytes(value) if value is not None else None


def ticket_of_message_id(db: DB, message_id: str) -> int | None:
    """The ticket holding a stored mail with this Message-ID (any direction)."""
    return db.execute(
        select(_MESSAGE.c.ticket_id)
        .where(_MESSAGE.c.message_id == message_id, _MESSAGE.c.ticket_id.is_not(None))
        .order_by(_MESSAGE.c.id)
    ).scalar()


def has_event(db: DB, ticket_id: int, kind: str) -> bool:
    return (
        db.execute(
            select(_EVENT.c.id).where(_EVENT.c.ticket_id == ticket_id, _EVENT.c.kind == kind)
        ).first()
        is not None
    )
