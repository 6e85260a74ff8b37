"""What ``tickets show`` says about a ticket's SLA: each target, explained.

Computed now from the ticket's events under the rules on disk (the same
``core.sla.targets`` the sweep uses), so what an admin reads is what the
sweep will act on: the policy, each target's state, due time, business time
used of its budget, paused periods, and the stages that fired and when.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from inboxd.config import Settings
from inboxd.core.sla import targets
from inboxd.db import sla, tickets
from inboxd.rulesdir import load_dir
from inboxd.sched.sla_sweep import policy_of


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sla_targets(
    settings: Settings, session: Session, ticket_id: int, policy_name: str, now: datetime
) -> dict[str, Any]:
    """The ``sla`` field of ``tickets show --json`` (an error string when the rules
    do not load or no longer define the policy)."""
    loaded = load_dir(Path(settings.rules.dir), templates=Path(settings.templates.dir))
    found = policy_of(loaded.ruleset, policy_name)
    if found is None:
        why = "the rules do not load" if loaded.ruleset is None else "no such policy now"
        return {"policy": policy_name, "error": why, "targets": []}
    policy, calendar = found
    events = tickets.typed_events(session, ticket_id)
    fired = sla.fired_stages(session, ticket_id)
    out = []
    for tc in targets.clocks(events, policy, calendar, now):
        out.append(
            {
                "target": tc.target,
                "goal": str(tc.goal),
                "state": tc.state,
                "cycle": tc.cycle,
                "started_at": _iso(tc.started_at),
                "due_at": _iso(tc.due_at),
                "budget_seconds": int(tc.budget.total_seconds()),
                "used_seconds": int(tc.used.total_seconds()),
                "paused": [[_iso(a), _iso(b)] for a, b in tc.paused],
                "met_at": _iso(tc.met_at),
                "breached_at": _iso(tc.breached_at),
                "stages": [
                    {"stage": stage, "cycle": cycle, "fired_at": _iso(at)}
                    for (target, cycle, stage), at in sorted(fired.items())
                    if target == tc.target
                ],
            }
        )
    return {"policy": policy.name, "calendar": policy.calendar, "targets": out}


def sla_lines(report: dict[str, Any]) -> list[str]:
    """The same, for a terminal."""
    if report.get("error"):
        return [f"SLA {report['policy']}: {report['error']}"]
    lines = [f"SLA {report['policy']} (calendar {report['calendar']}):"]
    for t in report["targets"]:
        used = f"{t['used_seconds'] // 60} of {t['budget_seconds'] // 60} business min"
        due = f"due {t['due_at']}" if t["due_at"] else "no due time"
        lines.append(f"  {t['target']:<15} {t['state']:<9} {due}, {used}")
        lines += [f"    paused {a} .. {b or 'now'}" for a, b in t["paused"]]
        lines += [f"    stage {s['stage']} fired {s['fired_at']}" for s in t["stages"]]
    return lines
