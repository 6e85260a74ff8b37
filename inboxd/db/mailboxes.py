"""Mailbox state: the IMAP checkpoint (UIDVALIDITY, last UID) per mailbox folder.

Committed in the same transaction as the batch it covers, so a crash at any
point neither loses nor duplicates mail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from inboxd.db.sql import DB, insert_ignore
from inboxd.db.tables import MailboxState


def get_checkpoint(db: DB, mailbox: str, folder: str) -> tuple[int, int] | None:
    row = db.execute(
        select(MailboxState.uidvalidity, MailboxState.last_uid).where(
            MailboxState.mailbox == mailbox, MailboxState.folder == folder
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else None


def set_checkpoint(
    db: DB, mailbox: str, folder: str, uidvalidity: int, last_uid: int, now: datetime
) -> None:
    insert_ignore(
        db,
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
    db.execute(
        update(MailboxState)
        .where(col(MailboxState.mailbox) == mailbox, col(MailboxState.folder) == folder)
        .values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
    )
