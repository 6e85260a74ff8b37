"""``#merge N``: fold this ticket into ticket N; later mail on it follows to N."""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr

_TICKET = re.compile(r"^(?:\[?#)?(\d{1,12})\]?$")


class MergeCommand(base.CommandSpec):
    name = "merge"
    args = "N"
    help = "merge this ticket into ticket N"
    rank = 60
    group = "merge"
    last = True

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        match = _TICKET.match(words[0]) if len(words) == 1 else None
        if match is None:
            raise base.CommandError("#merge needs one ticket number, e.g. #merge 123")
        return [base.Command("merge", str(int(match.group(1))))]

    def ticket_ids(self, command: base.Command) -> tuple[int, ...]:
        return (int(command.arg),)

    def check(self, ctx: base.CommandContext, ticket: Ticket, command: base.Command) -> str | None:
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
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        target = ctx.tickets.get(int(command.arg))
        assert target is not None  # checked
        merged, into = tr.merge(ticket, target, actor=ctx.actor, now=ctx.now)
        return base.Applied(merged, f"merged into #{target.id}", others=(into,))


base.register(MergeCommand())
