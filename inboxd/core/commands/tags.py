"""``#tag X...`` and ``#untag X...``: add or remove tags."""

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

_TAG = re.compile(r"^[\w][\w.:/-]{0,63}$")


class TagCommand(CommandSpec):
    args = "TAG..."
    rank = 50

    def __init__(self, name: str, help: str) -> None:
        self.name = name  # type: ignore[misc]
        self.help = help  # type: ignore[misc]

    def parse(self, words: Sequence[str], rest: str) -> list[Command]:
        if not words:
            raise CommandError(f"#{self.name} needs at least one tag")
        bad = [w for w in words if not _TAG.match(w)]
        if bad:
            raise CommandError(f"#{self.name}: not a valid tag: {', '.join(bad)}")
        return [Command(self.name, w.lower()) for w in dict.fromkeys(words)]

    def conflicts(self, commands: Sequence[Command]) -> list[str]:
        if self.name != "tag":  # said once for the pair
            return []
        tags = {c.arg for c in commands if c.name == "tag"}
        untags = {c.arg for c in commands if c.name == "untag"}
        both = tags & untags
        return ["tagged and untagged at once: " + ", ".join(sorted(both))] if both else []

    def apply(
        self, ctx: CommandContext, ticket: Ticket, command: Command, *, actor: str, now: datetime
    ) -> Applied:
        if self.name == "tag":
            change = tr.retag(ticket, add=(command.arg,), actor=actor, now=now)
            return Applied(change, f"tagged {command.arg}")
        change = tr.retag(ticket, remove=(command.arg,), actor=actor, now=now)
        return Applied(change, f"untagged {command.arg}")


register(TagCommand("tag", "add tags"))
register(TagCommand("untag", "remove tags"))
