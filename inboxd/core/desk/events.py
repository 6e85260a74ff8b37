"""Typed ticket events: one class per kind, the only way an event is made.

The event log is append-only and is what SLA clocks and reports read, so each
kind is defined once here: its name (``KIND``), its payload fields and a
``VERSION`` that grows when the payload changes meaning. ``data()`` is the
JSON stored in ``event.data`` and shown by ``tickets show --events``; fields
may be added to a kind, never renamed or removed. A payload field whose name
is a Python keyword carries a trailing underscore (``from_`` is stored as
``from``).

Actors are strings: ``system``, ``customer:EMAIL``, ``agent:NAME``,
``rule:NAME``; :func:`agent`, :func:`customer` and :func:`rule` build them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

SYSTEM = "system"


def agent(name: str) -> str:
    return f"agent:{name}"


def customer(email: str) -> str:
    return f"customer:{email}"


def rule(name: str) -> str:
    return f"rule:{name}"


EVENT_KINDS: dict[str, type[Event]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event kind: when, who, and the kind's payload fields."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    at: datetime
    actor: str = SYSTEM

    def __init_subclass__(cls) -> None:
        if cls.KIND:  # dataclass(slots=True) makes the class twice: the second one wins
            known = EVENT_KINDS.get(cls.KIND)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"event kind {cls.KIND!r} defined twice")
            EVENT_KINDS[cls.KIND] = cls

    @property
    def kind(self) -> str:
        return self.KIND

    def data(self) -> dict[str, Any]:
        """The payload as stored: JSON values, keyword-named fields without their ``_``."""
        return {key: _plain(getattr(self, name)) for name, key in _payload_of(type(self))}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list | frozenset):
        return [_plain(v) for v in value]
    return value


_PAYLOADS: dict[type[Event], tuple[tuple[str, str], ...]] = {}


def _payload_of(cls: type[Event]) -> tuple[tuple[str, str], ...]:
    """(field name, stored key) of a class's payload: ingest writes several events a
    mail and reports decode millions of rows, so the fields are looked up once."""
    found = _PAYLOADS.get(cls)
    if found is None:
        found = _PAYLOADS[cls] = tuple(
            (f.name, f.name.rstrip("_"))
            for f in dataclasses.fields(cls)
            if f.name not in ("at", "actor")
        )
    return found


def _payload_keys(kind: str) -> tuple[tuple[str, str], ...]:
    return _payload_of(EVENT_KINDS[kind])


def decode(kind: str, at: datetime, actor: str, data: Mapping[str, Any]) -> Event | None:
    """The typed event of a stored row; None for a kind this version does not know.

    Fields the row lacks (written by an older version) take their defaults;
    fields it has that the kind no longer knows are ignored.
    """
    cls = EVENT_KINDS.get(kind)
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for name, key in _payload_keys(kind):
        if key in data:
            value = data[key]
            values[name] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(at=at, actor=actor, **values)
    except TypeError:  # a required field missing from an old row
        return None


# --- a ticket's life ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Created(Event):
    KIND = "created"
    source: str
    follow_up_of: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStored(Event):
    """A customer's (or a machine's) mail joined the ticket."""

    KIND = "message"
    message: int
    kind_: str = "normal"  # stored as "kind": normal | auto_reply | bulk | bounce
    matched_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(Event):
    KIND = "status"
    from_: str
    to: str
    why: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Assigned(Event):
    """To an agent (``to``) or to a team with nobody in particular (``team``)."""

    KIND = "assigned"
    to: str | None = None
    team: str | None = None

    def data(self) -> dict[str, Any]:
        return {"to": self.to} if self.to is not None else {"team": self.team}


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityChanged(Event):
    KIND = "priority"
    to: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsChanged(Event):
    KIND = "tags"
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleApplied(Event):
    KIND = "rule"
    file: str
    line: int
    reasons: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged(Event):
    """This ticket was folded into ``into``."""

    KIND = "merged"
    into: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MergedFrom(Event):
    """Ticket ``ticket`` was folded into this one."""

    KIND = "merged_from"
    ticket: int


# --- agents at work -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReplied(Event):
    """A public answer: relayed by us, or found in the shared mailbox's Sent folder."""

    KIND = "agent_reply"
    message: int
    message_id: str
    first_response: bool
    to: tuple[str, ...] = ()
    canned: str | None = None
    via: str | None = None  # "sent_folder" when the agent answered outside inboxd
    sent_at: str | None = None  # the Sent mail's Date, ISO 8601

    @property
    def counted_at(self) -> datetime:
        """When the reply counts for clocks and reports: a reply found in the Sent
        folder counts from its Date when that is earlier than our finding it."""
        if self.sent_at:
            try:
                sent = datetime.fromisoformat(self.sent_at)
            except ValueError:
                return self.at
            if sent.tzinfo is not None and sent < self.at:
                return sent
        return self.at


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAdded(Event):
    KIND = "note"
    message: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandsRejected(Event):
    KIND = "commands_rejected"
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySkipped(Event):
    KIND = "relay_skipped"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayFailed(Event):
    KIND = "relay_failed"
    reason: str


# --- what we sent, or did not --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledged(Event):
    KIND = "acknowledged"
    to: str
    message_id: str
    template: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AckSkipped(Event):
    KIND = "ack_skipped"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Notified(Event):
    KIND = "notified"
    agents: tuple[str, ...]
    event: str  # created | customer_reply | assigned


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyFailed(Event):
    KIND = "notify_failed"
    reason: str
    agent: str | None = None  # None: the template failed, nobody was told


@dataclass(frozen=True, slots=True, kw_only=True)
class BounceReceived(Event):
    KIND = "bounce"
    message: int
    original: str
    status: str = ""
    action: str = ""
    diagnostic: str = ""
    recipients: tuple[str, ...] = ()
    permanent: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAlert(Event):
    """Agents were told (``mailed`` names them) that a mail to a customer failed."""

    KIND = "alert"
    failed_kind: str
    rcpts: tuple[str, ...]
    reason: str
    mailed: tuple[str, ...] | bool = False  # False: a mail to an agent failed, only logged


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRefused(Event):
    """Some recipients refused a mail the others took."""

    KIND = "delivery_refused"
    outbox: int
    message_id: str
    refused: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFailed(Event):
    KIND = "delivery_failed"
    outbox: int
    message_id: str
    kind_: str  # stored as "kind": the outbound kind that failed
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackQueued(Event):
    KIND = "slack_queued"
    channel: str
    notice: int
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackFailed(Event):
    KIND = "slack_failed"
    notice: int
    channel: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTokenRefused(Event):
    """A mail to an agent's reply-token address was not taken as that agent's reply,
    so it ran no command and reached no customer (stored as plain mail instead).

    ``reason`` says which check failed (sender, agent, DKIM/DMARC, citations);
    ``cited`` are the tickets its In-Reply-To/References name through our signed
    Message-IDs, so a token used with another ticket's thread shows which one.
    """

    KIND = "agent_token_refused"
    reason: str
    sender: str = ""
    cited: tuple[int, ...] = ()


# --- loop prevention ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CapTripped(Event):
    """An hourly cap stopped an ack or a new ticket (``core.loops``): ``cap`` is its
    config key, ``key`` the address, domain or ``*`` counted, ``action`` what was done
    instead (``ack_skipped``, ``joined`` the sender's open ticket, ``held``)."""

    KIND = "cap_tripped"
    cap: str
    key: str
    count: int
    limit: int
    action: str
    message_id: str = ""


# --- SLA clocks ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaStageFired(Event):
    """A stage of an SLA target came (``stage`` is its key within the policy, e.g.
    ``remind@75%``); ``skipped``: a warning whose breach was already due, recorded
    so it never fires, nobody told. ``due_at`` is the target's due time, ISO 8601."""

    KIND = "sla_stage"
    policy: str
    target: str
    cycle: int
    stage: str
    action: str
    due_at: str | None = None
    skipped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaRecomputed(Event):
    """The ticket's policy or its calendar changed in the rules: its due times are
    computed again from its events under the new rules."""

    KIND = "sla_recomputed"
    policy: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaSnoozed(Event):
    """Someone held the ticket's SLA stages (reminders, escalations) until ``until``
    (ISO 8601); the stages that come meanwhile fire when it ends."""

    KIND = "sla_snoozed"
    until: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaAcknowledged(Event):
    """Someone took charge of the breaches at ``at``: further stages of a target that
    breached by then are recorded as skipped; a later breach alerts again."""

    KIND = "sla_acknowledged"


# --- data protection ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Forgotten(Event):
    """A person asked to be forgotten: their mail bodies, attachments and addresses on
    this ticket are gone (pseudonymised, so counts and reports stay right). The event
    names neither the person nor the pseudonym."""

    KIND = "forgotten"
    messages: int  # mails of theirs whose content was removed


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderJoined(Event):
    """A sender new to the ticket joined it by reference (``matched_by``): kept as a
    ``pending`` participant, not a recipient of replies until an agent accepts them."""

    KIND = "sender_joined"
    email: str
    matched_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantAccepted(Event):
    """An agent made ``email`` a recipient of the ticket's replies (``#cc``)."""

    KIND = "participant_accepted"
    email: str


# --- satisfaction surveys -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveySent(Event):
    """A satisfaction survey went to ``to`` (``survey`` is its row, bound into its token)."""

    KIND = "survey_sent"
    survey: int
    to: str
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyRated(Event):
    """The customer rated the ticket ``good`` or ``bad``: by a survey link (``via``
    ``link``) or a reply whose first word is the rating (``reply``); a later one
    replaces it. ``message`` is the stored answer mail, ``sender`` its From."""

    KIND = "csat"
    survey: int
    rating: str
    via: str
    message: int
    sender: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyAnswerRefused(Event):
    """A survey answer that changes nothing (e.g. after the change window); kept as mail."""

    KIND = "csat_refused"
    survey: int
    message: int
    reason: str


# --- threads joined out of order -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Related(Event):
    """A mail (``message_id``) tied this ticket's thread to ticket ``ticket``, which were
    apart only because their mails arrived out of order; they stay two tickets, for
    ``reason`` (an agent has answered one, they are in different mailboxes)."""

    KIND = "related"
    ticket: int
    reason: str
    message_id: str = ""
