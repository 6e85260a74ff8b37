"""Report periods: ``--since 7d`` or ``--from/--to`` dates, split by local day or week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from inboxd.core.reports.model import Period

EVERY: tuple[str, ...] = ("day", "week")


def since(now: datetime, span: timedelta) -> Period:
    return Period(now.astimezone(UTC) - span, now.astimezone(UTC))


def dates(first: date, last: date, zone: tzinfo) -> Period:
    """From local midnight of ``first`` to local midnight after ``last`` (both included)."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return Period(_midnight(first, zone), _midnight(last + timedelta(days=1), zone))


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def split(period: Period, every: str | None, zone: tzinfo) -> tuple[Period, ...]:
    """The period cut at local midnights (``day``) or Monday midnights (``week``);
    the first and last pieces may be shorter. ``None``: the period itself."""
    if every is None:
        return (period,)
    if every not in EVERY:
        raise ValueError(f"unknown interval {every!r}: expected day or week")
    day = period.start.astimezone(zone).date()
    if every == "week":
        day -= timedelta(days=day.weekday())
    step = timedelta(days=7 if every == "week" else 1)
    out: list[Period] = []
    cut = period.start
    while cut < period.end:
        day += step
        nxt = min(_midnight(day, zone), period.end)
        if nxt > cut:
            out.append(Period(cut, nxt))
            cut = nxt
    return tuple(out)
