"""The vocabulary of rule files, in one place: the loader checks keys against
these tables (with did-you-mean) and ``json_schema()`` publishes the same
tables for editors, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from inboxd.core.desk.vocab import Status
from inboxd.core.rules.model import ASSIGNMENTS, ON_KINDS, PRIORITIES, STATUSES

TOP_KEYS = ("version", "teams", "agents", "vip", "calendars", "sla_policies", "spikes", "rules")
SPIKE_SETTINGS = ("factor", "min_count", "window", "weeks", "channel")
SPIKE_KEYS = (*SPIKE_SETTINGS, "tags")
TEAM_KEYS = ("agents", "lead", "assignment", "description")
AGENT_KEYS = ("name", "email", "display_name")
VIP_KEYS = ("addresses", "domains", "files")
CALENDAR_KEYS = ("timezone", "hours", "holidays", "special_days")
SPECIAL_DAY_KEYS = ("hours", "closed")
STAGE_KEYS = ("at", "remind", "alert", "targets")
SLA_KEYS = (
    "calendar",
    "first_response",
    "next_response",
    "resolution",
    "warn_before",
    "pause_when",
    "stages",
)
RULE_KEYS = ("name", "description", "on", "when", "then", "enabled")
HEADER_KEYS = ("name", "exists", "equals", "any", "all", "regex")
TEXT_KEYS = ("any", "all", "regex")
TIME_KEYS = ("between", "days", "timezone")
SENTIMENT_KEYS = ("is", "threshold")
SENTIMENTS = ("negative", "positive", "unknown")
PAUSE_STATUSES: tuple[str, ...] = tuple(
    s.value for s in (Status.NEW, Status.OPEN, Status.PENDING, Status.SOLVED)
)

# condition key -> short help (also the JSON Schema description)
CONDITIONS: dict[str, str] = {
    "all": "every listed condition holds",
    "any": "at least one listed condition holds",
    "not": "the condition does not hold",
    "from": "sender address glob(s), e.g. '*@acme.com', 'noreply@*'",
    "from_domain": "sender domain glob(s); 'acme.com' also covers its subdomains",
    "to": "address glob(s) matched against To",
    "cc": "address glob(s) matched against Cc",
    "recipient": "address glob(s) matched against To and Cc",
    "mailbox": "the inboxd mailbox (its name or address) the mail arrived in",
    "subject": "keywords (whole words, any case, accents folded) or {any, all, regex}",
    "body": "like subject, on the first 64 KiB of the plain-text body",
    "header": "{name, exists | equals | any | all | regex} on any header",
    "attachment": "true: has a (non-inline) attachment; false: has none",
    "attachment_type": "content-type globs ('image/*') or file-name globs ('*.pdf')",
    "vip": "sender on a VIP list, ticket already VIP, or marked VIP by an earlier rule",
    "business_hours": "name of a calendar: true inside its opening hours",
    "time": "'HH:MM-HH:MM' or {between, days, timezone}; overnight ranges allowed",
    "sentiment": "negative | positive | unknown, or {is, threshold}: the mail's new text "
    "scored by VADER (English only; other text is unknown, never negative)",
}

# action key -> short help
ACTIONS: dict[str, str] = {
    "tag": "tag(s) to add; accumulate over rules",
    "untag": "tag(s) to remove",
    "priority": "low | normal | high | urgent; the highest any rule sets wins",
    "vip": "true: mark the ticket VIP",
    "team": "team to route to; the first rule that sets it wins",
    "assignee": "agent (name or address); the first rule that sets it wins",
    "sla": "SLA policy name; the first rule that sets it wins",
    "auto_reply": "template name to send as an auto-reply (first wins)",
    "slack": "Slack channel(s) to notify",
    "status": "ticket status: " + ", ".join(STATUSES),
    "group": "window like 2h: group into an open ticket from the same sender "
    "with the same normalized subject",
    "stop": "true: no later rule runs",
}

DURATION_PATTERN = r"^\s*(\d+\s*[wdhms]\s*)+$"
RANGE_PATTERN = r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$"


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    out.update(extra)
    return out


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one rule file, as a YAML 1.2 editor reads it."""
    string = {"type": "string", "minLength": 1}
    word = {"type": ["string", "number"]}
    boolean = {"type": "boolean"}
    duration = {"type": "string", "pattern": DURATION_PATTERN}
    words = _one_or_many(word)
    globs = _one_or_many(string)
    cond_ref = {"$ref": "#/$defs/condition"}

    text = {
        "anyOf": [
            word,
            {"type": "array", "items": word, "minItems": 1},
            _obj({"any": words, "all": words, "regex": globs}, minProperties=1),
        ]
    }
    header = _obj(
        {
            "name": string,
            "exists": boolean,
            "equals": words,
            "any": words,
            "all": words,
            "regex": globs,
        },
        ["name"],
    )
    time = {
        "anyOf": [
            {"type": "string"},
            _obj({"between": globs, "days": string, "timezone": string}, ["between"]),
        ]
    }
    sentiment_label = {"enum": list(SENTIMENTS)}
    sentiment = {
        "anyOf": [
            sentiment_label,
            _obj(
                {
                    "is": sentiment_label,
                    "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                },
                ["is"],
            ),
        ]
    }
    cond_props: dict[str, Any] = {
        "all": {"type": "array", "items": cond_ref, "minItems": 1},
        "any": {"type": "array", "items": cond_ref, "minItems": 1},
        "not": {"anyOf": [cond_ref, {"type": "array", "items": cond_ref}]},
        "from": globs,
        "from_domain": globs,
        "to": globs,
        "cc": globs,
        "recipient": globs,
        "mailbox": globs,
        "subject": text,
        "body": text,
        "header": header,
        "attachment": boolean,
        "attachment_type": globs,
        "vip": boolean,
        "business_hours": string,
        "time": time,
        "sentiment": sentiment,
    }
    assert set(cond_props) == set(CONDITIONS)
    for key, help_text in CONDITIONS.items():
        cond_props[key] = {**cond_props[key], "description": help_text}
    action_props: dict[str, Any] = {
        "tag": globs,
        "untag": globs,
        "priority": {"enum": list(PRIORITIES)},
        "vip": {"const": True},
        "team": string,
        "assignee": string,
        "sla": string,
        "auto_reply": string,
        "slack": globs,
        "status": {"enum": list(STATUSES)},
        "group": duration,
        "stop": boolean,
    }
    assert set(action_props) == set(ACTIONS)
    for key, help_text in ACTIONS.items():
        action_props[key] = {**action_props[key], "description": help_text}
    agent = _obj(
        {"name": string, "email": string, "display_name": {"type": "string"}}, ["name", "email"]
    )
    rule = _obj(
        {
            "name": string,
            "description": {"type": "string"},
            "on": _one_or_many({"enum": list(ON_KINDS)}),
            "when": {"anyOf": [cond_ref, {"type": "array", "items": cond_ref}]},
            "then": {"$ref": "#/$defs/actions"},
            "enabled": boolean,
        },
        ["name", "then"],
    )
    recipients = _one_or_many(
        {
            "type": "string",
            "description": (
                "assignee, team, team:NAME, lead, lead:NAME, #channel, slack:#channel,"
                " mention:USERGROUP_ID"
            ),
        }
    )
    stage = {
        "anyOf": [
            {"type": "string", "description": "e.g. 'warn at 75%', 'at breach', 'breach + 2h'"},
            _obj(
                {
                    "at": {
                        "type": "string",
                        "description": "75%, breach, breach + 2h, 1h before breach",
                    },
                    "remind": {**recipients, "description": "mail people in open hours"},
                    "alert": {**recipients, "description": "notify at once"},
                    "targets": _one_or_many(
                        {"enum": ["first_response", "next_response", "resolution"]}
                    ),
                },
                ["at"],
            ),
        ]
    }
    spike_settings: dict[str, Any] = {
        "factor": {
            "type": "number",
            "exclusiveMinimum": 1,
            "description": "k: alert above k x usual",
        },
        "min_count": {"type": "integer", "minimum": 1, "description": "and at least this many"},
        "window": {**duration, "description": "the counting window (default 1h)"},
        "weeks": {
            "type": "integer",
            "minimum": 1,
            "maximum": 12,
            "description": "weeks of baseline",
        },
        "channel": {**string, "description": "Slack channel (default: [slack] ops_channel)"},
    }
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://inboxd.example/schemas/rules-v1.json",
        "title": "inboxd rule file",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "version": {"enum": [1, "1"]},
            "teams": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "agents": {"type": "array", "items": {"anyOf": [string, agent]}},
                        "lead": string,
                        "assignment": {"enum": list(ASSIGNMENTS)},
                        "description": {"type": "string"},
                    }
                ),
            },
            "agents": {
                "type": "object",
                "additionalProperties": _obj(
                    {"email": string, "display_name": {"type": "string"}}, ["email"]
                ),
            },
            "vip": _obj({"addresses": globs, "domains": globs, "files": globs}),
            "calendars": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "timezone": string,
                        "hours": {"type": "object", "additionalProperties": globs},
                        "holidays": {"type": "array", "items": {"type": "string"}},
                        "special_days": {
                            "type": "object",
                            "description": "DATE: hours instead of the weekly ones, or "
                            "{hours, closed} (closed cuts hours out of that date)",
                            "additionalProperties": {
                                "anyOf": [
                                    globs,
                                    _obj({"hours": globs, "closed": globs}, minProperties=1),
                                ]
                            },
                        },
                    },
                    ["timezone", "hours"],
                ),
            },
            "sla_policies": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "calendar": string,
                        "first_response": duration,
                        "next_response": duration,
                        "resolution": duration,
                        "warn_before": duration,
                        "pause_when": _one_or_many({"enum": list(PAUSE_STATUSES)}),
                        "stages": {"type": "array", "items": stage, "minItems": 1},
                    }
                ),
            },
            "spikes": _obj(
                {
                    **spike_settings,
                    "tags": {
                        "description": "the tags to watch: a list, or tag: {settings for it}",
                        "anyOf": [
                            {"type": "array", "items": string, "minItems": 1},
                            {
                                "type": "object",
                                "additionalProperties": {
                                    "anyOf": [{"type": "null"}, _obj(spike_settings)]
                                },
                            },
                        ],
                    },
                },
                ["tags"],
                description="spike alerts per tag: arrivals in the last window against "
                "the same window of past weeks",
            ),
            "rules": {"type": "array", "items": rule},
        },
        "$defs": {
            "condition": _obj(cond_props, minProperties=1),
            "actions": _obj(action_props, minProperties=1),
        },
    }
    return schema
