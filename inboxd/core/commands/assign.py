"""``#assign NAME|TEAM``: give the ticket to an agent, or to a team."""

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

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


class AssignCommand(CommandSpec):
    name = "assign"
    args = "NAME|TEAM"
    help = "give the ticket to an agent (name or address) or to a team"
    rank = 30
    group = "assign"

    def parse(self, words: Sequence[str], rest: str) -> list[Command]:
        if len(words) != 1 or not _NAME.match(words[0]):
            raise CommandError("#assign needs one agent or team name, e.g. #assign alice")
        return [Command("assign", words[0])]

    def check(self, ctx: CommandContext, ticket: Ticket, command: Command) -> str | None:
        if ctx.agent(command.arg) is None and not ctx.has_team(command.arg):
            return f"#assign {command.arg}: no agent or team of that name"
        return None

    def apply(
        self, ctx: CommandContext, ticket: Ticket, command: Command, *, actor: str, now: datetime
    ) -> Applied:
        agent = ctx.agent(command.arg)
        if agent is not None:
            change = tr.assign_agent(ticket, agent.name, teams=agent.teams, actor=actor, now=now)
            return Applied(change, f"assigned to {agent.name}")
        change = tr.assign_team(ticket, command.arg, actor=actor, now=now)
        return Applied(change, f"moved to team {command.arg}")


register(AssignCommand())
