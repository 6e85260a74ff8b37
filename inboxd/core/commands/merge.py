"""``#merge N``: fold this ticket into ticket N; later mail on it follows to N."""

from __future__ import annotations

import re
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
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr

_TICKET = re.compile(r"^(?:\[?#)?(\d{1,12})\]?$")


class MergeCommand(CommandSpec):
    name = "merge"
    args = "N"
    help = "merge this ticket into ticket N"
    rank = 60
    group = "merge"
    last = True

    def parse(self, words: Sequence[str], rest: str) -> list[Command]:
        match = _TICKET.match(words[0]) if len(words) == 1 else None
        if match is None:
            raise CommandError("#merge needs one ticket number, e.g. #merge 123")
        return [Command("merge", str(int(match.group(1))))]

    def ticket_ids(self, command: Command) -> tuple[int, ...]:
        return (int(command.arg),)

    def check(self, ctx: CommandContext, ticket: Ticket, command: Command) -> str | None:
        target = int(command.arg)
        if target == ticket.id:
            return f"#merge {target}: that is this ticket"
        found = ctx.tickets.get(target)
        if found is None:
            return f"#merge {target}: no such ticket"
        if found.id == ticket.id:
            return f"#merge {target}: that ticket is already merged into this one"
        return None

    def apply(
        self, ctx: CommandContext, ticket: Ticket, command: Command, *, actor: str, now: datetime
    ) -> Applied:
        target = ctx.tickets.get(int(command.arg))
        assert target is not None  # checked
        merged, into = tr.merge(ticket, target, actor=actor, now=now)
        return Applied(merged, f"merged into #{target.id}", others=(into,))


register(MergeCommand())
