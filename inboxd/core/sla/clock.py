"""Business-time math on a calendar, to the second.

Conventions (docs/rules.md states them for admins):

* open windows are half-open ``[open, close)``;
* the business time elapsed between t1 and t2 is the open time in ``[t1, t2)``
  (zero when t2 <= t1), less the pauses;
* the due time of a budget in business seconds is the earliest instant at which
  the elapsed time reaches it, so it can be a closing time;
* a budget in business days starts at the first open moment at or after the
  start, goes to the same local wall time N business days later (a business
  day is a date with open time), then to the first open moment at or after
  that; a pause pushes it back by the business time it covered. On a calendar
  open around the clock (``24x7``) a day is 24 hours.

Every function takes aware datetimes in any zone and returns UTC. Open time comes
from ``core.calendar`` (its listing of a calendar's windows with running totals,
or a walk of the windows), and ``NoOpenHours`` ends a walk on a calendar that
never opens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from inboxd.core.calendar import (
    MAX_CLOSED_DAYS,
    MINUTES_PER_DAY,
    Calendar,
    NoOpenHours,
    Window,
    after_open_time,
    day_shifts,
    open_time,
    open_windows,
    wall_to_utc,
)
from inboxd.core.sla.model import Duration

ZERO = timedelta(0)
Pauses = Sequence[Window]

__all__ = [
    "NoOpenHours",
    "Pauses",
    "add_business_days",
    "add_business_time",
    "budget",
    "budget_and_due",
    "due_at",
    "elapsed",
    "merge_spans",
    "next_open",
]


def merge_spans(spans: Iterable[Window]) -> list[Window]:
    """Sorted, merged, UTC, empty spans dropped."""
    out: list[Window] = []
    for a, b in sorted((a.astimezone(UTC), b.astimezone(UTC)) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def elapsed(cal: Calendar, t1: datetime, t2: datetime, pauses: Pauses = ()) -> timedelta:
    """Business time in ``[t1, t2)`` less the pauses; zero when t2 <= t1."""
    if t2 <= t1:
        return ZERO
    total = open_time(cal, t1, t2)
    for a, b in merge_spans(pauses):
        if a < t2 and b > t1:
            total -= open_time(cal, max(a, t1), min(b, t2))
    return total


def add_business_time(
    cal: Calendar, start: datetime, amount: timedelta, pauses: Pauses = ()
) -> datetime:
    """The earliest instant at which ``amount`` of business time has elapsed since
    ``start`` (``start`` itself for zero): the open time before each pause counts,
    then the count goes on from the pause's end."""
    at = start.astimezone(UTC)
    if amount <= ZERO:
        return at
    left = amount
    for a, b in merge_spans(pauses):
        if b <= at:
            continue
        if a > at:
            gap = open_time(cal, at, a)
            if gap >= left:
                return after_open_time(cal, at, left)
            left -= gap
        at = b
    return after_open_time(cal, at, left)


def next_open(cal: Calendar, at: datetime) -> datetime:
    """The first open moment at or after ``at``."""
    for a, _ in open_windows(cal, at):
        return a
    raise AssertionError("open windows are endless")  # pragma: no cover


# by id(cal): the calendar (which keeps the id from being reused) and its dates seen so far
_BUSINESS_DATES: dict[int, tuple[Calendar, dict[date, bool]]] = {}
_CALENDARS_KEPT = 64


def _business_date(cal: Calendar, day: date) -> bool:
    """Whether local date ``day`` has open time (its own shifts or one from the eve).
    Remembered per calendar: every ticket's day-counted due time asks about the same
    few weeks."""
    known = _BUSINESS_DATES.get(id(cal))
    if known is None or known[0] is not cal:
        if len(_BUSINESS_DATES) >= _CALENDARS_KEPT:
            _BUSINESS_DATES.clear()
        known = _BUSINESS_DATES[id(cal)] = (cal, {})
    dates = known[1]
    found = dates.get(day)
    if found is None:
        found = dates[day] = _has_open_time(cal, day)
    return found


def _has_open_time(cal: Calendar, day: date) -> bool:
    lo = wall_to_utc(cal.zone, day, 0)
    hi = wall_to_utc(cal.zone, day, MINUTES_PER_DAY)
    for d in (day - timedelta(days=1), day):
        for a, b in day_shifts(cal, d):
            if max(wall_to_utc(cal.zone, d, a), lo) < min(wall_to_utc(cal.zone, d, b), hi):
                return True
    return False


def add_business_days(cal: Calendar, start: datetime, days: int) -> datetime:
    """``days`` business days after ``start`` (see the module's conventions)."""
    if cal.always:
        return start.astimezone(UTC) + timedelta(days=days)
    local = next_open(cal, start).astimezone(cal.zone)
    day = local.date()
    counted = closed = 0
    while counted < days:
        day += timedelta(days=1)
        if _business_date(cal, day):
            counted += 1
            closed = 0
        else:
            closed += 1
            if closed > MAX_CLOSED_DAYS:
                raise NoOpenHours(f"calendar {cal.name!r} has no business day after {day}")
    wall = datetime.combine(day, local.timetz().replace(fold=0))
    return next_open(cal, wall.astimezone(UTC))


def budget(cal: Calendar, start: datetime, target: Duration) -> timedelta:
    """The business time a target grants from ``start``: its seconds, or for days the
    business time from ``start`` to the day-counted due time."""
    if target.unit == "seconds":
        return timedelta(seconds=target.amount)
    return budget_and_due(cal, start, target)[0]


def due_at(cal: Calendar, start: datetime, target: Duration, pauses: Pauses = ()) -> datetime:
    """When ``target`` counted from ``start`` is due, the pauses left out."""
    return budget_and_due(cal, start, target, pauses)[1]


def budget_and_due(
    cal: Calendar, start: datetime, target: Duration, pauses: Pauses = ()
) -> tuple[timedelta, datetime]:
    """``budget`` and ``due_at`` together: a day-counted target counts its days once."""
    if target.unit == "seconds":
        amount = timedelta(seconds=target.amount)
        return amount, add_business_time(cal, start, amount, pauses)
    plain = add_business_days(cal, start, target.amount)
    granted = elapsed(cal, start, plain)
    if not merge_spans(pauses):
        return granted, plain
    return granted, next_open(cal, add_business_time(cal, start, granted, pauses))
