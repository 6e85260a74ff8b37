"""The quiet-hours summary: at a team's opening, one Slack post per channel with the
alerts held while its calendar was closed.

Each run looks for channels whose held alerts are due (``db.quiet_alerts``) and,
per channel in a transaction of its own, claims them under a fresh token and
queues one post listing them (``core.quiet_hours.summary_message``). The claim
is one conditional UPDATE, so with two daemons the second finds nothing to
claim and posts nothing; a crash before the commit leaves them unclaimed for
the next run. Alerts held after the summary (none should be: the calendar is
open then) go in the next run's. Summarized alerts are forgotten after ``KEEP``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from inboxd.core.quiet_hours import summary_message
from inboxd.db import quiet_alerts
from inboxd.db import slack_queries as sq

log = logging.getLogger("inboxd.slack")
KEEP = timedelta(days=30)  # how long a summarized alert is kept (``inboxd forget`` scrubs it)


class QuietSummaries:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
        max_channels: int = 100,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.on_queued = on_queued
        self.max_channels = max_channels

    def run_once(self) -> int:
        """The summaries this run queued (the drain is woken)."""
        now = self.clock()
        with self.engine.begin() as conn:
            quiet_alerts.prune(conn, now - KEEP)
            channels = quiet_alerts.due_channels(conn, now)[: self.max_channels]
        queued = 0
        for channel in channels:
            token = uuid.uuid4().hex
            with self.engine.begin() as conn:
                items = quiet_alerts.claim(conn, channel, token, now)
                if not items:
                    continue  # another daemon's summary took them
                message = summary_message(items, now=now)
                sq.enqueue(
                    conn,
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks,
                    now=now,
                    dedupe_key=f"quiet:{token}",
                )
            queued += 1
            log.info("slack quiet-hours summary queued channel=%s alerts=%d", channel, len(items))
        if queued:
            self.on_queued()
        return queued


__all__ = ["QuietSummaries"]
