"""What every outbound flow shares: identity, addresses, threading, queueing.

The flows (acknowledgement and notification reactor, agent-reply and bounce
interceptors, delivery alerts) run inside the ingest transaction and only
write rows: a rendered mail goes into the outbox in the same transaction as the
state change that caused it, and the drain sends it later. ``Flow`` holds what
they need and the few helpers they all use; it does no I/O of its own beyond
the database connection it is handed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core.compose import (
    OutboundKind,
    OutboundMail,
    envelope_address,
    render_message,
    subject_with_tag,
)
from inboxd.core.model import Address, Attachment, IngestOutcome, ParsedMessage
from inboxd.core.rules import Decision, RuleSet
from inboxd.core.rules.model import Agent
from inboxd.core.subject import strip_prefixes, strip_ticket_tag
from inboxd.core.threadindex import thread_index_in_headers
from inboxd.core.tokens import make_message_id, make_reply_token
from inboxd.db import flow_queries as fq
from inboxd.db import outbox_queries as q
from inboxd.db import repo
from inboxd.flows.render import Rendered, TemplateRenderer

log = logging.getLogger("inboxd.flow")

DB = Session | Connection


def connection(db: DB) -> Connection:
    return db.connection() if isinstance(db, Session) else db


# The ingest pipeline calls reactors and interceptors with its own types; flows may
# not import ingest (sibling layers), so these protocols name what the flows read.


class StoredMailLike(Protocol):
    """What ``ingest.pipeline.StoredMail`` gives a reactor."""

    @property
    def parsed(self) -> ParsedMessage: ...
    @property
    def ticket_id(self) -> int: ...
    @property
    def message_row_id(self) -> int: ...
    @property
    def new_ticket(self) -> bool: ...
    @property
    def decision(self) -> Decision | None: ...
    @property
    def now(self) -> datetime: ...


class SourceLike(Protocol):
    """What ``ingest.pipeline.Source`` tells an interceptor."""

    @property
    def kind(self) -> str: ...
    @property
    def mailbox(self) -> str: ...
    @property
    def folder(self) -> str: ...
    @property
    def label(self) -> str: ...


# An interceptor's answer is the pipeline's own outcome type (it lives in core).
Handled = IngestOutcome


@dataclass(frozen=True)
class FlowConfig:
    secret: bytes
    domain: str  # right side of our Message-IDs
    mailbox_addresses: Mapping[str, str]  # mailbox name -> support address
    renderer: Callable[[], TemplateRenderer]  # the current set (reloadable)
    rules: Callable[[], RuleSet | None]
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


class Flow:
    def __init__(self, config: FlowConfig) -> None:
        self.config = config

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

    def plus_address(self, address: str, token: str) -> str:
        local, _, domain = address.rpartition("@")
        return f"{local}+{token}@{domain}"

    def agent_address(self, db: DB, mailbox: str, ticket_id: int, agent: Agent) -> str:
        """``support+TOKEN@domain`` with TOKEN bound to this ticket and this agent."""
        number = fq.agent_number(connection(db), agent.email, agent.display_name or agent.name)
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

    def subject(self, subject: str, ticket_id: int) -> str:
        return subject_with_tag(subject, ticket_id, self.config.tag_format)

    def topic(self, subject: str) -> str:
        """Outlook's Thread-Topic: the subject without prefixes and ticket tags."""
        return " ".join(strip_prefixes(" ".join(strip_ticket_tag(subject).split())).split())[:200]

    # --- agents -------------------------------------------------------------------------

    def agent(self, key: str) -> Agent | None:
        ruleset = self.config.rules()
        if ruleset is None or not key:
            return None
        return ruleset.agents.get(key) or ruleset.agent_by_email(key)

    def agent_by_email(self, email: str) -> Agent | None:
        ruleset = self.config.rules()
        return ruleset.agent_by_email(email) if ruleset is not None else None

    def may_have_recipients(self) -> bool:
        """False when ``recipients_for`` is [] whatever the ticket: no agent anywhere."""
        ruleset = self.config.rules()
        if ruleset is None:
            return False
        return bool(ruleset.agents) or any(team.agents for team in ruleset.teams.values())

    def recipients_for(self, ticket: Mapping[str, Any]) -> list[Agent]:
        """The assignee; else the ticket's team; else every agent we know."""
        ruleset = self.config.rules()
        if ruleset is None:
            return []
        assignee = self.agent(ticket.get("assignee") or "")
        if assignee is not None:
            return [assignee]
        team = ruleset.teams.get(ticket.get("team") or "")
        agents = list(team.agents) if team is not None else list(ruleset.agents.values())
        return list({a.email: a for a in agents}.values())

    # --- threading ----------------------------------------------------------------------

    def thread_info(
        self, db: DB, ticket_id: int, ticket: Mapping[str, Any] | None = None
    ) -> ThreadInfo:
        """``ticket`` is the ticket's row when the caller has it (saves a query)."""
        first = fq.first_message_head(db, ticket_id)
        last = fq.last_customer_message(db, ticket_id)
        if ticket is None or int(ticket["id"]) != ticket_id:
            ticket = fq.ticket(db, ticket_id)
        return ThreadInfo(
            root_id=first[0] if first else "",
            started=ticket["created_at"] if ticket else None,
            root_thread_index=thread_index_in_headers(first[1]) if first else "",
            last_customer_id=last.message_id if last else "",
        )

    # --- templates ----------------------------------------------------------------------

    def ticket_context(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": ticket["id"],
            "subject": ticket["subject"],
            "status": ticket["status"],
            "priority": ticket["priority"],
            "assignee": ticket.get("assignee") or "",
            "team": ticket.get("team") or "",
            "requester": ticket["requester"],
            "requester_name": ticket.get("requester_name") or "",
            "tags": list(ticket.get("tags") or []),
            "created_at": ticket["created_at"],
        }

    def render(self, template: str, ticket: Mapping[str, Any], **ctx: Any) -> Rendered:
        mailbox = ticket.get("mailbox") or ""
        base: dict[str, Any] = {
            "helpdesk": {
                "name": self.config.helpdesk_name,
                "address": self.support_address(mailbox),
            },
            "ticket": self.ticket_context(ticket),
        }
        base.update(ctx)
        return self.config.renderer().render(template, **base)

    # --- queueing -----------------------------------------------------------------------

    def queue(
        self,
        db: DB,
        *,
        kind: OutboundKind,
        ticket: Mapping[str, Any],
        rendered: Rendered,
        from_addr: Address,
        to: tuple[Address, ...],
        now: datetime,
        mail_from: str,
        cc: tuple[Address, ...] = (),
        reply_to: Address | None = None,
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        attachments: tuple[Attachment, ...] = (),
        thread: ThreadInfo | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> str:
        """Render ``rendered`` into a mail for ``ticket`` and queue it; returns its Message-ID."""
        ticket_id = int(ticket["id"])
        thread = thread or self.thread_info(db, ticket_id)
        message_id = self.new_message_id(ticket_id)
        mail = OutboundMail(
            kind=kind,
            ticket_id=ticket_id,
            from_addr=from_addr,
            to=to,
            cc=cc,
            reply_to=reply_to,
            subject=self.subject(rendered.subject, ticket_id),
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            thread_topic=self.topic(str(ticket["subject"])),
            thread_root_id=thread.root_id,
            thread_started=thread.started,
            thread_root_index=thread.root_thread_index,
            extra_headers=(("X-Inboxd-Ticket", str(ticket_id)), *extra_headers),
        )
        raw = render_message(mail, date=now)
        q.enqueue(
            connection(db),
            ticket_id=ticket_id,
            kind=kind.value,
            message_id=message_id,
            mail_from=envelope_address(mail_from),
            rcpts=mail.recipients,
            raw=raw,
            now=now,
        )
        # our own mail threads back to this ticket even if a client drops References
        repo.add_thread_keys(connection(db), ticket_id, message_id, (), own_was_ref=False)
        log.info(
            "queued kind=%s ticket=%s msgid=%s rcpts=%d",
            kind.value,
            ticket_id,
            message_id,
            len(mail.recipients),
        )
        return message_id

    # --- storing mail the flows take over from the pipeline ---------------------------------

    def record_message(
        self,
        db: DB,
        *,
        ticket_id: int,
        parsed: ParsedMessage,
        raw: bytes,
        source: SourceLike,
        direction: str,
        matched_by: str,
        reason: str,
        now: datetime,
        new_text: str | None = None,
    ) -> int:
        """Store an intercepted mail on ``ticket_id`` as the pipeline would (raw kept)."""
        return repo.store_mail(
            connection(db),
            ticket_id=ticket_id,
            parsed=parsed,
            raw=raw,
            source_label=source.label,
            mailbox=source.mailbox,
            direction=direction,
            matched_by=matched_by,
            reason=reason,
            now=now,
            new_text=new_text,
        )

    def quarantine(
        self, db: DB, *, raw: bytes, source: SourceLike, reason: str, now: datetime, uid: int | None
    ) -> Handled:
        repo.quarantine_raw(
            connection(db),
            raw,
            reason=reason,
            source_label=source.label,
            mailbox=source.mailbox,
            folder=source.folder,
            uid=uid,
            now=now,
        )
        log.warning("quarantined source=%s reason=%s", source.label, reason)
        return Handled("quarantined", reason=reason)

    def resolve_ticket(self, db: DB, ticket_id: int) -> dict[str, Any] | None:
        """The ticket, following merges to the one that survives (bounded)."""
        current = fq.ticket(db, ticket_id)
        seen: set[int] = set()
        while current is not None and current.get("merged_into") and current["id"] not in seen:
            seen.add(current["id"])
            if len(seen) > 16:
                break
            current = fq.ticket(db, int(current["merged_into"]))
        return current
