"""The mailbox outage job: one alert per outage, not one per late ticket.

The IMAP fetchers report to ``inboxd.metrics.HEALTH`` (down at each failed
attempt, synced after each good sync); this job reads those reports (handed in
as ``health``) and, for a mailbox that has not synced for ``after`` since its
first failure, opens an ops alert: its own Slack message (``db.ops_alerts``).
When the mailbox syncs again the message is updated ("mailbox support reachable
again after 14 min"). While it is on, alerts about the mailbox's tickets in
that channel go into its thread (``flows.slack_threads.LivingMessages.alert``).
The state is in the database, so a restart neither repeats nor loses the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from inboxd.core.slack_text import outage_message
from inboxd.db import ops_alerts

log = logging.getLogger("inboxd.outage")

Health = Callable[[], Mapping[str, tuple[float, str]]]  # mailbox -> (down since, error)


@dataclass(frozen=True, slots=True)
class OutageRound:
    alerted: tuple[str, ...] = ()
    back: tuple[str, ...] = ()


class OutageJob:
    def __init__(
        self,
        engine: Engine,
        health: Health,
        *,
        channel: str,
        after: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.health = health
        self.channel = channel
        self.after = after
        self.clock = clock
        self.on_queued = on_queued

    def run_once(self) -> OutageRound:
        now = self.clock()
        down = {
            box: (datetime.fromtimestamp(since, UTC), error)
            for box, (since, error) in self.health().items()
        }
        alerted: list[str] = []
        back: list[str] = []
        with self.engine.begin() as conn:
            on = {a.subject: a for a in ops_alerts.active(conn, ops_alerts.OUTAGE)}
            for box, alert in on.items():
                if box in down:
                    continue
                message = outage_message(
                    mailbox=box, down_since=alert.started_at, now=now, back=True
                )
                if ops_alerts.close(conn, alert, message, now):
                    log.info("mailbox reachable again mailbox=%s", box)
                    back.append(box)
            for box, (since, error) in sorted(down.items()):
                if box in on or now - since < self.after:
                    continue
                message = outage_message(mailbox=box, down_since=since, now=now, error=error)
                opened = ops_alerts.open_alert(
                    conn,
                    kind=ops_alerts.OUTAGE,
                    subject=box,
                    channel=self.channel,
                    message=message,
                    now=now,
                    key=f"outage:{box}:{int(since.timestamp())}",
                    detail=error,
                    started_at=since,
                )
                if opened is not None:
                    log.warning("mailbox unreachable mailbox=%s since=%s", box, since.isoformat())
                    alerted.append(box)
        if alerted or back:
            self.on_queued()
        return OutageRound(tuple(alerted), tuple(back))


__all__ = ["Health", "OutageJob", "OutageRound"]
