"""Agent commands at the top of a reply: ``#close``, ``#assign bob``, ...

One module per command registers a :class:`CommandSpec` (``base`` says what
one is); ``parse`` reads a mail's command block, ``run`` checks and applies
it through the ticket domain, and :func:`help_lines` is what an agent whose
command was wrong is shown. Importing this package registers every command.
"""

from inboxd.core.commands import assign, canned, merge, note, priority, status, tags
from inboxd.core.commands.base import (
    REGISTRY,
    Command,
    CommandContext,
    CommandError,
    CommandResult,
    CommandSpec,
    register,
    specs,
)
from inboxd.core.commands.parse import CommandParse, parse_commands

_MODULES = (assign, canned, merge, note, priority, status, tags)  # registered on import


def help_lines() -> list[str]:
    """One line per command, in the order they were registered."""
    return [spec.usage() for spec in specs()]


__all__ = [
    "REGISTRY",
    "Command",
    "CommandContext",
    "CommandError",
    "CommandParse",
    "CommandResult",
    "CommandSpec",
    "help_lines",
    "parse_commands",
    "register",
]
