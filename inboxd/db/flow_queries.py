"""Reads and small writes the outbound mail flows need (acks, notifications, relays).

Kept apart from ``repo`` (the ingest hot path) so each side can change alone.
Every function takes a Session or a Connection and returns plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, LargeBinary, bindparam, func, select
from sqlmodel import Session

from inboxd.db import repo
from inboxd.db.fastexec import PreparedQuery
from inboxd.db.tables import AgentIdentity, Attachment, Blob, Event, Message, Participant, Ticket

DB = Session | Connection

_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_PART = Participant.__table__  # type: ignore[attr-defined]
_ATT = Attachment.__table__  # type: ignore[attr-defined]
_BLOB = Blob.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]
_AGENT = AgentIdentity.__table__  # type: ignore[attr-defined]

# The acknowledgement/notification reactor runs these for every stored mail inside
# ingest; on the DB-API cursor (fastexec) each is ~10-20 us instead of ~100-200 us.
_TICKET_COLUMNS = tuple(c.key for c in _TICKET.c)
_TICKET_ROW = PreparedQuery(lambda _n: select(_TICKET).where(_TICKET.c.id == bindparam("tid")))
HEAD_BYTES = 65536  # enough for any header block we read back
# PreparedQuery binds every value (SQLite renders LIMIT as "LIMIT ? OFFSET ?")
_ONE_ROW = {"lim": 1, "off": 0}


def _conn(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def ticket(db: DB, ticket_id: int) -> dict[str, Any] | None:
    rows = _TICKET_ROW.all(_conn(db), {"tid": ticket_id})
    if not rows:
        return None
    out = dict(zip(_TICKET_COLUMNS, rows[0], strict=True))
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


_FIRST_MESSAGE = PreparedQuery(
    lambda _n: (
        select(*_MSG_COLUMNS)
        .where(_MESSAGE.c.ticket_id == bindparam("tid"))
        .order_by(_MESSAGE.c.id)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )
)
_LAST_CUSTOMER = PreparedQuery(
    lambda _n: (
        select(*_MSG_COLUMNS)
        .where(
            _MESSAGE.c.ticket_id == bindparam("tid"),
            _MESSAGE.c.direction == bindparam("direction"),
            _MESSAGE.c.kind == bindparam("kind"),
        )
        .order_by(_MESSAGE.c.id.desc())
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )
)
_FIRST_HEAD = PreparedQuery(
    lambda _n: (
        select(
            _MESSAGE.c.message_id,
            func.substr(_BLOB.c.data, bindparam("one"), bindparam("head"), type_=LargeBinary),
        )
        .join(_BLOB, _BLOB.c.sha256 == _MESSAGE.c.raw_sha256)
        .where(_MESSAGE.c.ticket_id == bindparam("tid"))
        .order_by(_MESSAGE.c.id)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )
)


def _one_stored(rows: list[tuple[Any, ...]]) -> StoredMessage | None:
    if not rows:
        return None
    received = _utc(rows[0][7])
    assert received is not None
    row_id, message_id, direction, kind, from_email, from_name, raw_sha256 = rows[0][:7]
    return StoredMessage(
        row_id, message_id, direction, kind, from_email, from_name, raw_sha256, received
    )


def first_message(db: DB, ticket_id: int) -> StoredMessage | None:
    """The mail that opened the ticket (the thread root)."""
    return _one_stored(_FIRST_MESSAGE.all(_conn(db), {"tid": ticket_id, **_ONE_ROW}))


def first_message_head(db: DB, ticket_id: int) -> tuple[str, bytes] | None:
    """Message-ID and the first ``HEAD_BYTES`` of the raw mail that opened the ticket.

    One query for what threading needs (the root id and its Thread-Index header),
    without loading a large raw mail whole.
    """
    rows = _FIRST_HEAD.all(_conn(db), {"tid": ticket_id, "one": 1, "head": HEAD_BYTES, **_ONE_ROW})
    return (str(rows[0][0]), bytes(rows[0][1] or b"")) if rows else None


def last_customer_message(db: DB, ticket_id: int) -> StoredMessage | None:
    """The newest mail a customer (a person, not a machine) sent on the ticket."""
    return _one_stored(
        _LAST_CUSTOMER.all(
            _conn(db), {"tid": ticket_id, "direction": "in", "kind": "normal", **_ONE_ROW}
        )
    )


@dataclass(frozen=True, slots=True)
class CustomerMail:
    """The newest customer mail of a ticket, as a notification shows it."""

    message_id: str
    from_name: str
    from_email: str
    subject: str
    date: datetime | None
    new_text: str  # the stored new text (the whole text when they are the same)
    text: str
    html: str
    attachments: tuple[tuple[str, int], ...]  # (filename, size)


def last_customer_summary(db: DB, ticket_id: int) -> CustomerMail | None:
    """The newest mail a customer sent on the ticket, with its file names.
    Read when a ticket changes hands, not per stored mail, so a plain query."""
    row = db.execute(
        select(
            _MESSAGE.c.id,
            _MESSAGE.c.message_id,
            _MESSAGE.c.from_name,
            _MESSAGE.c.from_email,
            _MESSAGE.c.subject,
            _MESSAGE.c.date,
            _MESSAGE.c.text,
            _MESSAGE.c.new_text,
            _MESSAGE.c.html,
        )
        .where(
            _MESSAGE.c.ticket_id == ticket_id,
            _MESSAGE.c.direction == "in",
            _MESSAGE.c.kind == "normal",
        )
        .order_by(_MESSAGE.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    files = db.execute(
        select(_ATT.c.filename, _ATT.c.size)
        .where(_ATT.c.message_row_id == row.id)
        .order_by(_ATT.c.id)
    ).all()
    return CustomerMail(
        message_id=row.message_id,
        from_name=row.from_name,
        from_email=row.from_email,
        subject=row.subject,
        date=_utc(row.date),
        new_text=row.text if row.new_text is None else row.new_text,
        text=row.text,
        html=row.html,
        attachments=tuple((f.filename, f.size) for f in files),
    )


_AGENT_NUMBER = PreparedQuery(
    lambda _n: select(_AGENT.c.id).where(_AGENT.c.email == bindparam("email"))
)


def agent_number(db: DB, email: str, name: str = "") -> int:
    """``repo.agent_number`` with a read-only fast path for agents already numbered."""
    rows = _AGENT_NUMBER.all(_conn(db), {"email": email.lower()})
    return int(rows[0][0]) if rows else repo.agent_number(db, email, name)


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
