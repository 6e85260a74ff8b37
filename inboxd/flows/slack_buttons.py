"""What the buttons on a ticket's living Slack message do to the ticket.

*Take it* assigns the ticket to the presser, *Mark pending* waits on the
customer, *Snooze 1h* holds its SLA stages for an hour, *Acknowledge* skips the
further stages of its current breach (``core.sla.holds``). The presser must be
an agent of the rules, found by the email of their Slack profile; anyone else
is told so (only them) and nothing changes. Each press is one transaction: the
exactly-once claim of the press (``db.slack_actions``), the transition of
``core.desk`` saved by ``db.tickets`` with the Slack user as actor, and the
root updates it makes due. The Socket Mode edge (``delivery.socket_mode``) acks
the envelope first and then calls this; the daemon wires the two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from inboxd.core.desk import Change, Status, Ticket
from inboxd.core.desk import transitions as tr
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import Agent
from inboxd.core.slack_actions import ButtonPress, ButtonReply
from inboxd.core.slack_ticket import ACK, PENDING, SNOOZE, TAKE
from inboxd.db import slack_actions, tickets
from inboxd.flows.slack_threads import LivingMessages

log = logging.getLogger("inboxd.slack")

SNOOZE_FOR = timedelta(hours=1)
NOT_AN_AGENT = (
    "Sorry, inboxd does not know you as an agent (it looks for the email of your Slack"
    " profile among the agents in the rule files), so nothing was changed."
)


class ButtonHandler:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleSet | None],
        living: LivingMessages,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.living = living
        self.clock = clock
        self.on_change = on_change  # wakes the Slack drain: the root update is queued

    def __call__(self, press: ButtonPress) -> ButtonReply:
        rules = self.rules()
        agent = rules.agent_by_email(press.email) if rules is not None and press.email else None
        if agent is None:
            log.info("slack press refused user=%s email=%s", press.user_id, press.email or "-")
            return ButtonReply(NOT_AN_AGENT)
        now = self.clock()
        label = self.living.label(press.ticket_id)
        with self.engine.begin() as conn:
            claimed = slack_actions.claim(
                conn,
                press.key,
                envelope_id=press.envelope_id,
                ticket_id=press.ticket_id,
                action=press.action,
                user_id=press.user_id,
                now=now,
            )
            if not claimed:
                log.info("slack press already handled key=%s", press.key)
                return ButtonReply()
            ticket = tickets.load(conn, press.ticket_id)
            if ticket is None:
                return ButtonReply(f"{label} does not exist.")
            if ticket.status in (Status.MERGED, Status.CLOSED):
                self.living.refresh_ticket(conn, rules, ticket.id, now)  # show it as it is
                return ButtonReply(self._final(ticket, label))
            try:
                change, done = self._change(press, ticket, agent, now)
            except tr.TransitionError as exc:
                return ButtonReply(f"{label}: {exc}; nothing was changed.")
            tickets.save(conn, change)
            self.living.refresh_ticket(conn, rules, ticket.id, now)
        log.info("slack press action=%s ticket=%s by=%s", press.action, ticket.id, press.actor)
        self.on_change()
        return ButtonReply(f"{label}: {done}")

    def _final(self, ticket: Ticket, label: str) -> str:
        if ticket.status == Status.MERGED and ticket.merged_into is not None:
            target = self.living.label(ticket.merged_into)
            return f"{label} was merged into {target}: act on {target} instead."
        return f"{label} is closed; nothing was changed (a customer reply opens a new ticket)."

    @staticmethod
    def _change(
        press: ButtonPress, ticket: Ticket, agent: Agent, now: datetime
    ) -> tuple[Change, str]:
        actor = press.actor
        if press.action == TAKE:
            change = tr.assign_agent(ticket, agent.name, teams=agent.teams, actor=actor, now=now)
            return change, f"assigned to you ({agent.name})."
        if press.action == PENDING:
            change = tr.change_status(ticket, Status.PENDING, actor=actor, now=now, why="slack")
            return change, "marked pending (waiting on the customer)."
        if press.action == SNOOZE:
            until = now + SNOOZE_FOR
            change = tr.snooze_stages(ticket, until, actor=actor, now=now)
            return change, f"SLA stages snoozed until {until.strftime('%H:%M')} UTC."
        if press.action == ACK:
            return tr.acknowledge_breach(ticket, actor=actor, now=now), "breach acknowledged."
        raise tr.TransitionError(f"unknown action {press.action}")


__all__ = ["NOT_AN_AGENT", "SNOOZE_FOR", "ButtonHandler"]
