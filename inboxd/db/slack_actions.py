"""The exactly-once gate of Slack button presses: one insert wins per press key.

Socket Mode may deliver a press again (an ack that came late), and several
daemons may each hold a connection; the press is acted on by whichever
transaction inserts its key first, in the same transaction as the ticket change,
so a press is never half handled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from inboxd.db.sql import DB, conn_of, utc
from inboxd.db.tables import SlackAction

_A = SlackAction.__table__  # type: ignore[attr-defined]


def claim(
    db: DB,
    key: str,
    *,
    envelope_id: str,
    ticket_id: int | None,
    action: str,
    user_id: str,
    now: datetime,
) -> bool:
    """True for the one caller that records this press first; then it acts on it."""
    maker: Any = postgresql.insert if conn_of(db).dialect.name == "postgresql" else sqlite.insert
    stmt = (
        maker(_A)
        .values(
            key=key,
            envelope_id=envelope_id,
            ticket_id=ticket_id,
            action=action,
            user_id=user_id,
            handled_at=utc(now),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(_A.c.id)
    )
    return db.execute(stmt).first() is not None


__all__ = ["claim"]
