"""Mailbox leases: which daemon may fetch a mailbox, on SQLite and PostgreSQL alike.

One row per mailbox. Taking a lease is one conditional upsert (the row is ours,
or it expired), so two daemons racing for a free mailbox cannot both win: on
PostgreSQL the loser's ``ON CONFLICT DO UPDATE`` waits for the winner's row lock
and then finds the row taken; SQLite writes one at a time. ``confirm`` runs in
a batch's transaction and locks the row until that commit, so a lease cannot
change hands between the check and the commit of the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from inboxd.db.sql import utc
from inboxd.db.tables import MailboxLease

_TABLE = MailboxLease.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    expires_at: datetime


def take(db: Connection, mailbox: str, owner: str, now: datetime, period: timedelta) -> bool:
    """Take or renew ``mailbox``'s lease for ``owner`` until ``now + period``; True when
    ``owner`` holds it now (it was free, expired, or already ``owner``'s)."""
    insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_TABLE).values(
        mailbox=mailbox, owner=owner, acquired_at=now, expires_at=now + period
    )
    current = _TABLE.c
    mine = current.owner == stmt.excluded.owner
    upsert = stmt.on_conflict_do_update(
        index_elements=[current.mailbox],
        set_={
            "owner": stmt.excluded.owner,
            "expires_at": stmt.excluded.expires_at,
            # a renewal keeps the time it was first taken (how long a daemon has held it)
            "acquired_at": case((mine, current.acquired_at), else_=stmt.excluded.acquired_at),
        },
        where=mine | (current.expires_at <= stmt.excluded.acquired_at),
    ).returning(current.owner)
    return db.execute(upsert).first() is not None


def confirm(db: Connection, mailbox: str, owner: str, now: datetime, period: timedelta) -> bool:
    """Inside a batch's transaction: renew ``owner``'s lease and keep its row locked
    until the commit; False when another daemon holds it (or nobody: it was given up),
    so the caller must roll the batch back."""
    result = db.execute(
        update(MailboxLease)
        .where(col(MailboxLease.mailbox) == mailbox, col(MailboxLease.owner) == owner)
        .values(expires_at=now + period)
    )
    return bool(result.rowcount == 1)


def release(db: Connection, mailbox: str, owner: str) -> None:
    """Give the lease up (a clean stop): another daemon may take it at once."""
    db.execute(
        delete(MailboxLease).where(
            col(MailboxLease.mailbox) == mailbox, col(MailboxLease.owner) == owner
        )
    )


def holder(db: Connection, mailbox: str) -> Holder | None:
    """Who holds ``mailbox``'s lease and until when (None: nobody ever, or given up)."""
    row = db.execute(
        select(MailboxLease.owner, MailboxLease.expires_at).where(
            col(MailboxLease.mailbox) == mailbox
        )
    ).first()
    if row is None:
        return None
    expires = utc(row[1])
    assert expires is not None
    return Holder(str(row[0]), expires)
