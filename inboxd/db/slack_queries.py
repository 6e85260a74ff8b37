"""Slack notice rows: what a notice carries, enqueue with its dedupe key, the listing.

The row's life (claim under a lease, sent / retried / failed) is the generic
``db.row_queue``; ``QUEUE`` is it over the notices table. What differs is
``dedupe_key``: it is unique, and ``enqueue`` is an INSERT ... ON CONFLICT DO
NOTHING (``sql.insert_ignore``, SQLite and PostgreSQL), so the same alert
queued twice (a mail processed again, the same broken rules edit seen by SIGHUP
and by the file watcher) is one row and one post.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import insert, select
from sqlalchemy.engine import CursorResult

from inboxd.db import row_queue as rq
from inboxd.db.sql import insert_ignore
from inboxd.db.tables import SlackNotice

DB = rq.DB

_T = SlackNotice.__table__  # type: ignore[attr-defined]

QUEUED, SENDING, SENT, FAILED = rq.QUEUED, rq.SENDING, rq.SENT, rq.FAILED
# The Slack call a row stands for (``call``): a message of its own, a ticket's
# living root message, a reply in its thread, a chat.update of the root.
POST, ROOT, REPLY, UPDATE = "post", "root", "reply", "update"
CALLS = (POST, ROOT, REPLY, UPDATE)


@dataclass(frozen=True, slots=True)
class SlackPost:
    """A claimed row: everything the poster needs, detached from the session."""

    id: int
    ticket_id: int | None
    channel: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    dedupe_key: str | None
    attempts: int  # including the attempt this claim is for
    created_at: datetime
    call: str = POST
    thread_id: int | None = None
    digest: str = ""


QUEUE = rq.RowQueue(_T, SlackPost, blocks=lambda value: tuple(value or ()))
claim = QUEUE.claim  # the tests' name


def find_id(db: DB, dedupe_key: str) -> int | None:
    return cast(
        "int | None",
        db.execute(select(_T.c.id).where(_T.c.dedupe_key == dedupe_key)).scalar_one_or_none(),
    )


def enqueue(
    db: DB,
    *,
    channel: str,
    text: str,
    blocks: Sequence[dict[str, Any]],
    now: datetime,
    ticket_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    call: str = POST,
    thread_id: int | None = None,
    digest: str = "",
) -> int | None:
    """Queue one call; returns the new row id, or None when ``dedupe_key`` was queued before.

    ``root``, ``reply`` and ``update`` rows name their ``thread_id``; root and update
    rows carry the ``digest`` of the state their blocks show."""
    assert call in CALLS, call
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "channel": channel,
        "text": text,
        "blocks": list(blocks),
        "dedupe_key": dedupe_key,
        "call": call,
        "thread_id": thread_id,
        "digest": digest,
        **QUEUE.fresh(now=now, not_before=not_before),
    }
    if dedupe_key is None:  # NULLs never conflict: a plain insert
        result = db.execute(insert(_T).values(**values))
        key = cast(CursorResult[Any], result).inserted_primary_key
        assert key is not None
        return int(key[0])
    if find_id(db, dedupe_key) is not None:
        return None
    # Still ON CONFLICT DO NOTHING: a concurrent writer (PostgreSQL) may win the race.
    insert_ignore(db, SlackNotice, [values])
    return find_id(db, dedupe_key)


def list_rows(
    db: DB,
    *,
    status: str | None = None,
    ticket_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, without the blocks (for a CLI listing and tests)."""
    where = [_T.c.ticket_id == ticket_id] if ticket_id is not None else []
    columns = ("ticket_id", "channel", "text", "dedupe_key", "call", "thread_id")
    return QUEUE.listing(db, columns, status=status, limit=limit, where=where)
