"""SLA replay: the same tickets under the current and a proposed rule set, compared.

Pure: the caller streams in each ticket (id, the policy name it carries, its
typed events) and two look-ups, policy name -> (policy, calendar) or None, one
per rule set. A ticket keeps its policy *name*; each rule set decides what that
name means, so a changed target or calendar shows as a changed outcome. Clocks
come from ``core.sla.targets.clocks`` as of one ``now``, the same ones the sweep
and ``tickets show`` compute, so the replay cannot disagree with them.

Counted per policy and target: achieved, breached and active (paused counts as
active: the clock has not decided). Idle and cancelled targets are not counted.
A *flip* is a target achieved under one rule set and breached under the other;
a target still running under one of them is not a flip (it has no outcome yet).
Only counts and flips are kept, so memory follows the flips, not the tickets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inboxd.core.calendar import Calendar, NoOpenHours
from inboxd.core.desk import events as ev
from inboxd.core.sla.model import TARGET_NAMES
from inboxd.core.sla.targets import State, TargetClock, clocks

if TYPE_CHECKING:
    from inboxd.core.rules.model import SlaPolicy

Lookup = Callable[[str], "tuple[SlaPolicy, Calendar] | None"]
SIDES = ("current", "proposed")


@dataclass(frozen=True, slots=True)
class ReplayTicket:
    id: int
    policy: str | None  # ``ticket.sla_policy``; None: the ticket has no SLA
    events: Sequence[ev.Event] = ()


@dataclass(slots=True)
class Counts:
    achieved: int = 0
    breached: int = 0
    active: int = 0

    @property
    def rate(self) -> float | None:
        """Achieved among the decided (achieved + breached); None when none is decided."""
        decided = self.achieved + self.breached
        return self.achieved / decided if decided else None

    def add(self, state: State) -> None:
        if state == "achieved":
            self.achieved += 1
        elif state == "breached":
            self.breached += 1
        elif state in ("active", "paused"):
            self.active += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "achieved": self.achieved,
            "breached": self.breached,
            "active": self.active,
            "rate": self.rate,
        }


@dataclass(slots=True)
class TargetRow:
    """One target of one policy; a side is None when its rule set lacks the target."""

    policy: str
    target: str
    current: Counts | None = None
    proposed: Counts | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "target": self.target,
            "current": self.current.as_dict() if self.current is not None else None,
            "proposed": self.proposed.as_dict() if self.proposed is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Flip:
    ticket: int
    policy: str
    target: str
    current: State
    proposed: State
    current_due: datetime | None
    proposed_due: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "policy": self.policy,
            "target": self.target,
            "current": self.current,
            "proposed": self.proposed,
            "current_due": _iso(self.current_due),
            "proposed_due": _iso(self.proposed_due),
        }


@dataclass(slots=True)
class PolicyGroup:
    """The tickets carrying one policy name, and whether each rule set defines it.

    ``no_due_time``: tickets whose calendar under that rule set has no open hours
    for years (``NoOpenHours``), left out of that side's counts."""

    policy: str
    tickets: int = 0
    in_current: bool = True
    in_proposed: bool = True
    no_due_time: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))

    def notes(self) -> list[str]:
        out = [
            f"policy {self.policy!r} is not in the {side} rules: its {self.tickets} ticket(s) "
            f"are not counted there"
            for side, present in (("current", self.in_current), ("proposed", self.in_proposed))
            if not present
        ]
        out += [
            f"policy {self.policy!r}: {n} ticket(s) have no due time under the {side} calendar"
            for side, n in self.no_due_time.items()
            if n
        ]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "tickets": self.tickets,
            "in_current": self.in_current,
            "in_proposed": self.in_proposed,
            "no_due_time": dict(self.no_due_time),
            "notes": self.notes(),
        }


@dataclass(slots=True)
class SlaReplay:
    now: datetime
    tickets: int = 0
    without_policy: int = 0
    groups: dict[str, PolicyGroup] = field(default_factory=dict)
    rows: dict[tuple[str, str], TargetRow] = field(default_factory=dict)
    flips: list[Flip] = field(default_factory=list)

    def sorted_rows(self) -> list[TargetRow]:
        """Policies by name, targets in ``TARGET_NAMES`` order."""
        return sorted(self.rows.values(), key=lambda r: (r.policy, TARGET_NAMES.index(r.target)))

    def notes(self) -> list[str]:
        return [n for name in sorted(self.groups) for n in self.groups[name].notes()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "tickets": self.tickets,
            "without_policy": self.without_policy,
            "policies": [self.groups[name].as_dict() for name in sorted(self.groups)],
            "targets": [r.as_dict() for r in self.sorted_rows()],
            "flips": [f.as_dict() for f in self.flips],
            "notes": self.notes(),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _side(
    found: tuple[SlaPolicy, Calendar] | None, events: Sequence[ev.Event], now: datetime
) -> dict[str, TargetClock] | None:
    """The ticket's clocks under one rule set by target; None without a due time."""
    if found is None:
        return {}
    policy, cal = found
    try:
        return {tc.target: tc for tc in clocks(events, policy, cal, now)}
    except NoOpenHours:
        return None


def compare(
    tickets: Iterable[ReplayTicket], current: Lookup, proposed: Lookup, now: datetime
) -> SlaReplay:
    """Every ticket's targets under both rule sets as of ``now``: counts and flips."""
    report = SlaReplay(now)
    for ticket in tickets:
        report.tickets += 1
        if not ticket.policy:
            report.without_policy += 1
            continue
        name = ticket.policy
        found = {"current": current(name), "proposed": proposed(name)}
        group = report.groups.get(name)
        if group is None:
            group = PolicyGroup(
                name,
                in_current=found["current"] is not None,
                in_proposed=found["proposed"] is not None,
            )
            report.groups[name] = group
        group.tickets += 1
        sides: dict[str, dict[str, TargetClock] | None] = {}
        for side in SIDES:
            sides[side] = _side(found[side], ticket.events, now)
            pair = found[side]
            if pair is not None:
                for target, _ in pair[0].targets():  # a row even when nothing is counted
                    row = report.rows.setdefault((name, target), TargetRow(name, target))
                    if getattr(row, side) is None:
                        setattr(row, side, Counts())
            got = sides[side]
            if got is None:
                group.no_due_time[side] += 1
                continue
            for target, tc in got.items():
                counts = getattr(report.rows[name, target], side)
                counts.add(tc.state)
        old, new = sides["current"] or {}, sides["proposed"] or {}
        for target in TARGET_NAMES:
            a, b = old.get(target), new.get(target)
            if a is None or b is None or a.state == b.state:
                continue
            if {a.state, b.state} == {"achieved", "breached"}:
                report.flips.append(
                    Flip(ticket.id, name, target, a.state, b.state, a.due_at, b.due_at)
                )
    return report
