"""SLA clock math: properties (hypothesis) and examples across DST, holidays,
special days, overnight shifts, 24x7 and business days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxd.core.calendar import (
    Calendar,
    Interval,
    NoOpenHours,
    always_open,
    is_business_time,
    make_calendar,
)
from inboxd.core.sla.clock import (
    add_business_days,
    add_business_time,
    budget,
    due_at,
    elapsed,
    next_open,
)
from inboxd.core.sla.model import Duration

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
WEEKDAYS = range(5)

OFFICE = make_calendar(
    "office",
    "Europe/Berlin",
    {d: ((540, 1050),) for d in WEEKDAYS},
    frozenset({date(2025, 12, 25), date(2025, 12, 26)}),
    special={date(2025, 12, 24): ((540, 720),)},
    closures={date(2025, 3, 5): ((720, 840),)},
)
NIGHT_BERLIN = make_calendar("night", "Europe/Berlin", {d: ((1320, 1800),) for d in range(7)})
NIGHT_NY = make_calendar("night", "America/New_York", {d: ((1320, 1800),) for d in range(7)})


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=NEW_YORK)


def hours(n: float) -> Duration:
    return Duration(int(n * 3600))


# -- examples -------------------------------------------------------------------------


def test_friday_afternoon_is_due_at_closing_time_not_monday() -> None:
    friday = berlin(2025, 3, 7, 13, 30)
    assert due_at(OFFICE, friday, hours(4)) == berlin(2025, 3, 7, 17, 30)
    assert due_at(OFFICE, friday, Duration(4 * 3600 + 1)) == berlin(2025, 3, 10, 9, 0, 1)
    assert due_at(OFFICE, friday, hours(5)) == berlin(2025, 3, 10, 10)
    assert elapsed(OFFICE, friday, berlin(2025, 3, 10, 10)) == 5 * H


def test_a_closed_start_counts_from_the_opening() -> None:
    saturday = berlin(2025, 3, 8, 11)
    assert due_at(OFFICE, saturday, hours(1)) == berlin(2025, 3, 10, 10)
    assert next_open(OFFICE, saturday) == berlin(2025, 3, 10, 9)
    assert next_open(OFFICE, berlin(2025, 3, 10, 9, 30)) == berlin(2025, 3, 10, 9, 30)
    # half-open: the closing instant itself is closed
    assert not is_business_time(OFFICE, berlin(2025, 3, 10, 17, 30))
    assert next_open(OFFICE, berlin(2025, 3, 10, 17, 30)) == berlin(2025, 3, 11, 9)


def test_holidays_and_a_half_day() -> None:
    # 24 Dec is a half day (09-12), 25/26 Dec holidays, then the weekend
    assert due_at(OFFICE, berlin(2025, 12, 24, 10), hours(4)) == berlin(2025, 12, 29, 11)
    assert elapsed(OFFICE, berlin(2025, 12, 23, 17), berlin(2025, 12, 29, 9, 30)) == 4 * H


def test_a_closure_of_some_hours_on_one_date() -> None:
    # Wed 5 March 2025 closes 12:00-14:00
    assert due_at(OFFICE, berlin(2025, 3, 5, 11), hours(2)) == berlin(2025, 3, 5, 15)
    assert due_at(OFFICE, berlin(2025, 3, 12, 11), hours(2)) == berlin(2025, 3, 12, 13)
    assert not is_business_time(OFFICE, berlin(2025, 3, 5, 13))


def test_a_closure_cuts_the_end_of_last_nights_shift() -> None:
    cal = make_calendar("n", "UTC", {0: ((1320, 1800),)}, closures={date(2025, 3, 4): ((0, 180),)})
    monday = datetime(2025, 3, 3, 22, tzinfo=UTC)
    assert elapsed(cal, monday, monday + 10 * H) == 5 * H
    assert is_business_time(cal, monday + 5.5 * H) and not is_business_time(cal, monday + 2 * H)


def test_berlin_night_shift_across_both_dst_changes() -> None:
    # 30 March 2025: 02:00 -> 03:00; 26 October 2025: 03:00 -> 02:00
    spring = berlin(2025, 3, 29, 22)
    assert elapsed(NIGHT_BERLIN, spring, berlin(2025, 3, 30, 12)) == 7 * H
    assert due_at(NIGHT_BERLIN, spring, hours(8)) == berlin(2025, 3, 30, 23)
    autumn = berlin(2025, 10, 25, 22)
    assert elapsed(NIGHT_BERLIN, autumn, berlin(2025, 10, 26, 12)) == 9 * H
    assert due_at(NIGHT_BERLIN, autumn, hours(9)) == berlin(2025, 10, 26, 6)
    # the office loses or gains nothing: the change happens at night
    assert elapsed(OFFICE, berlin(2025, 3, 28, 9), berlin(2025, 3, 31, 17, 30)) == 17 * H


def test_new_york_night_shift_across_both_dst_changes() -> None:
    # 9 March 2025: 02:00 -> 03:00; 2 November 2025: 02:00 -> 01:00
    assert elapsed(NIGHT_NY, ny(2025, 3, 8, 22), ny(2025, 3, 9, 12)) == 7 * H
    assert elapsed(NIGHT_NY, ny(2025, 11, 1, 22), ny(2025, 11, 2, 12)) == 9 * H
    assert due_at(NIGHT_NY, ny(2025, 11, 1, 23), hours(8)) == ny(2025, 11, 2, 6)


def test_wall_times_in_a_gap_move_forward_and_repeated_ones_are_the_earlier() -> None:
    in_gap = make_calendar("g", "America/New_York", {6: ((150, 240),)})  # Sun 02:30-04:00
    sunday = ny(2025, 3, 9, 0)
    # 02:30 does not exist that night: it opens at 03:30 EDT
    assert next_open(in_gap, sunday) == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)
    assert elapsed(in_gap, sunday, sunday + 12 * H) == timedelta(minutes=30)
    repeated = make_calendar("r", "America/New_York", {6: ((60, 180),)})  # Sun 01:00-03:00
    sunday = ny(2025, 11, 2, 0)
    # 01:00 is the first (EDT) one, 03:00 EST comes three hours later
    assert next_open(repeated, sunday) == datetime(2025, 11, 2, 5, tzinfo=UTC)
    assert elapsed(repeated, sunday, sunday + 12 * H) == 3 * H


def test_24x7_counts_everything_and_days_are_plain_days() -> None:
    cal = always_open()
    start = berlin(2025, 3, 29, 22, 17, 5).astimezone(UTC)  # a DST change in the span
    assert elapsed(cal, start, start + 30 * H) == 30 * H
    assert due_at(cal, start, Duration(3, "days")) == start + 72 * H
    assert due_at(cal, start, Duration(2, "days"), [(start, start + H)]) == start + 49 * H
    assert budget(cal, start, Duration(1, "days")) == 24 * H


def test_business_days_keep_the_wall_time() -> None:
    monday = berlin(2025, 3, 10, 10, 15, 30)
    assert due_at(OFFICE, monday, Duration(3, "days")) == berlin(2025, 3, 13, 10, 15, 30)
    assert due_at(OFFICE, monday, Duration(1, "days")) != monday + 8.5 * H
    assert due_at(OFFICE, berlin(2025, 3, 7, 16), Duration(1, "days")) == berlin(2025, 3, 10, 16)
    assert due_at(OFFICE, monday, Duration(7, "days")) == berlin(2025, 3, 19, 10, 15, 30)
    # a day target budgets the business time to its due time: 3d is not 72 hours
    assert budget(OFFICE, monday, Duration(3, "days")) == 3 * 8.5 * H


def test_business_days_from_a_closed_start_and_across_holidays() -> None:
    # Saturday: the clock starts Monday 09:00, one business day later is Tuesday 09:00
    assert add_business_days(OFFICE, berlin(2025, 3, 8, 11), 1) == berlin(2025, 3, 11, 9)
    # after hours on Monday: from Tuesday 09:00 to Wednesday 09:00
    assert add_business_days(OFFICE, berlin(2025, 3, 3, 18), 1) == berlin(2025, 3, 5, 9)
    # 23 Dec + 2 business days: 24 Dec (half day), then 29 Dec; 10:00 is open on both
    assert add_business_days(OFFICE, berlin(2025, 12, 23, 10), 2) == berlin(2025, 12, 29, 10)
    # 23 Dec 15:00 + 1: 24 Dec 15:00 is after the half day closes: 29 Dec 09:00
    assert add_business_days(OFFICE, berlin(2025, 12, 23, 15), 1) == berlin(2025, 12, 29, 9)


def test_business_days_land_forward_in_a_dst_gap() -> None:
    cal = make_calendar(
        "d", "Europe/Berlin", {d: ((0, 1440),) for d in range(7)}, frozenset({date(2025, 12, 25)})
    )
    assert not cal.always  # a holiday: days are counted on the wall clock
    # Sat 02:30 CET + 1 day: Sun 02:30 does not exist -> 03:30 CEST
    got = add_business_days(cal, berlin(2025, 3, 29, 2, 30), 1)
    assert got == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


def test_pauses_push_day_targets_back_by_the_business_time_they_cover() -> None:
    monday = berlin(2025, 3, 10, 10)
    pause = [(berlin(2025, 3, 11, 9), berlin(2025, 3, 11, 11))]
    assert due_at(OFFICE, monday, Duration(2, "days"), pause) == berlin(2025, 3, 12, 12)
    # the same a week earlier: the 2 hours end at Wednesday's closure (12-14), due 14:00
    early = [(a - timedelta(days=7), b - timedelta(days=7)) for a, b in pause]
    assert due_at(OFFICE, berlin(2025, 3, 3, 10), Duration(2, "days"), early) == berlin(
        2025, 3, 5, 14
    )
    assert due_at(OFFICE, monday, hours(1), [(monday, monday + 0.5 * H)]) == monday + 1.5 * H


def test_a_calendar_without_open_hours_gives_up() -> None:
    never = make_calendar("never", "UTC", {})
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(NoOpenHours, match="'never' has no open hours"):
        due_at(never, start, hours(1))
    with pytest.raises(NoOpenHours):
        add_business_days(never, start, 1)
    assert elapsed(never, start, start) == timedelta(0)


# -- properties -----------------------------------------------------------------------

ZONES = ("Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kathmandu")
PATTERNS: tuple[tuple[Interval, ...], ...] = (
    (),
    ((540, 1050),),
    ((540, 720), (780, 1050)),
    ((1320, 1800),),
    ((0, 1440),),
    ((60, 180),),
    ((120, 200), (1380, 1500)),
)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    if draw(st.integers(0, 9)) == 0:
        return always_open()
    week = {d: draw(st.sampled_from(PATTERNS)) for d in range(7)}
    if not any(week.values()):
        week[0] = PATTERNS[1]
    holidays = frozenset(draw(st.lists(st.dates(date(2025, 1, 1), date(2025, 12, 31)), max_size=8)))
    return make_calendar("p", draw(st.sampled_from(ZONES)), week, holidays)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
)
spans = st.timedeltas(timedelta(0), timedelta(days=12))
zones = st.sampled_from(ZONES).map(ZoneInfo)
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(calendars(), instants, st.integers(1, 200 * 3600))
def test_due_measured_back_gives_exactly_the_target(cal: Calendar, start: datetime, n: int) -> None:
    due = due_at(cal, start, Duration(n))
    assert elapsed(cal, start, due) == timedelta(seconds=n)
    # and it is the earliest such instant
    assert elapsed(cal, start, due - timedelta(microseconds=1)) < timedelta(seconds=n)


@SETTINGS
@given(calendars(), instants, spans, spans)
def test_elapsed_is_monotonic_and_additive(
    cal: Calendar, t1: datetime, a: timedelta, b: timedelta
) -> None:
    t2, t3 = t1 + a, t1 + a + b
    whole = elapsed(cal, t1, t3)
    assert elapsed(cal, t1, t2) + elapsed(cal, t2, t3) == whole
    assert elapsed(cal, t1, t2) <= whole <= t3 - t1
    assert elapsed(cal, t3, t1) == timedelta(0)


@SETTINGS
@given(calendars(), instants, spans, instants, spans)
def test_pauses_subtract_exactly(
    cal: Calendar, t1: datetime, a: timedelta, p1: datetime, b: timedelta
) -> None:
    t2, p2 = t1 + a, p1 + b
    paused = elapsed(cal, max(t1, p1), min(t2, p2))
    assert elapsed(cal, t1, t2, [(p1, p2)]) == elapsed(cal, t1, t2) - paused
    due = add_business_time(cal, t1, a / 3, [(p1, p2)])
    assert elapsed(cal, t1, due, [(p1, p2)]) == a / 3


@SETTINGS
@given(calendars(), instants, spans, st.lists(st.tuples(instants, spans), max_size=4))
def test_due_with_pauses_is_the_earliest_instant_reaching_the_amount(
    cal: Calendar, start: datetime, amount: timedelta, raw: list[tuple[datetime, timedelta]]
) -> None:
    pauses = [(p, p + d) for p, d in raw]
    amount = max(amount, timedelta(seconds=1))
    due = add_business_time(cal, start, amount, pauses)
    assert elapsed(cal, start, due, pauses) == amount
    assert elapsed(cal, start, due - timedelta(microseconds=1), pauses) < amount


@SETTINGS
@given(calendars(), instants, spans, zones, zones, st.integers(1, 20))
def test_the_zone_of_the_input_instants_does_not_matter(
    cal: Calendar, t1: datetime, a: timedelta, z1: ZoneInfo, z2: ZoneInfo, days: int
) -> None:
    t2 = t1 + a
    assert elapsed(cal, t1.astimezone(z1), t2.astimezone(z2)) == elapsed(cal, t1, t2)
    for target in (Duration(days * 3600), Duration(days, "days")):
        assert due_at(cal, t1.astimezone(z1), target) == due_at(cal, t1, target)


@SETTINGS
@given(calendars(), instants, st.integers(0, 36 * 60))
def test_elapsed_agrees_with_minute_by_minute_counting(
    cal: Calendar, start: datetime, minutes: int
) -> None:
    start = start.replace(second=0, microsecond=0)
    counted = sum(is_business_time(cal, start + timedelta(minutes=m)) for m in range(minutes))
    assert elapsed(cal, start, start + timedelta(minutes=minutes)) == timedelta(minutes=counted)


@SETTINGS
@given(calendars(), instants, st.integers(1, 15))
def test_business_days_are_open_and_keep_the_wall_time(
    cal: Calendar, start: datetime, days: int
) -> None:
    due = add_business_days(cal, start, days)
    assert is_business_time(cal, due)
    assert due > start
    opened = next_open(cal, start)
    if due == next_open(cal, due) and is_business_time(cal, due - timedelta(microseconds=1)):
        # not moved to an opening: the same wall clock (a DST gap may add its length)
        wall = opened.astimezone(cal.zone).time()
        got = due.astimezone(cal.zone).time()
        shift = datetime.combine(date.min, got) - datetime.combine(date.min, wall)
        assert shift in (timedelta(0), H, timedelta(minutes=30))
