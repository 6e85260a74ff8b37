"""Bounces: attach them to the ticket whose mail bounced; alert once per failed mail.

A bounce (DSN or another non-delivery report, as ``core.parse`` classifies it)
never opens a ticket, never gets an acknowledgement and never notifies: the
interceptor takes it before threading. It finds the mail that bounced by the
original Message-ID the report names (our outbox, or the signed ticket number
in our Message-IDs), else by the VERP-style token in the address it was sent to
(our envelope sender is ``support+TOKEN@...``). A permanent bounce marks that
outbox mail failed and raises one alert, but only when the report came to that
mail's return path (its Message-ID alone is known to anyone who saw the mail,
so a forged DSN is recorded and fails nothing); a second report about the same mail
(several MTAs, or "delayed" then "failed") finds it already failed and stays
quiet. A bounce we cannot place is quarantined, not made into a ticket.

``DeliveryAlerts`` is the one place alerts are made, for bounces and for mails
the outbox gave up on: a failed mail to a customer is told to the ticket's agents
by mail (``bounce_alert``); a failed mail to an agent (notification, reminder,
alert) is only logged and recorded on the ticket, since mailing that address
again would just fail again (and an alert must never cause another alert).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.compose import Audience, ComposeError, OutboundKind, kind_of
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.inbound import Arrival, Outcome
from inboxd.core.model import MessageKind, ParsedMessage
from inboxd.core.tokens import ticket_from_message_id, token_from_address, verify_reply_token
from inboxd.db import messages, tickets
from inboxd.db import outbox_queries as q
from inboxd.flows.mailflow import DB, Flow, connection, person
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")


class DeliveryAlerts:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def on_failed(self, conn: Connection, mail: q.OutboxMail, reason: str, now: datetime) -> None:
        """The outbox drain's hook: ``mail`` failed for good."""
        if mail.ticket_id is None:
            log.error("outbox mail failed id=%s kind=%s reason=%s", mail.id, mail.kind, reason)
            return
        self.alert(conn, mail.ticket_id, mail.kind, mail.rcpts, reason, now)

    def alert(
        self,
        db: DB,
        ticket_id: int,
        failed_kind: str,
        rcpts: Sequence[str],
        reason: str,
        now: datetime,
        *,
        status: str = "",
    ) -> None:
        conn = connection(db)
        ticket = tickets.load(conn, ticket_id)
        if ticket is None:
            return
        if kind_of(failed_kind).audience is not Audience.CUSTOMER:
            log.error(
                "mail to agent failed ticket=%s kind=%s rcpts=%s reason=%s",
                ticket_id,
                failed_kind,
                ",".join(rcpts),
                reason,
            )
            alert = ev.DeliveryAlert(
                at=now, failed_kind=failed_kind, rcpts=tuple(rcpts), reason=reason, mailed=False
            )
            tickets.record(conn, ticket_id, alert)
            return
        view = self.flow.current_view()
        agents = view.recipients_for(ticket)
        for agent in agents:
            try:
                rendered = view.render(
                    "bounce_alert",
                    ticket,
                    bounce={
                        "recipients": list(rcpts),
                        "status": status,
                        "diagnostic": reason,
                        "original_subject": ticket.subject,
                    },
                    agent=person(agent),
                )
            except TemplateError as exc:
                log.error("bounce_alert template failed ticket=%s error=%s", ticket_id, exc)
                return
            try:
                view.to_agent(conn, OutboundKind.BOUNCE_ALERT, ticket, agent, rendered, now=now)
            except ComposeError as exc:
                log.error("bounce_alert failed ticket=%s agent=%s: %s", ticket_id, agent.name, exc)
        alert = ev.DeliveryAlert(
            at=now,
            failed_kind=failed_kind,
            rcpts=tuple(rcpts),
            reason=reason,
            mailed=tuple(a.name for a in agents),
        )
        tickets.record(conn, ticket_id, alert)


class BounceInterceptor:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.alerts = DeliveryAlerts(flow)

    def _cited_ours(self, parsed: ParsedMessage) -> list[str]:
        ids = []
        if parsed.bounce is not None and parsed.bounce.original_message_id:
            ids.append(parsed.bounce.original_message_id)
        ids += [*parsed.in_reply_to, *reversed(parsed.references)]
        return list(dict.fromkeys(i for i in ids if i))

    def _ticket_from_token(self, parsed: ParsedMessage, *, return_path: bool = False) -> int | None:
        """The ticket a reply token in the addresses the report came to names;
        ``return_path``: only our envelope sender's token (agent 0)."""
        addresses = [a.email for a in parsed.recipients]
        addresses += [v.strip().strip("<>") for v in parsed.header_all("delivered-to")] + [
            v.strip().strip("<>") for v in parsed.header_all("x-original-to")
        ]
        for email in addresses:
            for base in self.flow.support_locals:
                raw = token_from_address(email, base)
                token = verify_reply_token(self.flow.config.secret, raw) if raw else None
                if token is not None and not (return_path and token.agent_id != 0):
                    return token.ticket_id
        return None

    def _place(
        self, session: Session, parsed: ParsedMessage
    ) -> tuple[Ticket | None, list[q.SentMail], str, str]:
        """(ticket, the outbox rows of the mail that bounced, its Message-ID, matched_by)."""
        conn = connection(session)
        for message_id in self._cited_ours(parsed):
            found = q.find_by_message_id(conn, message_id)
            signed = ticket_from_message_id(self.flow.config.secret, message_id)
            if found or signed is not None:
                ticket_id = next((r.ticket_id for r in found if r.ticket_id), signed)
                ticket = tickets.resolve(conn, ticket_id) if ticket_id is not None else None
                return ticket, found, message_id, "header"
        ticket_id = self._ticket_from_token(parsed)
        ticket = tickets.resolve(conn, ticket_id) if ticket_id is not None else None
        return ticket, [], "", "token"

    def intercept(self, session: Session, arrival: Arrival) -> Outcome | None:
        parsed, now, source = arrival.parsed, arrival.now, arrival.source
        if parsed.kind is not MessageKind.BOUNCE and parsed.bounce is None:
            return None
        conn = connection(session)
        ticket, rows, original, matched_by = self._place(session, parsed)
        if ticket is None:
            reason = "bounce that names no mail of ours"
            messages.quarantine_raw(conn, arrival.raw, source, reason=reason, now=now)
            log.warning("quarantined source=%s reason=%s", source.label, reason)
            return Outcome("quarantined", reason=reason)
        bounce = parsed.bounce
        status = bounce.status if bounce else ""
        diagnostic = bounce.diagnostic if bounce else ""
        permanent = bounce.permanent if bounce else True
        failed_rcpts = tuple(bounce.failed_recipients) if bounce else ()
        reason = f"bounce of <{original}>" if original else "bounce to our return path"
        row_id = messages.store_mail(
            conn,
            arrival,
            ticket_id=ticket.id,
            direction="in",
            matched_by=matched_by,
            reason=reason,
        )
        received = ev.BounceReceived(
            at=now,
            message=row_id,
            original=original,
            status=status,
            action=bounce.action if bounce else "",
            diagnostic=diagnostic,
            recipients=failed_rcpts,
            permanent=permanent,
        )
        tickets.record(conn, ticket.id, received)
        if permanent:
            failure = f"bounced: {status} {diagnostic}".strip()
            verp = self._ticket_from_token(parsed, return_path=True)
            for row in rows:
                if row.status == q.FAILED:
                    continue  # already failed and alerted: one alert per mail
                if row.ticket_id is None or verp != row.ticket_id:
                    # a real bounce goes to the mail's envelope sender, support+TOKEN@;
                    # the Message-ID alone is known to anyone who saw the mail
                    log.warning(
                        "bounce of <%s> not sent to its return path: recorded, mail not failed",
                        original,
                    )
                    continue
                q.mark_failed(conn, row.id, error=failure)
                self.alerts.alert(
                    conn,
                    ticket.id,
                    row.kind,
                    list(failed_rcpts) or list(row.rcpts),
                    failure,
                    now,
                    status=status,
                )
        log.info(
            "bounce ticket=%s original=%s status=%s permanent=%s",
            ticket.id,
            original,
            status,
            permanent,
        )
        return Outcome("stored", ticket.id, row_id, matched_by, f"bounce of <{original}>")
