"""``#note``: the mail is an internal note, never sent to the customer."""

from __future__ import annotations

from collections.abc import Sequence

from inboxd.core.commands import base


class NoteCommand(base.CommandSpec):
    name = "note"
    args = "[TEXT]"
    help = "keep this mail as an internal note (nothing goes to the customer)"
    rank = 20
    shapes_mail = True

    def parse(self, words: Sequence[str], rest: str) -> list[base.Command]:
        return [base.Command("note")]

    def kept_text(self, rest: str) -> str:
        return rest.strip()  # "#note called them" keeps the words

    def conflicts(self, commands: Sequence[base.Command]) -> list[str]:
        if any(c.name == "canned" for c in commands):
            return ["#note and #canned together: a note never goes to the customer"]
        return []


base.register(NoteCommand())
