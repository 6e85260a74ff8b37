"""``#merge N``: fold this ticket into ticket N; later mail on it follows to N.

Only an agent who may act on both tickets merges them: for each, its assignee
or a member of its team (a ticket with neither is anyone's). A merge joins
threads, not audiences: each ticket's customers keep getting only the replies
to their own ticket (``flows.agent_reply``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr
from inboxd.core.rules.model import Agent

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
        agent = ctx.agent(ctx.actor.removeprefix("agent:"))
        if agent is None:
            return f"#merge {target}: only an agent of both tickets may merge them"
        for other in (ticket, found):
            if not may_act(agent, other):
                owner = other.assignee or f"team {other.team}"
                return f"#merge {target}: {agent.name} may not act on ticket #{other.id} ({owner})"
        return None

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        target = ctx.tickets.get(int(command.arg))
        assert target is not None  # checked
        merged, into = tr.merge(ticket, target, actor=ctx.actor, now=ctx.now)
        return base.Applied(merged, f"merged into #{target.id}", others=(into,))


def may_act(agent: Agent, ticket: Ticket) -> bool:
    """The ticket is the agent's: assigned to them, in one of their teams, or nobody's."""
    if ticket.assignee is None and ticket.team is None:
        return True
    return ticket.assignee == agent.name or (ticket.team is not None and ticket.team in agent.teams)


base.register(MergeCommand())
