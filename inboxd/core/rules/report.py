"""Decisions and hits as plain dicts: the stable JSON of ``rules test`` and the event log."""

from __future__ import annotations

from typing import Any

from inboxd.core.rules.evaluate import format_duration
from inboxd.core.rules.model import Decision, RuleHit, RuleSet

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
