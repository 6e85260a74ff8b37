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


# --- replay ---------------------------------------------------------------------------


def _when(value: datetime | None, zone: Any) -> str:
    return value.astimezone(zone).isoformat() if value is not None else "-"


def _change(current: Any, proposed: Any) -> str:
    """The achieved rate's move in percentage points, when both sides have one."""
    if current is None or proposed is None or current.rate is None or proposed.rate is None:
        return ""
    return f"{round((proposed.rate - current.rate) * 100):+d} pts"


def _counts(counts: Any) -> str:
    if counts is None:
        return "(not defined)"
    rate = "-" if counts.rate is None else f"{counts.rate:.0%}"
    return f"{counts.achieved}/{counts.breached}/{counts.active} {rate:>4}"


@sla.command()
@click.option("--since", default="30d", show_default=True, help="tickets created in the last 30d")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), help="proposed rules dir")
@click.option("--now", "now_text", help="evaluate as of this instant (ISO 8601; default: now)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def replay(since: str, rules_dir: Path | None, now_text: str | None, as_json: bool) -> None:
    """Preview an SLA change: recompute every ticket created in the last SINCE under the
    current rules and under the proposed ones (--rules DIR); print achieved / breached /
    active per policy and target for both, and the tickets whose outcome flips."""
    from functools import partial

    from inboxd.cli.rules import _parse_now, _settings
    from inboxd.core.rules import parse_duration
    from inboxd.core.sla.replay import compare
    from inboxd.db.engine import make_engine
    from inboxd.db.sla_replay import tickets_created
    from inboxd.sched.sla_sweep import policy_of

    settings = _settings()
    if settings is None:
        raise click.ClickException("sla replay needs the daemon config (inboxd -c inboxd.toml ...)")
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    now = _parse_now(now_text)
    live_dir = Path(settings.rules.dir)
    proposed_dir = rules_dir or live_dir
    if proposed_dir.resolve() == live_dir.resolve():
        click.echo("note: the proposed rules are the live rules dir; give --rules DIR", err=True)
    current = _load(live_dir, None)
    proposed = _load(proposed_dir, None)
    engine = make_engine(settings.database.url, read_only=True)
    try:
        with engine.connect() as conn:
            report = compare(
                tickets_created(conn, now - window, now),
                partial(policy_of, current),
                partial(policy_of, proposed),
                now,
            )
    finally:
        engine.dispose()
    if as_json:
        out = {"since": since, "current": str(live_dir), "proposed": str(proposed_dir)}
        click.echo(json.dumps(out | report.as_dict(), indent=2))
        return
    click.echo(
        f"{report.tickets} tickets created since {since} ({report.without_policy} without a "
        f"policy), as of {now.isoformat()}: {live_dir} (current) vs {proposed_dir} (proposed)"
    )
    rows = report.sorted_rows()
    if rows:
        click.echo("\nachieved/breached/active and the achieved rate of the decided targets:")
        click.echo(f"{'policy':<12} {'target':<15} {'current':<16} {'proposed':<16} change")
    for row in rows:
        click.echo(
            f"{row.policy:<12} {row.target:<15} {_counts(row.current):<16} "
            f"{_counts(row.proposed):<16} {_change(row.current, row.proposed)}".rstrip()
        )
    for note in report.notes():
        click.echo(f"note: {note}")
    if not report.flips:
        click.echo("\nno ticket changes between achieved and breached")
        return
    click.echo(f"\n{len(report.flips)} outcome(s) flip:")
    for flip in report.flips:
        zone = _zone(current, proposed, flip.policy)
        click.echo(
            f"  #{flip.ticket:<6} {flip.policy:<12} {flip.target:<15} "
            f"{flip.current} -> {flip.proposed}  "
            f"due {_when(flip.current_due, zone)} -> {_when(flip.proposed_due, zone)}"
        )


def _zone(current: Any, proposed: Any, policy: str) -> Any:
    """Due times shown in the zone of the policy's current calendar (else proposed, UTC)."""
    from inboxd.sched.sla_sweep import policy_of

    found = policy_of(current, policy) or policy_of(proposed, policy)
    return found[1].zone if found is not None else UTC
