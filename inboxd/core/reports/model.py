"""The values a report is computed from and made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

GROUP_BYS: tuple[str, ...] = ("team", "agent", "tag", "mailbox", "policy")
NONE_LABEL = "(none)"
ALL_LABEL = "(all)"


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open ``[start, end)``, aware datetimes."""

    start: datetime
    end: datetime

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """The ticket row's present fields a report groups and filters by."""

    id: int
    status: str
    created_at: datetime
    mailbox: str = ""
    team: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()
    sla_policy: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """Only tickets matching every given field (their present values)."""

    team: str | None = None
    agent: str | None = None
    tag: str | None = None
    mailbox: str | None = None

    def match(self, t: TicketInfo) -> bool:
        return (
            (self.team is None or t.team == self.team)
            and (self.agent is None or t.assignee == self.agent)
            and (self.tag is None or self.tag in t.tags)
            and (self.mailbox is None or t.mailbox == self.mailbox)
        )


def group_labels(t: TicketInfo, by: str | None) -> tuple[str, ...]:
    """The groups a ticket falls in (a ticket with two tags is in both tag groups)."""
    if by is None:
        return ()
    if by == "tag":
        return t.tags or (NONE_LABEL,)
    value = {"team": t.team, "agent": t.assignee, "mailbox": t.mailbox, "policy": t.sla_policy}[by]
    return (value or NONE_LABEL,)


@dataclass(frozen=True, slots=True)
class Summary:
    """Durations in seconds: how many, median, 90th percentile, mean (None when empty)."""

    n: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    """One duration figure in calendar time and in business time of the policy calendar."""

    calendar: Summary
    business: Summary


@dataclass(frozen=True, slots=True)
class SlaCount:
    policy: str
    target: str
    achieved: int = 0
    breached: int = 0
    active: int = 0


@dataclass(frozen=True, slots=True)
class Figures:
    """What one group did in one period."""

    period: Period
    group: str
    created: int
    solved: int
    reopened: int
    first_response: Timing
    next_response: Timing
    resolution: Timing  # created -> first solve
    full_resolution: Timing  # created -> last solve
    one_touch: int
    reopened_after_solve: int
    sla: tuple[SlaCount, ...] = ()
    surveys_sent: int = 0
    surveys_answered: int = 0  # of those sent in the period, answered before the report's end
    rated_good: int = 0  # tickets whose last rating in the period was good
    rated_bad: int = 0

    @property
    def satisfaction(self) -> float | None:
        """good / (good + bad); unrated tickets are left out."""
        rated = self.rated_good + self.rated_bad
        return self.rated_good / rated if rated else None

    @property
    def response_rate(self) -> float | None:
        return self.surveys_answered / self.surveys_sent if self.surveys_sent else None

    @property
    def one_touch_rate(self) -> float | None:
        return self.one_touch / self.solved if self.solved else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened_after_solve / self.solved if self.solved else None


@dataclass(frozen=True, slots=True)
class Backlog:
    """Tickets still to work on at ``as_of``, counted several ways."""

    as_of: datetime
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_team: dict[str, int] = field(default_factory=dict)
    by_agent: dict[str, int] = field(default_factory=dict)
    by_tag: dict[str, int] = field(default_factory=dict)
    by_age: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    periods: tuple[Period, ...]
    group_by: str | None
    filters: Filters
    timezone: str
    rows: tuple[Figures, ...]
    backlog: Backlog
    arrivals: tuple[tuple[int, ...], ...]  # [weekday Monday first][hour], tickets created
    sla_included: bool = False
    notes: Sequence[str] = ()
