"""The root sync: keep every ticket's living Slack message showing the ticket as it is.

Decoupled from the writer on purpose: nothing in ``db.tickets`` knows Slack.
Each run reads the posted roots whose ticket is live (its SLA line moves with
time) or changed after the root was last posted, and hands them to the flows'
``refresh`` (wired by the daemon), which queues a chat.update row for each root
whose state digest differs from the one posted. A ticket changed between two
runs is shown within one ``[slack] sync_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.rules import RuleSet
from inboxd.db import slack_threads as threads

log = logging.getLogger("inboxd.slack")


class Refresh(Protocol):
    def __call__(
        self,
        conn: Connection,
        rules: RuleSet | None,
        found: Sequence[threads.Thread],
        now: datetime,
    ) -> int: ...


class RootSync:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        refresh: Refresh,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
        limit: int = 500,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.refresh = refresh
        self.clock = clock
        self.on_queued = on_queued
        self.limit = limit

    def run_once(self) -> int:
        """One pass in one transaction; returns the updates queued (the drain is woken)."""
        now = self.clock()
        with self.engine.begin() as conn:
            found = threads.stale_candidates(conn, limit=self.limit)
            queued = self.refresh(conn, self.rules(), found, now) if found else 0
        if queued:
            self.on_queued()
        return queued


__all__ = ["Refresh", "RootSync"]
