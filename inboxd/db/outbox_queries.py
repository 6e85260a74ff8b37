"""Outbox rows: what a mail row carries, enqueue, and the outbox's own lookups.

The row's life (claim under a lease, sent / retried / failed) is the generic
``db.row_queue``; ``QUEUE`` is it over the outbox table. What only the outbox
has: ``count_to_recipient`` and ``count_kind`` (the ack caps), ``find_by_message_id`` (bounces),
``narrow_rcpts`` (a retry goes only to the recipients that said "later") and
the CLI listing. Every function runs in the caller's transaction.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlmodel import Session

from inboxd.db import behind
from inboxd.db import row_queue as rq
from inboxd.db.fastexec import Prepared, PreparedQuery
from inboxd.db.recent import RecentTimes
from inboxd.db.sql import one_of
from inboxd.db.tables import Outbox

DB = rq.DB

_T = Outbox.__table__  # type: ignore[attr-defined]

QUEUED, SENDING, SENT, FAILED = rq.QUEUED, rq.SENDING, rq.SENT, rq.FAILED
_utc = rq.utc


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A claimed row: everything the sender needs, detached from the session."""

    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes  # b"" while ``intent`` says what to write (core.queued)
    attempts: int  # including the attempt this claim is for
    created_at: datetime
    intent: str = ""


QUEUE = rq.RowQueue(_T, OutboxMail, rcpts=tuple, raw=bytes)
# the names the flows, the CLI and the tests use
claim = QUEUE.claim
get = QUEUE.get
mark_failed = QUEUE.mark_failed
retry_now = QUEUE.retry_now
counts = QUEUE.counts


def _conn(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


# enqueue runs for every ack and notification inside ingest: straight on the
# DB-API cursor (fastexec), not through SQLAlchemy's execute
_INSERT = Prepared(lambda _d: _T.insert().returning(_T.c.id))
_COUNT_TO = PreparedQuery(
    lambda _n: select(func.count()).where(
        _T.c.rcpt_key == bindparam("rcpt"),
        _T.c.kind == bindparam("kind"),
        _T.c.created_at >= bindparam("since"),
    )
)


def enqueue(
    db: DB,
    *,
    ticket_id: int | None,
    kind: str,
    message_id: str,
    mail_from: str,
    rcpts: Sequence[str],
    raw: bytes = b"",
    now: datetime,
    not_before: datetime | None = None,
    intent: str = "",
) -> int:
    """Queue one mail, as its bytes (``raw``) or as what to write (``intent``, the
    JSON of a ``core.queued.QueuedMail``); returns the row id. Call inside the state
    change's transaction."""
    row = _row(ticket_id, kind, message_id, mail_from, rcpts, raw, intent, now, not_before)
    return int(_INSERT.run(_conn(db), row).fetchone()[0])


def enqueue_held(
    db: DB,
    *,
    ticket_id: int | None,
    kind: str,
    message_id: str,
    mail_from: str,
    rcpts: Sequence[str],
    intent: str,
    now: datetime,
) -> None:
    """``enqueue`` for the flows of a stored mail: inside an ingest batch the row waits
    for the batch's one statement (nothing reads it before the commit but the ack
    caps, which count held rows too)."""
    row = _row(ticket_id, kind, message_id, mail_from, rcpts, b"", intent, now, None)
    _HELD.add(db, [row])


def _row(
    ticket_id: int | None,
    kind: str,
    message_id: str,
    mail_from: str,
    rcpts: Sequence[str],
    raw: bytes,
    intent: str,
    now: datetime,
    not_before: datetime | None,
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "kind": kind,
        "message_id": message_id,
        "mail_from": mail_from,
        "rcpts": list(rcpts),
        "rcpt_key": rcpts[0].lower() if rcpts else "",
        "rcpt_domain": rcpts[0].lower().rpartition("@")[2] if rcpts else "",
        "raw": raw,
        "intent": intent,
        **QUEUE.fresh(now=now, not_before=not_before),
        "sent_at": None,
    }


_INSERT_MANY = Prepared(lambda _d: _T.insert())
_HELD = behind.Held("outbox", lambda conn, rows: _INSERT_MANY.run_many(conn, rows))


def held_count() -> int:
    """The mails this ingest batch has queued so far (for its log line)."""
    return len(_HELD.held())


def _held_count(kind: str, since: datetime, **match: str) -> int:
    """Rows of ``kind`` held in this batch since ``since`` matching ``match``.

    Counted from an index of the held rows by (kind, matched fields), kept in the
    batch's memo and grown as rows are held: every ack of a batch asks, and a scan
    of the held rows each time grows with the square of the batch. A mail rolled
    back clears the memos (``behind.drop``), so the index is built again."""
    held = _HELD.held()
    index = behind.memo("held_outbox_counts")
    if index is None:  # outside a batch nothing is held
        return 0
    fields = tuple(sorted(match))
    entry = index.get((kind, fields))
    if entry is None:
        entry = index[(kind, fields)] = [0, {}]
    seen, buckets = entry
    for r in held[seen:]:
        if r["kind"] == kind:
            insort(buckets.setdefault(tuple(r[f] for f in fields), []), r["created_at"])
    entry[0] = len(held)
    times = buckets.get(tuple(match[f] for f in fields), ())
    return len(times) - bisect_left(times, since)


def narrow_rcpts(db: DB, row_id: int, rcpts: Sequence[str]) -> None:
    """A partly refused mail is retried only to ``rcpts`` (those refused for now)."""
    db.execute(update(_T).where(_T.c.id == row_id).values(rcpts=list(rcpts)))


# the hourly ack cap's counts by recipient, read for a whole ingest batch
_QUEUED_TO = RecentTimes(
    "outbox_by_recipient",
    PreparedQuery(
        lambda n: select(_T.c.rcpt_key, _T.c.created_at).where(
            _T.c.kind == bindparam("kind"),
            _T.c.created_at >= bindparam("since"),
            one_of(_T.c.rcpt_key, n),
        )
    ),
)


def prefetch_to_recipients(db: DB, *, kind: str, rcpts: Iterable[str], since: datetime) -> None:
    """Inside an ingest batch: read when mail of ``kind`` was queued to each of
    ``rcpts`` since ``since``, in one query, for ``count_to_recipient``
    (``db.recent``; the batch's own rows are held and counted as before)."""
    _QUEUED_TO.prefetch(db, [r.lower() for r in rcpts], since, kind=kind)


def count_to_recipient(db: DB, *, kind: str, rcpt: str, since: datetime) -> int:
    """Mails of ``kind`` queued to ``rcpt`` (their first recipient) since ``since``.

    For the hourly ack cap: an ack has exactly one recipient, so "first" is "the".
    One range of ``ix_outbox_rcpt_kind_created``, however many acks went out.
    """
    key, start = rcpt.lower(), _utc(since)
    held = _held_count(kind, start, rcpt_key=key)
    known = _QUEUED_TO.count(key, start, kind=kind)
    if known is not None:
        return known + held
    params: dict[str, Any] = {"rcpt": key, "kind": kind, "since": start}
    return int(_COUNT_TO.all(_conn(db), params)[0][0]) + held


_COUNT_KIND = PreparedQuery(
    lambda _n: select(func.count()).where(
        _T.c.kind == bindparam("kind"), _T.c.created_at >= bindparam("since")
    )
)
_COUNT_KIND_DOMAIN = PreparedQuery(
    lambda _n: select(func.count()).where(
        _T.c.kind == bindparam("kind"),
        _T.c.created_at >= bindparam("since"),
        _T.c.rcpt_domain == bindparam("domain"),
    )
)


def count_kind(db: DB, *, kind: str, since: datetime, domain: str = "") -> int:
    """Mails of ``kind`` queued since ``since``, to any address at ``domain`` (their
    first recipient) when given, else to anyone: the domain and global ack caps.

    A range of ``ix_outbox_kind_created`` or ``ix_outbox_domain_kind_created``:
    its cost follows the acks of the hour, not the size of the outbox.
    """
    params: dict[str, Any] = {"kind": kind, "since": _utc(since)}
    if not domain:
        held = _held_count(kind, params["since"])
        return int(_COUNT_KIND.all(_conn(db), params)[0][0]) + held
    params["domain"] = domain.lower()
    held = _held_count(kind, params["since"], rcpt_domain=params["domain"])
    return int(_COUNT_KIND_DOMAIN.all(_conn(db), params)[0][0]) + held


@dataclass(frozen=True, slots=True)
class SentMail:
    """An outbox row a bounce names: which ticket, what kind, how it stands, to whom."""

    id: int
    ticket_id: int | None
    kind: str
    status: str
    rcpts: tuple[str, ...]


def find_by_message_id(db: DB, message_id: str) -> list[SentMail]:
    """Outbox rows that sent ``message_id`` (a bounce names it)."""
    rows = db.execute(
        select(_T.c.id, _T.c.ticket_id, _T.c.kind, _T.c.status, _T.c.rcpts).where(
            _T.c.message_id == message_id
        )
    ).all()
    return [SentMail(r.id, r.ticket_id, r.kind, r.status, tuple(r.rcpts or ())) for r in rows]


def list_rows(db: DB, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """For ``inboxd outbox list``: newest first, without the raw bytes."""
    return QUEUE.listing(
        db, ("ticket_id", "kind", "message_id", "rcpts"), status=status, limit=limit
    )
