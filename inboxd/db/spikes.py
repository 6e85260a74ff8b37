"""Tag arrivals for spike detection: recorded per customer mail, counted per window.

Every count is ``count(*)`` over one range of ``ix_tagarrival_tag_at`` (tag,
at), so a decision costs a handful of index range scans however big the table
is; rows older than any baseline needs are purged through ``ix_tagarrival_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import CursorResult

from inboxd.core.spikes import Counts, Windows
from inboxd.db.sql import DB, insert_ignore, utc
from inboxd.db.tables import SpikeWatch, TagArrival

_A = TagArrival.__table__  # type: ignore[attr-defined]
_W = SpikeWatch.__table__  # type: ignore[attr-defined]


def record(db: DB, tags: Iterable[str], at: datetime, ticket_id: int | None) -> int:
    """One arrival per tag at ``at``; returns how many rows."""
    rows = [{"tag": t, "at": utc(at), "ticket_id": ticket_id} for t in sorted(set(tags))]
    if rows:
        db.execute(insert(_A), rows)
    return len(rows)


def count(db: DB, tag: str, start: datetime, end: datetime) -> int:
    """Arrivals of ``tag`` in [start, end)."""
    query = select(func.count()).where(_A.c.tag == tag, _A.c.at >= utc(start), _A.c.at < utc(end))
    return int(db.execute(query).scalar_one())


def counts(db: DB, tag: str, spans: Windows) -> Counts:
    """The counts ``core.spikes.decide`` needs for ``spans``."""
    current = count(db, tag, *spans.current)
    weekly = tuple(count(db, tag, a, b) for a, b in spans.weekly)
    rolling = count(db, tag, *spans.rolling) if spans.rolling is not None else 0
    return Counts(current, weekly, rolling)


def watched_since(db: DB, tag: str, now: datetime) -> datetime:
    """Since when ``tag`` is counted (``now`` the first time it is asked)."""
    insert_ignore(db, SpikeWatch, [{"tag": tag, "since": utc(now)}])
    since = utc(db.execute(select(_W.c.since).where(_W.c.tag == tag)).scalar_one())
    assert since is not None
    return since


def purge(db: DB, before: datetime) -> int:
    """Drop arrivals older than ``before`` (no baseline reaches back that far)."""
    result = db.execute(delete(_A).where(_A.c.at < utc(before)))
    return int(cast(CursorResult[Any], result).rowcount or 0)


__all__ = ["count", "counts", "purge", "record", "watched_since"]
