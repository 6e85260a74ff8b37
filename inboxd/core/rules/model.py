"""Values of the rule language: what a loaded rule set holds and what evaluation returns.

All frozen: a ``RuleSet`` is shared by every worker thread and swapped whole on
reload, and a ``Decision`` is a plain answer the pipeline turns into writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from inboxd.core import desk
from inboxd.core.calendar import Calendar
from inboxd.core.sla.model import Duration, Stage
from inboxd.core.spikes import SpikeConfig

if TYPE_CHECKING:
    from inboxd.core.rules.conditions import Condition
    from inboxd.core.rules.textindex import TextIndex

PRIORITIES = desk.PRIORITIES
PRIORITY_RANK = desk.vocab.PRIORITY_RANK
STATUSES: tuple[str, ...] = tuple(s.value for s in desk.SETTABLE_STATUSES)  # what a rule may set
ASSIGNMENTS: tuple[str, ...] = ("round_robin", "least_open", "none")
Assignment = Literal["round_robin", "least_open", "none"]
ON_KINDS: tuple[str, ...] = ("new", "reply")


@dataclass(frozen=True, slots=True, order=True)
class RuleError:
    """One problem in the rule files, positioned 1-based like compilers do."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class Agent:
    name: str  # id-like key used in rules and commands, e.g. "alice"
    email: str  # lowercased
    display_name: str = ""
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    agents: tuple[Agent, ...] = ()
    lead: str | None = None
    assignment: Assignment = "none"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets counted on ``calendar`` (``core.sla.clock`` does the math).

    ``stages`` holds every stage, the one ``warn_before`` stands for included.
    """

    name: str
    calendar: str
    first_response: Duration | None = None
    next_response: Duration | None = None
    resolution: Duration | None = None
    warn_before: Duration | None = None
    pause_when: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()

    def targets(self) -> tuple[tuple[str, Duration], ...]:
        """(name, budget) of every target the policy sets, in TARGET_NAMES order."""
        out = ((n, getattr(self, n)) for n in ("first_response", "next_response", "resolution"))
        return tuple((n, d) for n, d in out if d is not None)


@dataclass(frozen=True, slots=True)
class Actions:
    tags: tuple[str, ...] = ()
    untags: tuple[str, ...] = ()
    priority: str | None = None
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    sla: str | None = None
    auto_reply: str | None = None
    slack: tuple[str, ...] = ()
    status: str | None = None
    group: timedelta | None = None
    stop: bool = False
    # derived at load, so evaluation does no per-rule formatting:
    # (field, value, shown) for each first-wins field this rule sets
    scalars: tuple[tuple[str, object, str], ...] = field(default=(), compare=False)
    # "tag+=x", "tag-=y", "vip", "slack=#c", "stop": always applied when the rule fires
    fixed: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    name: str
    file: str
    line: int
    on: frozenset[str]  # subset of ON_KINDS
    when: Condition | None  # None: always
    then: Actions
    description: str = ""


@dataclass(frozen=True, slots=True)
class VipList:
    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()  # a domain covers its subdomains

    def reason(self, email: str) -> str | None:
        """Why ``email`` is VIP, or None."""
        email = email.lower()
        if email in self.addresses:
            return f"address {email} is on the VIP list"
        domain = email.rpartition("@")[2]
        while domain:
            if domain in self.domains:
                return f"domain {domain} is on the VIP list"
            domain = domain.partition(".")[2]
        return None


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A validated, compiled rule set. Immutable; evaluate() only reads it."""

    teams: Mapping[str, Team]
    agents: Mapping[str, Agent]
    sla_policies: Mapping[str, SlaPolicy]
    calendars: Mapping[str, Calendar]
    rules: tuple[Rule, ...]
    vip: VipList
    source_files: tuple[str, ...]
    index: TextIndex = field(repr=False)
    gates: Mapping[int, tuple[int, ...]] = field(repr=False)  # signal -> rule positions
    ungated: tuple[int, ...] = field(repr=False, default=())  # rules evaluated always
    _by_email: Mapping[str, Agent] = field(repr=False, default_factory=dict)
    spikes: SpikeConfig = field(default_factory=SpikeConfig)  # the watched tags

    def agent_by_email(self, email: str) -> Agent | None:
        return self._by_email.get(email.strip().lower())


@dataclass(frozen=True, slots=True)
class LoadResult:
    ruleset: RuleSet | None
    errors: list[RuleError]

    @property
    def ok(self) -> bool:
        return self.ruleset is not None and not self.errors


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the pipeline knows beyond the message itself."""

    is_new: bool
    mailbox: str
    mailbox_address: str
    now: datetime
    ticket_vip: bool = False


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired: why, and what it changed or tried to change."""

    rule: str
    file: str
    line: int
    reasons: tuple[str, ...]
    applied: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of all rules for one message. ``origins`` names the rule per field."""

    tags: tuple[str, ...] = ()
    untags: tuple[str, ...] = ()
    priority: str | None = None
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    sla: str | None = None
    auto_reply: str | None = None
    slack: tuple[str, ...] = ()
    status: str | None = None
    group_window: timedelta | None = None
    hits: tuple[RuleHit, ...] = ()
    origins: tuple[tuple[str, str], ...] = ()  # (field, rule name) for each scalar set

    def origin(self, field_name: str) -> str | None:
        for name, rule in self.origins:
            if name == field_name:
                return rule
        return None
