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
from datetime import datetime

from sqlmodel import Session

from inboxd.core.model import Direction, ParsedMessage
from inboxd.core.tokens import ticket_from_message_id
from inboxd.db import flow_queries as fq
from inboxd.db import repo
from inboxd.flows.mailflow import Flow, Handled, SourceLike, connection

log = logging.getLogger("inboxd.flow")


class SentFolderInterceptor:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def intercept(
        self,
        session: Session,
        parsed: ParsedMessage,
        raw: bytes,
        source: SourceLike,
        now: datetime,
    ) -> Handled | None:
        sent = self.flow.config.sent_folders.get(source.mailbox)
        if source.kind != "imap" or not sent or source.folder != sent:
            return None
        secret = self.flow.config.secret
        if ticket_from_message_id(secret, parsed.message_id) is not None:
            return Handled("skipped", reason="our own mail, already recorded")
        conn = connection(session)
        ticket_id: int | None = None
        for cited in [*parsed.in_reply_to, *reversed(parsed.references)]:
            ticket_id = ticket_from_message_id(secret, cited) or fq.ticket_of_message_id(
                conn, cited
            )
            if ticket_id is not None:
                break
        ticket = self.flow.resolve_ticket(conn, ticket_id) if ticket_id is not None else None
        if ticket is None:
            log.info("sent mail msgid=%s cites no ticket: skipped", parsed.message_id)
            return Handled("skipped", reason="sent mail that cites no ticket")
        sender = parsed.from_.email if parsed.from_ else source.mailbox
        row_id = self.flow.record_message(
            session,
            ticket_id=int(ticket["id"]),
            parsed=parsed,
            raw=raw,
            source=source,
            direction=Direction.OUTBOUND.value,
            matched_by="header",
            reason="reply sent from the shared mailbox",
            now=now,
        )
        first = not fq.has_event(conn, int(ticket["id"]), "agent_reply")
        name = parsed.from_.name if parsed.from_ and parsed.from_.name else sender
        repo.add_event(
            conn,
            int(ticket["id"]),
            now,
            f"agent:{name}",
            "agent_reply",
            {
                "message": row_id,
                "message_id": parsed.message_id,
                "via": "sent_folder",
                "sent_at": parsed.date.isoformat() if parsed.date else None,
                "first_response": first,
            },
        )
        if ticket["status"] == "new":
            repo.update_ticket(
                conn, int(ticket["id"]), {"status": "open", "status_changed_at": now}
            )
        return Handled(
            "stored", int(ticket["id"]), row_id, "header", "reply sent from the shared mailbox"
        )
