"""Interceptor: mail in a shared mailbox's Sent folder is an agent's reply.

Teams that answer straight from support@ in their mail client never go through
inboxd's relay; when ``sent_folder`` is configured, the fetcher imports that
folder too and this records each mail there as the agent reply on its ticket
(found by its threading headers), so first-response times stay true. Nothing is
sent: the mail already went out. Our own relayed mail, if the SMTP server also
files it in Sent, is recognised by its signed Message-ID and skipped.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr
from inboxd.core.inbound import Arrival, Outcome
from inboxd.core.model import Direction, ParsedMessage
from inboxd.core.tokens import ticket_from_message_id
from inboxd.db import messages, tickets
from inboxd.flows.mailflow import Flow

log = logging.getLogger("inboxd.flow")

_REASON = "reply sent from the shared mailbox"


class SentFolderInterceptor:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def _cited_ticket(self, session: Session, parsed: ParsedMessage) -> Ticket | None:
        """The ticket of the newest mail the Sent mail answers (signed ids first)."""
        secret = self.flow.config.secret
        for cited in [*parsed.in_reply_to, *reversed(parsed.references)]:
            ticket_id = ticket_from_message_id(secret, cited) or messages.ticket_of_message_id(
                session, cited
            )
            if ticket_id is not None:
                return tickets.resolve(session, ticket_id)
        return None

    def intercept(self, session: Session, arrival: Arrival) -> Outcome | None:
        source, parsed, now = arrival.source, arrival.parsed, arrival.now
        sent = self.flow.config.sent_folders.get(source.mailbox)
        if source.kind != "imap" or not sent or source.folder != sent:
            return None
        if ticket_from_message_id(self.flow.config.secret, parsed.message_id) is not None:
            return Outcome("skipped", reason="our own mail, already recorded")
        ticket = self._cited_ticket(session, parsed)
        if ticket is None:
            log.info("sent mail msgid=%s cites no ticket: skipped", parsed.message_id)
            return Outcome("skipped", reason="sent mail that cites no ticket")
        row_id = messages.store_mail(
            session,
            arrival,
            ticket_id=ticket.id,
            direction=Direction.OUTBOUND.value,
            matched_by="header",
            reason=_REASON,
        )
        sender = parsed.from_.email if parsed.from_ else source.mailbox
        name = parsed.from_.name if parsed.from_ and parsed.from_.name else sender
        change = tr.agent_replied(
            ticket,
            actor=ev.agent(name),
            now=now,
            message=row_id,
            message_id=parsed.message_id,
            via="sent_folder",
            sent_at=parsed.date.isoformat() if parsed.date else None,
        )
        tickets.save(session, change)
        return Outcome("stored", ticket.id, row_id, "header", _REASON)
