"""Fold tickets, one at a time, into the figures of each period and group.

The caller streams tickets in (``add`` with the ticket's events, ``add_quiet``
for an open ticket that had no event since the report's start) and takes the
:class:`Report` at the end; only the durations are kept, never the events.
Business time and SLA outcomes come in as functions, so this module needs no
calendar or policy of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo

from inboxd.core.desk import events as ev
from inboxd.core.reports.facts import WORKING, TicketFacts, ticket_facts
from inboxd.core.reports.model import (
    ALL_LABEL,
    NONE_LABEL,
    Backlog,
    Figures,
    Filters,
    Period,
    Report,
    SlaCount,
    TicketInfo,
    Timing,
    group_labels,
)
from inboxd.core.reports.stats import summarize

# business seconds between two instants on the ticket's calendar; None: no calendar
BusinessTime = Callable[[TicketInfo, datetime, datetime], float | None]
# (policy, target, "achieved" | "breached" | "active") for each SLA outcome in the period
SlaOutcomes = Callable[[TicketInfo, Sequence[ev.Event], Period], Iterable[tuple[str, str, str]]]

AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    ("7-30d", timedelta(days=30)),
)
AGE_OLDEST = ">=30d"


def no_business_time(_t: TicketInfo, _a: datetime, _b: datetime) -> float | None:
    return None


@dataclass
class _Durations:
    calendar: list[float] = field(default_factory=list)
    business: list[float] = field(default_factory=list)

    def add(self, t: TicketInfo, a: datetime, b: datetime, business: BusinessTime) -> None:
        self.calendar.append((b - a).total_seconds())
        seconds = business(t, a, b)
        if seconds is not None:
            self.business.append(seconds)

    def timing(self) -> Timing:
        return Timing(summarize(self.calendar), summarize(self.business))

    def absorb(self, other: _Durations) -> None:
        self.calendar.extend(other.calendar)
        self.business.extend(other.business)


@dataclass
class _Cell:
    created: int = 0
    solved: int = 0
    reopened: int = 0
    one_touch: int = 0
    reopened_after_solve: int = 0
    first_response: _Durations = field(default_factory=_Durations)
    next_response: _Durations = field(default_factory=_Durations)
    resolution: _Durations = field(default_factory=_Durations)
    full_resolution: _Durations = field(default_factory=_Durations)
    sla: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    surveys_sent: int = 0
    surveys_answered: int = 0
    rated_good: int = 0
    rated_bad: int = 0

    def absorb(self, other: _Cell) -> None:
        """Add another share's counts and durations (every figure is a sum or a
        summary of all durations, sorted first, so the order of shares does not show)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, int):
                setattr(self, f.name, mine + theirs)
            elif isinstance(mine, Counter):
                mine.update(theirs)
            else:
                mine.absorb(theirs)


@dataclass
class Partial:
    """What a builder folded from its share of the tickets, picklable: the builder
    of the same report in another process absorbs it."""

    cells: dict[tuple[int, str], _Cell]
    arrivals: list[list[int]]
    backlog: list[tuple[TicketInfo, str]]


class ReportBuilder:
    """Accumulates a report over ``periods`` (pieces of ``period``), grouped by ``group_by``.

    ``as_of`` is when the backlog is counted: the end of the period, or now if
    that is earlier.
    """

    def __init__(
        self,
        period: Period,
        *,
        now: datetime,
        periods: Sequence[Period] = (),
        group_by: str | None = None,
        filters: Filters | None = None,
        zone: tzinfo = UTC,
        zone_name: str = "UTC",
        business: BusinessTime = no_business_time,
        sla: SlaOutcomes | None = None,
    ) -> None:
        self.period = period
        self.periods = tuple(periods) or (period,)
        self.as_of = min(now, period.end)
        self.group_by = group_by
        self.filters = filters or Filters()
        self.zone, self.zone_name = zone, zone_name
        self.business = business
        self.sla = sla
        self._cells: dict[tuple[int, str], _Cell] = {}
        self._arrivals: list[list[int]] = []
        self._backlog: list[tuple[TicketInfo, str]] = []
        self.reset()

    def _cell(self, i: int, label: str) -> _Cell:
        key = (i, label)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell()
        return cell

    def add(self, ticket: TicketInfo, events: Sequence[ev.Event]) -> None:
        """A ticket with its events (those before the period's end are enough)."""
        if not self.filters.match(ticket):
            return
        facts = ticket_facts(events)
        labels = (ALL_LABEL, *group_labels(ticket, self.group_by))
        outcomes = [self._sla_outcomes(ticket, events, p) for p in self.periods]
        for i, p in enumerate(self.periods):
            for label in labels:
                self._measure(self._cell(i, label), ticket, facts, p)
                self._cell(i, label).sla.update(outcomes[i])
        created = facts.created_at
        if created is not None and created in self.period:
            local = created.astimezone(self.zone)
            self._arrivals[local.weekday()][local.hour] += 1
        status = facts.status_at(self.as_of)
        if status in WORKING:
            self._backlog.append((ticket, status))

    def add_quiet(self, ticket: TicketInfo) -> None:
        """A ticket with no event since the period began: only its backlog place counts."""
        working = ticket.status in WORKING and ticket.created_at < self.as_of
        if working and self.filters.match(ticket):
            self._backlog.append((ticket, ticket.status))

    def reset(self) -> None:
        """Forget every ticket folded so far (a worker starting its share)."""
        self._cells = {}
        self._arrivals = [[0] * 24 for _ in range(7)]
        self._backlog = []

    def partial(self) -> Partial:
        return Partial(self._cells, self._arrivals, self._backlog)

    def absorb(self, part: Partial) -> None:
        """Fold in what a builder of the same report made of other tickets."""
        for key, cell in part.cells.items():
            self._cell(*key).absorb(cell)
        for mine, theirs in zip(self._arrivals, part.arrivals, strict=True):
            for hour, n in enumerate(theirs):
                mine[hour] += n
        self._backlog.extend(part.backlog)

    def _sla_outcomes(
        self, ticket: TicketInfo, events: Sequence[ev.Event], p: Period
    ) -> list[tuple[str, str, str]]:
        return [] if self.sla is None else list(self.sla(ticket, events, p))

    def _measure(self, cell: _Cell, t: TicketInfo, facts: TicketFacts, p: Period) -> None:
        created = facts.created_at
        if created is None:
            return
        biz = self.business
        if created in p:
            cell.created += 1
        fr = facts.first_response
        if fr is not None and fr[1] is not None and fr[1] in p:
            cell.first_response.add(t, fr[0], fr[1], biz)
        for a, b in facts.waits:
            if b is not None and b in p:
                cell.next_response.add(t, a, b, biz)
        if any(r in p for r in facts.reopens):
            cell.reopened += 1
        solved_here = [s for s in facts.solves if s in p]
        if solved_here:
            cell.solved += 1
            if facts.solves[0] in p:
                cell.resolution.add(t, created, facts.solves[0], biz)
            last = solved_here[-1]
            if sum(1 for r in facts.replies if r <= last) == 1:
                cell.one_touch += 1
            if any(solved_here[0] < r < p.end for r in facts.reopens):
                cell.reopened_after_solve += 1
        end = self.period.end
        self._satisfaction(cell, facts, p)
        final = facts.last_solve(end)
        if final is not None and final in p and not any(final < r < end for r in facts.reopens):
            cell.full_resolution.add(t, created, final, biz)

    def _satisfaction(self, cell: _Cell, facts: TicketFacts, p: Period) -> None:
        """A survey counts in the period it went out (answered: rated before the report's
        end); a rating in the period of the ticket's last rating in it."""
        sent = [s for s in facts.surveys if s in p]
        if sent:
            cell.surveys_sent += 1
            if any(sent[0] <= at < self.period.end for at, _ in facts.ratings):
                cell.surveys_answered += 1
        rated = [r for at, r in facts.ratings if at in p]
        if rated:
            if rated[-1] == "good":
                cell.rated_good += 1
            else:
                cell.rated_bad += 1

    def result(self, notes: Sequence[str] = ()) -> Report:
        rows: list[Figures] = []
        labels = sorted({label for _, label in self._cells} - {ALL_LABEL})
        for i, p in enumerate(self.periods):
            for label in (ALL_LABEL, *labels):
                cell = self._cells.get((i, label))
                if cell is None and label != ALL_LABEL:
                    continue
                rows.append(_figures(p, label, cell or _Cell()))
        return Report(
            period=self.period,
            periods=self.periods,
            group_by=self.group_by,
            filters=self.filters,
            timezone=self.zone_name,
            rows=tuple(rows),
            backlog=self._count_backlog(),
            arrivals=tuple(tuple(day) for day in self._arrivals),
            sla_included=self.sla is not None,
            notes=tuple(notes),
        )

    def _count_backlog(self) -> Backlog:
        by_status: Counter[str] = Counter()
        by_team: Counter[str] = Counter()
        by_agent: Counter[str] = Counter()
        by_tag: Counter[str] = Counter()
        by_age: Counter[str] = Counter()
        for t, status in self._backlog:
            by_status[status] += 1
            by_team[t.team or NONE_LABEL] += 1
            by_agent[t.assignee or NONE_LABEL] += 1
            for tag in t.tags or (NONE_LABEL,):
                by_tag[tag] += 1
            by_age[age_bucket(self.as_of - t.created_at)] += 1
        return Backlog(
            as_of=self.as_of,
            total=len(self._backlog),
            by_status=dict(sorted(by_status.items())),
            by_team=dict(sorted(by_team.items())),
            by_agent=dict(sorted(by_agent.items())),
            by_tag=dict(sorted(by_tag.items())),
            by_age={name: by_age[name] for name in (*(n for n, _ in AGE_BUCKETS), AGE_OLDEST)},
        )


def age_bucket(age: timedelta) -> str:
    for name, limit in AGE_BUCKETS:
        if age < limit:
            return name
    return AGE_OLDEST


def _figures(p: Period, label: str, cell: _Cell) -> Figures:
    sla: dict[tuple[str, str], dict[str, int]] = {}
    for (policy, target, state), n in cell.sla.items():
        key = (policy, target)
        counts = sla.get(key, {"achieved": 0, "breached": 0, "active": 0})
        counts[state] = counts.get(state, 0) + n
        sla[key] = counts
    return Figures(
        period=p,
        group=label,
        created=cell.created,
        solved=cell.solved,
        reopened=cell.reopened,
        first_response=cell.first_response.timing(),
        next_response=cell.next_response.timing(),
        resolution=cell.resolution.timing(),
        full_resolution=cell.full_resolution.timing(),
        one_touch=cell.one_touch,
        reopened_after_solve=cell.reopened_after_solve,
        surveys_sent=cell.surveys_sent,
        surveys_answered=cell.surveys_answered,
        rated_good=cell.rated_good,
        rated_bad=cell.rated_bad,
        sla=tuple(
            SlaCount(pol, tgt, c["achieved"], c["breached"], c["active"])
            for (pol, tgt), c in sorted(sla.items())
        ),
    )
