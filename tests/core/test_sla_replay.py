"""core.sla.replay on hand-made logs: counts per side, flips, missing policies, no due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inboxd.core.calendar import Calendar, always_open, make_calendar
from inboxd.core.desk import events as ev
from inboxd.core.rules.model import SlaPolicy
from inboxd.core.sla.model import Duration
from inboxd.core.sla.replay import Counts, Flip, Lookup, ReplayTicket, compare

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
ALWAYS = always_open()


def hours(n: float) -> Duration:
    return Duration(int(n * 3600))


def lookup(policies: dict[str, tuple[SlaPolicy, Calendar]]) -> Lookup:
    return policies.get


def log(created: datetime, replied: datetime | None = None, **status: datetime) -> list[ev.Event]:
    out: list[ev.Event] = [
        ev.Created(at=created, source="mail"),
        ev.MessageStored(at=created, message=1),
    ]
    if replied is not None:
        out.append(ev.AgentReplied(at=replied, message=2, message_id="r@x", first_response=True))
    for to, at in status.items():
        out.append(ev.StatusChanged(at=at, from_="open", to=to))
    return out


CURRENT = SlaPolicy(
    "std", "24x7", first_response=hours(2), resolution=hours(10), pause_when=("pending",)
)
PROPOSED = SlaPolicy(
    "std",
    "24x7",
    first_response=hours(1),
    next_response=hours(1),
    resolution=hours(4),
    pause_when=("pending",),
)
GONE = SlaPolicy("gone", "24x7", first_response=hours(1))
NOW = T0 + 3 * H


def tickets() -> list[ReplayTicket]:
    return [
        ReplayTicket(1, "std", log(T0, T0 + 90 * M)),  # answered in 1h30
        ReplayTicket(2, "std", log(T0, T0 + 30 * M, solved=T0 + 150 * M)),
        ReplayTicket(3, "std", log(T0)),  # never answered
        ReplayTicket(4, "std", log(T0 - 2 * H, T0 - 90 * M, solved=T0 + 2 * H)),  # at 4h sharp
        ReplayTicket(5, "std", log(T0 - 2 * H, T0 - 90 * M, solved=T0 + 2 * H + M)),
        ReplayTicket(6, "std", log(T0, pending=T0 + 10 * M)),  # waiting on the customer
        ReplayTicket(7, None),
        ReplayTicket(8, "gone", log(T0, T0 + 30 * M)),
    ]


def test_counts_and_flips_under_both_rule_sets() -> None:
    report = compare(
        tickets(),
        lookup({"std": (CURRENT, ALWAYS), "gone": (GONE, ALWAYS)}),
        lookup({"std": (PROPOSED, ALWAYS)}),
        NOW,
    )
    assert (report.tickets, report.without_policy) == (8, 1)
    rows = {(r.policy, r.target): (r.current, r.proposed) for r in report.sorted_rows()}
    assert list(rows) == [
        ("gone", "first_response"),
        ("std", "first_response"),
        ("std", "next_response"),
        ("std", "resolution"),
    ]
    # first response: 1 answered in 1h30 (achieved in 2h, breached in 1h), 3 never
    # answered, 6 paused before an answer; the rest answered within 30 minutes
    assert rows["std", "first_response"] == (Counts(4, 1, 1), Counts(3, 2, 1))
    # resolution: 1, 3 still run (due T0+4h under the proposal, now T0+3h); 6 paused;
    # 4 solved exactly at its 4h due time (achieved), 5 a minute later (breached)
    assert rows["std", "resolution"] == (Counts(3, 0, 3), Counts(2, 1, 3))
    # next_response: only the proposal has it, and no ticket has a mail waiting
    assert rows["std", "next_response"] == (None, Counts(0, 0, 0))
    assert rows["gone", "first_response"] == (Counts(1, 0, 0), None)
    assert report.flips == [
        Flip(1, "std", "first_response", "achieved", "breached", T0 + 2 * H, T0 + H),
        Flip(5, "std", "resolution", "achieved", "breached", T0 + 8 * H, T0 + 2 * H),
    ]
    assert report.notes() == [
        "policy 'gone' is not in the proposed rules: its 1 ticket(s) are not counted there"
    ]
    assert Counts(4, 1, 1).rate == 0.8 and Counts(0, 0, 3).rate is None


def test_running_under_one_side_is_not_a_flip() -> None:
    lenient = SlaPolicy("std", "24x7", first_response=hours(4))
    report = compare(
        [ReplayTicket(1, "std", log(T0))],
        lookup({"std": (CURRENT, ALWAYS)}),
        lookup({"std": (lenient, ALWAYS)}),
        NOW,
    )
    rows = {r.target: (r.current, r.proposed) for r in report.sorted_rows()}
    assert rows["first_response"] == (Counts(0, 1, 0), Counts(0, 0, 1))
    assert report.flips == []


def test_a_calendar_never_open_is_noted_not_counted() -> None:
    never = make_calendar("never", "UTC", {})
    report = compare(
        [ReplayTicket(1, "std", log(T0, T0 + 30 * M))],
        lookup({"std": (CURRENT, ALWAYS)}),
        lookup({"std": (CURRENT, never)}),
        NOW,
    )
    rows = {r.target: (r.current, r.proposed) for r in report.sorted_rows()}
    assert rows["first_response"] == (Counts(1, 0, 0), Counts(0, 0, 0))
    assert report.groups["std"].no_due_time == {"current": 0, "proposed": 1}
    assert report.notes() == [
        "policy 'std': 1 ticket(s) have no due time under the proposed calendar"
    ]
    data = report.as_dict()
    assert data["policies"][0]["in_proposed"] is True and data["flips"] == []
