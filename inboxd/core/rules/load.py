"""Rule files (YAML text) -> a validated, compiled RuleSet, or every error at once.

YAML is composed, not constructed, with BaseLoader semantics: every scalar
stays a string (so ``no`` is not False and ``17:30`` is not 1050) and every
node keeps its line and column for error messages. Definitions (teams, agents,
calendars, SLA policies) may live in any file; references are checked after
all files are read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from inboxd.core.calendar import (
    ALWAYS_NAME,
    DAYS,
    Calendar,
    Interval,
    always_open,
    make_calendar,
    parse_date,
    parse_days,
    parse_ranges,
    parse_timezone,
    week_overlap,
)
from inboxd.core.rules import conditions as c
from inboxd.core.rules import schema as s
from inboxd.core.rules.clauses import ClauseParser
from inboxd.core.rules.evaluate import plan_actions
from inboxd.core.rules.model import (
    ASSIGNMENTS,
    ON_KINDS,
    Actions,
    Agent,
    LoadResult,
    Rule,
    RuleError,
    RuleSet,
    SlaPolicy,
    Team,
    VipList,
)
from inboxd.core.rules.nodes import ID, Items, did_you_mean, kind_of
from inboxd.core.sla.model import (
    ACTIONS,
    TARGET_NAMES,
    Duration,
    Recipient,
    Stage,
    When,
    default_stage,
    parse_recipient,
    parse_when,
)
from inboxd.core.spikes import SpikeConfig, SpikeRule

_AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPIKE_TAG = re.compile(r"^[^\s,]+$")
_DOMAIN = re.compile(r"^[a-z0-9*?\[\]!-]+(\.[a-z0-9*?\[\]!-]+)*$")


# libyaml's composer keeps the same marks and is ~10x faster on big rule sets
_YAML_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def load_rules(
    files: Sequence[tuple[str, str]],
    *,
    known_templates: Collection[str] | None = None,
    lists: Mapping[str, str] | None = None,
) -> LoadResult:
    """Load (display path, text) pairs given in lexical order.

    ``lists`` maps file names of plain VIP lists (one address or domain per line)
    to their text; rule files refer to them under ``vip: files:``.
    ``known_templates`` enables the auto_reply template check when given.
    """
    loader = _Loader(known_templates=known_templates, lists=lists or {})
    for path, text in files:
        loader.load_file(path, text)
    return loader.finish([path for path, _ in files])


def lost_desk(before: RuleSet | None, after: RuleSet, where: str) -> list[RuleError]:
    """Why ``after`` may not replace ``before``: a set that has no teams or no agents
    where the last good one had some is an empty or half-copied directory (a checkout
    under way) far more often than an intent, and swapping it in strips new tickets of
    team and assignee and stops agents' replies being recognised. One directory-level
    error; none when ``before`` had nothing to lose (start-up, desks without teams)."""
    if before is None:
        return []
    lost = [
        what
        for what, had, has in (
            ("teams", before.teams, after.teams),
            ("agents", before.agents, after.agents),
        )
        if had and not has
    ]
    if not lost:
        return []
    had = " and ".join(
        f"{len(getattr(before, what))} {what}" for what in ("teams", "agents") if what in lost
    )
    message = (
        f"no {' and no '.join(lost)} in these rules where the last good rules had {had} "
        "(an empty or half-copied directory?); keeping the last good rules "
        "(a restart starts without them, if that is meant)"
    )
    return [RuleError(where, 1, 1, message)]


@dataclass
class _AgentDef:
    name: str
    email: str
    display_name: str
    where: str


@dataclass
class _TeamDef:
    name: str
    members: list[tuple[str, str, Node]]  # (agent name, file, node)
    lead: tuple[str, Node] | None
    assignment: str
    file: str
    where: str
    node: Node


@dataclass
class _RuleDef:
    name: str
    file: str
    line: int
    column: int
    on: frozenset[str]
    when: c.Condition | None
    actions: dict[str, Any]
    assignee_node: Node | None
    enabled: bool
    node: Node
    has_when: bool
    description: str = ""


@dataclass
class _Loader(ClauseParser):
    known_templates: Collection[str] | None = None
    lists: Mapping[str, str] = field(default_factory=dict)
    agents: dict[str, _AgentDef] = field(default_factory=dict)
    teams: dict[str, _TeamDef] = field(default_factory=dict)
    calendars: dict[str, tuple[Calendar, str]] = field(default_factory=dict)
    slas: dict[str, tuple[SlaPolicy, str]] = field(default_factory=dict)
    vip_addresses: set[str] = field(default_factory=set)
    vip_domains: set[str] = field(default_factory=set)
    rules: list[_RuleDef] = field(default_factory=list)
    rule_names: dict[str, str] = field(default_factory=dict)
    spikes: dict[str, tuple[SpikeRule, str]] = field(default_factory=dict)

    # -- files -----------------------------------------------------------
    def load_file(self, path: str, text: str) -> None:
        self.file = path
        try:
            root = yaml.compose(text, Loader=_YAML_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or "invalid YAML"
            context = f" ({exc.context})" if exc.context else ""
            self.errors.append(RuleError(path, line, col, f"YAML syntax: {problem}{context}"))
            return
        except yaml.YAMLError as exc:
            self.errors.append(RuleError(path, 1, 1, f"YAML syntax: {exc}"))
            return
        if root is None:
            return
        items = self.items(root, "rule file")
        if items is None:
            return
        sections: dict[str, Callable[[Node], None]] = {
            "version": self.version,
            "agents": self.agents_section,
            "teams": self.teams_section,
            "vip": self.vip_section,
            "calendars": self.calendars_section,
            "sla_policies": self.sla_section,
            "spikes": self.spikes_section,
            "rules": self.rules_section,
        }
        assert set(sections) == set(s.TOP_KEYS)
        for key, _, vnode in self.known(items, s.TOP_KEYS, "section"):
            sections[key](vnode)

    def version(self, node: Node) -> None:
        value = self.scalar(node, "version")
        if value is not None and value != "1":
            self.err(node, f"unsupported version {value!r} (this inboxd reads version 1)")

    # -- agents and teams ----------------------------------------------------
    def define_agent(self, name: str, email_node: Node, display: str, node: Node) -> None:
        email = self.scalar(email_node, "email")
        if email is None:
            return
        email = email.lower()
        if not _EMAIL.match(email):
            self.err(email_node, f"bad email address {email!r}")
            return
        old = self.agents.get(name)
        if old is not None:
            if old.email != email:
                self.err(node, f"agent {name!r} is already defined with {old.email} at {old.where}")
            elif display and not old.display_name:
                old.display_name = display
            return
        for other in self.agents.values():
            if other.email == email:
                self.err(email_node, f"address {email} already belongs to agent {other.name!r}")
                return
        self.agents[name] = _AgentDef(name, email, display, self.where(node))

    def agent_mapping(self, name: str, node: Node, items: Items) -> None:
        email_node: Node | None = None
        display = ""
        for key, _, vnode in items:
            if key == "email":
                email_node = vnode
            elif key == "display_name":
                display = self.scalar(vnode, "display_name", empty_ok=True) or ""
        if email_node is None:
            self.err(node, f"agent {name!r}: 'email' is required")
            return
        self.define_agent(name, email_node, display, node)

    def agents_section(self, node: Node) -> None:
        for name, knode, vnode in self.items(node, "agents") or []:
            if not _AGENT_ID.match(name):
                self.err(
                    knode,
                    f"bad agent name {name!r}: use lowercase letters, digits, "
                    "'.', '_' or '-' (the full name goes in display_name)",
                )
                continue
            items = self.items(vnode, f"agent {name!r}")
            if items is not None:
                keys = [k for k in s.AGENT_KEYS if k != "name"]
                self.agent_mapping(name, vnode, self.known(items, keys, "agent key"))

    def teams_section(self, node: Node) -> None:
        for name, knode, vnode in self.items(node, "teams") or []:
            if not ID.match(name):
                self.err(knode, f"bad team name {name!r}: use letters, digits, '.', '_' or '-'")
                continue
            if name in self.teams:
                self.err(knode, f"team {name!r} is already defined at {self.teams[name].where}")
                continue
            team = _TeamDef(name, [], None, "none", self.file, self.where(knode), knode)
            self.teams[name] = team
            items = self.items(vnode, f"team {name!r}")
            for key, _, tnode in self.known(items or [], s.TEAM_KEYS, "team key"):
                if key == "agents":
                    self.team_agents(team, tnode)
                elif key == "lead":
                    lead = self.scalar(tnode, "lead")
                    if lead is not None:
                        team.lead = (lead, tnode)
                elif key == "assignment":
                    value = self.scalar(tnode, "assignment")
                    if value is not None and value not in ASSIGNMENTS:
                        self.err(
                            tnode, f"unknown assignment {value!r}{did_you_mean(value, ASSIGNMENTS)}"
                        )
                    elif value is not None:
                        team.assignment = value

    def team_agents(self, team: _TeamDef, node: Node) -> None:
        if not isinstance(node, SequenceNode):
            self.err(node, f"team {team.name!r}: agents: expected a list, got {kind_of(node)}")
            return
        for item in node.value:
            if isinstance(item, ScalarNode):
                name = self.ident(item, "agent name", _AGENT_ID)
                if name is not None:
                    team.members.append((name, self.file, item))
                    self.ref("agent", name, item)
                continue
            items = self.items(item, "agent")
            if items is None:
                continue
            items = self.known(items, s.AGENT_KEYS, "agent key")
            name_node = next((v for k, _, v in items if k == "name"), None)
            if name_node is None:
                self.err(item, "agent: 'name' is required (an id like 'alice')")
                continue
            name = self.ident(name_node, "agent name", _AGENT_ID)
            if name is None:
                continue
            self.agent_mapping(name, item, [i for i in items if i[0] != "name"])
            team.members.append((name, self.file, item))

    # -- VIP -------------------------------------------------------------
    def vip_section(self, node: Node) -> None:
        for key, _, vnode in self.known(self.items(node, "vip") or [], s.VIP_KEYS, "vip key"):
            for value, item in self.strings(vnode, f"vip {key}"):
                if key == "addresses":
                    self.vip_entry(value, item, want_address=True)
                elif key == "domains":
                    self.vip_entry(value, item, want_address=False)
                else:
                    self.vip_file(value, item)

    def vip_entry(self, value: str, node: Node, *, want_address: bool | None) -> None:
        value = value.lower().strip()
        if want_address is None:
            want_address = "@" in value.lstrip("@")
        if want_address:
            if not _EMAIL.match(value):
                self.err(node, f"bad VIP address {value!r}")
            else:
                self.vip_addresses.add(value)
            return
        domain = value.lstrip("@")
        if domain.startswith("*."):
            domain = domain[2:]
        if not _DOMAIN.match(domain) or any(ch in domain for ch in "*?[]!"):
            self.err(
                node,
                f"bad VIP domain {value!r} (a domain covers its subdomains; no wildcards needed)",
            )
        else:
            self.vip_domains.add(domain)

    def vip_file(self, name: str, node: Node) -> None:
        text = self.lists.get(name)
        if text is None:
            self.err(
                node,
                f"VIP list file {name!r} not found next to the rules"
                f"{did_you_mean(name, self.lists)}",
            )
            return
        for lineno, raw in enumerate(text.splitlines(), 1):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            before = len(self.errors)
            self.vip_entry(entry, node, want_address=None)
            if len(self.errors) > before:  # point at the list file itself
                bad = self.errors.pop()
                self.errors.append(RuleError(name, lineno, 1, bad.message))

    # -- calendars and SLA --------------------------------------------------
    def calendars_section(self, node: Node) -> None:
        for name, knode, vnode in self.items(node, "calendars") or []:
            if name == ALWAYS_NAME:
                self.err(knode, f"calendar {ALWAYS_NAME!r} is built in and cannot be redefined")
                continue
            if not ID.match(name):
                self.err(knode, f"bad calendar name {name!r}: use letters, digits, '.', '_' or '-'")
                continue
            if name in self.calendars:
                self.err(
                    knode, f"calendar {name!r} is already defined at {self.calendars[name][1]}"
                )
                continue
            cal = self.calendar(name, knode, vnode)
            if cal is not None:
                self.calendars[name] = (cal, self.where(knode))

    def calendar(self, name: str, knode: Node, node: Node) -> Calendar | None:
        items = self.items(node, f"calendar {name!r}")
        if items is None:
            return None
        tz_name = "UTC"
        hours: dict[int, tuple[Interval, ...]] = {}
        holidays: dict[date, Node] = {}
        special: dict[date, tuple[Interval, ...]] = {}
        closures: dict[date, tuple[Interval, ...]] = {}
        seen_tz = False
        ok = True
        for key, _, vnode in self.known(items, s.CALENDAR_KEYS, "calendar key"):
            if key == "timezone":
                seen_tz = True
                value = self.scalar(vnode, "timezone")
                try:
                    if value is None:
                        raise ValueError("")
                    parse_timezone(value)
                    tz_name = value
                except ValueError as exc:
                    ok = False
                    if value is not None:
                        self.err(vnode, f"calendar {name!r}: {exc}")
            elif key == "hours":
                ok = self.hours(name, vnode, hours) and ok
            elif key == "special_days":
                ok = self.special_days(name, vnode, special, closures) and ok
            else:
                for value, item in self.strings(vnode, "holidays"):
                    try:
                        holidays[parse_date(value)] = item
                    except ValueError as exc:
                        ok = False
                        self.err(item, f"calendar {name!r}: {exc}")
        if not seen_tz:
            self.err(knode, f"calendar {name!r}: 'timezone' is required (e.g. Europe/Berlin)")
            return None
        if "hours" not in {k for k, _, _ in items}:
            self.err(knode, f"calendar {name!r}: 'hours' is required (e.g. mon-fri: 09:00-17:00)")
            return None
        for day, item in holidays.items():
            if day in special or day in closures:
                self.err(item, f"calendar {name!r}: {day} is both a holiday and a special day")
                ok = False
        if not ok:
            return None
        week = tuple(hours.get(day, ()) for day in range(7))
        if not any(week):
            self.err(knode, f"calendar {name!r} is never open: give hours for at least one day")
            return None
        overlap = week_overlap(week)
        if overlap is not None:
            self.err(knode, f"calendar {name!r}: overlapping hours: {overlap}")
            return None
        return make_calendar(name, tz_name, hours, frozenset(holidays), special, closures)

    def ranges(self, name: str, what: str, node: Node) -> tuple[Interval, ...] | None:
        """One or more 'HH:MM-HH:MM, ...' values (overnight allowed) or 'closed'."""
        ranges: list[Interval] = []
        ok = True
        for value, item in self.strings(node, what):
            try:
                ranges.extend(parse_ranges(value, allow_overnight=True))
            except ValueError as exc:
                self.err(item, f"calendar {name!r}: {what}: {exc}")
                ok = False
        ranges.sort()
        if any(b[0] < a[1] for a, b in itertools.pairwise(ranges)):
            self.err(node, f"calendar {name!r}: {what}: overlapping time ranges")
            return None
        return tuple(ranges) if ok else None

    def hours(self, name: str, node: Node, out: dict[int, tuple[Interval, ...]]) -> bool:
        ok = True
        for key, knode, vnode in self.items(node, f"calendar {name!r} hours") or []:
            try:
                days = parse_days(key)
            except ValueError as exc:
                self.err(knode, f"calendar {name!r}: {exc}")
                ok = False
                continue
            ranges = self.ranges(name, f"hours {key}", vnode)
            ok = ok and ranges is not None
            for day in sorted(days):
                if day in out:
                    self.err(knode, f"calendar {name!r}: hours for {DAYS[day]} given twice")
                    ok = False
                out[day] = ranges or ()
        return ok

    def special_days(
        self,
        name: str,
        node: Node,
        special: dict[date, tuple[Interval, ...]],
        closures: dict[date, tuple[Interval, ...]],
    ) -> bool:
        """``DATE: HOURS`` (those hours instead of the weekly ones) or
        ``DATE: {hours: ..., closed: ...}`` (``closed`` cuts hours out of that date)."""
        ok = True
        for key, knode, vnode in self.items(node, f"calendar {name!r} special_days") or []:
            try:
                day = parse_date(key)
            except ValueError as exc:
                self.err(knode, f"calendar {name!r}: special_days: {exc}")
                ok = False
                continue
            what = f"special_days {key}"
            if not isinstance(vnode, MappingNode):
                ranges = self.ranges(name, what, vnode)
                ok = ok and ranges is not None
                special[day] = ranges or ()
                continue
            items = self.items(vnode, f"calendar {name!r} {what}") or []
            if not items:
                self.err(vnode, f"calendar {name!r}: {what}: give hours or closed")
                ok = False
            for sub, _, snode in self.known(items, s.SPECIAL_DAY_KEYS, "special day key"):
                ranges = self.ranges(name, f"{what} {sub}", snode)
                ok = ok and ranges is not None
                (special if sub == "hours" else closures)[day] = ranges or ()
        return ok

    # -- spikes ----------------------------------------------------------
    def spikes_section(self, node: Node) -> None:
        items = self.known(self.items(node, "spikes") or [], s.SPIKE_KEYS, "spikes key")
        by_key = {k: v for k, _, v in items}
        defaults = self.spike_settings(SpikeRule(""), items)
        tags_node = by_key.get("tags")
        if tags_node is None:
            self.err(node, "spikes: 'tags' is required (the tags to watch)")
            return
        entries: list[tuple[str, Node, Node | None]] = []
        if isinstance(tags_node, MappingNode):
            for name, key_node, value_node in self.items(tags_node, "spikes tags") or []:
                plain = isinstance(value_node, ScalarNode) and value_node.value in ("", "~", "null")
                entries.append((name, key_node, None if plain else value_node))
        else:
            entries = [(name, item, None) for name, item in self.strings(tags_node, "spikes tags")]
        for raw, knode, vnode in entries:
            tag = raw.lower()
            if not _SPIKE_TAG.match(tag):
                self.err(knode, f"spikes: bad tag {tag!r} (no spaces or commas)")
                continue
            if tag in self.spikes:
                self.err(knode, f"spikes: tag {tag!r} is already watched at {self.spikes[tag][1]}")
                continue
            rule = replace(defaults, tag=tag)
            if vnode is not None:
                own = self.known(
                    self.items(vnode, f"spikes tag {tag!r}") or [], s.SPIKE_SETTINGS, "spikes key"
                )
                rule = self.spike_settings(rule, own)
            self.spikes[tag] = (rule, self.where(knode))

    def spike_settings(self, rule: SpikeRule, items: Items) -> SpikeRule:
        """``rule`` with the settings among ``items`` (factor, min_count, window, ...)."""
        out: dict[str, Any] = {}
        for key, _, vnode in items:
            if key in ("tags",):
                continue
            if key == "window":
                window = self.duration(vnode, "spikes window")
                if window is not None and window < timedelta(minutes=5):
                    self.err(vnode, "spikes window: at least 5m")
                elif window is not None:
                    out["window"] = window
                continue
            value = self.scalar(vnode, f"spikes {key}")
            if value is None:
                continue
            if key == "channel":
                if " " in value:
                    self.err(vnode, f"spikes: bad channel {value!r}")
                out["channel"] = value
                continue
            try:
                number = float(value) if key == "factor" else int(value)
            except ValueError:
                number = -1
            low, high = {"factor": (1.0, 1000.0), "min_count": (1, 1_000_000), "weeks": (1, 12)}[
                key
            ]
            if key == "factor" and not low < number <= high:
                self.err(vnode, f"spikes factor: {value!r} must be a number above 1")
            elif key != "factor" and not low <= number <= high:
                self.err(vnode, f"spikes {key}: {value!r} must be a whole number {low}-{high}")
            else:
                out[key] = number
        return replace(rule, **out)

    def sla_section(self, node: Node) -> None:
        for name, knode, vnode in self.items(node, "sla_policies") or []:
            if not ID.match(name):
                self.err(
                    knode, f"bad SLA policy name {name!r}: use letters, digits, '.', '_' or '-'"
                )
                continue
            if name in self.slas:
                self.err(knode, f"SLA policy {name!r} is already defined at {self.slas[name][1]}")
                continue
            items = self.items(vnode, f"SLA policy {name!r}")
            if items is None:
                continue
            policy = self.sla_policy(name, knode, items)
            self.slas[name] = (policy, self.where(knode))

    def sla_policy(self, name: str, knode: Node, items: Items) -> SlaPolicy:
        fields: dict[str, Any] = {"calendar": ALWAYS_NAME}
        stages_node: Node | None = None
        for key, _, fnode in self.known(items, s.SLA_KEYS, "SLA key"):
            if key == "calendar":
                cal = self.scalar(fnode, "calendar")
                if cal is not None:
                    fields["calendar"] = cal
                    self.ref("calendar", cal, fnode)
            elif key == "pause_when":
                pauses = []
                for value, item in self.strings(fnode, "pause_when"):
                    if value not in s.PAUSE_STATUSES:
                        self.err(
                            item,
                            f"unknown status {value!r}{did_you_mean(value, s.PAUSE_STATUSES)}",
                        )
                    pauses.append(value)
                fields["pause_when"] = tuple(pauses)
            elif key == "stages":
                stages_node = fnode
            else:
                fields[key] = self.target(fnode, key)
        targets = tuple(t for t in TARGET_NAMES if fields.get(t))
        if not any(t in fields for t in TARGET_NAMES):
            self.err(
                knode,
                f"SLA policy {name!r}: set at least one of first_response, "
                "next_response, resolution",
            )
        stages: list[Stage] = []
        warn = fields.get("warn_before")
        if warn is not None:
            stages.append(default_stage(When("before", offset=warn), "remind", targets))
        if stages_node is not None:
            stages.extend(self.stages(name, stages_node, targets))
        return SlaPolicy(name=name, stages=tuple(stages), **fields)

    def target(self, node: Node, what: str) -> Duration | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        try:
            out = Duration.parse(value)
        except ValueError as exc:
            self.err(node, f"{what}: {exc}")
            return None
        if what == "warn_before" and out.unit == "days":
            self.err(node, f"{what}: count back in hours (e.g. 8h), not business days")
            return None
        return out

    def stages(self, name: str, node: Node, targets: tuple[str, ...]) -> list[Stage]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.err(node, f"SLA policy {name!r}: stages: expected a list, got {kind_of(node)}")
            return []
        out: list[Stage] = []
        keys: dict[tuple[str, str], Node] = {}
        for item in node.value:
            stage = self.stage(name, item, targets)
            if stage is None:
                continue
            for target in stage.targets:
                first = keys.get((target, stage.key))
                if first is not None:
                    self.err(
                        item,
                        f"SLA policy {name!r}: stage {stage.key} of {target} given twice "
                        f"(first at line {first.start_mark.line + 1})",
                    )
                keys.setdefault((target, stage.key), item)
            out.append(stage)
        return out

    def stage(self, policy: str, node: Node, targets: tuple[str, ...]) -> Stage | None:
        """'warn at 75%' / 'at breach' / 'breach + 2h', or {at, remind | alert, targets}."""
        what = f"SLA policy {policy!r}: stage"
        if isinstance(node, ScalarNode):
            try:
                when, action = parse_when(self.scalar(node, "stage") or "")
            except ValueError as exc:
                self.err(node, f"{what}: {exc}")
                return None
            return default_stage(when, action, targets)
        items = self.items(node, what)
        if items is None:
            return None
        by_key = {k: v for k, _, v in self.known(items, s.STAGE_KEYS, "stage key")}
        if "at" not in by_key:
            self.err(node, f"{what}: 'at' is required (e.g. at: 75%, at: breach + 2h)")
            return None
        actions = [k for k in ACTIONS if k in by_key]
        if len(actions) != 1:
            self.err(node, f"{what}: say exactly one of remind or alert (and to whom)")
            return None
        try:
            when, _ = parse_when(self.scalar(by_key["at"], "at") or "")
        except ValueError as exc:
            self.err(by_key["at"], f"{what}: {exc}")
            return None
        to: list[Recipient] = []
        for value, item in self.strings(by_key[actions[0]], actions[0]):
            try:
                recipient = parse_recipient(value)
            except ValueError as exc:
                self.err(item, f"{what}: {exc}")
                continue
            if recipient.name is not None and recipient.kind in ("team", "lead"):
                self.ref("team", recipient.name, item)
            to.append(recipient)
        chosen = targets
        if "targets" in by_key:
            chosen = ()
            for value, item in self.strings(by_key["targets"], "targets"):
                if value not in targets:
                    self.err(
                        item,
                        f"{what}: {value!r} is not a target of this policy"
                        f"{did_you_mean(value, targets)}",
                    )
                    continue
                chosen += (value,)
        if not to or not chosen:
            return None
        action = "remind" if actions[0] == "remind" else "alert"
        return Stage(when, action, tuple(to), chosen)

    # -- rules -------------------------------------------------------------
    def rules_section(self, node: Node) -> None:
        if not isinstance(node, SequenceNode):
            self.err(node, f"rules: expected a list of rules, got {kind_of(node)}")
            return
        for rnode in node.value:
            self.rule(rnode)

    def rule(self, node: Node) -> None:
        items = self.items(node, "rule")
        if items is None:
            return
        items = self.known(items, s.RULE_KEYS, "rule key")
        by_key = {k: (kn, v) for k, kn, v in items}
        name: str | None = None
        if "name" not in by_key:
            self.err(node, "rule: 'name' is required")
        else:
            name = self.scalar(by_key["name"][1], "name")
        if name is not None:
            first = self.rule_names.get(name)
            if first is not None:
                self.err(
                    by_key["name"][1], f"duplicate rule name {name!r} (first defined at {first})"
                )
            else:
                self.rule_names[name] = self.where(node)
        on = frozenset(("new",))
        if "on" in by_key:
            kinds = set()
            for value, item in self.strings(by_key["on"][1], "on"):
                if value not in ON_KINDS:
                    self.err(item, f"on: unknown kind {value!r}{did_you_mean(value, ON_KINDS)}")
                kinds.add(value)
            on = frozenset(kinds)
        when = self.condition(by_key["when"][1]) if "when" in by_key else None
        enabled = self.boolean(by_key["enabled"][1], "enabled") if "enabled" in by_key else True
        description = ""
        if "description" in by_key:
            description = self.scalar(by_key["description"][1], "description", empty_ok=True) or ""
        actions: dict[str, Any] = {}
        assignee_node: Node | None = None
        if "then" not in by_key:
            self.err(node, f"rule {name or '?'!r}: 'then' is required (what the rule does)")
        else:
            actions, assignee_node = self.actions(by_key["then"][1])
        mark = node.start_mark
        self.rules.append(
            _RuleDef(
                name or "?",
                self.file,
                mark.line + 1,
                mark.column + 1,
                on,
                when,
                actions,
                assignee_node,
                enabled is not False,
                node,
                "when" in by_key,
                description,
            )
        )

    # -- cross-file checks ------------------------------------------------------
    def finish(self, paths: list[str]) -> LoadResult:
        calendars: dict[str, Calendar] = {ALWAYS_NAME: always_open()}
        calendars.update({k: v for k, (v, _) in self.calendars.items()})
        by_email = {a.email: a.name for a in self.agents.values()}
        known: dict[str, Collection[str]] = {
            "team": self.teams,
            "agent": set(self.agents) | set(by_email),
            "sla": self.slas,
            "calendar": calendars,
            "template": self.known_templates or (),
        }
        for ref in self.refs:
            if ref.kind == "template" and self.known_templates is None:
                continue
            names = known[ref.kind]
            lookup = ref.name.lower() if ref.kind == "agent" and "@" in ref.name else ref.name
            if lookup not in names:
                hint = did_you_mean(ref.name, [n for n in names if "@" not in n])
                self.err(ref.node, f"unknown {ref.kind} {ref.name!r}{hint}", file=ref.file)
        for team in self.teams.values():
            members = {m for m, _, _ in team.members}
            if team.lead is not None and team.lead[0] not in members:
                self.err(
                    team.lead[1],
                    f"lead {team.lead[0]!r} is not an agent of team {team.name!r}",
                    file=team.file,
                )
            if team.assignment != "none" and not members:
                self.err(
                    team.node,
                    f"team {team.name!r} assigns {team.assignment} but has no agents",
                    file=team.file,
                )
        self.check_reachable()
        if self.errors:
            return LoadResult(None, sorted(set(self.errors)))
        return LoadResult(self.build(paths, calendars, by_email), [])

    def check_reachable(self) -> None:
        stopper: dict[str, _RuleDef] = {}
        for rule in self.rules:
            if not rule.enabled:
                continue
            if rule.on and rule.on <= stopper.keys():
                blocker = stopper[min(rule.on)]
                self.err(
                    rule.node,
                    f"rule {rule.name!r} can never run: rule {blocker.name!r} "
                    f"({blocker.file}:{blocker.line}:{blocker.column}) stops every "
                    f"{'/'.join(sorted(rule.on))} message before it",
                    file=rule.file,
                )
            if not rule.has_when and rule.actions.get("stop"):
                for kind in rule.on:
                    stopper.setdefault(kind, rule)

    def build(
        self, paths: list[str], calendars: dict[str, Calendar], by_email: dict[str, str]
    ) -> RuleSet:
        team_of: dict[str, list[str]] = {}
        for team in self.teams.values():
            for member, _, _ in team.members:
                if team.name not in team_of.setdefault(member, []):
                    team_of[member].append(team.name)
        agents = {
            a.name: Agent(a.name, a.email, a.display_name, tuple(team_of.get(a.name, ())))
            for a in self.agents.values()
        }
        teams = {
            t.name: Team(
                t.name,
                tuple(dict.fromkeys(agents[m] for m, _, _ in t.members)),
                t.lead[0] if t.lead else None,
                cast(Any, t.assignment),
            )
            for t in self.teams.values()
        }
        rules: list[Rule] = []
        for rd in self.rules:
            if not rd.enabled:
                continue
            acts = dict(rd.actions)
            if "assignee" in acts and "@" in acts["assignee"]:
                acts["assignee"] = by_email[acts["assignee"].lower()]
            then = plan_actions(Actions(**acts))
            rules.append(Rule(rd.name, rd.file, rd.line, rd.on, rd.when, then, rd.description))
        self.index.freeze()
        gates: dict[int, list[int]] = {}
        ungated: list[int] = []
        for pos, rule in enumerate(rules):
            req = rule.when.required() if rule.when is not None else None
            if req is None:
                ungated.append(pos)
            else:
                for signal in req:
                    gates.setdefault(signal, []).append(pos)
        return RuleSet(
            teams=teams,
            agents=agents,
            sla_policies={k: v for k, (v, _) in self.slas.items()},
            calendars=calendars,
            rules=tuple(rules),
            vip=VipList(frozenset(self.vip_addresses), frozenset(self.vip_domains)),
            source_files=tuple(paths),
            index=self.index,
            gates={k: tuple(v) for k, v in gates.items()},
            ungated=tuple(ungated),
            _by_email={a.email: a for a in agents.values()},
            spikes=SpikeConfig({tag: rule for tag, (rule, _) in sorted(self.spikes.items())}),
        )
