"""The spike job: per watched tag, count the last window against its baseline
(``core.spikes``), open a spike alert, keep its peak, and close it when over.

One transaction per run. Each tag costs a few index range counts
(``db.spikes.counts``); the alert and its message are ``db.ops_alerts`` rows
(the Slack drain posts and updates them). Arrivals older than the longest
baseline any tag needs are purged on the way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core import spikes as core
from inboxd.core.rules import RuleSet
from inboxd.core.slack_text import spike_message
from inboxd.db import ops_alerts
from inboxd.db import spikes as db

log = logging.getLogger("inboxd.spikes")


@dataclass(frozen=True, slots=True)
class SpikeRound:
    started: tuple[str, ...] = ()
    over: tuple[str, ...] = ()


def spike_key(tag: str, window: timedelta, now: datetime) -> str:
    """One key per tag and window-sized slot: two daemons starting the same spike
    make one alert."""
    slot = int(now.timestamp() // max(window.total_seconds(), 1))
    return f"spike:{tag}:{slot}"


class SpikeJob:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        *,
        channel: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
        grouped: bool = True,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.channel = channel  # [slack] ops_channel: for tags that name none
        self.clock = clock
        self.on_queued = on_queued
        self.grouped = grouped  # False through a webhook: no thread to group into

    def run_once(self) -> SpikeRound:
        rules = self.rules()
        if rules is None or not rules.spikes.tags:
            return SpikeRound()
        now = self.clock()
        started: list[str] = []
        over: list[str] = []
        with self.engine.begin() as conn:
            for tag, rule in rules.spikes.tags.items():
                outcome = self._tag(conn, rule, now)
                if outcome == core.START:
                    started.append(tag)
                elif outcome == core.OVER:
                    over.append(tag)
            keep = max(r.weeks * core.WEEK + 2 * r.window for r in rules.spikes.tags.values())
            db.purge(conn, now - keep)
        if started or over:
            self.on_queued()
        return SpikeRound(tuple(started), tuple(over))

    def _tag(self, conn: Connection, rule: core.SpikeRule, now: datetime) -> str:
        channel = rule.channel or self.channel
        since = db.watched_since(conn, rule.tag, now)
        spans = core.windows(rule, now, since)
        counts = db.counts(conn, rule.tag, spans)
        last = ops_alerts.last(conn, ops_alerts.SPIKE, rule.tag)
        decision = core.decide(rule, spans, counts, last.spike if last else None, now)
        if decision.action == core.START and channel:
            assert decision.baseline is not None
            message = spike_message(
                tag=rule.tag,
                count=decision.count,
                usual=decision.baseline,
                window=rule.window,
                started_at=now,
                grouped=self.grouped,
            )
            opened = ops_alerts.open_alert(
                conn,
                kind=ops_alerts.SPIKE,
                subject=rule.tag,
                channel=channel,
                message=message,
                now=now,
                key=spike_key(rule.tag, rule.window, now),
                baseline=decision.baseline,
                peak=decision.count,
            )
            if opened is not None:
                log.warning(
                    "spike started tag=%s count=%d baseline=%.2f channel=%s",
                    rule.tag,
                    decision.count,
                    decision.baseline,
                    channel,
                )
                return core.START
        elif decision.action == core.ON and last is not None:
            ops_alerts.raise_peak(conn, last.id, decision.count, now)
        elif decision.action == core.OVER and last is not None:
            message = spike_message(
                tag=rule.tag,
                count=max(last.peak, decision.count),
                usual=last.baseline,
                window=rule.window,
                started_at=last.started_at,
                ended_at=now,
                grouped=self.grouped,
            )
            if ops_alerts.close(conn, last, message, now):
                log.info("spike over tag=%s peak=%d", rule.tag, last.peak)
                return core.OVER
        return core.QUIET


__all__ = ["SpikeJob", "SpikeRound", "spike_key"]
