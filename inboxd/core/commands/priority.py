"""``#priority P``: set the ticket's priority."""

from __future__ import annotations

from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import PRIORITIES, Ticket
from inboxd.core.desk import transitions as tr


class PriorityCommand(base.CommandSpec):
    name = "priority"
    args = "|".join(PRIORITIES).upper()
    help = "set the priority"
    rank = 40
    group = "priority"

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        if len(words) != 1 or words[0].lower() not in PRIORITIES:
            raise base.CommandError(f"#priority needs one of {', '.join(PRIORITIES)}")
        return [base.Command("priority", words[0].lower())]

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        change = tr.set_priority(ticket, command.arg, actor=ctx.actor, now=ctx.now)
        return base.Applied(change, f"priority is now {command.arg}")


base.register(PriorityCommand())
