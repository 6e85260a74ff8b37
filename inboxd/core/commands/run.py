"""Checking and applying a mail's commands as a whole: everything or nothing.

``check`` returns every error the commands would meet on this ticket; only
when there is none does the caller ``apply`` them, which chains each command's
transition and returns the one change to save (plus other tickets' changes,
such as a merge target's) and a result line per command for the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from inboxd.core.commands.base import REGISTRY, Command, CommandContext, CommandResult
from inboxd.core.desk import Change, Ticket, unchanged
from inboxd.core.desk.events import TagsChanged


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change  # the ticket's, all commands chained
    others: tuple[Change, ...]  # other tickets' (a merge target)
    results: tuple[CommandResult, ...]

    @property
    def merged_into(self) -> int | None:
        """The ticket this one was merged into by these commands, if any."""
        return self.change.after.merged_into if self.change.before.merged_into is None else None


def ticket_ids(commands: Sequence[Command]) -> tuple[int, ...]:
    """Other tickets the commands name; the caller resolves them into the context."""
    ids: list[int] = []
    for command in commands:
        ids += REGISTRY[command.name].ticket_ids(command)
    return tuple(dict.fromkeys(ids))


def check(ctx: CommandContext, ticket: Ticket, commands: Sequence[Command]) -> list[str]:
    """Everything that would make ``apply`` fail, as sentences for the agent."""
    errors = []
    for command in commands:
        error = REGISTRY[command.name].check(ctx, ticket, command)
        if error:
            errors.append(error)
    return errors


def apply(ctx: CommandContext, ticket: Ticket, commands: Sequence[Command]) -> Outcome:
    """Apply checked commands in order (those marked ``last`` at the end). Commands
    that shape the mail (``#note``, ``#canned``) are the caller's."""
    change = unchanged(ticket)
    others: list[Change] = []
    results: list[CommandResult] = []
    ordered = sorted(
        (c for c in commands if not REGISTRY[c.name].shapes_mail),
        key=lambda c: REGISTRY[c.name].last,
    )
    for command in ordered:
        applied = REGISTRY[command.name].apply(ctx, change.after, command)
        change = change.then(applied.change)
        others += applied.others
        results.append(CommandResult(command.label, True, applied.detail))
    return Outcome(_one_tags_event(change), tuple(others), tuple(results))


def _one_tags_event(change: Change) -> Change:
    """Several #tag/#untag lines leave one ``tags`` event: the tags after them all."""
    tags = [e for e in change.events if isinstance(e, TagsChanged)]
    if len(tags) < 2:
        return change
    events = (*(e for e in change.events if not isinstance(e, TagsChanged)), tags[-1])
    return replace(change, events=events)
