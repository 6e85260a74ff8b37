"""SLA outcomes for reports, from ``core.sla.targets`` (the same clocks the sweep runs).

Each target is judged at the end of each period: ``achieved`` when it was met
in time within the period, ``breached`` when its due time passed within the
period (met late or not met), ``active`` when it still runs (or is paused) at
the period's end. next_response is the clock's latest cycle at that instant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from inboxd.core.calendar import Calendar, NoOpenHours
from inboxd.core.desk import events as ev
from inboxd.core.reports.compute import SlaOutcomes
from inboxd.core.reports.model import Period, TicketInfo
from inboxd.core.sla import targets

if TYPE_CHECKING:
    from inboxd.core.rules.model import SlaPolicy


def outcomes(policies: Mapping[str, SlaPolicy], calendars: Mapping[str, Calendar]) -> SlaOutcomes:
    """``calendars``: calendar name -> calendar, as the rule set has them."""

    def judge(
        t: TicketInfo, events: Sequence[ev.Event], p: Period
    ) -> Iterator[tuple[str, str, str]]:
        policy = policies.get(t.sla_policy or "")
        cal = calendars.get(policy.calendar) if policy is not None else None
        if policy is None or cal is None:
            return
        try:
            clocks = targets.clocks(events, policy, cal, p.end)
        except NoOpenHours:
            return
        for tc in clocks:
            state = _state(tc, p)
            if state is not None:
                yield policy.name, tc.target, state

    return judge


def _state(tc: targets.TargetClock, p: Period) -> str | None:
    if tc.state == "achieved" and tc.met_at in p:
        return "achieved"
    if tc.state == "breached" and tc.breached_at in p:
        return "breached"
    if tc.state in ("active", "paused"):
        return "active"
    return None
