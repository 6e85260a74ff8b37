"""Agent commands at the top of a reply: ``#close``, ``#assign bob``, ...

One module per command registers a :class:`CommandSpec` (``base`` says what
one is); ``parse`` reads a mail's command block, ``run`` checks and applies
it through the ticket domain, and :func:`help_lines` is what an agent whose
command was wrong is shown. Importing this package imports every other module
in it, so a new command is one new module here (and its test), nothing else.
"""

import importlib
import pkgutil

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

_MACHINERY = frozenset({"base", "parse", "run"})
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_module.name}")


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
