"""Decisions and hits as plain dicts: the stable JSON of ``rules test`` and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inboxd.core.calendar import Calendar
from inboxd.core.rules.evaluate import format_duration
from inboxd.core.rules.model import Decision, RuleHit, RuleSet, SlaPolicy
from inboxd.core.sla import clock
from inboxd.core.sla.model import TARGET_LABELS

DECISION_FIELDS = (
    "team",
    "assignee",
    "priority",
    "vip",
    "sla",
    "status",
    "auto_reply",
    "group_window",
    "tags",
    "untags",
    "slack",
)


def hit_dict(hit: RuleHit) -> dict[str, Any]:
    return {
        "rule": hit.rule,
        "file": hit.file,
        "line": hit.line,
        "reasons": list(hit.reasons),
        "applied": list(hit.applied),
        "overridden": list(hit.overridden),
    }


def decision_dict(decision: Decision) -> dict[str, Any]:
    """Every field (None/empty when no rule set it) plus the rule behind each."""
    out: dict[str, Any] = {}
    for name in DECISION_FIELDS:
        value = getattr(decision, name)
        if name == "group_window" and value is not None:
            value = format_duration(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    out["origins"] = dict(decision.origins)
    out["hits"] = [hit_dict(h) for h in decision.hits]
    return out


def summary(ruleset: RuleSet) -> str:
    """One line for `rules check` and the daemon log."""
    return (
        f"{len(ruleset.rules)} rules in {len(ruleset.source_files)} files, "
        f"{len(ruleset.teams)} teams, {len(ruleset.agents)} agents, "
        f"{len(ruleset.sla_policies)} SLA policies, {len(ruleset.calendars)} calendars, "
        f"{ruleset.index.keyword_count} keywords, {ruleset.index.regex_count} regexes"
    )


def policy_lines(policy: SlaPolicy, cal: Calendar, start: datetime) -> list[str]:
    """A policy in plain words, each target with its due time for a ticket created at
    ``start``, so a ``3d`` never passes for 72 hours unnoticed."""
    around = cal.always
    where = "around the clock" if around else f"on calendar {cal.name} ({cal.timezone})"
    head = f"SLA policy {policy.name}: counted {where}"
    if policy.pause_when:
        head += f"; clocks stop while {' or '.join(policy.pause_when)}"
    out = [head]
    created = _stamp(start, cal)
    for name, goal in policy.targets():
        words = goal.describe(around_the_clock=around)
        if goal.unit == "days" and not around:
            words += f" (the same time of day {goal.describe()} later, not {goal.amount * 24}h)"
        due = clock.due_at(cal, start, goal)
        out.append(f"  {TARGET_LABELS[name]} within {words}: from {created} due {_stamp(due, cal)}")
    for stage in policy.stages:
        who = ", ".join(str(r) for r in stage.to)
        targets = ", ".join(TARGET_LABELS[t] for t in stage.targets)
        wait = " (in open hours)" if stage.action == "remind" and not around else ""
        out.append(f"  stage: {stage.action} {who}{wait} at {stage.when} of {targets}")
    return out


def _stamp(at: datetime, cal: Calendar) -> str:
    return at.astimezone(cal.zone).strftime("%a %Y-%m-%d %H:%M %Z")
