"""Interceptor: an agent answered a notification; relay it, run its commands.

An agent reply is recognised ONLY when all of these hold, otherwise the mail
goes the normal way (as plain customer text, executing nothing):

1. it is addressed to ``support+TOKEN@...`` with a token whose HMAC verifies
   and that names an agent (notifications carry such a token; customers never
   get one);
2. the From address is exactly the agent the token was made for;
3. where ``trusted_authserv_ids`` is configured, our receiving server's
   Authentication-Results shows DKIM or DMARC pass for the agent's domain;
4. its In-Reply-To/References cite a Message-ID we sent for the token's ticket
   (or for a ticket merged into it): a token leaks with any copied notification,
   and must not carry commands or text into another ticket's thread;
5. it is a person's mail (not an out-of-office answering the notification);
6. that agent is still in the rules.

A valid agent token that fails 2-4 leaves an ``agent_token_refused`` event on
its ticket, with the reason and the tickets the mail cited. One that fails only
6 (the agent left the rules, or the daemon runs on rules without agents) is
never the customer's text: it is kept as a note on the ticket, runs nothing,
and the sender hears why.

Then the leading ``#commands`` are checked as a whole; with any error nothing
runs and nothing reaches the customer, and the agent gets the reasons (and
the commands' help) by mail. Otherwise the commands run through the ticket
domain, and (unless ``#note``) the agent's new text, optionally after a
``#canned`` response, goes to the customer from the support address under the
agent's name, threaded under the customer's last mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from inboxd.core.authres import auth_passes
from inboxd.core.commands import (
    CommandContext,
    CommandParse,
    CommandResult,
    help_lines,
    parse_commands,
    run,
)
from inboxd.core.compose import ComposeError, OutboundKind, kind_of
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr
from inboxd.core.inbound import Arrival, Outcome
from inboxd.core.model import Address, Direction, MessageKind, ParsedMessage
from inboxd.core.rules.model import Agent
from inboxd.core.tokens import (
    TicketToken,
    citation_refusal,
    cited_tickets,
    token_from_address,
    verify_reply_token,
)
from inboxd.db import agents, messages, tickets
from inboxd.flows.mailflow import Flow, FlowView, connection, person, ticket_context
from inboxd.flows.notify import notify_new_owner
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")


@dataclass(frozen=True, slots=True)
class NotListed:
    """A genuine answer to an agent's notification (checks 2-4 hold) from an address
    the current rules do not list: the agent as the token knew them, and why."""

    agent: Agent
    reason: str


class AgentReplyInterceptor:
    def __init__(self, flow: Flow, *, trusted_authserv_ids: tuple[str, ...] = ()) -> None:
        self.flow = flow
        self.trusted = trusted_authserv_ids

    # --- is it an agent reply? ----------------------------------------------------------

    def _agent_token(self, parsed: ParsedMessage) -> TicketToken | None:
        for addr in parsed.recipients:
            for base in self.flow.support_locals:
                raw = token_from_address(addr.email, base)
                token = verify_reply_token(self.flow.config.secret, raw) if raw else None
                if token is not None and token.agent_id != 0:
                    return token
        return None

    def identify(
        self, session: Session, view: FlowView, parsed: ParsedMessage, now: datetime
    ) -> tuple[TicketToken, Agent | NotListed] | None:
        """(token, agent) when ``parsed`` is a genuine agent reply, else None (see module
        doc); a valid agent token refused is recorded on its ticket, with the reason."""
        token = self._agent_token(parsed)
        if token is None:
            return None
        found = self._vet(session, view, parsed, token)
        if isinstance(found, str):
            self._refuse(session, parsed, token, found, now)
            return None
        return token, found

    def _vet(
        self, session: Session, view: FlowView, parsed: ParsedMessage, token: TicketToken
    ) -> Agent | NotListed | str:
        """The agent a mail to a valid agent token comes from, or why it is not theirs.
        Membership is checked last: a sender who passes the rest is the token's agent,
        and their mail must not fall through to the customer's side unnoticed."""
        if parsed.from_ is None:
            return "no From address"
        bound = agents.agent_email_by_number(connection(session), token.agent_id)
        sender = parsed.from_.email.lower()
        if bound is None or bound.lower() != sender:
            return f"the token was made for {bound or 'an unknown agent'}, not for {sender}"
        if self.trusted and not auth_passes(
            parsed.header_all("authentication-results"), self.trusted, parsed.from_.domain
        ):
            return "no DKIM/DMARC pass from a trusted receiving server"
        refusal = self._citation_refusal(session, parsed, token)
        if refusal is not None:
            return refusal
        agent = view.agent_by_email(sender)
        if agent is not None:
            return agent
        reason = f"{sender} is not an agent in the current rules"
        if view.rules is None or not view.rules.agents:
            reason += " (they list no agents at all: is the rules directory empty?)"
        former = Agent(sender.partition("@")[0], sender, parsed.from_.name)
        return NotListed(former, reason)

    def _cited(self, parsed: ParsedMessage) -> tuple[int, ...]:
        return cited_tickets(self.flow.config.secret, (*parsed.in_reply_to, *parsed.references))

    def _citation_refusal(
        self, session: Session, parsed: ParsedMessage, token: TicketToken
    ) -> str | None:
        """Whether the mail answers our mail of the token's ticket (core decides;
        here the merges are looked up)."""
        cited = self._cited(parsed)
        survivors: dict[int, int] = {}
        for ticket_id in {token.ticket_id, *cited}:
            found = tickets.resolve(session, ticket_id)
            if found is not None:
                survivors[ticket_id] = found.id
        return citation_refusal(
            token.ticket_id,
            references=(*parsed.in_reply_to, *parsed.references),
            cited=cited,
            survivors=survivors,
        )

    def _refuse(
        self,
        session: Session,
        parsed: ParsedMessage,
        token: TicketToken,
        reason: str,
        now: datetime,
    ) -> None:
        """Log and record why the token's mail goes on as plain mail."""
        sender = parsed.from_.email.lower() if parsed.from_ is not None else ""
        cited = self._cited(parsed)
        log.warning(
            "agent token for ticket=%s agent=%s from sender=%s refused: %s; cited tickets %s",
            token.ticket_id,
            token.agent_id,
            sender,
            reason,
            list(cited),
        )
        ticket = tickets.resolve(session, token.ticket_id)
        if ticket is None:
            return
        refused = ev.AgentTokenRefused(at=now, reason=reason, sender=sender, cited=cited)
        tickets.record(session, ticket.id, refused)

    def intercept(self, session: Session, arrival: Arrival) -> Outcome | None:
        parsed, now = arrival.parsed, arrival.now
        if parsed.kind is not MessageKind.NORMAL or parsed.bounce is not None:
            return None  # an OOF answering a notification joins the ticket as such
        view = self.flow.view(arrival.rules)
        found = self.identify(session, view, parsed, now)
        if found is None:
            return None
        token, who = found
        ticket = tickets.resolve(session, token.ticket_id)
        if ticket is None:
            return None
        if isinstance(who, NotListed):
            return self._not_listed(session, view, arrival, ticket, who)
        agent = who
        if ticket.id != token.ticket_id:
            return self._merged_token(session, view, arrival, token, ticket, agent)
        commands = parse_commands(parsed.new_text)
        ctx = self._context(session, view, commands, ev.agent(agent.name), now)
        errors = list(commands.errors) or run.check(ctx, ticket, commands.commands)
        text = commands.remaining_text.strip()
        relay = not errors and not commands.is_note and bool(text or commands.first("canned"))
        direction = Direction.OUTBOUND if relay else Direction.NOTE
        row_id = messages.store_mail(
            session,
            arrival,
            ticket_id=ticket.id,
            direction=direction.value,
            matched_by="token",
            reason=f"agent reply by {agent.name}",
            new_text=text,
        )
        actor = ev.agent(agent.name)
        if errors:
            rejected = ev.CommandsRejected(at=now, actor=actor, errors=tuple(errors))
            tickets.record(session, ticket.id, rejected)
            self._command_result(session, view, ticket, agent, [], errors, parsed, now)
            return self._handled(ticket, row_id, agent, "commands rejected")

        before = ticket
        ticket, results = self._apply(session, ctx, ticket, commands, actor, now)
        if commands.is_note:
            change = tr.note(ticket, actor=actor, now=now, message=row_id)
            tickets.save(session, change)
            ticket = change.after
            self._to_agent(session, view, OutboundKind.NOTE_ACK, ticket, agent, parsed, now)
        elif relay:
            ticket = self._relay(
                session, view, ticket, before, agent, commands, text, parsed, row_id, now
            )
        elif results:
            # commands only, nothing for the customer: confirm what was done
            self._command_result(session, view, ticket, agent, results, [], parsed, now)
        if ticket.id == before.id:  # not after a #merge: the target keeps its owner
            # last, so the hand-over shows the ticket as this whole mail left it
            # (a relayed answer opens a new ticket)
            notify_new_owner(view, session, before, ticket, agent, now)
        return self._handled(ticket, row_id, agent, "agent reply")

    def _merged_token(
        self,
        session: Session,
        view: FlowView,
        arrival: Arrival,
        token: TicketToken,
        survivor: Ticket,
        agent: Agent,
    ) -> Outcome:
        """A reply to a notification of a ticket merged away: it runs no command and
        relays nothing (the token was made for a ticket and an audience that are gone);
        kept as a note on the surviving ticket, with the reason, and the agent is told."""
        parsed, now = arrival.parsed, arrival.now
        reason = (
            f"ticket #{token.ticket_id} was merged into #{survivor.id}: its reply address "
            f"no longer acts; answer from a notification of #{survivor.id}"
        )
        row_id = self._keep_refused(
            session,
            arrival,
            survivor.id,
            agent.email,
            f"agent reply by {agent.name} to merged ticket #{token.ticket_id}",
            reason,
        )
        log.warning(
            "agent token of merged ticket=%s agent=%s: %s", token.ticket_id, agent.name, reason
        )
        self._command_result(session, view, survivor, agent, [], [reason], parsed, now)
        return self._handled(survivor, row_id, agent, "merged token")

    def _keep_refused(
        self,
        session: Session,
        arrival: Arrival,
        ticket_id: int,
        sender: str,
        note: str,
        reason: str,
    ) -> int:
        """An answer whose token acts no more: kept as a note on ``ticket_id`` (never the
        customer's text) with an ``agent_token_refused`` event; its row id."""
        parsed = arrival.parsed
        row_id = messages.store_mail(
            session,
            arrival,
            ticket_id=ticket_id,
            direction=Direction.NOTE.value,
            matched_by="token",
            reason=note,
            new_text=parsed.new_text,
        )
        refused = ev.AgentTokenRefused(
            at=arrival.now, reason=reason, sender=sender, cited=self._cited(parsed)
        )
        tickets.record(session, ticket_id, refused)
        return row_id

    def _not_listed(
        self,
        session: Session,
        view: FlowView,
        arrival: Arrival,
        ticket: Ticket,
        who: NotListed,
    ) -> Outcome:
        """An answer to our notification from someone the rules no longer list: kept as
        a note (never the customer's text), nothing run or relayed, and the sender told
        at the address the token was made for (where the notification went)."""
        parsed, now = arrival.parsed, arrival.now
        reason = (
            f"{who.reason}; your mail is kept as a note on ticket #{ticket.id}: "
            "answer again once you are back in the rules"
        )
        row_id = self._keep_refused(
            session,
            arrival,
            ticket.id,
            who.agent.email,
            f"answer by {who.agent.email}, not an agent in the current rules",
            who.reason,
        )
        log.error("agent token ticket=%s sender=%s: %s", ticket.id, who.agent.email, who.reason)
        self._to_agent(  # no commands' help: correcting them would not help
            session,
            view,
            OutboundKind.COMMAND_RESULT,
            ticket,
            who.agent,
            parsed,
            now,
            results=[],
            errors=[reason],
            commands_help=[],
        )
        return Outcome(
            "stored", ticket.id, row_id, "token", f"kept as a note: {who.agent.email} not listed"
        )

    def _context(
        self,
        session: Session,
        view: FlowView,
        commands: CommandParse,
        actor: str,
        now: datetime,
    ) -> CommandContext:
        """What the commands' checks consult: rules, saved responses, tickets they name."""
        wanted = run.ticket_ids(commands.commands)
        return CommandContext(
            actor=actor,
            now=now,
            rules=view.rules,
            canned=tuple(view.templates.canned_names()),
            tickets={i: tickets.resolve(session, i) for i in wanted},
        )

    def _apply(
        self,
        session: Session,
        ctx: CommandContext,
        ticket: Ticket,
        commands: CommandParse,
        actor: str,
        now: datetime,
    ) -> tuple[Ticket, tuple[CommandResult, ...]]:
        """Run checked commands: the ticket the mail continues on (a merge's target)
        and a result per command."""
        outcome = run.apply(ctx, ticket, commands.commands)
        tickets.save(session, outcome.change)
        for other in outcome.others:
            tickets.save(session, other)
        after = outcome.change.after
        merged_into = outcome.merged_into
        if merged_into is not None:
            tickets.copy_customers(session, ticket.id, merged_into)
            after = tickets.resolve(session, merged_into) or after
        return after, outcome.results

    def _handled(self, ticket: Ticket, row_id: int, agent: Agent, what: str) -> Outcome:
        return Outcome("stored", ticket.id, row_id, "token", f"{what} by agent {agent.name}")

    # --- the relay ----------------------------------------------------------------------

    def _relay(
        self,
        session: Session,
        view: FlowView,
        ticket: Ticket,
        answered: Ticket,
        agent: Agent,
        commands: CommandParse,
        text: str,
        parsed: ParsedMessage,
        row_id: int,
        now: datetime,
    ) -> Ticket:
        """Send the agent's text on ``ticket`` to the customers of ``answered``, the
        ticket whose notification the agent answered (the same one, unless this mail
        merged it into ``ticket``: recipients stay per original requester), threaded
        under their last mail; the ticket after it."""
        actor = ev.agent(agent.name)
        canned = commands.first("canned")
        people = self._customers(session, view, answered.id)
        if not people:
            skipped = ev.RelaySkipped(
                at=now, actor=actor, reason="no customer address on the ticket"
            )
            tickets.record(session, ticket.id, skipped)
            return ticket
        customer = {"name": people[0].name, "email": people[0].email}
        agent_ctx = person(agent)
        body = text
        if canned is not None:
            prefix = view.templates.render_canned(
                canned.arg,
                helpdesk=view.helpdesk(ticket),
                ticket=ticket_context(ticket),
                customer=customer,
                agent=agent_ctx,
            )
            body = prefix.rstrip("\n") + ("\n\n" + text if text else "")
        rendered = view.render("reply", ticket, text=body, agent=agent_ctx, customer=customer)
        thread = self.flow.thread_info(session, answered)
        try:
            message_id = view.to_customer(
                session,
                OutboundKind.REPLY,
                ticket,
                rendered,
                to=people[:1],
                cc=tuple(people[1:]),
                now=now,
                sender_name=agent_ctx["name"],
                in_reply_to=thread.last_customer_id,
                references=thread.references,
                attachments=parsed.attachments,
                thread=thread,
            )
        except ComposeError as exc:
            reason = f"your reply could not be addressed to the customer: {exc}"
            tickets.record(session, ticket.id, ev.RelayFailed(at=now, actor=actor, reason=reason))
            log.warning("relay failed ticket=%s agent=%s error=%s", ticket.id, agent.name, exc)
            self._command_result(session, view, ticket, agent, [], [reason], parsed, now)
            return ticket
        change = tr.agent_replied(
            ticket,
            actor=actor,
            now=now,
            message=row_id,
            message_id=message_id,
            to=[p.email for p in people],
            canned=canned.arg if canned else None,
        )
        tickets.save(session, change)
        return change.after

    def _customers(self, session: Session, view: FlowView, ticket_id: int) -> tuple[Address, ...]:
        """Requester first, then the customer-side Cc participants; never us or an agent."""
        ours = self.flow.support_addresses
        out: dict[str, Address] = {}
        people = tickets.customer_participants(session, ticket_id)
        people.sort(key=lambda p: p.role != "requester")
        for email, name, _ in people:
            email = email.lower()
            base = f"{email.rpartition('@')[0].split('+', 1)[0]}@{email.rpartition('@')[2]}"
            if base in ours or view.agent_by_email(email) is not None:
                continue
            out.setdefault(email, Address(email, name))
        return tuple(out.values())

    # --- answers to the agent -------------------------------------------------------------

    def _to_agent(
        self,
        session: Session,
        view: FlowView,
        kind: OutboundKind,
        ticket: Ticket,
        agent: Agent,
        parsed: ParsedMessage,
        now: datetime,
        **ctx: Any,
    ) -> None:
        template = kind_of(kind).template
        try:
            rendered = view.render(template, ticket, agent=person(agent), **ctx)
            view.to_agent(
                session,
                kind,
                ticket,
                agent,
                rendered,
                now=now,
                in_reply_to=parsed.message_id,
                references=(*parsed.references, parsed.message_id),
            )
        except (TemplateError, ComposeError) as exc:
            log.error("%s to the agent failed ticket=%s error=%s", template, ticket.id, exc)

    def _command_result(
        self,
        session: Session,
        view: FlowView,
        ticket: Ticket,
        agent: Agent,
        results: Sequence[CommandResult],
        errors: list[str],
        parsed: ParsedMessage,
        now: datetime,
    ) -> None:
        self._to_agent(
            session,
            view,
            OutboundKind.COMMAND_RESULT,
            ticket,
            agent,
            parsed,
            now,
            results=[r.as_context() for r in results],
            errors=errors,
            commands_help=help_lines() if errors else [],
        )
