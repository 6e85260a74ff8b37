"""RuleSet x ParsedMessage x RuleContext -> Decision. Reads only; never writes.

Semantics (docs/rules.md): rules run top to bottom; every matching rule applies
until one says stop; tags and Slack channels accumulate; team, assignee, SLA,
auto-reply, status and group window are set by the first rule that sets them
(later ones are recorded as overridden); priority ends at the highest value any
matching rule sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inboxd.core.model import ParsedMessage
from inboxd.core.rules.conditions import Env
from inboxd.core.rules.model import (
    PRIORITY_RANK,
    Decision,
    Rule,
    RuleContext,
    RuleHit,
    RuleSet,
)

_FIRST_WINS = ("team", "assignee", "sla", "auto_reply", "status", "group_window")


def evaluate(ruleset: RuleSet, msg: ParsedMessage, ctx: RuleContext) -> Decision:
    signals = ruleset.index.scan(msg.subject, msg.text)
    candidates = set(ruleset.ungated)
    gates = ruleset.gates
    for signal in signals:
        gated = gates.get(signal)
        if gated is not None:
            candidates.update(gated)
    env = Env(msg, ctx, signals, ruleset.index, ruleset.calendars, _vip_reason(ruleset, msg, ctx))
    kind = "new" if ctx.is_new else "reply"
    out = _Builder()
    for pos in sorted(candidates):
        rule = ruleset.rules[pos]
        if kind not in rule.on:
            continue
        if rule.when is not None and not rule.when.test(env):
            continue
        reasons = tuple(rule.when.explain(env)) if rule.when is not None else ("always",)
        out.apply(rule, reasons)
        if rule.then.vip and env.vip_reason is None:
            env.vip_reason = f"marked VIP by rule {rule.name!r}"
        if rule.then.stop:
            break
    return out.decision()


def _vip_reason(ruleset: RuleSet, msg: ParsedMessage, ctx: RuleContext) -> str | None:
    if ctx.ticket_vip:
        return "the ticket is VIP"
    if msg.from_ is not None:
        return ruleset.vip.reason(msg.from_.email)
    return None


@dataclass
class _Builder:
    tags: dict[str, None] = field(default_factory=dict)
    untags: dict[str, None] = field(default_factory=dict)
    slack: dict[str, None] = field(default_factory=dict)
    vip: bool = False
    priority: str | None = None
    scalars: dict[str, object] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    hits: list[RuleHit] = field(default_factory=list)

    def apply(self, rule: Rule, reasons: tuple[str, ...]) -> None:
        then = rule.then
        applied: list[str] = []
        overridden: list[str] = []
        for tag in then.tags:
            self.untags.pop(tag, None)
            self.tags[tag] = None
            applied.append(f"tag+={tag}")
        for tag in then.untags:
            self.tags.pop(tag, None)
            self.untags[tag] = None
            applied.append(f"tag-={tag}")
        if then.priority is not None:
            old = self.priority
            if old is None or PRIORITY_RANK[then.priority] > PRIORITY_RANK[old]:
                self.priority = then.priority
                self.origins["priority"] = rule.name
                applied.append(f"priority={then.priority}")
            else:
                overridden.append(
                    f"priority={then.priority} (already {old} <- {self.origins['priority']})"
                )
        if then.vip:
            if not self.vip:
                self.origins["vip"] = rule.name
            self.vip = True
            applied.append("vip")
        values: dict[str, object] = {
            "team": then.team,
            "assignee": then.assignee,
            "sla": then.sla,
            "auto_reply": then.auto_reply,
            "status": then.status,
            "group_window": then.group,
        }
        for name in _FIRST_WINS:
            value = values[name]
            if value is None:
                continue
            shown = _show(value)
            if name in self.scalars:
                old = _show(self.scalars[name])
                overridden.append(f"{name}={shown} (already {old} <- {self.origins[name]})")
            else:
                self.scalars[name] = value
                self.origins[name] = rule.name
                applied.append(f"{name}={shown}")
        for channel in then.slack:
            self.slack[channel] = None
            applied.append(f"slack={channel}")
        if then.stop:
            applied.append("stop")
        self.hits.append(
            RuleHit(rule.name, rule.file, rule.line, reasons, tuple(applied), tuple(overridden))
        )

    def decision(self) -> Decision:
        sc = self.scalars
        return Decision(
            tags=tuple(self.tags),
            untags=tuple(self.untags),
            priority=self.priority,
            vip=self.vip,
            team=sc.get("team"),  # type: ignore[arg-type]
            assignee=sc.get("assignee"),  # type: ignore[arg-type]
            sla=sc.get("sla"),  # type: ignore[arg-type]
            auto_reply=sc.get("auto_reply"),  # type: ignore[arg-type]
            slack=tuple(self.slack),
            status=sc.get("status"),  # type: ignore[arg-type]
            group_window=sc.get("group_window"),  # type: ignore[arg-type]
            hits=tuple(self.hits),
            origins=tuple(self.origins.items()),
        )


def _show(value: object) -> str:
    from datetime import timedelta

    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def format_duration(value: object) -> str:
    """timedelta -> '1h30m' (the way rule files write it)."""
    from datetime import timedelta

    assert isinstance(value, timedelta)
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
