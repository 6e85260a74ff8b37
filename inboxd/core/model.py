"""Plain values passed between the pure core and the edges.

Everything here is a frozen dataclass: the core takes these and returns these,
never a database row or a socket, so it is tested from bytes alone.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Pickle ``cls`` (a frozen dataclass with slots) as its constructor and field
    values. The default for such a class looks its fields up again for every
    object it restores, and an ingest worker's batch hands back thousands of
    them (a mail, its addresses, attachments, flags) to the storing process."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    values: Callable[[Any], Any] = operator.attrgetter(*names)
    if len(names) == 1:
        single = values
        values = lambda obj: (single(obj),)  # noqa: E731
    cls.__reduce__ = lambda obj: (cls, values(obj))  # type: ignore[method-assign,assignment,attr-defined]
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header; ``email`` is lowercased, ``name`` decoded."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    @property
    def local(self) -> str:
        return self.email.rpartition("@")[0]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by a message. ``data`` is the decoded payload."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str = ""
    content_id: str = ""
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


class MessageKind(enum.StrEnum):
    """What sort of mail this is, as far as loop prevention and SLA care."""

    NORMAL = "normal"
    AUTO_REPLY = "auto_reply"  # out-of-office and other RFC 3834 responses
    BULK = "bulk"  # lists, newsletters, Precedence: bulk
    BOUNCE = "bounce"  # delivery status notifications and other bounces


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class AutoFlags:
    """Markers that say a machine, not a person, sent this mail."""

    auto_submitted: str = ""  # value of Auto-Submitted, lowercased, "" when absent
    precedence: str = ""  # value of Precedence, lowercased
    list_id: str = ""
    has_list_unsubscribe: bool = False
    return_path_empty: bool = False  # Return-Path: <>
    x_auto_response_suppress: str = ""
    is_mailer_daemon: bool = False  # mailer-daemon@ / postmaster@ sender
    is_noreply: bool = False  # noreply@ / no-reply@ / donotreply@ sender


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery status notification says about the mail that bounced."""

    original_message_id: str = ""  # Message-ID of the mail that bounced, without <>
    failed_recipients: tuple[str, ...] = ()
    status: str = ""  # RFC 3463 status such as 5.1.1
    action: str = ""  # failed | delayed | delivered ...
    diagnostic: str = ""
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything inboxd needs from one raw mail; built by ``core.parse``.

    Message-IDs are stored without angle brackets, otherwise exactly as sent
    (clients compare them byte for byte); ``content_digest`` identifies the
    content independently of transport headers (Received, Delivered-To), so the
    same mail fetched from two mailboxes dedupes while a reused Message-ID with a
    different body does not.
    """

    message_id: str
    message_id_synthesized: bool
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: datetime | None  # timezone-aware, UTC; None when absent or unparseable
    subject: str  # decoded, whitespace-collapsed
    normalized_subject: str  # Re:/Fwd:/AW:/[#123] stripped, casefolded
    text: str  # best plain-text body (derived from HTML when there is no text part)
    html: str  # the HTML body as sent ("" when none)
    new_text: str  # what the sender wrote this time: quotes and signature stripped
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # every header, name lowercased, value decoded
    auto: AutoFlags
    kind: MessageKind
    bounce: Bounce | None
    defects: tuple[str, ...]  # parser defects worth recording (not fatal)
    raw_sha256: str
    content_digest: str
    size: int

    def header(self, name: str) -> str:
        """First value of header ``name`` (case-insensitive), "" when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return ""

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


_PARSED_FIELDS = [f.name for f in fields(ParsedMessage)]
_NEW_TEXT, _TEXT = _PARSED_FIELDS.index("new_text"), _PARSED_FIELDS.index("text")
_parsed_values = operator.attrgetter(*_PARSED_FIELDS)


def _reduce_parsed(mail: ParsedMessage) -> tuple[Any, ...]:
    """``pickled_by_fields``, less the new text when it is the whole text stripped
    (a mail that quotes nothing; most of a backlog): it is made again on loading,
    so a worker's batch does not carry each such body twice through its pipe."""
    values = _parsed_values(mail)
    if mail.new_text == mail.text.strip():
        values = (*values[:_NEW_TEXT], None, *values[_NEW_TEXT + 1 :])
    return (_restore_parsed, values)


def _restore_parsed(*values: Any) -> ParsedMessage:
    if values[_NEW_TEXT] is None:
        values = (*values[:_NEW_TEXT], values[_TEXT].strip(), *values[_NEW_TEXT + 1 :])
    return ParsedMessage(*values)


ParsedMessage.__reduce__ = _reduce_parsed  # type: ignore[method-assign,assignment]


class ParseError(Exception):
    """The bytes cannot be read as a mail at all; ``reason`` goes to quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A :class:`ParseError` as a value, so a batch parsed elsewhere (a worker
    process) can carry one mail's failure without failing the batch."""

    reason: str


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"
    NOTE = "note"  # internal note by an agent, never sent to the customer


class MatchedBy(enum.StrEnum):
    """How a message found its ticket; stored on the message and shown to admins."""

    HEADER = "header"  # In-Reply-To / References
    TOKEN = "token"  # reply token in a recipient address
    TAG = "tag"  # [#123] in the subject, sender already a participant
    GROUP = "group"  # a rule grouped it with an open ticket of the same sender+subject
    NEW = "new"  # started a new ticket


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What became of one inbound mail; returned by the pipeline and its interceptors."""

    status: str  # stored | duplicate | quarantined | skipped
    ticket_id: int | None = None
    message_row_id: int | None = None
    matched_by: str = ""
    reason: str = ""
    new_ticket: bool = False
    rules: tuple[str, ...] = ()  # the rules that fired on it, for the rule-hit counter
