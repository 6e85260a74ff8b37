"""Reactor: acknowledge new tickets and tell agents about customer mail.

Runs inside the ingest transaction for every stored mail and only queues
outbox rows. Machine mail (auto-replies, bounces, lists) gets neither an
acknowledgement nor a notification: it is on the ticket, that is enough.
An acknowledgement also passes the hourly caps of ``core.loops`` (per
recipient, per recipient domain, in all): a trip is a ``cap_tripped`` event,
a WARNING and the ops alert hook; an ack to anyone but the envelope sender
quotes neither the subject nor a display name.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.desk import QUIET_STATUSES, Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr
from inboxd.core.inbound import StoredMail
from inboxd.core.loops import (
    CAP_WINDOW,
    NEUTRAL_SUBJECT,
    AckCounts,
    CapTrip,
    HourlyCaps,
    ack_cap,
    ack_may_quote,
    ack_recipient,
    ack_refusal,
)
from inboxd.core.model import Address, Attachment, MessageKind, ParsedMessage
from inboxd.core.rules.model import Agent
from inboxd.db import messages, tickets
from inboxd.db import outbox_queries as q
from inboxd.flows.mailflow import Flow, FlowView, ThreadInfo, connection, person

log = logging.getLogger("inboxd.flow")

# (db, trip, ticket id, what was done instead, now): the ops alert for a tripped cap
CapAlert = Callable[[Connection, CapTrip, int, str, datetime], object]


class AckNotifyReactor:
    """``caps``: the hourly limits (default: the per-recipient cap of the flow's
    config, the rest at their defaults); ``on_cap``: told of every trip (it
    dedupes to one ops alert per cap and hour)."""

    def __init__(
        self, flow: Flow, *, caps: HourlyCaps | None = None, on_cap: CapAlert | None = None
    ) -> None:
        self.flow = flow
        self.caps = caps or HourlyCaps(ack_per_sender=flow.config.ack_per_sender_per_hour)
        self.on_cap = on_cap

    def on_stored(self, session: Session, mail: StoredMail) -> None:
        parsed = mail.parsed
        if parsed.kind is not MessageKind.NORMAL or parsed.bounce is not None:
            return
        view = self.flow.view(mail.rules)
        if not (self._may_acknowledge(mail) or view.may_have_recipients()):
            return  # nothing can be sent
        conn = connection(session)
        ticket = mail.ticket
        # looked up only when a mail is actually composed: most stored mail sends nothing
        thread = functools.cache(lambda: self.flow.thread_of_stored(conn, mail))
        if mail.new_ticket:
            ticket = self._acknowledge(session, view, mail, ticket, thread)
        # a stranger's mail on a solved or closed ticket did not reopen it: the agents
        # hear of it anyway, and decide
        if ticket.status not in QUIET_STATUSES or mail.sender_role == "pending":
            self._notify(session, view, mail, ticket, thread)

    def before_batch(self, session: Session, mails: Sequence[ParsedMessage], now: datetime) -> None:
        """Read the per-recipient ack counts of the batch's possible ack recipients
        (``ack_recipient`` of each mail) in one query, when that cap is set."""
        if not self.caps.ack_per_sender:
            return
        rcpts = [r.email for r in map(ack_recipient, mails) if r is not None]
        q.prefetch_to_recipients(
            connection(session), kind=OutboundKind.ACK.value, rcpts=rcpts, since=now - CAP_WINDOW
        )

    # --- acknowledgement ----------------------------------------------------------------

    def _may_acknowledge(self, mail: StoredMail) -> bool:
        """Whether ``_acknowledge`` gets past its first test (it reads nothing to decide)."""
        auto_reply = mail.decision.auto_reply if mail.decision is not None else None
        return mail.new_ticket and (auto_reply is not None or self.flow.config.acknowledge)

    def _acknowledge(
        self,
        session: Session,
        view: FlowView,
        mail: StoredMail,
        ticket: Ticket,
        thread: Callable[[], ThreadInfo],
    ) -> Ticket:
        """Queue the acknowledgement when loop prevention allows; the ticket after."""
        cfg = self.flow.config
        parsed = mail.parsed
        template = mail.decision.auto_reply if mail.decision is not None else None
        if template is None and not cfg.acknowledge:
            return ticket
        refusal = ack_refusal(
            parsed,
            our_addresses=self.flow.support_addresses,
            ticket_already_acked=ticket.acknowledged,
        )
        recipient = ack_recipient(parsed)
        if refusal is not None or recipient is None:
            return self._skipped(session, ticket, refusal or "no sender", mail.now, logging.INFO)
        trip = ack_cap(recipient, self._ack_counts(session, recipient, mail.now), self.caps)
        if trip is not None:
            return self._capped(session, ticket, trip, mail)
        quote = ack_may_quote(parsed, recipient)
        if not quote:  # the sender's words never go to a stranger: no subject, no name
            recipient = Address(recipient.email)
        shown = ticket if quote else dataclasses.replace(ticket, subject=NEUTRAL_SUBJECT)
        # written by the drain: a template that fails there fails this mail, not the ticket
        letter = view.letter(
            template or "ack",
            shown,
            customer={"name": recipient.name, "email": recipient.email},
        )
        try:
            message_id = view.to_customer(
                session,
                OutboundKind.ACK,
                shown,
                letter,
                to=(recipient,),
                now=mail.now,
                sender_name=cfg.helpdesk_name,
                in_reply_to=parsed.message_id,
                references=parsed.references,
                thread=thread(),
            )
        except ComposeError as exc:  # an address no mail can go to: the ticket stands
            reason = f"cannot write to {recipient.email!r}: {exc}"
            return self._skipped(session, ticket, reason, mail.now, logging.WARNING)
        change = tr.acknowledged(
            ticket,
            to=recipient.email,
            message_id=message_id,
            template=template or "ack",
            now=mail.now,
        )
        tickets.save(session, change)
        return change.after

    def _ack_counts(self, session: Session, recipient: Address, now: datetime) -> AckCounts:
        """Acks queued in the last hour: to ``recipient``, to its domain, to anyone."""
        conn = connection(session)
        kind, since, caps = OutboundKind.ACK.value, now - CAP_WINDOW, self.caps
        # only the caps that are set (0: off) are counted: each count is a query per ack
        return AckCounts(
            to_recipient=q.count_to_recipient(conn, kind=kind, rcpt=recipient.email, since=since)
            if caps.ack_per_sender
            else 0,
            to_domain=q.count_kind(conn, kind=kind, since=since, domain=recipient.domain)
            if caps.ack_per_domain
            else 0,
            total=q.count_kind(conn, kind=kind, since=since) if caps.ack_global else 0,
        )

    def _capped(self, session: Session, ticket: Ticket, trip: CapTrip, mail: StoredMail) -> Ticket:
        """No ack: the event, the WARNING and the ops alert (deduped to one per hour)."""
        conn = connection(session)
        tripped = ev.CapTripped(
            at=mail.now,
            cap=trip.cap,
            key=trip.key,
            count=trip.count,
            limit=trip.limit,
            action="ack_skipped",
            message_id=mail.parsed.message_id,
        )
        tickets.record(conn, ticket.id, tripped)
        log.warning("cap tripped cap=%s key=%s ticket=%s: no ack", trip.cap, trip.key, ticket.id)
        if self.on_cap is not None:
            self.on_cap(conn, trip, ticket.id, "acknowledgement skipped", mail.now)
        return self._skipped(session, ticket, trip.reason, mail.now, logging.INFO)

    def _skipped(
        self, session: Session, ticket: Ticket, reason: str, now: datetime, level: int
    ) -> Ticket:
        tickets.record(session, ticket.id, ev.AckSkipped(at=now, reason=reason))
        log.log(level, "ack skipped ticket=%s reason=%s", ticket.id, reason)
        return ticket

    # --- agent notification -------------------------------------------------------------

    def _notify(
        self,
        session: Session,
        view: FlowView,
        mail: StoredMail,
        ticket: Ticket,
        thread: Callable[[], ThreadInfo],
    ) -> None:
        parsed = mail.parsed
        sender = parsed.from_.email if parsed.from_ else ""
        agents = [a for a in view.recipients_for(ticket) if a.email != sender]
        if not agents:
            return
        attachments = parsed.attachments
        if sum(a.size for a in attachments) > self.flow.config.max_notify_attachment_bytes:
            attachments = ()
        customer = parsed.from_.name or sender if parsed.from_ else "customer"
        joined = None
        if not mail.new_ticket and sender and mail.sender_role == "pending":
            # the agents decide whether a stranger hears back
            joined = {"email": sender, "name": parsed.from_.name if parsed.from_ else ""}
        queue_notifications(
            view,
            session,
            ticket,
            agents,
            event="created" if mail.new_ticket else "customer_reply",
            message=without_text(_message_context(parsed)),
            text_of=mail.message_row_id,
            sender_name=customer,
            in_reply_to=parsed.message_id,
            references=parsed.references,
            attachments=attachments,
            thread=thread(),
            now=mail.now,
            joined=joined,
        )


def queue_notifications(
    view: FlowView,
    session: Session,
    ticket: Ticket,
    agents: Sequence[Agent],
    *,
    event: str,
    message: dict[str, Any],
    sender_name: str,
    in_reply_to: str,
    references: tuple[str, ...],
    thread: ThreadInfo,
    now: datetime,
    attachments: tuple[Attachment, ...] = (),
    text_of: int = 0,
    **ctx: Any,
) -> list[str]:
    """Queue the ``notify`` template to each agent, From "SENDER via HELPDESK" with the
    agent's own reply-token address (so an answer comes back as theirs), and log one
    ``notified`` event; returns the names notified (none when the template fails)."""
    helpdesk_name = view.flow.config.helpdesk_name
    sent_to: list[str] = []
    for agent in agents:
        # written by the drain: a template that fails there fails that mail
        letter = view.letter(
            "notify", ticket, event=event, message=message, agent=person(agent), **ctx
        )
        if text_of:
            letter = dataclasses.replace(letter, text_of=text_of)
        try:
            view.to_agent(
                session,
                OutboundKind.NOTIFY,
                ticket,
                agent,
                letter,
                now=now,
                sender_name=f"{sender_name} via {helpdesk_name}",
                in_reply_to=in_reply_to,
                references=references,
                attachments=attachments,
                thread=thread,
            )
        except ComposeError as exc:  # this agent only: the others still hear of it
            log.error("notify failed ticket=%s agent=%s error=%s", ticket.id, agent.name, exc)
            failed = ev.NotifyFailed(at=now, reason=str(exc), agent=agent.name)
            tickets.record(session, ticket.id, failed)
            continue
        sent_to.append(agent.name)
    if sent_to:
        notified = ev.Notified(at=now, agents=tuple(sent_to), event=event)
        tickets.record(session, ticket.id, notified)
    return sent_to


def notify_new_owner(
    view: FlowView,
    session: Session,
    before: Ticket,
    after: Ticket,
    actor: Agent,
    now: datetime,
) -> list[str]:
    """Tell whoever a ticket was just handed to (``#assign``): the new assignee, or the
    members of the new team, never the agent who did it. The mail carries the newest
    customer message and the recipient's own reply address, so they answer from it."""
    if (after.assignee, after.team) == (before.assignee, before.team):
        return []
    if after.status in QUIET_STATUSES:
        return []
    agents = [a for a in view.recipients_for(after) if a.email != actor.email]
    if not agents:
        return []
    conn = connection(session)
    message = _stored_context(messages.last_customer_summary(conn, after.id))
    thread = view.flow.thread_info(conn, after)
    name = actor.display_name or actor.name
    return queue_notifications(
        view,
        session,
        after,
        agents,
        event="assigned",
        message=message,
        sender_name=name,
        in_reply_to=thread.last_customer_id or thread.root_id,
        references=thread.references,
        thread=thread,
        now=now,
        assigned_by=name,
    )


def _context(
    from_name: str,
    from_email: str,
    subject: str,
    date: datetime | None,
    new_text: str,
    text: str,
    html: str,
    files: Sequence[tuple[str, int]],
) -> dict[str, Any]:
    """The notify template's ``message``, whether from a parsed or a stored mail."""
    return {
        "from_name": from_name,
        "from_email": from_email,
        "subject": subject,
        "date": date,
        "text": quoted_text(new_text, text),
        "html": html,
        "attachments": [{"filename": name, "size": size} for name, size in files],
    }


def quoted_text(new_text: str, text: str) -> str:
    """What a notification quotes of a mail: what the sender wrote this time, else all."""
    return new_text.strip() or text


def without_text(message: dict[str, Any]) -> dict[str, Any]:
    """A ``message`` context whose text and html the drain reads from the stored mail
    (``Letter.text_of``): each agent's queued notification would hold a copy."""
    return {k: v for k, v in message.items() if k not in ("text", "html")}


def _message_context(parsed: ParsedMessage) -> dict[str, Any]:
    sender = parsed.from_
    return _context(
        sender.name if sender else "",
        sender.email if sender else "",
        parsed.subject,
        parsed.date,
        parsed.new_text,
        parsed.text,
        parsed.html,
        [(a.filename, a.size) for a in parsed.attachments],
    )


def _stored_context(mail: messages.CustomerMail | None) -> dict[str, Any]:
    """From the stored row; empty for a ticket with no customer mail (opened by an agent)."""
    if mail is None:
        return _context("", "", "", None, "", "", "", ())
    return _context(
        mail.from_name,
        mail.from_email,
        mail.subject,
        mail.date,
        mail.new_text,
        mail.text,
        mail.html,
        mail.attachments,
    )
