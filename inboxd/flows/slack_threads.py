"""One living Slack message per ticket and channel: a root that shows the ticket as it
is now, and the alerts about it in its thread.

``alert`` is how every alert about one ticket is queued (rule ``slack:``
actions, SLA stages): the first in a channel makes the thread and queues its
root, each queues a thread reply. ``refresh`` queues a ``chat.update`` for
every root whose ticket now shows something else than what was last posted
(compared by digest); the root sync job (``sched.slack_roots``) calls it for
the candidates, the Slack buttons for the ticket they changed. Only rows are
written, in the caller's transaction; the Slack drain makes the calls.

With quiet hours, an alert of a kind that may wait (``core.quiet_hours``) is held
for the summary at its team's next opening instead (``db.quiet_alerts``). Through
an incoming webhook (``threads=False``) every alert is a plain post: no root, no
thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from inboxd.core.calendar import ALWAYS_NAME
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.quiet_hours import QuietHours, defer_until
from inboxd.core.rules import RuleSet
from inboxd.core.sla import holds
from inboxd.core.sla.targets import clocks
from inboxd.core.slack_text import SlackMessage
from inboxd.core.slack_ticket import SlaLine, TicketCard, digest, root_message, sla_line
from inboxd.db import ops_alerts, quiet_alerts, tickets
from inboxd.db import slack_queries as sq
from inboxd.db import slack_threads as threads

log = logging.getLogger("inboxd.slack")


def sla_of(
    rules: RuleSet | None, ticket: Ticket, events: Sequence[ev.Event], now: datetime
) -> SlaLine:
    """The ticket's SLA line from its event log, when the rules still define its policy."""
    if rules is None or not ticket.sla_policy:
        return SlaLine()
    policy = rules.sla_policies.get(ticket.sla_policy)
    if policy is None:
        return SlaLine()
    calendar = rules.calendars.get(policy.calendar) or rules.calendars.get(ALWAYS_NAME)
    if calendar is None:
        return SlaLine()
    computed = clocks(events, policy, calendar, now)
    return sla_line(
        computed,
        snoozed_until=holds.snoozed_until(events, now),
        acknowledged=any(holds.acknowledged(events, c) for c in computed),
    )


class LivingMessages:
    """Queues roots, thread replies and root updates. ``buttons``: Socket Mode is on;
    ``quiet``: the kinds that wait for the opening; ``threads``: False through a webhook."""

    def __init__(
        self,
        *,
        tag_format: str = "[#{id}]",
        buttons: bool = False,
        quiet: QuietHours | None = None,
        threads: bool = True,
    ) -> None:
        self.tag_format = tag_format
        self.buttons = buttons
        self.quiet = quiet
        self.threads = threads

    def label(self, ticket_id: int) -> str:
        return self.tag_format.replace("{id}", str(ticket_id))

    def root(
        self,
        ticket: Ticket,
        sla: SlaLine,
        last_mail: str,
    ) -> SlackMessage:
        card = TicketCard(
            ticket_id=ticket.id,
            label=self.label(ticket.id),
            subject=ticket.subject,
            requester=ticket.requester,
            requester_name=ticket.requester_name,
            status=str(ticket.status),
            priority=ticket.priority,
            vip=ticket.vip,
            tags=ticket.tags,
            team=ticket.team,
            assignee=ticket.assignee,
            sla=sla,
            last_mail=last_mail,
            merged_into=ticket.merged_into,
            buttons=self.buttons,
        )
        return root_message(card)

    def root_now(
        self, conn: Connection, rules: RuleSet | None, ticket: Ticket, now: datetime
    ) -> SlackMessage:
        """The root as the ticket is in this transaction."""
        events = tickets.typed_events(conn, ticket.id) if ticket.sla_policy else []
        text = threads.last_customer_texts(conn, [ticket.id]).get(ticket.id, "")
        return self.root(ticket, sla_of(rules, ticket, events, now), text)

    def alert(
        self,
        conn: Connection,
        rules: RuleSet | None,
        ticket: Ticket,
        channel: str,
        message: SlackMessage,
        now: datetime,
        *,
        dedupe_key: str,
        kind: str = "",
    ) -> int | None:
        """Queue an alert about ``ticket`` into its thread in ``channel`` (made, with its
        root, by the first alert); None when this alert was queued (or held) before, or
        is held now for the quiet-hours summary (``kind`` may wait, the team is away).
        While a spike on one of its tags (or an outage of its mailbox) is on in
        ``channel``, the alert goes into that alert's thread instead: one message for
        the storm."""
        if sq.find_id(conn, dedupe_key) is not None or quiet_alerts.held(conn, dedupe_key):
            return None
        if self._hold(conn, rules, ticket, channel, message, now, dedupe_key, kind):
            return None
        if self.threads:
            call, thread_id = sq.REPLY, self._thread_for(conn, rules, ticket, channel, now)
        else:  # an incoming webhook: the alert alone
            call, thread_id = sq.POST, None
        return sq.enqueue(
            conn,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            now=now,
            ticket_id=ticket.id,
            dedupe_key=dedupe_key,
            call=call,
            thread_id=thread_id,
        )

    def _thread_for(
        self,
        conn: Connection,
        rules: RuleSet | None,
        ticket: Ticket,
        channel: str,
        now: datetime,
    ) -> int | None:
        """The thread the alert goes into: an ongoing spike's or outage's, else the
        ticket's own."""
        grouped = ops_alerts.routing_thread(
            conn, channel=channel, tags=ticket.tags, mailbox=ticket.mailbox
        )
        if grouped is None:
            return self._own_thread(conn, rules, ticket, channel, now)
        log.info(
            "slack alert grouped ticket=%s into %s=%s", ticket.id, grouped.kind, grouped.subject
        )
        return grouped.thread_id

    def _hold(
        self,
        conn: Connection,
        rules: RuleSet | None,
        ticket: Ticket,
        channel: str,
        message: SlackMessage,
        now: datetime,
        dedupe_key: str,
        kind: str,
    ) -> bool:
        """Hold the alert for the summary when its kind waits and its team is away."""
        if self.quiet is None or not kind:
            return False
        calendars = rules.calendars if rules is not None else {}
        until = defer_until(self.quiet, kind, ticket.team, calendars, now)
        if until is None:
            return False
        quiet_alerts.hold(
            conn,
            channel=channel,
            kind=kind,
            text=message.text,
            dedupe_key=dedupe_key,
            now=now,
            due_at=until,
            ticket_id=ticket.id,
        )
        log.info(
            "slack alert held for the summary at %s ticket=%s channel=%s kind=%s",
            until.isoformat(),
            ticket.id,
            channel,
            kind,
        )
        return True

    def _own_thread(
        self,
        conn: Connection,
        rules: RuleSet | None,
        ticket: Ticket,
        channel: str,
        now: datetime,
    ) -> int:
        """The ticket's own thread in ``channel``; making it queues its root first."""
        thread, made = threads.ensure(conn, ticket.id, channel, now)
        if made:
            root = self.root_now(conn, rules, ticket, now)
            sq.enqueue(
                conn,
                channel=channel,
                text=root.text,
                blocks=root.blocks,
                now=now,
                ticket_id=ticket.id,
                call=sq.ROOT,
                thread_id=thread.id,
                digest=digest(root),
            )
        return thread.id

    def refresh(
        self,
        conn: Connection,
        rules: RuleSet | None,
        found: Sequence[threads.Thread],
        now: datetime,
    ) -> int:
        """Queue an update for each posted root that no longer shows its ticket; returns
        how many. A root with an update still on its way waits for the next round."""
        busy = threads.with_pending_update(conn, [t.id for t in found])
        todo = [t for t in found if t.ts and t.id not in busy and t.ticket_id is not None]
        ids = sorted({t.ticket_id for t in todo if t.ticket_id is not None})
        loaded = tickets.load_many(conn, ids)
        with_policy = [i for i in ids if i in loaded and loaded[i].sla_policy]
        logs = tickets.typed_events_of(conn, with_policy) if with_policy else {}
        texts = threads.last_customer_texts(conn, ids)
        queued = 0
        for thread in todo:
            ticket = loaded.get(thread.ticket_id) if thread.ticket_id is not None else None
            if ticket is None:
                continue
            sla = sla_of(rules, ticket, logs.get(ticket.id, []), now)
            message = self.root(ticket, sla, texts.get(ticket.id, ""))
            state = digest(message)
            if state == thread.digest:
                continue
            sq.enqueue(
                conn,
                channel=thread.channel,
                text=message.text,
                blocks=message.blocks,
                now=now,
                ticket_id=ticket.id,
                call=sq.UPDATE,
                thread_id=thread.id,
                digest=state,
            )
            queued += 1
        if queued:
            log.info("slack root updates queued=%d", queued)
        return queued

    def refresh_ticket(
        self, conn: Connection, rules: RuleSet | None, ticket_id: int, now: datetime
    ) -> int:
        """Queue the updates of one ticket's roots (after a button changed it)."""
        return self.refresh(conn, rules, threads.of_tickets(conn, [ticket_id]), now)


__all__ = ["LivingMessages", "sla_of"]
