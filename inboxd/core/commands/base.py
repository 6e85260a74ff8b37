"""What every agent command is: a name, its argument, its help line, and three steps.

A command module defines one :class:`CommandSpec` subclass (or a few, like the
status commands) and registers it with :func:`register`. The parser, the
checker, the executor and the help shown to an agent whose command was wrong
all read the registry, so adding a command is one module and its test.

The three steps, each pure:
- ``parse``: the words after ``#name`` into :class:`Command` values, or a
  :class:`CommandError` with a sentence for the agent;
- ``check``: against the ticket and what the desk knows (agents, teams,
  saved responses, the tickets a merge names), an error sentence or None;
- ``apply``: the change, through the ticket domain's transitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from inboxd.core.desk import Change, Ticket
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import Agent


@dataclass(frozen=True, slots=True)
class Command:
    """One command; ``arg`` is "" for those without an argument.

    ``name`` is lowercase; ``arg`` is lowercase for tags, priorities and canned
    names, kept as written for assignees, and the ticket number for merge.
    """

    name: str
    arg: str = ""

    @property
    def label(self) -> str:
        """As the agent wrote it, e.g. ``#assign bob``."""
        return f"#{self.name} {self.arg}".strip()


class CommandError(ValueError):
    """A command line the agent has to correct; the message is shown to them."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who gives the commands and when, and what the checks and changes may consult;
    built by the caller for one mail."""

    actor: str  # "agent:NAME"
    now: datetime
    rules: RuleSet | None
    canned: tuple[str, ...] = ()  # names of the saved responses
    tickets: Mapping[int, Ticket | None] = field(default_factory=dict)  # merge targets, resolved

    def agent(self, key: str) -> Agent | None:
        """An agent by rule name or address."""
        if self.rules is None or not key:
            return None
        return self.rules.agents.get(key) or self.rules.agent_by_email(key)

    def has_team(self, name: str) -> bool:
        return self.rules is not None and name in self.rules.teams


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str  # as the agent wrote it, e.g. "#assign bob"
    ok: bool
    detail: str

    def as_context(self) -> dict[str, Any]:
        return {"command": self.command, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Applied:
    """A command's effect: the ticket's change, and other tickets' (a merge target)."""

    change: Change
    detail: str
    others: tuple[Change, ...] = ()


class CommandSpec:
    """One command. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    args: ClassVar[str] = ""  # how the argument is written in help, e.g. "NAME|TEAM"
    help: ClassVar[str]
    # Commands of one group may not disagree in one mail (#close with #open, two #assign).
    group: ClassVar[str | None] = None
    # Shaped by the caller (the mail it writes), not applied to the ticket here.
    shapes_mail: ClassVar[bool] = False
    # Applied after every other command of the mail (a merge moves the ticket away).
    last: ClassVar[bool] = False
    # Where the command stands in help and in "known:" lists (then by name).
    rank: ClassVar[int] = 100

    def parse(self, words: Sequence[str], rest: str) -> list[Command]:
        """The commands one line means; ``rest`` is the line after ``#name``."""
        if words:
            raise CommandError(f"#{self.name} takes no argument (got {rest.strip()!r})")
        return [Command(self.name)]

    def kept_text(self, rest: str) -> str:
        """Text the line carries on to the mail (the words after ``#note``)."""
        return ""

    def conflicts(self, commands: Sequence[Command]) -> list[str]:
        """Sentences for contradictions among a mail's commands of this kind."""
        return []

    def ticket_ids(self, command: Command) -> tuple[int, ...]:
        """Tickets the check and the change need besides this one (resolved by the caller)."""
        return ()

    def check(self, ctx: CommandContext, ticket: Ticket, command: Command) -> str | None:
        return None

    def apply(self, ctx: CommandContext, ticket: Ticket, command: Command) -> Applied:
        raise NotImplementedError(f"#{self.name} is applied by the caller")

    def usage(self) -> str:
        """The help line shown to an agent: ``#assign NAME|TEAM  give the ticket ...``."""
        head = f"#{self.name} {self.args}".strip()
        return f"{head:<32} {self.help}"


REGISTRY: dict[str, CommandSpec] = {}


def register(spec: CommandSpec) -> CommandSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"command #{spec.name} registered twice")
    REGISTRY[spec.name] = spec
    return spec


def specs() -> list[CommandSpec]:
    """Every command, in help order."""
    return sorted(REGISTRY.values(), key=lambda s: s.rank)
