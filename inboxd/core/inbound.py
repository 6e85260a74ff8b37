"""Values describing one inbound mail on its way through ingest and the flows.

Both the ingest pipeline and the flows read these, so they live in core where
both may import them: where a mail came from (:class:`Source`), the mail as it
arrived with the rule set it is judged by (:class:`Arrival`), and what the
pipeline stored (:class:`StoredMail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from inboxd.core.model import IngestOutcome, ParsedMessage

if TYPE_CHECKING:  # the CLI's reads import this module; they need no rule engine
    from inboxd.core.desk import Ticket
    from inboxd.core.rules import Decision, RuleSet
    from inboxd.core.thread import ThreadMatch

Outcome = IngestOutcome


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw mail came from; stored on the message and the quarantine row."""

    kind: str  # imap | lmtp | file
    mailbox: str = ""
    folder: str = ""
    uid: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "imap":
            return f"imap:{self.mailbox}/{self.folder}"
        return f"{self.kind}:{self.mailbox}" if self.mailbox else self.kind


@dataclass(frozen=True, slots=True)
class Arrival:
    """One parsed mail, where it came from, when, and the rule set read for it.

    The rule set is read once per mail, so every step and flow that handles
    the mail sees the same rules even when a reload lands in between.
    """

    parsed: ParsedMessage
    raw: bytes
    source: Source
    now: datetime
    rules: RuleSet | None


@dataclass(frozen=True, slots=True)
class StoredMail:
    """What the reactors (acknowledgements, notifications, Slack notices) see."""

    arrival: Arrival
    ticket: Ticket  # as it is after this mail
    message_row_id: int
    new_ticket: bool
    match: ThreadMatch
    decision: Decision | None
    # the sender's role on the ticket after this mail (db.tickets.Person.role; "" for
    # machine mail or no sender): the pipeline read it, the reactors need not again
    sender_role: str = ""

    @property
    def parsed(self) -> ParsedMessage:
        return self.arrival.parsed

    @property
    def source(self) -> Source:
        return self.arrival.source

    @property
    def now(self) -> datetime:
        return self.arrival.now

    @property
    def rules(self) -> RuleSet | None:
        return self.arrival.rules

    @property
    def ticket_id(self) -> int:
        return self.ticket.id
