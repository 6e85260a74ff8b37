"""Business calendars: a timezone, weekly opening hours and holidays.

Pure: ``now`` always comes in as an argument. SLA clock math builds on
``is_business_time`` and ``business_windows``; the rule loader builds calendars
from strings with the ``parse_*`` helpers, which raise ``ValueError`` with a
message fit for an admin.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60

Zone = ZoneInfo | timezone

# (start, end) minutes after local midnight, start < end, end may be 1440 (24:00).
Interval = tuple[int, int]
WeekHours = tuple[tuple[Interval, ...], ...]  # 7 entries, Monday first

_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Calendar:
    """When a team works. ``hours[0]`` is Monday; local times in ``timezone``."""

    name: str
    timezone: str
    hours: WeekHours
    holidays: frozenset[date] = frozenset()
    zone: Zone = field(default=UTC, compare=False, repr=False)


ALWAYS_NAME = "24x7"


def always_open() -> Calendar:
    """The built-in ``24x7`` calendar: every minute counts, no holidays."""
    return Calendar(ALWAYS_NAME, "UTC", tuple(((0, MINUTES_PER_DAY),) for _ in DAYS))


def make_calendar(
    name: str,
    tz_name: str,
    hours: Mapping[int, tuple[Interval, ...]],
    holidays: frozenset[date] = frozenset(),
) -> Calendar:
    """Build a calendar; raises ValueError for an unknown timezone."""
    zone = parse_timezone(tz_name)
    week = tuple(tuple(sorted(hours.get(day, ()))) for day in range(7))
    return Calendar(name, tz_name, week, holidays, zone)


def parse_timezone(tz_name: str) -> ZoneInfo | timezone:
    if tz_name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(tz_name, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name like Europe/Berlin"
        raise ValueError(f"unknown timezone {tz_name!r} ({hint})") from None


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """'09:30' -> 570 minutes. '24:00' only where an interval may end at midnight."""
    m = _HHMM.match(text.strip())
    if not m:
        raise ValueError(f"bad time {text!r}: expected HH:MM")
    minutes = int(m.group(1)) * 60 + int(m.group(2))
    if minutes > MINUTES_PER_DAY or (minutes == MINUTES_PER_DAY and not allow_24):
        raise ValueError(f"bad time {text!r}: expected HH:MM between 00:00 and 23:59")
    return minutes


def parse_range(text: str, *, allow_overnight: bool = False) -> Interval:
    """'09:00-17:30' -> (540, 1050). Overnight ('22:00-06:00') only when allowed."""
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"bad time range {text!r}: expected HH:MM-HH:MM")
    try:
        start = parse_hhmm(parts[0])
        end = parse_hhmm(parts[1], allow_24=True)
    except ValueError as exc:
        raise ValueError(f"bad time range {text!r}: expected HH:MM-HH:MM") from exc
    if start == end or (end < start and not allow_overnight):
        raise ValueError(f"bad time range {text!r}: end must be after start")
    return (start, end)


def parse_ranges(text: str) -> tuple[Interval, ...]:
    """'09:00-12:00, 13:00-17:00' -> two intervals; 'closed' -> none."""
    if text.strip().lower() in ("closed", "off", ""):
        return ()
    out = [parse_range(part.strip()) for part in text.split(",")]
    out.sort()
    for (_, end), (start, _) in itertools.pairwise(out):
        if start < end:
            raise ValueError(f"overlapping time ranges in {text!r}")
    return tuple(out)


def parse_days(text: str) -> frozenset[int]:
    """'mon-fri', 'sat,sun', 'daily' -> weekday numbers (Monday = 0)."""
    spec = text.strip().lower()
    if spec in ("daily", "all", "every day", "mon-sun"):
        return frozenset(range(7))
    if spec == "weekdays":
        return frozenset(range(5))
    if spec == "weekends":
        return frozenset((5, 6))
    days: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first, text), _day(last, text)
            if b < a:
                raise ValueError(f"bad day range {text!r}: {first} comes after {last}")
            days.update(range(a, b + 1))
        else:
            days.add(_day(part, text))
    return frozenset(days)


def _day(name: str, whole: str) -> int:
    key = name[:3]
    if name not in DAYS and name not in _LONG_DAYS:
        raise ValueError(f"bad day {name!r} in {whole!r}: use mon, tue, wed, thu, fri, sat, sun")
    return DAYS.index(key)


_LONG_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def local_minute(zone: ZoneInfo | timezone, now: datetime) -> tuple[date, int, int]:
    """(local date, weekday, minute of day) of an aware ``now`` in ``zone``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(zone)
    return local.date(), local.weekday(), local.hour * 60 + local.minute


def is_business_time(cal: Calendar, now: datetime) -> bool:
    """True when ``now`` (aware) falls inside the calendar's opening hours."""
    day, weekday, minute = local_minute(cal.zone, now)
    if day in cal.holidays:
        return False
    return any(start <= minute < end for start, end in cal.hours[weekday])


def business_windows(
    cal: Calendar, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The open windows between ``start`` and ``end`` (aware), as UTC pairs, in order.

    The SLA clock sums these; DST gaps and repeats are handled by converting each
    local boundary through the zone (a window never ends before it starts).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        return
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    last = end.astimezone(cal.zone).date() + timedelta(days=1)
    while day <= last:
        if day not in cal.holidays:
            for a, b in cal.hours[day.weekday()]:
                w_start = _local_to_utc(cal, day, a)
                w_end = _local_to_utc(cal, day, b)
                lo, hi = max(w_start, start), min(w_end, end)
                if lo < hi:
                    yield lo.astimezone(UTC), hi.astimezone(UTC)
        day += timedelta(days=1)


def _local_to_utc(cal: Calendar, day: date, minute: int) -> datetime:
    base = datetime.combine(day, time(0), tzinfo=cal.zone)
    if minute >= MINUTES_PER_DAY:
        nxt = datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.zone)
        return nxt.astimezone(UTC)
    local = base.replace(hour=minute // 60, minute=minute % 60)
    return local.astimezone(UTC)
