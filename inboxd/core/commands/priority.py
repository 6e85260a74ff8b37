"""``#priority P``: set the ticket's priority."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from inboxd.core.commands.base import (
    Applied,
    Command,
    CommandContext,
    CommandError,
    CommandSpec,
    register,
)
from inboxd.core.desk import PRIORITIES, Ticket
from inboxd.core.desk import transitions as tr


class PriorityCommand(CommandSpec):
    name = "priority"
    args = "|".join(PRIORITIES).upper()
    help = "set the priority"
    rank = 40
    group = "priority"

    def parse(self, words: Sequence[str], rest: str) -> list[Command]:
        if len(words) != 1 or words[0].lower() not in PRIORITIES:
            raise CommandError(f"#priority needs one of {', '.join(PRIORITIES)}")
        return [Command("priority", words[0].lower())]

    def apply(
        self, ctx: CommandContext, ticket: Ticket, command: Command, *, actor: str, now: datetime
    ) -> Applied:
        change = tr.set_priority(ticket, command.arg, actor=actor, now=now)
        return Applied(change, f"priority is now {command.arg}")


register(PriorityCommand())
