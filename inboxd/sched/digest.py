"""The weekly digest job: each team's figures for the week due, sent exactly once.

Every run works out the latest week whose digest is due (``core.digest.due_week``:
after downtime that is the week missed, once) and, for each team with a lead or
``cc`` addresses, claims the team's week (``db.digest.claim``, a unique key: one
daemon wins) and, in the same transaction, computes its figures with
``core.reports`` (this week and the one before, the arrivals of the last
``staffing_weeks`` weeks and the agents they need, the open tickets whose SLA is
breached or due within a day) and hands them to the flows' sender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.config import DigestConfig
from inboxd.core import digest as core_digest
from inboxd.core.calendar import DAYS, parse_timezone
from inboxd.core.reports import staffing
from inboxd.core.reports.business import on_policy_calendars
from inboxd.core.reports.compute import ReportBuilder
from inboxd.core.reports.model import Filters, Period
from inboxd.core.reports.sla import outcomes
from inboxd.core.rules import RuleSet
from inboxd.core.sla import targets
from inboxd.db import digest as digest_db
from inboxd.db import reports, tickets
from inboxd.sched.sla_sweep import policy_of

log = logging.getLogger("inboxd.digest")
AT_RISK_WITHIN = timedelta(days=1)


class DigestSender(Protocol):
    def send(
        self, conn: Connection, rules: RuleSet, team: str, digest: Mapping[str, Any], now: datetime
    ) -> str | None: ...


class DigestJob:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        sender: DigestSender,
        config: DigestConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.sender = sender
        self.config = config
        self.clock = clock
        self.zone = parse_timezone(config.timezone)

    def due(self, now: datetime) -> Period:
        at = time.fromisoformat(self.config.time)
        return core_digest.due_week(now, self.zone, DAYS.index(self.config.weekday), at)

    def run_once(self) -> list[str]:
        """The teams whose digest this run sent."""
        now, rules = self.clock(), self.rules()
        if rules is None:
            return []
        week = self.due(now)
        key = week.start.astimezone(self.zone).date().isoformat()
        sent: list[str] = []
        for team, found in sorted(rules.teams.items()):
            if not (found.lead or self.config.cc):
                continue
            with self.engine.begin() as conn:
                if not digest_db.claim(conn, team, key, now):
                    continue  # sent before, by this daemon or another
                values = self.build(conn, rules, team, week, now)
                if self.sender.send(conn, rules, team, values, now) is not None:
                    sent.append(team)
        if sent:
            log.info("digest week=%s sent teams=%s", key, ",".join(sent))
        return sent

    def build(
        self, conn: Connection, rules: RuleSet, team: str, week: Period, now: datetime
    ) -> dict[str, Any]:
        """Everything the digest templates show for ``team``'s ``week``."""
        by_policy = {
            name: rules.calendars[p.calendar]
            for name, p in rules.sla_policies.items()
            if p.calendar in rules.calendars
        }
        before = core_digest.previous(week)
        builder = ReportBuilder(
            Period(before.start, week.end),
            now=now,
            periods=(before, week),
            filters=Filters(team=team),
            zone=self.zone,
            zone_name=self.config.timezone,
            business=on_policy_calendars(by_policy),
            sla=outcomes(rules.sla_policies, rules.calendars),
        )
        reports.feed(conn, builder)
        report = builder.result()
        old, this = report.rows[0], report.rows[1]
        weeks = self.config.staffing_weeks
        span = Period(week.end - timedelta(days=7 * weeks), week.end)
        arrivals_builder = ReportBuilder(span, now=now, filters=Filters(team=team), zone=self.zone)
        reports.feed(conn, arrivals_builder)
        arrivals = arrivals_builder.result().arrivals
        need = staffing.weekly(
            arrivals,
            weeks,
            handle=self.config.handle_time,
            target=self.config.response_target,
            level=self.config.service_level,
        )
        return {
            "team": team,
            "start": week.start.astimezone(self.zone).date().isoformat(),
            "end": (week.end.astimezone(self.zone) - timedelta(days=1)).date().isoformat(),
            "timezone": self.config.timezone,
            "figures": core_digest.figure_rows(this, old),
            "backlog": report.backlog.total,
            "at_risk": self.at_risk(conn, rules, team, now),
            "heat": core_digest.heat_map(arrivals, need),
            "hours": list(range(24)),
            "weeks": weeks,
            "staffing": {
                "handle": round(self.config.handle_time / 60),
                "target": round(self.config.response_target / 60),
                "level": f"{self.config.service_level:.0%}",
                "peak": max((n for day in need for n in day), default=0),
            },
        }

    def at_risk(
        self, conn: Connection, rules: RuleSet, team: str, now: datetime
    ) -> list[dict[str, Any]]:
        """Open tickets whose running SLA target is breached or due within a day."""
        ids = digest_db.open_tickets_of_team(conn, team)
        loaded, logs = tickets.load_many(conn, ids), tickets.typed_events_of(conn, ids)
        out: list[dict[str, Any]] = []
        for ticket_id in ids:
            ticket = loaded.get(ticket_id)
            found = policy_of(rules, ticket.sla_policy if ticket else None)
            if ticket is None or found is None:
                continue
            policy, calendar = found
            for tc in targets.clocks(logs[ticket_id], policy, calendar, now):
                if tc.running and tc.due_at is not None and tc.due_at <= now + AT_RISK_WITHIN:
                    out.append(
                        {
                            "id": ticket.id,
                            "subject": ticket.subject,
                            "assignee": ticket.assignee or "",
                            "target": tc.target.replace("_", " "),
                            "due_at": tc.due_at,
                            "breached": tc.due_at <= now,
                        }
                    )
        return sorted(out, key=lambda r: r["due_at"])
