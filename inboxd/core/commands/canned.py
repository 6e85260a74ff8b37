"""``#canned NAME``: start the reply with a saved response."""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.commands import base
from inboxd.core.desk import Ticket

_CANNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a file name: no dots, no slashes


class CannedCommand(base.CommandSpec):
    name = "canned"
    args = "NAME"
    help = "start the reply with the saved response NAME"
    rank = 70
    group = "canned"
    shapes_mail = True

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        if len(words) != 1 or not _CANNED.match(words[0]):
            raise base.CommandError("#canned needs one response name (letters, digits, - and _)")
        return [base.Command("canned", words[0].lower())]

    def check(self, ctx: base.CommandContext, ticket: Ticket, command: base.Command) -> str | None:
        if command.arg not in ctx.canned:
            known = ", ".join(ctx.canned) or "none"
            return f"#canned {command.arg}: no such saved response (known: {known})"
        return None


base.register(CannedCommand())
