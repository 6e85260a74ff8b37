"""Values of an SLA policy: a target's budget that keeps its unit, and stages.

A budget in ``h``/``m``/``s`` counts business seconds; one in ``d``/``w``
counts business days, so ``3d`` can never silently become 72 business hours.
The parsers raise ValueError with a message fit for an admin; the rule loader
adds the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from inboxd.core.slack_text import SUBTEAM_ID

TARGET_NAMES: tuple[str, ...] = ("first_response", "next_response", "resolution")
TARGET_LABELS = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}
Unit = Literal["seconds", "days"]
Action = Literal["remind", "alert"]
ACTIONS: tuple[str, ...] = ("remind", "alert")

_PART = re.compile(r"(\d+)\s*([wdhms])")
_WHOLE = re.compile(r"^\s*(\d+\s*[wdhms]\s*)+$")
_SECONDS = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True, slots=True)
class Duration:
    """``amount`` business seconds, or ``amount`` business days (a week is 7 days)."""

    amount: int
    unit: Unit = "seconds"

    @classmethod
    def parse(cls, text: str) -> Duration:
        """'30m', '4h', '1h30m' (business time) or '3d', '2w' (business days)."""
        spec = text.strip().lower()
        if not _WHOLE.match(spec):
            raise ValueError(f"bad duration {text!r}: expected e.g. 30m, 4h, 1h30m, 3d, 1w")
        parts = _PART.findall(spec)
        units = {u for _, u in parts}
        if units & {"d", "w"} and units & set(_SECONDS):
            raise ValueError(
                f"bad duration {text!r}: d and w count business days and cannot be mixed "
                "with h, m or s (write e.g. 1d or 36h)"
            )
        if units & {"d", "w"}:
            out = cls(sum(int(n) * (7 if u == "w" else 1) for n, u in parts), "days")
        else:
            out = cls(sum(int(n) * _SECONDS[u] for n, u in parts), "seconds")
        if out.amount <= 0:
            raise ValueError(f"bad duration {text!r}: must be more than zero")
        return out

    def __str__(self) -> str:
        if self.unit == "days":
            weeks, days = divmod(self.amount, 7)
            return f"{weeks}w" if weeks and not days else f"{self.amount}d"
        out, rest = "", self.amount
        for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
            if rest >= size:
                out += f"{rest // size}{unit}"
                rest %= size
        return out or "0s"

    def describe(self, *, around_the_clock: bool = False) -> str:
        """Plain words: '4 business hours', '3 business days' ('3 days' on 24x7)."""
        kind = "" if around_the_clock else "business "
        if self.unit == "days":
            n = self.amount
            return f"{n} {kind}day{'s' if n != 1 else ''}"
        hours, rest = divmod(self.amount, 3600)
        minutes, seconds = divmod(rest, 60)
        words = [
            f"{n} {name}{'s' if n != 1 else ''}"
            for n, name in ((hours, "hour"), (minutes, "minute"), (seconds, "second"))
            if n
        ]
        return " ".join(words) + ("" if around_the_clock else " of business time")


@dataclass(frozen=True, slots=True)
class When:
    """When a stage fires: at ``percent`` of the budget, ``offset`` before the
    breach, or at the breach plus ``offset`` (business time on the calendar)."""

    kind: Literal["percent", "before", "breach"]
    percent: int = 100
    offset: Duration | None = None

    def __str__(self) -> str:
        if self.kind == "percent":
            return f"{self.percent}%"
        if self.kind == "before":
            return f"{self.offset} before breach"
        return f"breach + {self.offset}" if self.offset else "breach"

    @property
    def before_breach(self) -> bool:
        return self.kind == "before" or (self.kind == "percent" and self.percent < 100)


@dataclass(frozen=True, slots=True)
class Recipient:
    """``assignee`` (or the team when unassigned), ``team`` / ``lead`` (of the ticket's
    team, or of the team ``name``), ``slack`` (channel ``name``), or ``mention`` (the
    Slack user group ``name``, pinged in the stage's Slack alerts)."""

    kind: Literal["assignee", "team", "lead", "slack", "mention"]
    name: str | None = None

    def __str__(self) -> str:
        if self.kind in ("slack", "mention"):
            return f"{self.kind}:{self.name}"
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a policy: when, on which targets, what to do and for whom.

    ``remind`` mails people and waits for the calendar's open hours; ``alert``
    goes out at once.
    """

    when: When
    action: Action
    to: tuple[Recipient, ...]
    targets: tuple[str, ...]

    @property
    def key(self) -> str:
        """Stable name of the stage within its policy: part of the fire-once key."""
        return f"{self.action}@{str(self.when).replace(' + ', '+').replace(' ', '_')}"

    def __str__(self) -> str:
        who = ", ".join(str(r) for r in self.to)
        return f"{self.action} {who} at {self.when} of {', '.join(self.targets)}"


_WHEN = re.compile(
    r"^(?:(?P<verb>warn|remind|alert|escalate)\s+)?(?:at\s+)?"
    r"(?:(?P<pct>\d{1,3})\s*%|(?P<before>[\dwdhms ]+?)\s+before\s+breach"
    r"|breach(?:\s*\+\s*(?P<after>[\dwdhms ]+))?)$"
)


def parse_when(text: str) -> tuple[When, Action | None]:
    """'75%', 'at breach', 'breach + 2h', '1h before breach'; with an optional leading
    verb ('warn at 75%' = remind, 'escalate at breach' = alert) returned second."""
    m = _WHEN.match(" ".join(text.strip().lower().split()))
    if not m:
        raise ValueError(
            f"bad stage time {text!r}: expected e.g. '75%', 'breach', 'breach + 2h', "
            "'1h before breach'"
        )
    verb = m.group("verb")
    action: Action | None = None
    if verb is not None:
        action = "remind" if verb in ("warn", "remind") else "alert"
    if m.group("pct") is not None:
        pct = int(m.group("pct"))
        if not 0 < pct <= 100:
            raise ValueError(f"bad stage time {text!r}: a share is 1% to 100% (then: breach + 2h)")
        return When("percent", pct), action
    if m.group("before") is not None:
        offset = Duration.parse(m.group("before"))
        if offset.unit == "days":
            raise ValueError(f"bad stage time {text!r}: count back in hours (e.g. 8h)")
        return When("before", offset=offset), action
    after = m.group("after")
    return When("breach", offset=Duration.parse(after) if after else None), action


def parse_recipient(text: str) -> Recipient:
    """'assignee', 'team', 'team:billing', 'lead', 'lead:billing', '#chan', 'slack:#chan',
    'mention:S0123ABC' (a Slack user group id)."""
    spec = text.strip()
    if spec.startswith("#"):
        return Recipient("slack", spec)
    kind, _, name = spec.partition(":")
    kind = kind.lower()
    if kind == "slack" and name:
        return Recipient("slack", name if name.startswith("#") else f"#{name}")
    if kind == "mention" and SUBTEAM_ID.match(name):
        return Recipient("mention", name)
    if kind == "assignee" and not name:
        return Recipient("assignee")
    if kind in ("team", "lead"):
        return Recipient("lead" if kind == "lead" else "team", name or None)
    raise ValueError(
        f"bad stage recipient {text!r}: expected assignee, team, team:NAME, lead, "
        "lead:NAME, a Slack channel (#name) or mention:USERGROUP_ID (S0123ABC)"
    )


def default_stage(when: When, action: Action | None, targets: tuple[str, ...]) -> Stage:
    """A stage written as one string: a warning reminds the assignee (or team), anything
    at or after the breach alerts the team lead."""
    if action is None:
        action = "remind" if when.before_breach else "alert"
    to = (Recipient("assignee"),) if action == "remind" else (Recipient("lead"),)
    return Stage(when, action, to, targets)
