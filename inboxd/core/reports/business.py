"""Business time of a ticket: the open time of its SLA policy's calendar (``core.sla.clock``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from inboxd.core.calendar import Calendar, NoOpenHours
from inboxd.core.reports.compute import BusinessTime
from inboxd.core.reports.model import TicketInfo
from inboxd.core.sla import clock


def on_policy_calendars(calendars: Mapping[str, Calendar]) -> BusinessTime:
    """``calendars``: policy name -> its calendar. A ticket without a policy, or whose
    policy is no longer defined, has no business time (left out of those figures)."""

    def business(t: TicketInfo, a: datetime, b: datetime) -> float | None:
        cal = calendars.get(t.sla_policy or "")
        if cal is None:
            return None
        try:
            return clock.elapsed(cal, a, b).total_seconds()
        except NoOpenHours:
            return None

    return business
