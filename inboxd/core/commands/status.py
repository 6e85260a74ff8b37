"""``#close``, ``#solve``, ``#pending``, ``#open``: set the ticket's status."""

from __future__ import annotations

from inboxd.core.commands import base
from inboxd.core.desk import Status, Ticket, may_transition
from inboxd.core.desk import transitions as tr


class StatusCommand(base.CommandSpec):
    group = "status"
    rank = 10
    status: Status

    def __init__(self, name: str, status: Status, help: str) -> None:
        self.name = name  # type: ignore[misc]
        self.status = status
        self.help = help  # type: ignore[misc]

    def check(self, ctx: base.CommandContext, ticket: Ticket, command: base.Command) -> str | None:
        if not may_transition(ticket.status, self.status):
            return f"#{self.name}: a {ticket.status} ticket cannot become {self.status}"
        return None

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        change = tr.change_status(ticket, self.status, actor=ctx.actor, now=ctx.now)
        return base.Applied(change, f"status is now {self.status}")


for _name, _status, _help in (
    ("close", Status.CLOSED, "close the ticket"),
    ("solve", Status.SOLVED, "mark it solved (a customer reply reopens it)"),
    ("pending", Status.PENDING, "wait for the customer (their reply reopens it)"),
    ("open", Status.OPEN, "reopen the ticket"),
):
    base.register(StatusCommand(_name, _status, _help))
