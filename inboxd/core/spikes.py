"""Spike detection per tag: counts and ``now`` in, a decision out. Pure.

An *arrival* is a customer mail stored on a ticket that carries the tag after
the rules ran (a new ticket's first mail, and every later customer mail on
it), so a storm of "where is my refund?" replies on old tickets counts as
much as new ones. The current count is the arrivals in the last ``window``;
the baseline is the mean count of the same window of the week in the last
``weeks`` weeks that history covers (Monday 09:00-10:00 is compared with past
Mondays 09:00-10:00), or, with less than a week of history, the rolling
hourly average since watching began (at least ``MIN_HISTORY_WINDOWS``
windows of it; before that, no decision at all).

A spike starts when the count is at least ``min_count`` and above ``factor``
times the baseline; it is over when the count no longer is (against the
baseline frozen when it started, so the burst itself never raises the bar
while it lasts). After one ends, the tag stays quiet for a ``window``: at
most one spike alert per tag per window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WEEK = timedelta(days=7)
MIN_HISTORY_WINDOWS = 6
DEFAULT_FACTOR = 4.0
DEFAULT_MIN_COUNT = 10
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_WEEKS = 4

START, ON, OVER, QUIET = "start", "on", "over", "quiet"

Span = tuple[datetime, datetime]  # [start, end)


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """The thresholds of one watched tag (the rule files' ``spikes:`` section)."""

    tag: str
    factor: float = DEFAULT_FACTOR
    min_count: int = DEFAULT_MIN_COUNT
    window: timedelta = DEFAULT_WINDOW
    weeks: int = DEFAULT_WEEKS
    channel: str = ""  # "" : the daemon's [slack] ops_channel


@dataclass(frozen=True, slots=True)
class SpikeConfig:
    tags: Mapping[str, SpikeRule] = field(default_factory=dict)

    @property
    def watched(self) -> frozenset[str]:
        return frozenset(self.tags)


@dataclass(frozen=True, slots=True)
class Windows:
    """The spans to count for one decision."""

    current: Span
    weekly: tuple[Span, ...]  # the same window 1, 2, ... weeks back, each covered by history
    rolling: Span | None  # since watching began (up to a week), when no week is covered yet


def windows(rule: SpikeRule, now: datetime, since: datetime) -> Windows:
    """What to count at ``now`` for a tag watched since ``since``."""
    start = now - rule.window
    weekly = tuple(
        (start - i * WEEK, now - i * WEEK)
        for i in range(1, rule.weeks + 1)
        if start - i * WEEK >= since
    )
    rolling = None
    if not weekly and start - since >= MIN_HISTORY_WINDOWS * rule.window:
        rolling = (max(since, start - WEEK), start)
    return Windows((start, now), weekly, rolling)


@dataclass(frozen=True, slots=True)
class Counts:
    current: int
    weekly: tuple[int, ...] = ()  # parallel to Windows.weekly
    rolling: int = 0  # arrivals in Windows.rolling


def baseline(rule: SpikeRule, spans: Windows, counts: Counts) -> float | None:
    """The usual count per window, or None while history is too short to say."""
    if spans.weekly:
        return sum(counts.weekly) / len(spans.weekly)
    if spans.rolling is not None:
        start, end = spans.rolling
        return counts.rolling * (rule.window / (end - start))
    return None


@dataclass(frozen=True, slots=True)
class Spike:
    """A spike as stored: when it started, against what, its peak; ended when over."""

    started_at: datetime
    baseline: float
    peak: int
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # start | on | over | quiet
    count: int
    baseline: float | None
    why: str


def above(rule: SpikeRule, count: int, usual: float) -> bool:
    return count >= rule.min_count and count > rule.factor * usual


def decide(
    rule: SpikeRule, spans: Windows, counts: Counts, last: Spike | None, now: datetime
) -> Decision:
    """Start, keep, end or stay quiet, given the tag's last spike (if any)."""
    count = counts.current
    if last is not None and last.ended_at is None:
        if above(rule, count, last.baseline):
            return Decision(ON, count, last.baseline, "still above the threshold")
        return Decision(OVER, count, last.baseline, "back under the threshold")
    usual = baseline(rule, spans, counts)
    if usual is None:
        return Decision(QUIET, count, None, "history too short for a baseline")
    if last is not None and last.ended_at is not None and now < last.ended_at + rule.window:
        return Decision(QUIET, count, usual, "a spike ended less than a window ago")
    if above(rule, count, usual):
        return Decision(
            START, count, usual, f"{count} >= {rule.min_count} and > {rule.factor:g} x {usual:.2f}"
        )
    return Decision(QUIET, count, usual, "under the threshold")


__all__ = [
    "DEFAULT_FACTOR",
    "DEFAULT_MIN_COUNT",
    "DEFAULT_WEEKS",
    "DEFAULT_WINDOW",
    "MIN_HISTORY_WINDOWS",
    "ON",
    "OVER",
    "QUIET",
    "START",
    "Counts",
    "Decision",
    "Spike",
    "SpikeConfig",
    "SpikeRule",
    "Windows",
    "baseline",
    "decide",
    "windows",
]
