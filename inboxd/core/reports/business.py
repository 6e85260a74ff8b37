"""Business time of a ticket: the open time of its SLA policy's calendar.

A report asks for thousands of spans on the same few calendars, mostly over
the same weeks, so each calendar's open windows (``core.calendar.open_windows``,
the windows ``core.sla.clock.elapsed`` walks) are listed once with their
running total, and a span costs two binary searches instead of a walk.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import datetime, timedelta

from inboxd.core.calendar import Calendar, NoOpenHours, open_windows
from inboxd.core.reports.compute import BusinessTime
from inboxd.core.reports.model import TicketInfo

_MARGIN = timedelta(days=60)  # how far each extension of a listing reaches beyond the ask


class OpenTime:
    """Open seconds of one calendar before any instant, from a listing grown on demand."""

    def __init__(self, cal: Calendar) -> None:
        self.cal = cal
        self._starts: list[datetime] = []
        self._ends: list[datetime] = []
        self._before: list[float] = []  # open seconds before each window
        self._lo: datetime | None = None
        self._hi: datetime | None = None

    def _cover(self, lo: datetime, hi: datetime) -> None:
        if self._lo is not None and self._hi is not None and self._lo <= lo and hi <= self._hi:
            return
        lo = min(lo, self._lo or lo) - _MARGIN
        hi = max(hi, self._hi or hi) + _MARGIN
        self._starts, self._ends, self._before = [], [], []
        total = 0.0
        for a, b in open_windows(self.cal, lo):
            if a >= hi:
                break
            self._starts.append(a)
            self._ends.append(b)
            self._before.append(total)
            total += (b - a).total_seconds()
        self._lo, self._hi = lo, hi

    def _upto(self, at: datetime) -> float:
        i = bisect_right(self._starts, at) - 1
        if i < 0:
            return 0.0
        inside = min(at, self._ends[i]) - self._starts[i]
        return self._before[i] + inside.total_seconds()

    def between(self, a: datetime, b: datetime) -> float:
        """Open seconds in ``[a, b)``; zero when b <= a (``clock.elapsed`` without pauses)."""
        if b <= a:
            return 0.0
        if self.cal.always:
            return (b - a).total_seconds()
        self._cover(a, b)
        return self._upto(b) - self._upto(a)


def on_policy_calendars(calendars: Mapping[str, Calendar]) -> BusinessTime:
    """``calendars``: policy name -> its calendar. A ticket without a policy, or whose
    policy is no longer defined, has no business time (left out of those figures)."""
    listings: dict[str, OpenTime] = {}

    def business(t: TicketInfo, a: datetime, b: datetime) -> float | None:
        cal = calendars.get(t.sla_policy or "")
        if cal is None:
            return None
        listing = listings.get(cal.name)
        if listing is None:
            listing = listings[cal.name] = OpenTime(cal)
        try:
            return listing.between(a, b)
        except NoOpenHours:
            return None

    return business
