"""Replaying stored mail through a rule set: what a rule change would do to history.

Pure: the caller loads the tickets' messages. Each ticket is rebuilt from a
fresh state, message by message, the way the pipeline applies decisions
(``core.desk.transitions.apply_rules``), so two rule sets can be compared
without agents' later edits getting in the way. Threading and grouping are not
replayed (messages stay in the tickets they joined), nor are round-robin and
least-open picks, which depend on the live queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from inboxd.core.desk import Status, Ticket
from inboxd.core.desk.transitions import apply_rules
from inboxd.core.model import ParsedMessage
from inboxd.core.rules.evaluate import evaluate
from inboxd.core.rules.model import RuleContext, RuleSet

FIELDS: tuple[str, ...] = ("team", "assignee", "priority", "vip", "sla_policy", "status", "tags")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def initial_ticket() -> Ticket:
    """A ticket before any rule ran (as the pipeline creates it)."""
    return Ticket(
        id=0,
        subject="",
        status=Status.NEW,
        requester="",
        mailbox="",
        created_at=_EPOCH,
        updated_at=_EPOCH,
        status_changed_at=_EPOCH,
    )


def routing_fields(ticket: Ticket) -> dict[str, Any]:
    """The fields a replay compares, as plain values."""
    values: dict[str, Any] = {name: getattr(ticket, name) for name in FIELDS}
    values["status"] = str(ticket.status)
    values["tags"] = list(ticket.tags)
    return values


def simulate(
    ruleset: RuleSet, messages: Sequence[tuple[ParsedMessage, RuleContext]]
) -> dict[str, Any]:
    """The routing fields one ticket ends with when its mail runs through ``ruleset``.

    ``ticket_vip`` in each context is replaced by what the replay itself decided.
    """
    ticket = initial_ticket()
    for parsed, ctx in messages:
        decision = evaluate(ruleset, parsed, replace(ctx, ticket_vip=ticket.vip))
        ticket = apply_rules(ticket, decision, (), now=ctx.now).after
    return routing_fields(ticket)


@dataclass(frozen=True, slots=True)
class FieldChange:
    ticket: int
    field: str
    old: Any
    new: Any


def diff(ticket: int, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """Changed routing fields; tags compare as sets (order is not a change)."""
    out = []
    for name in FIELDS:
        before, after = old.get(name), new.get(name)
        if name == "tags":
            if set(before or ()) == set(after or ()):
                continue
            before, after = sorted(before or ()), sorted(after or ())
        if before != after:
            out.append(FieldChange(ticket, name, before, after))
    return out


@dataclass
class ReplayReport:
    since: str
    tickets: int = 0
    messages: int = 0
    unparseable: int = 0
    changes: list[FieldChange] | None = None

    def add(self, changes: list[FieldChange]) -> None:
        if self.changes is None:
            self.changes = []
        self.changes.extend(changes)

    @property
    def changed_tickets(self) -> int:
        return len({c.ticket for c in self.changes or ()})

    def totals(self) -> dict[str, int]:
        counts = {name: 0 for name in FIELDS}
        for change in self.changes or ():
            counts[change.field] += 1
        return {k: v for k, v in counts.items() if v}

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "tickets": self.tickets,
            "messages": self.messages,
            "unparseable": self.unparseable,
            "changed_tickets": self.changed_tickets,
            "totals": self.totals(),
            "changes": [
                {"ticket": c.ticket, "field": c.field, "old": c.old, "new": c.new}
                for c in self.changes or ()
            ],
        }
