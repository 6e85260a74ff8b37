"""A report over many tickets from several processes, each folding a share.

Every figure is a sum, or a summary of durations sorted first, so shares of
the active tickets folded apart and absorbed into one builder give the report
one process gives (the golden report test runs both). Workers are forked, so
they inherit the builder with its calendars and SLA functions and nothing but
the share's number and its result cross a pipe. Each process reads through its
own read-only connection; every ticket is read whole by one of them.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from inboxd.core.reports.compute import Partial, ReportBuilder
from inboxd.db import reports
from inboxd.db.engine import make_engine

SPLIT_FROM = 5000  # active tickets below which one process is quicker than forking
MOST_WORKERS = 4

_job: tuple[str, ReportBuilder, list[list[int]]] | None = None


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, MOST_WORKERS))


def feed_url(url: str, builder: ReportBuilder, workers: int | None = None) -> None:
    """Fill ``builder`` from the database at ``url``; ``workers`` None: as many as
    the machine has cores (up to MOST_WORKERS) once the period has SPLIT_FROM
    active tickets, else one process; a number: that many processes."""
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            ids = reports.active_ticket_ids(conn, builder.period.start)
            n = workers or (default_workers() if len(ids) >= SPLIT_FROM else 1)
            if n <= 1:
                reports.feed_share(conn, builder, ids)
                reports.feed_quiet(conn, builder, ids)
                return
    finally:
        engine.dispose()  # no connection is open across the fork
    shares = [ids[len(ids) * k // n : len(ids) * (k + 1) // n] for k in range(n)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        n - 1, mp_context=context, initializer=_take, initargs=(url, builder, shares)
    ) as pool:
        pending = [pool.submit(_fold, k) for k in range(1, n)]
        engine = make_engine(url, read_only=True)
        try:
            with engine.connect() as conn:
                reports.feed_share(conn, builder, shares[0])
                reports.feed_quiet(conn, builder, ids)
        finally:
            engine.dispose()
        for done in pending:
            builder.absorb(done.result())


def _take(url: str, builder: ReportBuilder, shares: list[list[int]]) -> None:
    """In a worker: the job it was forked with (a builder's functions do not pickle)."""
    global _job
    _job = (url, builder, shares)


def _fold(k: int) -> Partial:
    assert _job is not None
    url, builder, shares = _job
    builder.reset()  # a worker may fold more than one share
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            reports.feed_share(conn, builder, shares[k])
    finally:
        engine.dispose()
    return builder.partial()
