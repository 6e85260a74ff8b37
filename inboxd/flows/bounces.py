"""Bounces: attach them to the ticket whose mail bounced; alert once per failed mail.

A bounce (DSN or another non-delivery report, as ``core.parse`` classifies it)
never opens a ticket, never gets an acknowledgement and never notifies: the
interceptor takes it before threading. It finds the mail that bounced by the
original Message-ID the report names (our outbox, or the signed ticket number
in our Message-IDs), else by the VERP-style token in the address it was sent to
(our envelope sender is ``support+TOKEN@...``). A permanent bounce marks that
outbox mail failed and raises one alert; a second report about the same mail
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
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.model import Address, MessageKind, ParsedMessage
from inboxd.core.tokens import ticket_from_message_id, token_from_address, verify_reply_token
from inboxd.db import flow_queries as fq
from inboxd.db import outbox_queries as q
from inboxd.db import repo
from inboxd.flows.mailflow import DB, Flow, Handled, SourceLike, connection
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")

CUSTOMER_KINDS = frozenset({OutboundKind.ACK.value, OutboundKind.REPLY.value})


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
        ticket = fq.ticket(conn, ticket_id)
        if ticket is None:
            return
        if failed_kind not in CUSTOMER_KINDS:
            log.error(
                "mail to agent failed ticket=%s kind=%s rcpts=%s reason=%s",
                ticket_id,
                failed_kind,
                ",".join(rcpts),
                reason,
            )
            repo.add_event(
                conn,
                ticket_id,
                now,
                "system",
                "alert",
                {
                    "failed_kind": failed_kind,
                    "rcpts": list(rcpts),
                    "reason": reason,
                    "mailed": False,
                },
            )
            return
        agents = self.flow.recipients_for(ticket)
        mailbox = ticket.get("mailbox") or ""
        for agent in agents:
            try:
                rendered = self.flow.render(
                    "bounce_alert",
                    ticket,
                    bounce={
                        "recipients": list(rcpts),
                        "status": status,
                        "diagnostic": reason,
                        "original_subject": ticket["subject"],
                    },
                    agent={"name": agent.display_name or agent.name, "email": agent.email},
                )
            except TemplateError as exc:
                log.error("bounce_alert template failed ticket=%s error=%s", ticket_id, exc)
                return
            reply_to = self.flow.agent_address(conn, mailbox, ticket_id, agent)
            try:
                self.flow.queue(
                    conn,
                    kind=OutboundKind.BOUNCE_ALERT,
                    ticket=ticket,
                    rendered=rendered,
                    from_addr=Address(reply_to, self.flow.config.helpdesk_name),
                    reply_to=Address(reply_to),
                    to=(Address(agent.email, agent.display_name or agent.name),),
                    now=now,
                    mail_from="",  # an alert about a bounce must not bounce into another one
                )
            except ComposeError as exc:
                log.error("bounce_alert failed ticket=%s agent=%s: %s", ticket_id, agent.name, exc)
        repo.add_event(
            conn,
            ticket_id,
            now,
            "system",
            "alert",
            {
                "failed_kind": failed_kind,
                "rcpts": list(rcpts),
                "reason": reason,
                "mailed": [a.name for a in agents],
            },
        )


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

    def _ticket_from_token(self, parsed: ParsedMessage) -> int | None:
        bases = {a.partition("@")[0] for a in self.flow.support_addresses}
        addresses = [a.email for a in parsed.recipients]
        addresses += [v.strip().strip("<>") for v in parsed.header_all("delivered-to")] + [
            v.strip().strip("<>") for v in parsed.header_all("x-original-to")
        ]
        for email in addresses:
            for base in bases:
                raw = token_from_address(email, base)
                token = verify_reply_token(self.flow.config.secret, raw) if raw else None
                if token is not None:
                    return token.ticket_id
        return None

    def intercept(
        self,
        session: Session,
        parsed: ParsedMessage,
        raw: bytes,
        source: SourceLike,
        now: datetime,
    ) -> Handled | None:
        if parsed.kind is not MessageKind.BOUNCE and parsed.bounce is None:
            return None
        conn = connection(session)
        cited = self._cited_ours(parsed)
        rows: list[dict[str, Any]] = []
        ticket_id: int | None = None
        original = ""
        for message_id in cited:
            found = q.find_by_message_id(conn, message_id)
            signed = ticket_from_message_id(self.flow.config.secret, message_id)
            if found or signed is not None:
                rows, original = found, message_id
                ticket_id = next((r["ticket_id"] for r in found if r["ticket_id"]), signed)
                break
        matched_by = "header"
        if ticket_id is None:
            ticket_id = self._ticket_from_token(parsed)
            matched_by = "token"
        ticket = self.flow.resolve_ticket(conn, ticket_id) if ticket_id is not None else None
        if ticket is None:
            return self.flow.quarantine(
                session,
                raw=raw,
                source=source,
                reason="bounce that names no mail of ours",
                now=now,
                uid=getattr(source, "uid", None),
            )
        bounce = parsed.bounce
        status = bounce.status if bounce else ""
        diagnostic = bounce.diagnostic if bounce else ""
        permanent = bounce.permanent if bounce else True
        failed_rcpts = list(bounce.failed_recipients) if bounce else []
        row_id = self.flow.record_message(
            session,
            ticket_id=int(ticket["id"]),
            parsed=parsed,
            raw=raw,
            source=source,
            direction="in",
            matched_by=matched_by,
            reason=f"bounce of <{original}>" if original else "bounce to our return path",
            now=now,
        )
        repo.add_event(
            conn,
            int(ticket["id"]),
            now,
            "system",
            "bounce",
            {
                "message": row_id,
                "original": original,
                "status": status,
                "action": bounce.action if bounce else "",
                "diagnostic": diagnostic,
                "recipients": failed_rcpts,
                "permanent": permanent,
            },
        )
        if permanent:
            reason = f"bounced: {status} {diagnostic}".strip()
            for row in rows:
                if row["status"] == q.FAILED:
                    continue  # already failed and alerted: one alert per mail
                q.mark_failed(conn, int(row["id"]), error=reason)
                self.alerts.alert(
                    conn,
                    int(ticket["id"]),
                    str(row["kind"]),
                    failed_rcpts or list(row["rcpts"]),
                    reason,
                    now,
                    status=status,
                )
        log.info(
            "bounce ticket=%s original=%s status=%s permanent=%s",
            ticket["id"],
            original,
            status,
            permanent,
        )
        return Handled("stored", int(ticket["id"]), row_id, matched_by, f"bounce of <{original}>")
