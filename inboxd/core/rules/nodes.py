"""Reading YAML nodes with positions: the helpers every part of the rule loader uses.

Each helper checks one shape (mapping, scalar, list of scalars, boolean) and,
when the node has another shape, records an error at the node's line and
column instead of raising, so one pass reports every problem in a file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from inboxd.core.rules import schema as s
from inboxd.core.rules.model import RuleError
from inboxd.core.rules.textindex import TextIndex

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

Items = list[tuple[str, ScalarNode, Node]]


def parse_duration(text: str) -> timedelta:
    """'30m', '4h', '1h30m', '3d', '2w' -> timedelta; ValueError otherwise."""
    spec = text.strip().lower()
    if not re.fullmatch(s.DURATION_PATTERN, spec):
        raise ValueError(f"bad duration {text!r}: expected e.g. 30m, 4h, 1h30m, 3d")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(spec))
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: must be more than zero")
    return timedelta(seconds=seconds)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if 0 < len(choices) <= 12:
        return f" (expected one of: {', '.join(sorted(choices))})"
    return ""


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "an empty value" if node.value == "" else f"{node.value!r}"


@dataclass
class Ref:
    """A name used before all definitions are known; checked at the end."""

    kind: str  # team | agent | sla | calendar | template
    name: str
    file: str
    node: Node


@dataclass
class NodeReader:
    errors: list[RuleError] = field(default_factory=list)
    file: str = ""
    refs: list[Ref] = field(default_factory=list)
    index: TextIndex = field(default_factory=TextIndex)

    def err(self, node: Node, message: str, file: str | None = None) -> None:
        mark = node.start_mark
        self.errors.append(RuleError(file or self.file, mark.line + 1, mark.column + 1, message))

    def where(self, node: Node) -> str:
        return f"{self.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def items(self, node: Node, what: str) -> Items | None:
        if not isinstance(node, MappingNode):
            self.err(node, f"{what}: expected a mapping, got {kind_of(node)}")
            return None
        seen: dict[str, ScalarNode] = {}
        out: Items = []
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                self.err(knode, f"{what}: keys must be plain words")
                continue
            first = seen.get(knode.value)
            if first is not None:
                m = first.start_mark
                self.err(
                    knode,
                    f"duplicate key {knode.value!r} (first at line {m.line + 1}:{m.column + 1})",
                )
                continue
            seen[knode.value] = knode
            out.append((knode.value, knode, vnode))
        return out

    def known(self, items: Items, allowed: Collection[str], what: str) -> Items:
        keep: Items = []
        for key, knode, vnode in items:
            if key in allowed:
                keep.append((key, knode, vnode))
            else:
                self.err(knode, f"unknown {what} {key!r}{did_you_mean(key, allowed)}")
        return keep

    def scalar(self, node: Node, what: str, *, empty_ok: bool = False) -> str | None:
        if not isinstance(node, ScalarNode):
            self.err(node, f"{what}: expected a single value, got {kind_of(node)}")
            return None
        value = cast(str, node.value).strip()
        if not value and not empty_ok:
            self.err(node, f"{what}: value is empty")
            return None
        return value

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A scalar or a non-empty list of scalars."""
        if isinstance(node, ScalarNode):
            value = self.scalar(node, what)
            return [(value, node)] if value is not None else []
        if not isinstance(node, SequenceNode):
            self.err(node, f"{what}: expected a value or a list, got {kind_of(node)}")
            return []
        if not node.value:
            self.err(node, f"{what}: the list is empty")
        out = []
        for item in node.value:
            value = self.scalar(item, what)
            if value is not None:
                out.append((value, item))
        return out

    def boolean(self, node: Node, what: str) -> bool | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        low = value.lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        self.err(node, f"{what}: expected true or false, got {value!r}")
        return None

    def ident(self, node: Node, what: str, pattern: re.Pattern[str] = ID) -> str | None:
        value = self.scalar(node, what)
        if value is not None and not pattern.match(value):
            self.err(node, f"bad {what} {value!r}: use letters, digits, '.', '_' or '-'")
            return None
        return value

    def ref(self, kind: str, name: str, node: Node) -> None:
        self.refs.append(Ref(kind, name, self.file, node))

    def duration(self, node: Node, what: str) -> timedelta | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.err(node, f"{what}: {exc}")
            return None
