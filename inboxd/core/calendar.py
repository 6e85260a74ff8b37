"""Business calendars: a timezone, weekly opening hours and holidays.

Pure: ``now`` always comes in as an argument. SLA clock math builds on
``is_business_time`` and ``business_windows``; the rule loader builds calendars
from strings with the ``parse_*`` helpers, which raise ``ValueError`` with a
message fit for an admin.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
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
    """When a team works. ``hours[0]`` is Monday; local times in ``timezone``.

    A shift belongs to the date it starts on: an overnight ``22:00-06:00`` is
    stored as ``(1320, 1800)`` on its first day, a holiday closes the shifts that
    start on it, and ``special`` gives a date other hours (replacing the weekly
    ones). ``closures`` cut hours out of whatever is open on that date.
    """

    name: str
    timezone: str
    hours: WeekHours
    holidays: frozenset[date] = frozenset()
    special: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    closures: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    zone: Zone = field(default=UTC, compare=False, repr=False)

    # open around the clock every day: business days are plain days (worked out once:
    # every clock asks)
    always: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        full = ((0, MINUTES_PER_DAY),)
        always = (
            all(day == full for day in self.hours)
            and not self.holidays
            and not self.special
            and not self.closures
        )
        object.__setattr__(self, "always", always)


ALWAYS_NAME = "24x7"
# a calendar closed for this long has no open hours: the clock gives up with NoOpenHours
MAX_CLOSED_DAYS = 3 * 366


class NoOpenHours(ValueError):
    """The calendar is never open (or not for years): no due time exists."""


def always_open() -> Calendar:
    """The built-in ``24x7`` calendar: every minute counts, no holidays."""
    return Calendar(ALWAYS_NAME, "UTC", tuple(((0, MINUTES_PER_DAY),) for _ in DAYS))


def make_calendar(
    name: str,
    tz_name: str,
    hours: Mapping[int, tuple[Interval, ...]],
    holidays: frozenset[date] = frozenset(),
    special: Mapping[date, tuple[Interval, ...]] | None = None,
    closures: Mapping[date, tuple[Interval, ...]] | None = None,
) -> Calendar:
    """Build a calendar; raises ValueError for an unknown timezone."""
    zone = parse_timezone(tz_name)
    week = tuple(tuple(sorted(hours.get(day, ()))) for day in range(7))
    return Calendar(
        name,
        tz_name,
        week,
        holidays,
        {d: tuple(sorted(v)) for d, v in (special or {}).items()},
        {d: tuple(sorted(v)) for d, v in (closures or {}).items() if v},
        zone,
    )


def week_overlap(week: WeekHours) -> str | None:
    """Why a week's shifts overlap (an overnight one running into the next day's), or None."""
    for day in range(7):
        nxt = (day + 1) % 7
        for start, end in week[day]:
            for other_start, _ in week[nxt]:
                if end > MINUTES_PER_DAY and other_start < end - MINUTES_PER_DAY:
                    return (
                        f"{DAYS[day]} {_hhmm(start)}-{_hhmm(end)} runs into "
                        f"{DAYS[nxt]}'s hours from {_hhmm(other_start)}"
                    )
    return None


def _hhmm(minute: int) -> str:
    minute %= MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


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


def parse_ranges(text: str, *, allow_overnight: bool = False) -> tuple[Interval, ...]:
    """'09:00-12:00, 13:00-17:00' -> two intervals; 'closed' -> none.

    With ``allow_overnight``, '22:00-06:00' ends on the next day: (1320, 1800).
    """
    if text.strip().lower() in ("closed", "off", ""):
        return ()
    out = []
    for part in text.split(","):
        start, end = parse_range(part.strip(), allow_overnight=allow_overnight)
        out.append((start, end + MINUTES_PER_DAY if end < start else end))
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


def day_shifts(cal: Calendar, day: date) -> tuple[Interval, ...]:
    """The shifts that start on local date ``day``, in minutes after its midnight
    (an overnight one ends after 1440), with that day's closures cut out."""
    if day in cal.special:
        base = cal.special[day]
    elif day in cal.holidays:
        return ()
    else:
        base = cal.hours[day.weekday()]
    if not base or not cal.closures:
        return base
    one = timedelta(days=1)
    cuts = [
        (a + shift, b + shift)
        for shift, near in ((-MINUTES_PER_DAY, day - one), (0, day), (MINUTES_PER_DAY, day + one))
        for a, b in cal.closures.get(near, ())
    ]
    return _subtract(base, cuts)


def _subtract(spans: tuple[Interval, ...], cuts: list[Interval]) -> tuple[Interval, ...]:
    out = list(spans)
    for cut_a, cut_b in cuts:
        nxt: list[Interval] = []
        for a, b in out:
            if cut_b <= a or b <= cut_a:
                nxt.append((a, b))
                continue
            if a < cut_a:
                nxt.append((a, cut_a))
            if cut_b < b:
                nxt.append((cut_b, b))
        out = nxt
    return tuple(out)


def wall_to_utc(zone: Zone, day: date, minute: int) -> datetime:
    """Local ``day`` + ``minute`` (may pass midnight) as a UTC instant.

    ``fold=0``: a wall time in a DST gap moves forward by the gap, a repeated
    one is the earlier instant.
    """
    day = day + timedelta(days=minute // MINUTES_PER_DAY)
    minute %= MINUTES_PER_DAY
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return local.astimezone(UTC)


@functools.lru_cache(maxsize=1 << 16)
def _utc_shifts(zone: Zone, day: date, shifts: tuple[Interval, ...]) -> tuple[Window, ...]:
    """A day's shifts as UTC instants. Remembered: the SLA sweep and reports walk the
    same few weeks of the same calendars for every ticket, and the zone arithmetic
    is the bulk of that walk."""
    return tuple(sorted((wall_to_utc(zone, day, a), wall_to_utc(zone, day, b)) for a, b in shifts))


FAR = datetime(9000, 1, 1, tzinfo=UTC)  # the end of the one window of an always-open calendar

Window = tuple[datetime, datetime]


def open_windows(cal: Calendar, start: datetime) -> Iterator[Window]:
    """Every open window from ``start`` on (aware), as merged UTC pairs in order,
    the first clipped to ``start``. Endless; raises NoOpenHours after
    MAX_CLOSED_DAYS without any open time, so no caller can loop forever.

    The windows come from the calendar's :class:`_Listing` while it reaches, then
    from the walk itself: the same windows either way (see ``_Listing``)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC)
    if cal.always:
        yield start, FAR
        return
    listing = _listing(cal, start)
    if listing is None:
        yield from _walk(cal, start)
        return
    windows = listing.windows
    i = max(bisect_right(listing.starts, start) - 1, 0)
    last = start
    for a, b in itertools.islice(windows, i, None):
        if b > start:
            yield max(a, start), b
            last = b
    yield from _walk(cal, last)


def open_time(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """The open time in ``[a, b)`` (aware; zero when ``b <= a``): two binary searches
    in the calendar's listing when it reaches, else a walk of the windows."""
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    if b <= a:
        return _ZERO
    if cal.always:
        return b - a
    listing = _listing(cal, a)
    if listing is not None and b <= listing.known_until:
        return listing.upto(b) - listing.upto(a)
    total = _ZERO
    for x, y in open_windows(cal, a):
        if x >= b:
            break
        total += min(y, b) - x
    return total


def after_open_time(cal: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The earliest instant by which ``amount`` (> 0) of open time has passed since
    ``start`` (so possibly a closing time)."""
    start = start.astimezone(UTC)
    if cal.always:
        return start + amount
    listing = _listing(cal, start)
    if listing is not None:
        found = listing.reach(listing.upto(start) + amount)
        if found is not None:
            return found
    left = amount
    for x, y in open_windows(cal, start):
        if y - x >= left:
            return x + left
        left -= y - x
    raise AssertionError("open windows are endless")  # pragma: no cover


_ZERO = timedelta(0)
_AHEAD = timedelta(days=120)  # how far a listing reaches past the instant that (re)built it
_BEHIND = timedelta(days=30)  # and how far before it
_LISTINGS_KEPT = 64


@dataclass(frozen=True, slots=True)
class _Listing:
    """A calendar's whole open windows from ``lo`` on, as far as a walk to ``hi`` knows them.

    Why the same windows come out as from a walk at any ``start >= lo``: a walk yields
    the maximal runs of the open instants (touching windows merged), a set that does not
    depend on where the walk began, clipped to its start; and a walk from a window's end
    continues with the windows after it (no shift spans a maximal window's end). The SLA
    sweep and reports ask the same few calendars about the same weeks for every ticket,
    and converting each day's shifts is the bulk of a walk. Never changed once made
    (threads may share it): a longer one replaces it.
    """

    cal: Calendar
    lo: datetime
    hi: datetime
    starts: tuple[datetime, ...]
    windows: tuple[Window, ...]
    before: tuple[timedelta, ...]  # open time from the first window to each window's start
    after: tuple[timedelta, ...]  # and to each window's end

    @property
    def known_until(self) -> datetime:
        """Every open instant before this is in ``windows``."""
        return self.windows[-1][1] if self.windows else self.lo

    def upto(self, at: datetime) -> timedelta:
        """Open time from the first window to ``at`` (``lo <= at <= known_until``)."""
        i = bisect_right(self.starts, at) - 1
        if i < 0:
            return _ZERO
        return self.before[i] + (min(at, self.windows[i][1]) - self.starts[i])

    def reach(self, total: timedelta) -> datetime | None:
        """The earliest instant whose ``upto`` is ``total``; None past ``known_until``."""
        i = bisect_left(self.after, total)
        if i >= len(self.windows):
            return None
        return self.starts[i] + (total - self.before[i])


_LISTINGS: dict[int, _Listing] = {}  # by id(cal): the listing holds its calendar, so ids stay


def _listing(cal: Calendar, start: datetime) -> _Listing | None:
    """A listing of ``cal`` covering ``start`` and well after it; None when walking from
    before ``start`` meets a closed stretch a walk from ``start`` would not see."""
    known = _LISTINGS.get(id(cal))
    if known is not None and known.cal is cal and known.lo <= start and start + _AHEAD <= known.hi:
        return known
    lo, hi = start - _BEHIND, start + 2 * _AHEAD
    if known is not None and known.cal is cal:
        lo, hi = min(lo, known.lo), max(hi, known.hi)
    starts: list[datetime] = []
    windows: list[Window] = []
    try:
        for a, b in _walk(cal, lo, until=hi):
            starts.append(a)
            windows.append((a, b))
    except NoOpenHours:
        return None
    if len(_LISTINGS) >= _LISTINGS_KEPT:
        _LISTINGS.clear()
    before: list[timedelta] = []
    after: list[timedelta] = []
    total = _ZERO
    for a, b in windows:
        before.append(total)
        total += b - a
        after.append(total)
    made = _Listing(cal, lo, hi, tuple(starts), tuple(windows), tuple(before), tuple(after))
    _LISTINGS[id(cal)] = made
    return made


def _walk(cal: Calendar, start: datetime, until: datetime | None = None) -> Iterator[Window]:
    """``open_windows`` day by day from ``start`` (UTC, a calendar not always open);
    with ``until``, only the windows known to be whole once the walk passes it."""
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    pending: Window | None = None
    closed_days = 0
    while True:
        shifts = day_shifts(cal, day)
        closed_days = 0 if shifts else closed_days + 1
        if closed_days > MAX_CLOSED_DAYS:
            raise NoOpenHours(
                f"calendar {cal.name!r} has no open hours for {MAX_CLOSED_DAYS} days "
                f"after {day - timedelta(days=MAX_CLOSED_DAYS)}"
            )
        # sorted again after conversion: a start in a DST gap moves past later ones
        converted = sorted((max(lo, start), hi) for lo, hi in _utc_shifts(cal.zone, day, shifts))
        for lo, hi in converted:
            if lo >= hi:
                continue
            if pending is not None and lo <= pending[1]:
                pending = (pending[0], max(pending[1], hi))
                continue
            if pending is not None:
                yield pending
            pending = (lo, hi)
        # shifts of later days start after this midnight, so a window ending before it is final
        midnight = wall_to_utc(cal.zone, day, MINUTES_PER_DAY)
        if pending is not None and pending[1] < midnight:
            yield pending
            pending = None
        if until is not None and midnight > until:
            return
        day += timedelta(days=1)


def is_business_time(cal: Calendar, now: datetime) -> bool:
    """True when ``now`` (aware) falls inside the calendar's opening hours."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(cal.zone).date()
    for day in (today - timedelta(days=1), today):
        for a, b in day_shifts(cal, day):
            if wall_to_utc(cal.zone, day, a) <= now < wall_to_utc(cal.zone, day, b):
                return True
    return False


def business_windows(
    cal: Calendar, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The open windows between ``start`` and ``end`` (aware), as UTC pairs, in order."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        return
    try:
        for a, b in open_windows(cal, start):
            if a >= end:
                return
            yield a, min(b, end)
    except NoOpenHours:
        return
