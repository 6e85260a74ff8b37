"""The ticket's vocabularies, defined once: statuses, their transitions, priorities.

Everything else (rules, commands, the database's open-ticket queries, the
notifications) reads these names from here, so a new status or priority is one
edit.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Status(enum.StrEnum):
    NEW = "new"  # no agent has answered yet
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer: a customer reply reopens it
    SOLVED = "solved"
    CLOSED = "closed"
    MERGED = "merged"  # folded into another ticket; terminal


# Tickets someone still has to work on (least-open assignment, grouping).
OPEN_STATUSES: tuple[Status, ...] = (Status.NEW, Status.OPEN, Status.PENDING)
# Tickets whose customer mail does not page agents.
QUIET_STATUSES: frozenset[Status] = frozenset({Status.SOLVED, Status.CLOSED, Status.MERGED})
# Statuses a rule or an agent command may set (new is only ever the start, merged only a merge).
SETTABLE_STATUSES: tuple[Status, ...] = (Status.OPEN, Status.PENDING, Status.SOLVED, Status.CLOSED)
# A customer mail on a ticket in one of these reopens it.
REOPENABLE: frozenset[Status] = frozenset({Status.SOLVED, Status.CLOSED})

_WORKING = frozenset(SETTABLE_STATUSES) | {Status.MERGED}
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.NEW: _WORKING,
    Status.OPEN: _WORKING,
    Status.PENDING: _WORKING,
    Status.SOLVED: _WORKING,
    Status.CLOSED: _WORKING,
    Status.MERGED: frozenset(),
}


def may_transition(current: str, target: str) -> bool:
    """Whether a ticket in ``current`` may move to ``target`` (staying put is always fine)."""
    if current == target:
        return True
    try:
        return Status(target) in TRANSITIONS[Status(current)]
    except ValueError:
        return False


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)
PRIORITY_RANK: Mapping[str, int] = {p: i for i, p in enumerate(PRIORITIES)}
DEFAULT_PRIORITY = Priority.NORMAL


def priority_rank(value: str | None) -> int:
    """Rank of a priority; an unknown or missing one ranks as normal."""
    return PRIORITY_RANK.get(value or "", PRIORITY_RANK[DEFAULT_PRIORITY])
