"""``inboxd sla calc``: the due times of a policy's targets for a ticket created at a
given instant, from the rule files alone (to try a calendar before deploying it).

The SLA math is imported by the command that uses it, so that registering this
group under ``inboxd`` costs the other commands nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from inboxd.cli.rules import _load, _rules_dir


@click.group()
def sla() -> None:
    """Try SLA policies and calendars."""


@sla.command()
@click.option("--policy", "name", required=True, help="SLA policy name")
@click.option("--start", required=True, help="when the ticket is created (ISO 8601)")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), help="rules directory")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def calc(name: str, start: str, rules_dir: Path | None, as_json: bool) -> None:
    """Print the due time of every target (and when each stage comes) for a ticket
    created at START under policy NAME."""
    from inboxd.core.rules.nodes import did_you_mean
    from inboxd.core.sla import clock
    from inboxd.core.sla.model import TARGET_LABELS
    from inboxd.core.sla.targets import TargetClock, stage_times

    ruleset = _load(_rules_dir(rules_dir), None)
    policy = ruleset.sla_policies.get(name)
    if policy is None:
        hint = did_you_mean(name, ruleset.sla_policies)
        raise click.BadParameter(f"unknown SLA policy {name!r}{hint}", param_hint="--policy")
    try:
        created = datetime.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(f"{start!r}: use ISO 8601", param_hint="--start") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    cal = ruleset.calendars[policy.calendar]
    rows: list[dict[str, Any]] = []
    for target, goal in policy.targets():
        due = clock.due_at(cal, created, goal)
        budget = clock.budget(cal, created, goal)
        running = TargetClock(target, goal, "active", 0, created, due, budget)
        stages = [
            {
                "stage": st.stage.key,
                "at": st.at.astimezone(cal.zone).isoformat(),
                "send_at": st.send_at.astimezone(cal.zone).isoformat(),
            }
            for st in stage_times(running, policy, cal)
        ]
        rows.append(
            {
                "target": target,
                "goal": str(goal),
                "unit": goal.unit,
                "due": due.astimezone(cal.zone).isoformat(),
                "business_seconds": int(budget.total_seconds()),
                "stages": stages,
            }
        )
    if as_json:
        out = {"policy": name, "calendar": cal.name, "start": created.isoformat(), "targets": rows}
        click.echo(json.dumps(out, indent=2))
        return
    local = created.astimezone(cal.zone)
    click.echo(f"policy {name} on calendar {cal.name} ({cal.timezone}), created {local}")
    for row, (target, goal) in zip(rows, policy.targets(), strict=True):
        words = goal.describe(around_the_clock=cal.always)
        click.echo(f"  {TARGET_LABELS[target]:<15} {words:<32} due {row['due']}")
        for st in row["stages"]:
            send = "" if st["send_at"] == st["at"] else f" (sent {st['send_at']})"
            click.echo(f"      {st['stage']:<22} {st['at']}{send}")
