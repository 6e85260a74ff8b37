"""Recent row times per key, read once for an ingest batch: the hourly caps' counts.

Every new ticket asks how many tickets its sender opened in the last hour, and
every acknowledgement how many acks went to its recipient: a query each, per
mail. Inside a batch (``db.behind.batch``) the caller reads, in one query, the
times of the rows since the batch's earliest window for all the keys its mails
can ask about; each count is then a bisection of those times at the mail's own
window start, so it is the count the query would have given. What the batch
writes meanwhile is added (``add``) or counted by its writer (held outbox rows).
A key not read, a window starting before the one read (a clock stepped back)
or a batch whose memos were dropped (a mail rolled back) goes to the database.

Rows another process commits during the batch are not seen until the next
batch: several daemons own different mailboxes, so their caps drift by at most
one batch.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from inboxd.db import behind
from inboxd.db.fastexec import PreparedQuery
from inboxd.db.row_queue import utc
from inboxd.db.sql import DB, conn_of, in_chunks, in_values


class RecentTimes:
    """``query(n)`` selects (key, time) of the rows whose key is one of ``n``
    parameters (``sql.one_of``) and whose time is at or after ``since``, with any
    fixed ``params`` (e.g. the outbox kind). Times are compared as aware UTC."""

    def __init__(self, name: str, query: PreparedQuery) -> None:
        self._name = f"recent_{name}"
        self._query = query

    def prefetch(self, db: DB, keys: Iterable[str], since: datetime, **params: Any) -> None:
        """Read the times of ``keys`` since ``since`` (a no-op outside a batch)."""
        memo = behind.memo(self._name)
        if memo is None:
            return
        since = utc(since)
        wanted = sorted({k for k in keys if _slot(k, params) not in memo})
        times: dict[str, list[datetime]] = {k: [] for k in wanted}
        conn = conn_of(db)
        for chunk in in_chunks(wanted):
            chunk_params, shape = in_values(chunk, conn)
            query_params = {**chunk_params, **params, "since": since}
            for key, at in self._query.all(conn, query_params, shape):
                times[key].append(utc(at))
        for key, found in times.items():
            found.sort()
            memo[_slot(key, params)] = (since, found)

    def count(self, key: str, since: datetime, **params: Any) -> int | None:
        """Rows of ``key`` at or after ``since``; None when that was not read."""
        entry, since = self._entry(key, params), utc(since)
        if entry is None or since < entry[0]:
            return None
        times = entry[1]
        return len(times) - bisect_left(times, since)

    def add(self, key: str, at: datetime, **params: Any) -> None:
        """A row the batch just wrote with ``key`` at ``at`` (kept only for a key read)."""
        entry = self._entry(key, params)
        if entry is not None:
            insort(entry[1], utc(at))

    def _entry(self, key: str, params: dict[str, Any]) -> tuple[datetime, list[datetime]] | None:
        """(window start read, sorted times) of ``key`` in this batch, None if not read."""
        memo = behind.memo(self._name)
        found: tuple[datetime, list[datetime]] | None = (
            memo.get(_slot(key, params)) if memo is not None else None
        )
        return found


def _slot(key: str, params: dict[str, Any]) -> tuple[tuple[tuple[str, Any], ...], str]:
    """Where ``key`` read with ``params`` sits in the batch memo."""
    return tuple(sorted(params.items())), key
