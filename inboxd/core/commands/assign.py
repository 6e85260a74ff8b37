"""``#assign NAME|TEAM``: give the ticket to an agent, or to a team."""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


class AssignCommand(base.CommandSpec):
    name = "assign"
    args = "NAME|TEAM"
    help = "give the ticket to an agent (name or address) or to a team"
    rank = 30
    group = "assign"

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        if len(words) != 1 or not _NAME.match(words[0]):
            raise base.CommandError("#assign needs one agent or team name, e.g. #assign alice")
        return [base.Command("assign", words[0])]

    def check(self, ctx: base.CommandContext, ticket: Ticket, command: base.Command) -> str | None:
        if ctx.agent(command.arg) is None and not ctx.has_team(command.arg):
            return f"#assign {command.arg}: no agent or team of that name"
        return None

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        agent = ctx.agent(command.arg)
        if agent is not None:
            change = tr.assign_agent(
                ticket, agent.name, teams=agent.teams, actor=ctx.actor, now=ctx.now
            )
            return base.Applied(change, f"assigned to {agent.name}")
        change = tr.assign_team(ticket, command.arg, actor=ctx.actor, now=ctx.now)
        return base.Applied(change, f"moved to team {command.arg}")


base.register(AssignCommand())
