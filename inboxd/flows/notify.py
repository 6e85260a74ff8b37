"""Reactor: acknowledge new tickets and tell agents about customer mail.

Runs inside the ingest transaction for every stored mail and only queues
outbox rows. Machine mail (auto-replies, bounces, lists) gets neither an
acknowledgement nor a notification: it is on the ticket, that is enough.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.loops import ack_decision, ack_recipient
from inboxd.core.model import Address, Attachment, MessageKind, ParsedMessage
from inboxd.core.rules.model import Agent
from inboxd.db import flow_queries as fq
from inboxd.db import outbox_queries as q
from inboxd.db import repo
from inboxd.flows.mailflow import Flow, StoredMailLike, ThreadInfo, connection
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")

_QUIET_STATUSES = frozenset({"closed", "solved", "merged"})


class AckNotifyReactor:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def on_stored(self, session: Session, mail: StoredMailLike) -> None:
        parsed = mail.parsed
        if parsed.kind is not MessageKind.NORMAL or parsed.bounce is not None:
            return
        if not (self._may_acknowledge(mail) or self.flow.may_have_recipients()):
            return  # nothing can be sent: skip the ticket read (~70 us a mail)
        conn = connection(session)
        ticket = fq.ticket(conn, mail.ticket_id)
        if ticket is None:
            return
        # looked up only when a mail is actually composed: most stored mail sends nothing
        thread = functools.cache(lambda: self.flow.thread_info(conn, mail.ticket_id, ticket))
        if mail.new_ticket:
            self._acknowledge(session, mail, ticket, thread)
        if ticket["status"] not in _QUIET_STATUSES:
            self._notify(session, mail, ticket, thread)

    # --- acknowledgement ----------------------------------------------------------------

    def _may_acknowledge(self, mail: StoredMailLike) -> bool:
        """Whether ``_acknowledge`` gets past its first test (it reads no ticket to decide)."""
        auto_reply = mail.decision.auto_reply if mail.decision is not None else None
        return mail.new_ticket and (auto_reply is not None or self.flow.config.acknowledge)

    def _acknowledge(
        self,
        session: Session,
        mail: StoredMailLike,
        ticket: dict[str, Any],
        thread: Callable[[], ThreadInfo],
    ) -> None:
        cfg = self.flow.config
        parsed = mail.parsed
        template = mail.decision.auto_reply if mail.decision is not None else None
        if template is None and not cfg.acknowledge:
            return
        conn = connection(session)
        recipient = ack_recipient(parsed)
        sent_last_hour = 0
        if recipient is not None:
            sent_last_hour = q.count_to_recipient(
                conn,
                kind=OutboundKind.ACK.value,
                rcpt=recipient.email,
                since=mail.now - timedelta(hours=1),
            )
        ok, reason = ack_decision(
            parsed,
            our_addresses=self.flow.support_addresses,
            acks_to_sender_last_hour=sent_last_hour,
            cap=cfg.ack_per_sender_per_hour,
            ticket_already_acked=bool(ticket.get("acknowledged")),
        )
        if not ok or recipient is None:
            repo.add_event(
                conn, mail.ticket_id, mail.now, "system", "ack_skipped", {"reason": reason}
            )
            log.info("ack skipped ticket=%s reason=%s", mail.ticket_id, reason)
            return
        try:
            rendered = self.flow.render(
                template or "ack",
                ticket,
                customer={"name": recipient.name, "email": recipient.email},
            )
        except TemplateError as exc:
            repo.add_event(
                conn, mail.ticket_id, mail.now, "system", "ack_skipped", {"reason": str(exc)}
            )
            log.error("ack template failed ticket=%s error=%s", mail.ticket_id, exc)
            return
        support = self.flow.support_address(ticket.get("mailbox") or "")
        try:
            message_id = self.flow.queue(
                session,
                kind=OutboundKind.ACK,
                ticket=ticket,
                rendered=rendered,
                from_addr=Address(support, cfg.helpdesk_name),
                to=(recipient,),
                now=mail.now,
                mail_from="",  # RFC 3834 3.3: a null return path, so nothing bounces back at us
                in_reply_to=parsed.message_id,
                references=parsed.references,
                thread=thread(),
            )
        except ComposeError as exc:  # an address no mail can go to: the ticket stands
            reason = f"cannot write to {recipient.email!r}: {exc}"
            event = {"reason": reason}
            repo.add_event(conn, mail.ticket_id, mail.now, "system", "ack_skipped", event)
            log.warning("ack skipped ticket=%s reason=%s", mail.ticket_id, reason)
            return
        repo.update_ticket(conn, mail.ticket_id, {"acknowledged": True})
        repo.add_event(
            conn,
            mail.ticket_id,
            mail.now,
            "system",
            "acknowledged",
            {"to": recipient.email, "message_id": message_id, "template": template or "ack"},
        )

    # --- agent notification -------------------------------------------------------------

    def _notify(
        self,
        session: Session,
        mail: StoredMailLike,
        ticket: dict[str, Any],
        thread: Callable[[], ThreadInfo],
    ) -> None:
        parsed = mail.parsed
        sender = parsed.from_.email if parsed.from_ else ""
        agents = [a for a in self.flow.recipients_for(ticket) if a.email != sender]
        if not agents:
            return
        attachments = parsed.attachments
        if sum(a.size for a in attachments) > self.flow.config.max_notify_attachment_bytes:
            attachments = ()
        customer = parsed.from_.name or sender if parsed.from_ else "customer"
        queue_notifications(
            self.flow,
            session,
            ticket,
            agents,
            event="created" if mail.new_ticket else "customer_reply",
            message=_message_context(parsed),
            sender_name=customer,
            in_reply_to=parsed.message_id,
            references=parsed.references,
            attachments=attachments,
            thread=thread(),
            now=mail.now,
        )


def queue_notifications(
    flow: Flow,
    session: Session,
    ticket: dict[str, Any],
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
    **ctx: Any,
) -> list[str]:
    """Queue the ``notify`` template to each agent, From "SENDER via HELPDESK" with the
    agent's own reply-token address (so an answer comes back as theirs), and log one
    ``notified`` event; returns the names notified (none when the template fails)."""
    conn = connection(session)
    ticket_id = int(ticket["id"])
    mailbox = ticket.get("mailbox") or ""
    sent_to: list[str] = []
    for agent in agents:
        try:
            rendered = flow.render(
                "notify",
                ticket,
                event=event,
                message=message,
                agent={"name": agent.display_name or agent.name, "email": agent.email},
                **ctx,
            )
        except TemplateError as exc:
            log.error("notify template failed ticket=%s error=%s", ticket_id, exc)
            repo.add_event(conn, ticket_id, now, "system", "notify_failed", {"reason": str(exc)})
            return []
        reply_to = flow.agent_address(conn, mailbox, ticket_id, agent)
        try:
            flow.queue(
                session,
                kind=OutboundKind.NOTIFY,
                ticket=ticket,
                rendered=rendered,
                from_addr=Address(reply_to, f"{sender_name} via {flow.config.helpdesk_name}"),
                reply_to=Address(reply_to),
                to=(Address(agent.email, agent.display_name or agent.name),),
                now=now,
                mail_from=flow.return_path(mailbox, ticket_id),
                in_reply_to=in_reply_to,
                references=references,
                attachments=attachments,
                thread=thread,
            )
        except ComposeError as exc:  # this agent only: the others still hear of it
            log.error("notify failed ticket=%s agent=%s error=%s", ticket_id, agent.name, exc)
            failed = {"agent": agent.name, "reason": str(exc)}
            repo.add_event(conn, ticket_id, now, "system", "notify_failed", failed)
            continue
        sent_to.append(agent.name)
    if sent_to:
        repo.add_event(
            conn, ticket_id, now, "system", "notified", {"agents": sent_to, "event": event}
        )
    return sent_to


def notify_new_owner(
    flow: Flow,
    session: Session,
    before: dict[str, Any],
    after: dict[str, Any],
    actor: Agent,
    now: datetime,
) -> list[str]:
    """Tell whoever a ticket was just handed to (``#assign``): the new assignee, or the
    members of the new team, never the agent who did it. The mail carries the newest
    customer message and the recipient's own reply address, so they answer from it."""
    if (after.get("assignee"), after.get("team")) == (before.get("assignee"), before.get("team")):
        return []
    if after["status"] in _QUIET_STATUSES:
        return []
    agents = [a for a in flow.recipients_for(after) if a.email != actor.email]
    if not agents:
        return []
    conn = connection(session)
    ticket_id = int(after["id"])
    message = _stored_context(fq.last_customer_summary(conn, ticket_id))
    thread = flow.thread_info(conn, ticket_id, after)
    return queue_notifications(
        flow,
        session,
        after,
        agents,
        event="assigned",
        message=message,
        sender_name=actor.display_name or actor.name,
        in_reply_to=thread.last_customer_id or thread.root_id,
        references=tuple(r for r in (thread.root_id, thread.last_customer_id) if r),
        thread=thread,
        now=now,
        assigned_by=actor.display_name or actor.name,
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
        "text": new_text.strip() or text,
        "html": html,
        "attachments": [{"filename": name, "size": size} for name, size in files],
    }


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


def _stored_context(mail: fq.CustomerMail | None) -> dict[str, Any]:
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
