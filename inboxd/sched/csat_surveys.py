"""The survey job: solved tickets whose delay has passed get their one survey.

Each run takes the tickets whose latest solve (``ticket.survey_due_at``) is at
least ``delay`` old, an index range, and hands each to the flows'
``SurveySender`` (wired by the daemon) in a savepoint of the run's
transaction, then clears their due time. A ticket reopened meanwhile is
refused by the sender (not solved) and surveyed after its next solve; the
unique survey per ticket keeps a second daemon or a re-solve from sending
another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.desk import Ticket
from inboxd.core.rules import RuleSet
from inboxd.db import csat, tickets
from inboxd.db.sql import savepoint

log = logging.getLogger("inboxd.csat")


class SurveySender(Protocol):
    def send(
        self, conn: Connection, rules: RuleSet | None, ticket: Ticket, now: datetime
    ) -> str: ...


class SurveyJob:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        sender: SurveySender,
        *,
        delay: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = 200,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.sender = sender
        self.delay = delay
        self.clock = clock
        self.batch = batch

    def run_once(self) -> dict[str, int]:
        """One batch in one transaction; returns how many tickets ended how."""
        now = self.clock()
        rules = self.rules()
        outcomes: dict[str, int] = {}
        with self.engine.begin() as conn:
            due = csat.take_due(conn, now - self.delay, limit=self.batch)
            done: list[int] = []
            for ticket_id in due:
                ticket = tickets.load(conn, ticket_id)
                try:
                    with savepoint(conn, "survey"):
                        what = "gone" if ticket is None else self._send(conn, rules, ticket, now)
                except Exception:
                    log.exception("survey failed ticket=%s; it stays due", ticket_id)
                    what = "error"
                else:
                    done.append(ticket_id)
                outcomes[what] = outcomes.get(what, 0) + 1
            csat.clear_due(conn, done)
        if due:
            told = ", ".join(f"{what}: {n}" for what, n in outcomes.items())
            log.info("surveys due=%d (%s)", len(due), told)
        return outcomes

    def _send(self, conn: Connection, rules: RuleSet | None, ticket: Ticket, now: datetime) -> str:
        return self.sender.send(conn, rules, ticket, now)
