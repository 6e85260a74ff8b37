"""Reading the command block at the top of an agent's reply.

Only the leading lines count (blank lines between them are fine); the first
line of prose ends the command block, so "#1 priority for us is..." further
down is text. Whether the sender may command at all (a known agent with a
valid token) is decided by the caller; this module only reads text.

A line that looks like a command (``#word`` at the very start) but is not one,
or has a bad argument, is an error AND is still taken out of the text: a typo
such as ``#clsoe`` must never reach the customer. The caller answers errors
with a short explanation (and the registry's help) and then relays nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from inboxd.core.commands.base import REGISTRY, Command, CommandError, specs

_COMMAND_LINE = re.compile(r"^#([A-Za-z][A-Za-z0-9_-]*)(.*)$")


@dataclass(frozen=True, slots=True)
class CommandParse:
    commands: tuple[Command, ...]
    errors: tuple[str, ...]
    remaining_text: str

    @property
    def is_note(self) -> bool:
        return any(c.name == "note" for c in self.commands)

    def first(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)

    def all(self, name: str) -> tuple[Command, ...]:
        return tuple(c for c in self.commands if c.name == name)


def known_names() -> str:
    return ", ".join(f"#{spec.name}" for spec in specs())


def _parse_line(name: str, rest: str) -> tuple[list[Command], str | None, str]:
    """(commands, error, text kept) for one command line."""
    spec = REGISTRY.get(name)
    if spec is None:
        return [], f"unknown command #{name} (known: {known_names()})", ""
    try:
        return spec.parse(rest.split(), rest), None, spec.kept_text(rest)
    except CommandError as exc:
        return [], str(exc), ""


def conflicts(commands: Sequence[Command]) -> list[str]:
    """Commands of one group that disagree, and what each command says of the rest."""
    errors: list[str] = []
    groups: dict[str, list[Command]] = {}
    for command in commands:
        group = REGISTRY[command.name].group
        if group is not None:
            groups.setdefault(group, []).append(command)
    for group, members in groups.items():
        distinct = list(dict.fromkeys(members))
        if len(distinct) < 2:
            continue
        names = list(dict.fromkeys(c.name for c in distinct))
        if len(names) > 1:
            errors.append(f"conflicting {group} commands: " + ", ".join(f"#{n}" for n in names))
        else:
            errors.append(f"#{names[0]} given more than once with different values")
    for name in dict.fromkeys(c.name for c in commands):
        errors.extend(REGISTRY[name].conflicts(commands))
    return errors


def parse_commands(text: str) -> CommandParse:
    """Split an agent's new text into leading commands and the rest."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    commands: list[Command] = []
    errors: list[str] = []
    kept: list[str] = []  # text carried by a command line (the words after #note)
    index = 0
    while index < len(lines):
        line = lines[index].strip().lstrip("\ufeff")
        if not line:
            index += 1
            continue
        match = _COMMAND_LINE.match(line)
        if match is None:
            break
        found, error, keep = _parse_line(match.group(1).lower(), match.group(2))
        commands.extend(found)
        if error:
            errors.append(error)
        if keep:
            kept.append(keep)
        index += 1
    unique = list(dict.fromkeys(commands))  # identical commands count once, in order
    errors.extend(conflicts(unique))
    rest = "\n".join([*kept, *lines[index:]]) if kept else "\n".join(lines[index:])
    return CommandParse(tuple(unique), tuple(errors), rest.strip("\n"))
