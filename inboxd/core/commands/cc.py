"""``#cc ADDRESS``: make an address a recipient of the ticket's replies.

A sender who joined the ticket by citing its mail (or a relayed mail's return
path) is only ``pending``: nobody who merely knows a Message-ID may read the
agents' answers. The agent accepts them with ``#cc``; an address new to the
ticket is added the same way. ``db.tickets.save`` turns the event into the role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr

_ADDRESS = re.compile(r"^[^\s@<>,;\"()]{1,64}@[^\s@<>,;\"()]{1,255}\.[^\s@<>,;\"()]{1,63}$")


class CcCommand(base.CommandSpec):
    name = "cc"
    args = "ADDRESS"
    help = "send the replies to ADDRESS as well (e.g. a sender who joined the thread)"
    rank = 55

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        address = words[0].strip("<>") if len(words) == 1 else ""
        if not _ADDRESS.match(address):
            raise base.CommandError("#cc needs one mail address, e.g. #cc dave@example.com")
        return [base.Command("cc", address.lower())]

    def check(self, ctx: base.CommandContext, ticket: Ticket, command: base.Command) -> str | None:
        if ctx.agent(command.arg) is not None:
            return f"#cc {command.arg}: that is an agent (agents never get the customer's copy)"
        return None

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        accepted = ev.ParticipantAccepted(at=ctx.now, actor=ctx.actor, email=command.arg)
        return base.Applied(tr.record(ticket, accepted), f"{command.arg} receives the replies")


base.register(CcCommand())
