"""The ticket as a value: what every transition takes and returns.

A ``Ticket`` is frozen; a transition never changes one, it returns a
:class:`Change` holding the ticket before and after and the events that tell
why. ``db.tickets`` is the one writer that turns a ``Change`` into rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inboxd.core.desk.events import Event

# Ticket fields that are not columns of the ticket row.
_NOT_STORED = frozenset({"id", "participants"})
# What SLA clocks are computed from: a change with one of these events or
# fields may move a due time, so the sweep must look at the ticket again.
CLOCK_EVENT_KINDS = frozenset({"created", "message", "agent_reply", "status", "merged"})
CLOCK_FIELDS = frozenset({"status", "sla_policy", "last_customer_mail_at", "first_agent_reply_at"})


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    subject: str
    status: str
    requester: str
    mailbox: str
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    requester_name: str = ""
    normalized_subject: str = ""
    priority: str = "normal"
    tags: tuple[str, ...] = ()
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    sla_policy: str | None = None
    acknowledged: bool = False
    merged_into: int | None = None
    previous_ticket_id: int | None = None
    first_agent_reply_at: datetime | None = None
    last_customer_mail_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_count: int = 0
    participants: frozenset[str] = field(default_factory=frozenset)  # lowercased addresses

    @property
    def answered(self) -> bool:
        """An agent has replied in public at least once."""
        return self.first_agent_reply_at is not None


STORED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Ticket) if f.name not in _NOT_STORED
)


@dataclass(frozen=True, slots=True)
class Change:
    """One step in a ticket's life: the ticket before and after, and its events."""

    before: Ticket
    after: Ticket
    events: tuple[Event, ...] = ()

    @property
    def ticket_id(self) -> int:
        return self.after.id

    @property
    def fields(self) -> dict[str, Any]:
        """The stored columns that differ, with their new values (tags as a list)."""
        out: dict[str, Any] = {}
        for name in STORED_FIELDS:
            new = getattr(self.after, name)
            if new != getattr(self.before, name):
                out[name] = list(new) if name == "tags" else new
        return out

    @property
    def moves_clocks(self) -> bool:
        """Whether an SLA due time may differ after this change."""
        return any(e.kind in CLOCK_EVENT_KINDS for e in self.events) or not CLOCK_FIELDS.isdisjoint(
            self.fields
        )

    @property
    def at(self) -> datetime:
        """When the change happened: its latest event, else the ticket's update time."""
        return max((e.at for e in self.events), default=self.after.updated_at)

    def then(self, other: Change) -> Change:
        """This change followed by ``other`` (made from this one's ``after``)."""
        if other.before is not self.after and other.before != self.after:
            raise ValueError("a change can only follow the change it was made from")
        return Change(self.before, other.after, self.events + other.events)


def unchanged(ticket: Ticket) -> Change:
    """The empty change, to start a chain of ``then``."""
    return Change(ticket, ticket)
