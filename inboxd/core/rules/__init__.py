"""The rule language: load YAML rule files, evaluate them against a message.

Pure: text in, values out. ``inboxd.rulesdir`` reads the files; the pipeline
applies the returned ``Decision``.
"""

from inboxd.core.rules.evaluate import evaluate, format_duration
from inboxd.core.rules.load import load_rules
from inboxd.core.rules.model import (
    ASSIGNMENTS,
    PRIORITIES,
    STATUSES,
    Actions,
    Agent,
    Decision,
    LoadResult,
    Rule,
    RuleContext,
    RuleError,
    RuleHit,
    RuleSet,
    SlaPolicy,
    Team,
    VipList,
)
from inboxd.core.rules.nodes import parse_duration
from inboxd.core.rules.schema import json_schema

__all__ = [
    "ASSIGNMENTS",
    "PRIORITIES",
    "STATUSES",
    "Actions",
    "Agent",
    "Decision",
    "LoadResult",
    "Rule",
    "RuleContext",
    "RuleError",
    "RuleHit",
    "RuleSet",
    "SlaPolicy",
    "Team",
    "VipList",
    "evaluate",
    "format_duration",
    "json_schema",
    "load_rules",
    "parse_duration",
]
