"""The SLA sweep: fire the stages that came, exactly once, and say when to look again.

Each run takes a batch of the tickets whose ``sla_due_at`` has come (an index
range, so its cost follows the due tickets, not the open ones), reads them and
their events in a few queries, and handles each in a savepoint of the batch's
transaction: recompute its clocks from the event log under the
current rules (``core.sla.targets``), claim every stage whose time came
(``db.sla.claim_stage``: one insert wins, across restarts and daemons), have
the flows act on it (reminder mail, breach alert: ``StageActions``, wired by
the daemon), record an event, and store the ticket's next due instant. A stage
whose time passed while the daemon was down is caught up once; a warning whose
breach is already due is recorded as skipped and nobody is told. People can
hold the stages (``core.sla.holds``): a snooze delays them until it ends, an
acknowledged breach skips the rest of its stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.calendar import ALWAYS_NAME, Calendar
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import SlaPolicy
from inboxd.core.sla import holds, targets
from inboxd.core.sla.targets import StageTime, TargetClock
from inboxd.db import sla, tickets
from inboxd.db.sql import savepoint
from inboxd.metrics import SLA_BREACHES, SLA_WARNINGS

log = logging.getLogger("inboxd.sla")


class StageActions(Protocol):
    """What a fired stage does (mails, Slack), inside the sweep's transaction."""

    def fire(
        self,
        conn: Connection,
        rules: RuleSet,
        ticket: Ticket,
        policy: SlaPolicy,
        stage: StageTime,
        clock: TargetClock,
        now: datetime,
    ) -> None: ...


@dataclass
class SweepReport:
    due: int = 0
    fired: int = 0
    skipped: int = 0
    errors: int = 0
    # (policy, action) of each stage carried out, counted once the batch committed
    acted: list[tuple[str, str]] = field(default_factory=list)


def policy_of(rules: RuleSet | None, name: str | None) -> tuple[SlaPolicy, Calendar] | None:
    """The policy and its calendar, when the rules still define them."""
    if rules is None or not name:
        return None
    policy = rules.sla_policies.get(name)
    if policy is None:
        return None
    calendar = rules.calendars.get(policy.calendar) or rules.calendars.get(ALWAYS_NAME)
    return (policy, calendar) if calendar is not None else None


class SlaSweep:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        actions: StageActions,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = 500,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.actions = actions
        self.clock = clock
        self.batch = batch

    def run_once(self) -> SweepReport:
        """One batch of due tickets in one transaction. A ticket whose stages fail
        is rolled back alone (a savepoint around its claims and actions) and stays
        due for the next run; the events and due times of the batch are written
        together at the end."""
        now = self.clock()
        rules = self.rules()  # one rule set for the whole run
        report = SweepReport()
        with self.engine.begin() as conn:
            due = sla.take_due(conn, now, limit=self.batch)
            report.due = len(due)
            if due:
                self._batch(conn, rules, due, now, report)
        for policy, action in report.acted:
            (SLA_WARNINGS if action == "remind" else SLA_BREACHES).labels(policy).inc()
        if report.fired or report.skipped or report.errors:
            log.info(
                "sla sweep due=%d fired=%d skipped=%d errors=%d",
                report.due,
                report.fired,
                report.skipped,
                report.errors,
            )
        return report

    def _batch(
        self,
        conn: Connection,
        rules: RuleSet | None,
        due: list[int],
        now: datetime,
        report: SweepReport,
    ) -> None:
        loaded = tickets.load_many(conn, due)
        logs = tickets.typed_events_of(conn, due)
        fired = sla.fired_stages_of(conn, due)
        events: list[tuple[int, ev.Event]] = []
        next_due: list[tuple[int, datetime | None]] = []
        for ticket_id in due:
            keys = {f"{t}:{c}:{s}" for t, c, s in fired[ticket_id]}
            try:
                done = self._sweep(conn, rules, loaded.get(ticket_id), logs[ticket_id], keys, now)
            except Exception:
                report.errors += 1
                log.exception("sla sweep failed ticket=%s; it stays due", ticket_id)
                continue
            report.fired += sum(1 for e in done.events if not e.skipped)
            report.skipped += sum(1 for e in done.events if e.skipped)
            report.acted += [(e.policy, e.action) for e in done.events if not e.skipped]
            events += [(ticket_id, e) for e in done.events]
            next_due.append((ticket_id, done.next_due))
        tickets.record_many(conn, events)
        sla.set_due_many(conn, next_due)

    def _sweep(
        self,
        conn: Connection,
        rules: RuleSet | None,
        ticket: Ticket | None,
        events: list[ev.Event],
        fired: set[str],
        now: datetime,
    ) -> _Swept:
        """One ticket: its stages that came, claimed and carried out, and its next due
        time. Pure but for the stage claims and the actions, which a savepoint
        wraps, so a failing action takes its claims back with it."""
        found = policy_of(rules, ticket.sla_policy if ticket else None)
        if ticket is None or found is None or rules is None:
            return _Swept((), None)  # no policy (any more): nothing to watch
        policy, calendar = found
        computed = targets.clocks(events, policy, calendar, now)
        by_target = {tc.target: tc for tc in computed}
        stages = targets.due_stages(events, policy, calendar, now, fired, computed)
        held = holds.snoozed_until(events, now)  # a Slack "Snooze 1h": look again then
        if held is not None and stages:
            later = targets.next_due(events, policy, calendar, now, fired, computed)
            return _Swept((), max(later, held) if later is not None else held)
        # an acknowledged breach: its further stages are recorded as skipped, nobody told
        stages = tuple(
            replace(st, skip=True) if holds.acknowledged(events, by_target[st.target]) else st
            for st in stages
        )
        out: list[ev.SlaStageFired] = []
        if stages:
            with savepoint(conn, "sla"):
                for stage in stages:
                    if not sla.claim_stage(
                        conn, ticket.id, stage.target, stage.cycle, stage.stage.key, now
                    ):
                        continue  # another daemon (or an earlier run) had it
                    fired.add(stage.key)
                    target = by_target[stage.target]
                    if not stage.skip:
                        self.actions.fire(conn, rules, ticket, policy, stage, target, now)
                    out.append(
                        ev.SlaStageFired(
                            at=now,
                            policy=policy.name,
                            target=stage.target,
                            cycle=stage.cycle,
                            stage=stage.stage.key,
                            action=stage.stage.action,
                            due_at=target.due_at.isoformat() if target.due_at else None,
                            skipped=stage.skip,
                        )
                    )
        nxt = targets.next_due(events, policy, calendar, now, fired, computed)
        return _Swept(tuple(out), nxt)


@dataclass(frozen=True, slots=True)
class _Swept:
    events: tuple[ev.SlaStageFired, ...]
    next_due: datetime | None


def recompute_changed(
    engine: Engine, old: RuleSet | None, new: RuleSet | None, now: datetime
) -> list[str]:
    """After a reload: the policies whose targets, stages or calendar changed have
    their open tickets made due now (the sweep recomputes them from their events),
    with an event saying why. Returns the names of the changed policies."""
    if new is None:
        return []
    changed: list[str] = []
    for name, policy in new.sla_policies.items():
        before = old.sla_policies.get(name) if old is not None else None
        calendar_changed = old is not None and old.calendars.get(
            policy.calendar
        ) != new.calendars.get(policy.calendar)
        if before is not None and (before != policy or calendar_changed):
            changed.append(name)
    if not changed:
        return []
    with engine.begin() as conn:
        ids = sla.open_tickets_of(conn, changed)
        sla.mark_due(conn, changed, now)
        for ticket_id, policy_name in ids:
            why = "the policy or its calendar changed in the rules"
            tickets.record(conn, ticket_id, ev.SlaRecomputed(at=now, policy=policy_name, why=why))
    log.info(
        "sla policies changed=%s tickets=%d: due times recomputed", ",".join(changed), len(ids)
    )
    return changed
