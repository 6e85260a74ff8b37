"""Agent commands at the top of a reply: ``#close``, ``#assign bob``, ...

Only the leading lines count (blank lines between them are fine); the first
line of prose ends the command block, so "#1 priority for us is..." further
down is text. Whether the sender may command at all (a known agent with a valid
token) is decided by the caller; this module only reads text.

A line that looks like a command (``#word`` at the very start) but is not one,
or has a bad argument, is an error AND is still taken out of the text: a typo
such as ``#clsoe`` must never reach the customer. The caller answers errors with
a short explanation to the agent and should then not relay anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUS_COMMANDS = ("close", "solve", "pending", "open")
PRIORITIES = ("low", "normal", "high", "urgent")
KNOWN = (*STATUS_COMMANDS, "note", "assign", "priority", "tag", "untag", "merge", "canned")

_COMMAND_LINE = re.compile(r"^#([A-Za-z][A-Za-z0-9_-]*)(.*)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
_TAG = re.compile(r"^[\w][\w.:/-]{0,63}$")
_CANNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a file name: no dots, no slashes
_TICKET = re.compile(r"^(?:\[?#)?(\d{1,12})\]?$")


@dataclass(frozen=True, slots=True)
class Command:
    """One command; ``arg`` is "" for those without an argument.

    ``name`` is lowercase; ``arg`` is lowercase for tags, priorities and canned
    names, kept as written for assignees, and the ticket number for merge.
    """

    name: str
    arg: str = ""


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


def _parse_line(name: str, rest: str) -> tuple[list[Command], str | None, str]:
    """(commands, error, text kept) for one command line."""
    args = rest.split()
    if name == "note":
        return [Command("note")], None, rest.strip()  # "#note called them" keeps the words
    if name in STATUS_COMMANDS:
        if args:
            return [], f"#{name} takes no argument (got {rest.strip()!r})", ""
        return [Command(name)], None, ""
    if name == "assign":
        if len(args) != 1 or not _NAME.match(args[0]):
            return [], "#assign needs one agent or team name, e.g. #assign alice", ""
        return [Command("assign", args[0])], None, ""
    if name == "priority":
        if len(args) != 1 or args[0].lower() not in PRIORITIES:
            return [], f"#priority needs one of {', '.join(PRIORITIES)}", ""
        return [Command("priority", args[0].lower())], None, ""
    if name in ("tag", "untag"):
        if not args:
            return [], f"#{name} needs at least one tag", ""
        bad = [a for a in args if not _TAG.match(a)]
        if bad:
            return [], f"#{name}: not a valid tag: {', '.join(bad)}", ""
        return [Command(name, a.lower()) for a in dict.fromkeys(args)], None, ""
    if name == "merge":
        match = _TICKET.match(args[0]) if len(args) == 1 else None
        if match is None:
            return [], "#merge needs one ticket number, e.g. #merge 123", ""
        return [Command("merge", str(int(match.group(1))))], None, ""
    if name == "canned":
        if len(args) != 1 or not _CANNED.match(args[0]):
            return [], "#canned needs one response name (letters, digits, - and _)", ""
        return [Command("canned", args[0].lower())], None, ""
    known = ", ".join(f"#{k}" for k in KNOWN)
    return [], f"unknown command #{name} (known: {known})", ""


def _conflicts(commands: list[Command]) -> list[str]:
    errors = []
    statuses = list(dict.fromkeys(c.name for c in commands if c.name in STATUS_COMMANDS))
    if len(statuses) > 1:
        errors.append("conflicting status commands: " + ", ".join(f"#{s}" for s in statuses))
    for name in ("assign", "priority", "merge", "canned"):
        values = list(dict.fromkeys(c.arg for c in commands if c.name == name))
        if len(values) > 1:
            errors.append(f"#{name} given more than once with different values")
    tags = {c.arg for c in commands if c.name == "tag"}
    untags = {c.arg for c in commands if c.name == "untag"}
    if tags & untags:
        errors.append("tagged and untagged at once: " + ", ".join(sorted(tags & untags)))
    names = {c.name for c in commands}
    if "note" in names and "canned" in names:
        errors.append("#note and #canned together: a note never goes to the customer")
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
    # deduplicate identical commands, keep order
    unique = list(dict.fromkeys(commands))
    errors.extend(_conflicts(unique))
    rest = "\n".join([*kept, *lines[index:]]) if kept else "\n".join(lines[index:])
    return CommandParse(tuple(unique), tuple(errors), rest.strip("\n"))
