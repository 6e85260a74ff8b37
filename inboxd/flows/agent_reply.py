"""Interceptor: an agent answered a notification; relay it, run its commands.

An agent reply is recognised ONLY when all of these hold, otherwise the mail
goes the normal way (as plain customer text, executing nothing):

1. it is addressed to ``support+TOKEN@...`` with a token whose HMAC verifies
   and that names an agent (notifications carry such a token; customers never
   get one);
2. the From address is exactly the agent the token was made for, and that
   agent is still in the rules;
3. where ``trusted_authserv_ids`` is configured, our receiving server's
   Authentication-Results shows DKIM or DMARC pass for the agent's domain;
4. it is a person's mail (not an out-of-office answering the notification).

Then the leading ``#commands`` are checked as a whole; with any error nothing
runs and nothing reaches the customer, and the agent gets the reasons by mail.
Otherwise the commands run, and (unless ``#note``) the agent's new text,
optionally after a ``#canned`` response, goes to the customer from the support
address under the agent's name, threaded under the customer's last mail.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from inboxd.core.authres import auth_passes
from inboxd.core.commands import CommandParse, parse_commands
from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.model import Address, Direction, MessageKind, ParsedMessage
from inboxd.core.rules.model import Agent
from inboxd.core.tokens import TicketToken, token_from_address, verify_reply_token
from inboxd.db import flow_queries as fq
from inboxd.db import repo
from inboxd.flows import ticket_commands
from inboxd.flows.mailflow import Flow, Handled, SourceLike, connection
from inboxd.flows.notify import notify_new_owner
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")


class AgentReplyInterceptor:
    def __init__(self, flow: Flow, *, trusted_authserv_ids: tuple[str, ...] = ()) -> None:
        self.flow = flow
        self.trusted = trusted_authserv_ids

    # --- is it an agent reply? ----------------------------------------------------------

    def _agent_token(self, parsed: ParsedMessage) -> TicketToken | None:
        bases = {a.partition("@")[0] for a in self.flow.support_addresses}
        for addr in parsed.recipients:
            for base in bases:
                raw = token_from_address(addr.email, base)
                token = verify_reply_token(self.flow.config.secret, raw) if raw else None
                if token is not None and token.agent_id != 0:
                    return token
        return None

    def identify(self, session: Session, parsed: ParsedMessage) -> tuple[TicketToken, Agent] | None:
        """(token, agent) when ``parsed`` is a genuine agent reply, else None (see module doc)."""
        token = self._agent_token(parsed)
        if token is None or parsed.from_ is None:
            return None
        conn = connection(session)
        bound = repo.agent_email_by_number(conn, token.agent_id)
        sender = parsed.from_.email.lower()
        if bound is None or bound.lower() != sender:
            log.warning(
                "agent token for agent=%s ticket=%s used by sender=%s: not an agent reply",
                bound,
                token.ticket_id,
                sender,
            )
            return None
        agent = self.flow.agent_by_email(sender)
        if agent is None:
            log.warning("token of %s who is no longer an agent: not an agent reply", sender)
            return None
        if self.trusted and not auth_passes(
            parsed.header_all("authentication-results"), self.trusted, parsed.from_.domain
        ):
            log.warning("agent reply from %s without trusted DKIM/DMARC pass: plain mail", sender)
            return None
        return token, agent

    def intercept(
        self,
        session: Session,
        parsed: ParsedMessage,
        raw: bytes,
        source: SourceLike,
        now: datetime,
    ) -> Handled | None:
        if parsed.kind is not MessageKind.NORMAL or parsed.bounce is not None:
            return None  # an OOF answering a notification joins the ticket as such
        found = self.identify(session, parsed)
        if found is None:
            return None
        token, agent = found
        conn = connection(session)
        ticket = self.flow.resolve_ticket(conn, token.ticket_id)
        if ticket is None:
            return None
        commands = parse_commands(parsed.new_text)
        errors = list(commands.errors)
        if not errors:
            errors = ticket_commands.check(conn, self.flow, ticket, commands.commands)
        text = commands.remaining_text.strip()
        relay = not errors and not commands.is_note and (text or commands.first("canned"))
        direction = Direction.OUTBOUND if relay else Direction.NOTE
        row_id = self.flow.record_message(
            session,
            ticket_id=ticket["id"],
            parsed=parsed,
            raw=raw,
            source=source,
            direction=direction.value,
            matched_by="token",
            reason=f"agent reply by {agent.name}",
            now=now,
            new_text=text,
        )
        actor = f"agent:{agent.name}"
        if errors:
            repo.add_event(conn, ticket["id"], now, actor, "commands_rejected", {"errors": errors})
            self._command_result(session, ticket, agent, [], errors, parsed, now)
            return self._handled(ticket, row_id, agent, "commands rejected")

        results = ticket_commands.execute(conn, self.flow, ticket, agent, commands.commands, now)
        before, ticket = ticket, self.flow.resolve_ticket(conn, ticket["id"]) or ticket
        if ticket["id"] == before["id"]:  # not after a #merge: the target keeps its owner
            notify_new_owner(self.flow, session, before, ticket, agent, now)
        if commands.is_note:
            repo.add_event(conn, ticket["id"], now, actor, "note", {"message": row_id})
            self._note_ack(session, ticket, agent, parsed, now)
        elif relay:
            self._relay(session, ticket, agent, commands, text, parsed, row_id, now)
        elif results:
            # commands only, nothing for the customer: confirm what was done
            self._command_result(session, ticket, agent, results, [], parsed, now)
        return self._handled(ticket, row_id, agent, "agent reply")

    def _handled(self, ticket: dict[str, Any], row_id: int, agent: Agent, what: str) -> Handled:
        return Handled(
            "stored", int(ticket["id"]), row_id, "token", f"{what} by agent {agent.name}"
        )

    # --- the relay ----------------------------------------------------------------------

    def _relay(
        self,
        session: Session,
        ticket: dict[str, Any],
        agent: Agent,
        commands: CommandParse,
        text: str,
        parsed: ParsedMessage,
        row_id: int,
        now: datetime,
    ) -> None:
        conn = connection(session)
        ticket_id = int(ticket["id"])
        canned = commands.first("canned")
        people = self._customers(conn, ticket_id)
        if not people:
            repo.add_event(
                conn,
                ticket_id,
                now,
                f"agent:{agent.name}",
                "relay_skipped",
                {"reason": "no customer address on the ticket"},
            )
            return
        customer = {"name": people[0].name, "email": people[0].email}
        agent_ctx = {"name": agent.display_name or agent.name, "email": agent.email}
        body = text
        if canned is not None:
            prefix = self.flow.config.renderer().render_canned(
                canned.arg,
                helpdesk={
                    "name": self.flow.config.helpdesk_name,
                    "address": self.flow.support_address(ticket.get("mailbox") or ""),
                },
                ticket=self.flow.ticket_context(ticket),
                customer=customer,
                agent=agent_ctx,
            )
            body = prefix.rstrip("\n") + ("\n\n" + text if text else "")
        rendered = self.flow.render("reply", ticket, text=body, agent=agent_ctx, customer=customer)
        thread = self.flow.thread_info(conn, ticket_id)
        references = tuple(r for r in (thread.root_id, thread.last_customer_id) if r)
        mailbox = ticket.get("mailbox") or ""
        try:
            message_id = self.flow.queue(
                session,
                kind=OutboundKind.REPLY,
                ticket=ticket,
                rendered=rendered,
                from_addr=Address(self.flow.support_address(mailbox), agent_ctx["name"]),
                to=people[:1],
                cc=tuple(people[1:]),
                now=now,
                mail_from=self.flow.return_path(mailbox, ticket_id),
                in_reply_to=thread.last_customer_id,
                references=references,
                attachments=parsed.attachments,
                thread=thread,
            )
        except ComposeError as exc:
            reason = f"your reply could not be addressed to the customer: {exc}"
            repo.add_event(
                conn, ticket_id, now, f"agent:{agent.name}", "relay_failed", {"reason": reason}
            )
            log.warning("relay failed ticket=%s agent=%s error=%s", ticket_id, agent.name, exc)
            self._command_result(session, ticket, agent, [], [reason], parsed, now)
            return
        first = not fq.has_event(conn, ticket_id, "agent_reply")
        repo.add_event(
            conn,
            ticket_id,
            now,
            f"agent:{agent.name}",
            "agent_reply",
            {
                "message": row_id,
                "message_id": message_id,
                "to": [p.email for p in people],
                "first_response": first,
                "canned": canned.arg if canned else None,
            },
        )
        if ticket["status"] == "new" and not any(
            c.name in ticket_commands.STATUS_OF for c in commands.commands
        ):
            repo.update_ticket(conn, ticket_id, {"status": "open", "status_changed_at": now})

    def _customers(self, conn: Any, ticket_id: int) -> tuple[Address, ...]:
        """Requester first, then the customer-side Cc participants; never us or an agent."""
        ours = self.flow.support_addresses
        out: dict[str, Address] = {}
        people = fq.customer_participants(conn, ticket_id)
        people.sort(key=lambda p: p[2] != "requester")
        for email, name, _ in people:
            email = email.lower()
            base = f"{email.rpartition('@')[0].split('+', 1)[0]}@{email.rpartition('@')[2]}"
            if base in ours or self.flow.agent_by_email(email) is not None:
                continue
            out.setdefault(email, Address(email, name))
        return tuple(out.values())

    # --- answers to the agent -------------------------------------------------------------

    def _to_agent(
        self,
        session: Session,
        kind: OutboundKind,
        template: str,
        ticket: dict[str, Any],
        agent: Agent,
        parsed: ParsedMessage,
        now: datetime,
        **ctx: Any,
    ) -> None:
        conn = connection(session)
        mailbox = ticket.get("mailbox") or ""
        agent_ctx = {"name": agent.display_name or agent.name, "email": agent.email}
        try:
            rendered = self.flow.render(template, ticket, agent=agent_ctx, **ctx)
            reply_to = self.flow.agent_address(conn, mailbox, int(ticket["id"]), agent)
            self.flow.queue(
                session,
                kind=kind,
                ticket=ticket,
                rendered=rendered,
                from_addr=Address(reply_to, self.flow.config.helpdesk_name),
                reply_to=Address(reply_to),
                to=(Address(agent.email, agent_ctx["name"]),),
                now=now,
                mail_from="",  # automatic answer to the agent: nothing should bounce into a loop
                in_reply_to=parsed.message_id,
                references=(*parsed.references, parsed.message_id),
            )
        except (TemplateError, ComposeError) as exc:
            log.error("%s to the agent failed ticket=%s error=%s", template, ticket["id"], exc)

    def _command_result(
        self,
        session: Session,
        ticket: dict[str, Any],
        agent: Agent,
        results: list[ticket_commands.CommandResult],
        errors: list[str],
        parsed: ParsedMessage,
        now: datetime,
    ) -> None:
        self._to_agent(
            session,
            OutboundKind.COMMAND_RESULT,
            "command_result",
            ticket,
            agent,
            parsed,
            now,
            results=[r.as_context() for r in results],
            errors=errors,
        )

    def _note_ack(
        self,
        session: Session,
        ticket: dict[str, Any],
        agent: Agent,
        parsed: ParsedMessage,
        now: datetime,
    ) -> None:
        self._to_agent(session, OutboundKind.NOTE_ACK, "note_ack", ticket, agent, parsed, now)
