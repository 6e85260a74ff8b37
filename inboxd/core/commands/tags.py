"""``#tag X...`` and ``#untag X...``: add or remove tags."""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr

_TAG = re.compile(r"^[\w][\w.:/-]{0,63}$")


class TagCommand(base.CommandSpec):
    args = "TAG..."
    rank = 50

    def __init__(self, name: str, help: str) -> None:
        self.name = name  # type: ignore[misc]
        self.help = help  # type: ignore[misc]

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        if not words:
            raise base.CommandError(f"#{self.name} needs at least one tag")
        bad = [w for w in words if not _TAG.match(w)]
        if bad:
            raise base.CommandError(f"#{self.name}: not a valid tag: {', '.join(bad)}")
        return [base.Command(self.name, w.lower()) for w in dict.fromkeys(words)]

    def conflicts(self, commands: Sequence[base.Command]) -> list[str]:
        if self.name != "tag":  # said once for the pair
            return []
        tags = {c.arg for c in commands if c.name == "tag"}
        untags = {c.arg for c in commands if c.name == "untag"}
        both = tags & untags
        return ["tagged and untagged at once: " + ", ".join(sorted(both))] if both else []

    def apply(
        self, ctx: base.CommandContext, ticket: Ticket, command: base.Command
    ) -> base.Applied:
        if self.name == "tag":
            change = tr.retag(ticket, add=(command.arg,), actor=ctx.actor, now=ctx.now)
            return base.Applied(change, f"tagged {command.arg}")
        change = tr.retag(ticket, remove=(command.arg,), actor=ctx.actor, now=ctx.now)
        return base.Applied(change, f"untagged {command.arg}")


base.register(TagCommand("tag", "add tags"))
base.register(TagCommand("untag", "remove tags"))
