"""RuleSet x ParsedMessage x RuleContext -> Decision. Reads only; never writes.

Semantics (docs/rules.md): rules run top to bottom; every matching rule applies
until one says stop; tags and Slack channels accumulate; team, assignee, SLA,
auto-reply, status and group window are set by the first rule that sets them
(later ones are recorded as overridden); priority ends at the highest value any
matching rule sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from inboxd.core.model import ParsedMessage
from inboxd.core.rules.conditions import Env, rule_body
from inboxd.core.rules.model import (
    PRIORITY_RANK,
    Actions,
    Decision,
    Rule,
    RuleContext,
    RuleHit,
    RuleSet,
)


def evaluate(ruleset: RuleSet, msg: ParsedMessage, ctx: RuleContext) -> Decision:
    signals = ruleset.index.scan(msg.subject, rule_body(msg, ctx))
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
        applied = list(then.fixed)
        overridden: list[str] = []
        for tag in then.tags:
            self.untags.pop(tag, None)
            self.tags[tag] = None
        for tag in then.untags:
            self.tags.pop(tag, None)
            self.untags[tag] = None
        for channel in then.slack:
            self.slack[channel] = None
        if then.vip and not self.vip:
            self.vip = True
            self.origins["vip"] = rule.name
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
        for name, value, shown in then.scalars:
            if name in self.scalars:
                old_shown = _show(self.scalars[name])
                overridden.append(f"{name}={shown} (already {old_shown} <- {self.origins[name]})")
            else:
                self.scalars[name] = value
                self.origins[name] = rule.name
                applied.append(f"{name}={shown}")
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


def plan_actions(actions: Actions) -> Actions:
    """Actions with the derived ``scalars``/``fixed`` filled in (called by the loader)."""
    values = (
        ("team", actions.team),
        ("assignee", actions.assignee),
        ("sla", actions.sla),
        ("auto_reply", actions.auto_reply),
        ("status", actions.status),
        ("group_window", actions.group),
    )
    scalars = tuple((name, value, _show(value)) for name, value in values if value is not None)
    fixed = (
        [f"tag+={t}" for t in actions.tags]
        + [f"tag-={t}" for t in actions.untags]
        + (["vip"] if actions.vip else [])
        + [f"slack={c}" for c in actions.slack]
        + (["stop"] if actions.stop else [])
    )
    return replace(actions, scalars=scalars, fixed=tuple(fixed))


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def format_duration(value: object) -> str:
    """timedelta -> '1h30m' (the way rule files write it)."""
    assert isinstance(value, timedelta)
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
