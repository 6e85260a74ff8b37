"""Business time of a ticket: the open time of its SLA policy's calendar.

A report asks for thousands of spans on the same few calendars, mostly over
the same weeks: ``core.calendar.open_time`` answers each from the calendar's
listing of open windows with running totals (two binary searches), the same
open time ``core.sla.clock.elapsed`` counts. The totals are exact (whole
microseconds), so a span's seconds do not depend on which spans were asked
before it, in this process or in another one folding a share of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from inboxd.core.calendar import Calendar, NoOpenHours, open_time
from inboxd.core.reports.compute import BusinessTime
from inboxd.core.reports.model import TicketInfo


def on_policy_calendars(calendars: Mapping[str, Calendar]) -> BusinessTime:
    """``calendars``: policy name -> its calendar. A ticket without a policy, or whose
    policy is no longer defined, has no business time (left out of those figures)."""

    def business(t: TicketInfo, a: datetime, b: datetime) -> float | None:
        cal = calendars.get(t.sla_policy or "")
        if cal is None:
            return None
        try:
            return open_time(cal, a, b).total_seconds()
        except NoOpenHours:
            return None

    return business
