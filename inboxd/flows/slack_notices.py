"""Queue Slack posts: the ``slack:`` rule action (into the ticket's living thread), and
the ops alerts (a rejected rules reload, an hourly loop cap that tripped), which are
messages of their own.

Both only write ``slack_notice`` rows (in the caller's transaction); the
``SlackDrain`` posts them. Each row carries a ``dedupe_key``, so queueing the
same alert again is a no-op: a mail processed twice never posts twice, and the
same broken rules edit (seen by SIGHUP and by the file watcher, or at every
retry) alerts once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.inbound import StoredMail
from inboxd.core.loops import CapTrip, alert_key
from inboxd.core.model import MessageKind
from inboxd.core.quiet_hours import rule_alert_kind
from inboxd.core.rules import Decision, RuleError
from inboxd.core.slack_text import (
    FiredRule,
    SlackMessage,
    TicketAlert,
    escape,
    rules_error_message,
    ticket_alert,
    truncate,
)
from inboxd.db import slack_queries as sq
from inboxd.db import tickets
from inboxd.flows.mailflow import connection
from inboxd.flows.slack_threads import LivingMessages

log = logging.getLogger("inboxd.slack")


def rule_dedupe_key(ticket_id: int, message_row_id: int, channel: str) -> str:
    return f"rule:{ticket_id}:{message_row_id}:{channel}"


def _fired_for(decision: Decision, channel: str) -> tuple[FiredRule, ...]:
    """The rules that asked for this channel (all that fired, if none names it)."""
    hits = [h for h in decision.hits if f"slack={channel}" in h.applied] or list(decision.hits)
    return tuple(FiredRule(h.rule, h.reasons, h.file, h.line) for h in hits)


class SlackRuleReactor:
    """Pipeline reactor: one alert per channel a matching rule named (``Decision.slack``),
    in the ticket's thread there (``LivingMessages``: the first one posts the root).

    Runs after the rules were applied, so the alert shows the ticket as routed
    (team, assignee, priority). Machine mail posts too: a ``slack:`` rule on
    monitoring alerts is exactly what an admin may want.
    """

    def __init__(
        self, *, tag_format: str = "[#{id}]", living: LivingMessages | None = None
    ) -> None:
        self.tag_format = tag_format
        self.living = living or LivingMessages(tag_format=tag_format)

    def on_stored(self, session: Session, mail: StoredMail) -> None:
        decision = mail.decision
        if decision is None or not decision.slack:
            return
        conn = connection(session)
        for channel in decision.slack:
            self._queue(conn, mail, mail.ticket, decision, channel)

    def _queue(
        self,
        conn: Connection,
        mail: StoredMail,
        ticket: Ticket,
        decision: Decision,
        channel: str,
    ) -> None:
        parsed = mail.parsed
        alert = TicketAlert(
            ticket_id=mail.ticket_id,
            subject=ticket.subject or parsed.subject,
            requester=ticket.requester,
            requester_name=ticket.requester_name,
            priority=ticket.priority,
            vip=ticket.vip,
            team=ticket.team,
            assignee=ticket.assignee,
            status=str(ticket.status),
            new_ticket=mail.new_ticket,
            rules=_fired_for(decision, channel),
            text=parsed.new_text or parsed.text,
            ticket_label=self.tag_format.replace("{id}", str(mail.ticket_id)),
        )
        message = ticket_alert(alert)
        row_id = self.living.alert(
            conn,
            mail.rules,
            ticket,
            channel,
            message,
            mail.now,
            dedupe_key=rule_dedupe_key(mail.ticket_id, mail.message_row_id, channel),
            kind=rule_alert_kind(
                priority=ticket.priority, vip=ticket.vip, new_ticket=mail.new_ticket
            ),
        )
        if row_id is None:  # queued before, or held for the quiet-hours summary
            log.info("slack notice not queued now ticket=%s channel=%s", mail.ticket_id, channel)
            return
        rules = tuple(r.name for r in alert.rules)
        queued = ev.SlackQueued(at=mail.now, channel=channel, notice=row_id, rules=rules)
        tickets.record(conn, mail.ticket_id, queued)
        log.info(
            "slack notice queued id=%s ticket=%s channel=%s kind=%s",
            row_id,
            mail.ticket_id,
            channel,
            "machine" if parsed.kind is not MessageKind.NORMAL else "customer",
        )


def rules_error_key(errors: Sequence[RuleError | str], generation: int | None = None) -> str:
    """Same errors (in any order) against the same last good set -> same key.

    ``generation`` (``RuleStore.generation``) is part of it, so the same mistake
    made again after a good reload in between alerts again.
    """
    lines = sorted(str(e) for e in errors)
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]
    return f"rules-error:{generation if generation is not None else '-'}:{digest}"


def rules_error_notice(
    db: Session | Connection,
    channel: str,
    errors: Sequence[RuleError | str],
    now: datetime,
    *,
    generation: int | None = None,
    directory: str = "",
    trigger: str = "",
) -> int | None:
    """Queue the ops alert for a rejected reload; None if this error set was alerted already."""
    if not errors:
        return None
    message = rules_error_message([str(e) for e in errors], directory=directory, trigger=trigger)
    row_id = sq.enqueue(
        db,
        channel=channel,
        text=message.text,
        blocks=message.blocks,
        now=now,
        dedupe_key=rules_error_key(errors, generation),
    )
    if row_id is not None:
        log.info(
            "slack rules alert queued id=%s channel=%s errors=%d", row_id, channel, len(errors)
        )
    return row_id


def cap_message(trip: CapTrip, *, ticket_id: int, action: str) -> SlackMessage:
    """The ops alert for a tripped cap: which, for whom, and what happened to the mail."""
    who = escape(truncate(trip.key, 200))
    text = (
        f"inboxd loop cap {trip.cap} reached for {who} ({trip.count} of {trip.limit} "
        f"this hour): {action} on ticket #{ticket_id}; further trips this hour are only logged"
    )
    return SlackMessage(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


class CapAlerts:
    """Queue one ops alert per cap and clock hour (``core.loops.alert_key``) to ``channel``.

    Called inside the ingest transaction for every trip; the dedupe key makes all
    but the first trip of the hour a no-op, so a flood costs ops one post per cap.
    """

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def __call__(
        self, db: Session | Connection, trip: CapTrip, ticket_id: int, action: str, now: datetime
    ) -> int | None:
        message = cap_message(trip, ticket_id=ticket_id, action=action)
        row_id = sq.enqueue(
            db,
            channel=self.channel,
            text=message.text,
            blocks=message.blocks,
            now=now,
            ticket_id=ticket_id,
            dedupe_key=alert_key(trip, now),
        )
        if row_id is not None:
            log.info(
                "slack cap alert queued id=%s channel=%s cap=%s", row_id, self.channel, trip.cap
            )
        return row_id


__all__ = [
    "CapAlerts",
    "SlackRuleReactor",
    "cap_message",
    "rule_dedupe_key",
    "rules_error_key",
    "rules_error_notice",
]
