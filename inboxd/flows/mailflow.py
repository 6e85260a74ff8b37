"""What every flow shares: identity, addresses, threading, one snapshot per mail, queueing.

The flows (acknowledgement and notification reactor, agent-reply, bounce and
Sent-folder interceptors, delivery alerts) run inside the ingest transaction
and only write rows: a rendered mail goes into the outbox in the same
transaction as the ticket change that caused it, and the drain sends it later.

``Flow`` holds the configuration and what needs no rules or templates (our
addresses, Message-IDs, subjects, the outbox). ``Flow.view(rules)`` is the
snapshot one mail is handled with: the rule set the pipeline read for it and
the template set current when the flow began, so a reload in the middle of a
mail never mixes two sets. The builders ``to_customer`` and ``to_agent`` carry
the addressing policy of each audience; the kind table (``core.compose.KINDS``)
carries the rest (template, Auto-Submitted, return path).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.compose import (
    OutboundKind,
    OutboundMail,
    check_addressing,
    envelope_address,
    kind_of,
)
from inboxd.core.desk import Ticket
from inboxd.core.inbound import StoredMail
from inboxd.core.model import Address, Attachment
from inboxd.core.queued import AttachmentRef, Letter, QueuedMail, encode
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import Agent
from inboxd.core.subject import strip_prefixes, strip_ticket_tag
from inboxd.core.threadindex import thread_index_in_headers
from inboxd.core.tokens import make_message_id, make_reply_token
from inboxd.db import agents, behind, messages
from inboxd.db import outbox_queries as q
from inboxd.flows.render import Rendered, TemplateRenderer

log = logging.getLogger("inboxd.flow")

DB = Session | Connection


def connection(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


@dataclass(frozen=True)
class FlowConfig:
    secret: bytes
    domain: str  # right side of our Message-IDs
    mailbox_addresses: Mapping[str, str]  # mailbox name -> support address
    renderer: Callable[[], TemplateRenderer]  # the current set (reloadable)
    rules: Callable[[], RuleSet | None]  # the current set, for flows no mail started
    helpdesk_name: str = "Support"
    tag_format: str = "[#{id}]"
    acknowledge: bool = True
    ack_per_sender_per_hour: int = 3
    sent_folders: Mapping[str, str] = field(default_factory=dict)  # mailbox -> folder
    max_notify_attachment_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """How a ticket's mails thread: root id and time, the customer's Outlook root."""

    root_id: str
    started: datetime | None
    root_thread_index: str
    last_customer_id: str

    @property
    def references(self) -> tuple[str, ...]:
        """What our answer on the ticket cites: its first mail and the customer's last."""
        return tuple(r for r in (self.root_id, self.last_customer_id) if r)


def person(agent: Agent) -> dict[str, str]:
    """An agent as templates see it."""
    return {"name": agent.display_name or agent.name, "email": agent.email}


class Flow:
    def __init__(self, config: FlowConfig) -> None:
        self.config = config

    def view(self, rules: RuleSet | None) -> FlowView:
        """The snapshot one mail is handled with (see the module docstring)."""
        return FlowView(self, rules, self.config.renderer())

    def current_view(self) -> FlowView:
        """A snapshot of the current rules, for work no mail started (a failed delivery)."""
        return self.view(self.config.rules())

    # --- identity -----------------------------------------------------------------------

    def support_address(self, mailbox: str) -> str:
        """The address a ticket's mail goes out from: its mailbox's, else the first."""
        addresses = self.config.mailbox_addresses
        if mailbox in addresses:
            return addresses[mailbox]
        if addresses:
            return next(iter(addresses.values()))
        return f"support@{self.config.domain}"

    @property
    def support_addresses(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.config.mailbox_addresses.values())

    @property
    def support_locals(self) -> frozenset[str]:
        return frozenset(a.partition("@")[0] for a in self.support_addresses)

    def plus_address(self, address: str, token: str) -> str:
        local, _, domain = address.rpartition("@")
        return f"{local}+{token}@{domain}"

    def agent_address(self, db: DB, mailbox: str, ticket_id: int, agent: Agent) -> str:
        """``support+TOKEN@domain`` with TOKEN bound to this ticket and this agent."""
        number = agents.agent_number(connection(db), agent.email, agent.display_name or agent.name)
        token = make_reply_token(self.config.secret, ticket_id, number)
        return self.plus_address(self.support_address(mailbox), token)

    def return_path(self, mailbox: str, ticket_id: int | None) -> str:
        """Envelope sender: a bounce to it names the ticket (VERP-style, agent 0)."""
        address = self.support_address(mailbox)
        if ticket_id is None:
            return address
        return self.plus_address(address, make_reply_token(self.config.secret, ticket_id, 0))

    def new_message_id(self, ticket_id: int | None) -> str:
        return make_message_id(
            self.config.secret, ticket_id or 0, uuid.uuid4().hex[:20], self.config.domain
        )

    def topic(self, subject: str) -> str:
        """Outlook's Thread-Topic: the subject without prefixes and ticket tags."""
        return " ".join(strip_prefixes(" ".join(strip_ticket_tag(subject).split())).split())[:200]

    # --- threading ----------------------------------------------------------------------

    def thread_info(self, db: DB, ticket: Ticket) -> ThreadInfo:
        first = messages.first_message_head(db, ticket.id)
        last = messages.last_customer_message(db, ticket.id)
        return ThreadInfo(
            root_id=first[0] if first else "",
            started=ticket.created_at,
            root_thread_index=thread_index_in_headers(first[1]) if first else "",
            last_customer_id=last.message_id if last else "",
        )

    def thread_of_stored(self, db: DB, mail: StoredMail) -> ThreadInfo:
        """``thread_info`` of the ticket a customer's mail was just stored on: that mail
        is its newest customer mail, and the first when it opened the ticket, so at
        most the first is read."""
        # an ingest batch remembers each ticket's root: its later mail need not read it
        roots = behind.memo("thread_roots")
        root = roots.get(mail.ticket.id) if roots is not None else None
        if root is None:
            if mail.new_ticket:
                root_id, head = mail.parsed.message_id, mail.arrival.raw[: messages.HEAD_BYTES]
            else:
                first = messages.first_message_head(db, mail.ticket.id)
                root_id, head = first if first else ("", b"")
            root = (root_id, thread_index_in_headers(head) if head else "")
            if roots is not None:
                roots[mail.ticket.id] = root
        return ThreadInfo(
            root_id=root[0],
            started=mail.ticket.created_at,
            root_thread_index=root[1],
            last_customer_id=mail.parsed.message_id,
        )

    # --- queueing -----------------------------------------------------------------------

    def queue(
        self,
        db: DB,
        *,
        kind: OutboundKind,
        ticket: Ticket,
        rendered: Rendered | Letter,
        from_addr: Address,
        to: tuple[Address, ...],
        now: datetime,
        cc: tuple[Address, ...] = (),
        reply_to: Address | None = None,
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        attachments: tuple[Attachment, ...] = (),
        thread: ThreadInfo | None = None,
    ) -> str:
        """Queue a mail of ``kind`` for ``ticket``: ``rendered``, or a ``Letter`` (a
        template and its context) the drain renders; returns its Message-ID. The
        addressing is fixed and checked here (ComposeError), the envelope sender
        follows the kind's table row; attachments go by blob (those of stored mail)."""
        thread = thread or self.thread_info(db, ticket)
        message_id = self.new_message_id(ticket.id)
        mail = OutboundMail(
            kind=kind,
            ticket_id=ticket.id,
            from_addr=from_addr,
            to=to,
            cc=cc,
            reply_to=reply_to,
            subject="",
            text="",
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            thread_topic=self.topic(ticket.subject),
            thread_root_id=thread.root_id,
            thread_started=thread.started,
            thread_root_index=thread.root_thread_index,
            extra_headers=(("X-Inboxd-Ticket", str(ticket.id)),),
        )
        mail_from = self.return_path(ticket.mailbox, ticket.id) if kind_of(kind).verp else ""
        self._enqueue(db, mail, rendered, now, mail_from, attachments, self.config.tag_format)
        messages.add_own_key(connection(db), ticket.id, message_id)
        return message_id

    def queue_plain(
        self,
        db: DB,
        *,
        kind: OutboundKind,
        rendered: Rendered | Letter,
        to: tuple[Address, ...],
        now: datetime,
    ) -> str:
        """Queue mail about no ticket (the weekly digest) from the first support address;
        returns its Message-ID. Automatic kinds only: the envelope sender is null."""
        message_id = self.new_message_id(None)
        mail = OutboundMail(
            kind=kind,
            ticket_id=None,
            from_addr=Address(self.support_address(""), self.config.helpdesk_name),
            to=to,
            subject="",
            text="",
            message_id=message_id,
        )
        self._enqueue(db, mail, rendered, now, "", (), "")
        return message_id

    def _enqueue(
        self,
        db: DB,
        mail: OutboundMail,
        rendered: Rendered | Letter,
        now: datetime,
        mail_from: str,
        attachments: tuple[Attachment, ...],
        tag_format: str,
    ) -> None:
        check_addressing(mail, date=now)  # what cannot be addressed fails now, not in the drain
        letter = (
            rendered
            if isinstance(rendered, Letter)
            else Letter(subject=rendered.subject, text=rendered.text, html=rendered.html)
        )
        queued = QueuedMail(
            mail, letter, now, tuple(AttachmentRef.of(a) for a in attachments), tag_format
        )
        rcpts = mail.recipients  # a property: worked out once here
        q.enqueue_held(
            connection(db),
            ticket_id=mail.ticket_id,
            kind=mail.kind.value,
            message_id=mail.message_id,
            mail_from=envelope_address(mail_from),
            rcpts=rcpts,
            intent=encode(queued),
            now=now,
        )
        # an IMAP batch logs one INFO line for all its mail (as for the mail it stores)
        log.log(
            logging.DEBUG if behind.in_batch() else logging.INFO,
            "queued kind=%s ticket=%s msgid=%s rcpts=%d",
            mail.kind.value,
            mail.ticket_id,
            mail.message_id,
            len(rcpts),
        )


class FlowView:
    """One mail's snapshot: the flow, the rule set and the template set it is handled with."""

    def __init__(self, flow: Flow, rules: RuleSet | None, templates: TemplateRenderer) -> None:
        self.flow = flow
        self.rules = rules
        self.templates = templates

    # --- agents -------------------------------------------------------------------------

    def agent(self, key: str) -> Agent | None:
        if self.rules is None or not key:
            return None
        return self.rules.agents.get(key) or self.rules.agent_by_email(key)

    def agent_by_email(self, email: str) -> Agent | None:
        return self.rules.agent_by_email(email) if self.rules is not None else None

    def may_have_recipients(self) -> bool:
        """False when ``recipients_for`` is [] whatever the ticket: no agent anywhere."""
        if self.rules is None:
            return False
        return bool(self.rules.agents) or any(team.agents for team in self.rules.teams.values())

    def recipients_for(self, ticket: Ticket) -> list[Agent]:
        """The assignee; else the ticket's team; else every agent we know."""
        if self.rules is None:
            return []
        assignee = self.agent(ticket.assignee or "")
        if assignee is not None:
            return [assignee]
        team = self.rules.teams.get(ticket.team or "")
        people = list(team.agents) if team is not None else list(self.rules.agents.values())
        return list({a.email: a for a in people}.values())

    # --- templates ----------------------------------------------------------------------

    def helpdesk(self, ticket: Ticket) -> dict[str, str]:
        return {
            "name": self.flow.config.helpdesk_name,
            "address": self.flow.support_address(ticket.mailbox),
        }

    def render(self, template: str, ticket: Ticket, **ctx: Any) -> Rendered:
        return self.templates.render(template, **self._context(ticket, ctx))

    def letter(self, template: str, ticket: Ticket, **ctx: Any) -> Letter:
        """What ``render`` would render, for the drain to render: the mail kinds of
        every stored mail (acknowledgement, notification) queue this, so ingest
        writes a small row. A template that fails then fails that delivery."""
        return Letter(template, self._context(ticket, ctx))

    def _context(self, ticket: Ticket, ctx: Mapping[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {"helpdesk": self.helpdesk(ticket), "ticket": ticket_context(ticket)}
        base.update(ctx)
        return base

    # --- the two audiences ------------------------------------------------------------

    def to_customer(
        self,
        db: DB,
        kind: OutboundKind,
        ticket: Ticket,
        rendered: Rendered | Letter,
        *,
        to: tuple[Address, ...],
        now: datetime,
        sender_name: str,
        cc: tuple[Address, ...] = (),
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        attachments: tuple[Attachment, ...] = (),
        thread: ThreadInfo | None = None,
        reply_to: str = "",
    ) -> str:
        """From the ticket's support address under ``sender_name``; answers come back
        to the support address (or ``reply_to``, a ``support+...`` address of ours)
        and thread by our signed Message-ID."""
        return self.flow.queue(
            db,
            kind=kind,
            ticket=ticket,
            rendered=rendered,
            from_addr=Address(self.flow.support_address(ticket.mailbox), sender_name),
            to=to,
            cc=cc,
            reply_to=Address(reply_to) if reply_to else None,
            now=now,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            thread=thread,
        )

    def to_agent(
        self,
        db: DB,
        kind: OutboundKind,
        ticket: Ticket,
        agent: Agent,
        rendered: Rendered | Letter,
        *,
        now: datetime,
        sender_name: str = "",
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        attachments: tuple[Attachment, ...] = (),
        thread: ThreadInfo | None = None,
    ) -> str:
        """From and Reply-To the agent's own reply-token address for this ticket, so
        whatever they answer comes back as theirs; ``sender_name`` defaults to the
        helpdesk's name."""
        reply_to = self.flow.agent_address(db, ticket.mailbox, ticket.id, agent)
        return self.flow.queue(
            db,
            kind=kind,
            ticket=ticket,
            rendered=rendered,
            from_addr=Address(reply_to, sender_name or self.flow.config.helpdesk_name),
            reply_to=Address(reply_to),
            to=(Address(agent.email, agent.display_name or agent.name),),
            now=now,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            thread=thread,
        )


def ticket_context(ticket: Ticket) -> dict[str, Any]:
    """The ticket as templates see it."""
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": str(ticket.status),
        "priority": ticket.priority,
        "assignee": ticket.assignee or "",
        "team": ticket.team or "",
        "requester": ticket.requester,
        "requester_name": ticket.requester_name,
        "tags": list(ticket.tags),
        "created_at": ticket.created_at,
    }
