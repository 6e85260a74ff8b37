"""Business calendars: parsing helpers, is_business_time, business_windows across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from inboxd.core.calendar import (
    always_open,
    business_windows,
    is_business_time,
    make_calendar,
    parse_days,
    parse_hhmm,
    parse_range,
    parse_ranges,
)

BERLIN = make_calendar(
    "office",
    "Europe/Berlin",
    {d: ((540, 1050),) for d in range(5)},
    frozenset({date(2025, 12, 25)}),
)


def test_parse_helpers() -> None:
    assert parse_hhmm("09:30") == 570 and parse_hhmm("24:00", allow_24=True) == 1440
    assert parse_range("09:00-17:30") == (540, 1050)
    assert parse_range("22:00-06:00", allow_overnight=True) == (1320, 360)
    assert parse_ranges("13:00-17:00, 09:00-12:00") == ((540, 720), (780, 1020))
    assert parse_ranges("closed") == ()
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat, sun") == frozenset({5, 6}) == parse_days("weekends")
    assert parse_days("monday,wed") == frozenset({0, 2})
    for bad in ("24:00", "9", "09:60", "25:00"):
        with pytest.raises(ValueError):
            parse_hhmm(bad)
    for bad in ("17:00-09:00", "09:00", "09:00-09:00"):
        with pytest.raises(ValueError):
            parse_range(bad)
    with pytest.raises(ValueError):
        parse_days("fri-mon")
    with pytest.raises(ValueError):
        parse_ranges("09:00-12:00, 11:00-13:00")


def test_is_business_time_needs_aware_now() -> None:
    with pytest.raises(ValueError):
        is_business_time(BERLIN, datetime(2025, 3, 5, 10))
    assert is_business_time(always_open(), datetime(2025, 12, 25, 3, tzinfo=UTC))


def test_business_windows_sum_across_a_week_and_dst() -> None:
    # week of the spring DST change in Berlin (Sunday 2025-03-30)
    start = datetime(2025, 3, 28, 0, tzinfo=UTC)  # Friday
    end = datetime(2025, 4, 1, 0, tzinfo=UTC)  # Tuesday 02:00 Berlin
    windows = list(business_windows(BERLIN, start, end))
    assert windows == [
        (datetime(2025, 3, 28, 8, 0, tzinfo=UTC), datetime(2025, 3, 28, 16, 30, tzinfo=UTC)),
        (datetime(2025, 3, 31, 7, 0, tzinfo=UTC), datetime(2025, 3, 31, 15, 30, tzinfo=UTC)),
    ]
    assert sum((b - a for a, b in windows), timedelta()) == timedelta(hours=17)


def test_business_windows_clip_to_range_and_skip_holidays() -> None:
    start = datetime(2025, 12, 24, 12, 0, tzinfo=UTC)
    end = datetime(2025, 12, 26, 9, 0, tzinfo=UTC)
    assert list(business_windows(BERLIN, start, end)) == [
        (start, datetime(2025, 12, 24, 16, 30, tzinfo=UTC)),
        (datetime(2025, 12, 26, 8, 0, tzinfo=UTC), end),
    ]
    assert list(business_windows(BERLIN, end, start)) == []


def test_24x7_windows_cover_everything() -> None:
    start = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)
    end = start + timedelta(hours=30)
    total = sum((b - a for a, b in business_windows(always_open(), start, end)), timedelta())
    assert total == timedelta(hours=30)
