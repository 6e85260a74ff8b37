"""The schema. Every table is SQLModel; constraint names follow one convention.

Design rules the later issues rely on:
- ``event`` is append-only: nothing updates or deletes a row there.
- every side effect is first a row (``outbox``, ``slack_notice``, ``quarantine``).
- raw mail is kept byte for byte, content-addressed in ``blob``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, MetaData, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from inboxd.core.desk import Status

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: MetaData = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _json_dict() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Blob(SQLModel, table=True):
    """Raw bytes (a whole mail or an attachment), stored once per sha256."""

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Ticket(SQLModel, table=True):
    # least-open assignment counts an agent's open tickets on every new ticket
    __table_args__ = (Index("ix_ticket_assignee_status", "assignee", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = ""
    normalized_subject: str = Field(default="", index=True)
    status: str = Field(default=Status.NEW.value, index=True)
    requester: str = Field(default="", index=True)
    requester_name: str = ""
    mailbox: str = ""
    priority: str = "normal"
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    sla_policy: str | None = None
    tags: list[str] = _json_list()
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    merged_into: int | None = Field(default=None, foreign_key="ticket.id")
    previous_ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    acknowledged: bool = False
    # the moments SLA clocks and reports start from (core.desk keeps them)
    first_agent_reply_at: datetime | None = None
    last_customer_mail_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_count: int = 0
    # when the SLA sweep must look at the ticket next (NULL: no clock to watch);
    # the writer sets it to the change's time whenever a change may move a clock
    sla_due_at: datetime | None = Field(default=None, index=True)
    # the latest solve, until the survey job has looked at it (NULL: nothing to survey)
    survey_due_at: datetime | None = Field(default=None, index=True)


class Message(SQLModel, table=True):
    """One mail in a ticket (or, with ticket_id NULL, one held in quarantine)."""

    __table_args__ = (
        UniqueConstraint("message_id", "content_digest", name="uq_message_identity"),
        Index("ix_message_ticket_created", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    # looked up through uq_message_identity, whose first column it is
    message_id: str
    content_digest: str
    raw_sha256: str = Field(foreign_key="blob.sha256")
    direction: str = "in"
    kind: str = "normal"
    source: str = ""  # imap:MAILBOX/FOLDER or lmtp
    mailbox: str = ""
    from_email: str = ""
    from_name: str = ""
    to: list[str] = _json_list()
    cc: list[str] = _json_list()
    subject: str = ""
    date: datetime | None = None
    received_at: datetime
    text: str = ""
    html: str = ""
    # what the sender wrote this time; NULL when it is the whole text without its
    # surrounding whitespace (most first mails), so the text is not stored twice:
    # write it through ``stored_new_text``, read it through ``shown_text``
    new_text: str | None = None
    matched_by: str = "new"
    match_reason: str = ""
    size: int = 0
    attachment_count: int = 0

    @property
    def shown_text(self) -> str:
        return shown_new_text(self.new_text, self.text)


def stored_new_text(new_text: str, text: str) -> str | None:
    """What the ``new_text`` column holds: NULL for the whole text stripped, which is
    what reply extraction gives for a mail that quotes nothing."""
    return None if new_text == text.strip() else new_text


def shown_new_text(stored: str | None, text: str) -> str:
    """The new text from its column (``stored_new_text``). Older rows hold NULL only
    where the new text equalled the whole text; extraction returns its text
    stripped, so those texts were stripped already and read back the same."""
    return text.strip() if stored is None else stored


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    message_row_id: int = Field(foreign_key="message.id", index=True)
    filename: str = ""
    content_type: str = ""
    size: int = 0
    sha256: str = Field(foreign_key="blob.sha256")
    content_id: str = ""
    inline: bool = False


class Participant(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("ticket_id", "email", name="uq_participant_ticket_email"),)

    id: int | None = Field(default=None, primary_key=True)
    # looked up through uq_participant_ticket_email, whose first column it is
    ticket_id: int = Field(foreign_key="ticket.id")
    email: str
    name: str = ""
    role: str = "customer"  # requester | customer | agent


class ThreadKey(SQLModel, table=True):
    """Message-ID -> ticket, for every Message-ID a ticket's mail carries or cites.

    ``origin`` is ``self`` for the Message-ID of a stored mail and ``ref`` for one
    only cited so far: a parent that arrives after its reply finds the ticket
    through a ``ref`` key, while a sender reusing its own Message-ID for
    unrelated mail does not glue those mails together.
    """

    key: str = Field(primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    origin: str = "ref"


class MailboxState(SQLModel, table=True):
    """IMAP checkpoint: every UID <= last_uid under uidvalidity is stored."""

    mailbox: str = Field(primary_key=True)
    folder: str = Field(primary_key=True)
    uidvalidity: int
    last_uid: int
    updated_at: datetime


class Event(SQLModel, table=True):
    """The append-only ticket log: who did what, when, and why."""

    # reports find the tickets with events since a period began as a range of it
    __table_args__ = (Index("ix_event_at_ticket", "at", "ticket_id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime
    actor: str  # system | customer:EMAIL | agent:NAME | rule:NAME
    kind: str  # created | message | rule | status | assigned | ...
    data: dict[str, Any] = _json_dict()


class Quarantine(SQLModel, table=True):
    """A mail that could not be parsed or threaded: kept raw, with the reason."""

    id: int | None = Field(default=None, primary_key=True)
    raw_sha256: str = Field(foreign_key="blob.sha256", index=True)
    reason: str
    source: str = ""
    mailbox: str = ""
    folder: str = ""
    uid: int | None = None
    received_at: datetime
    released_at: datetime | None = None


class Outbox(SQLModel, table=True):
    """Every outbound mail, written in the transaction that causes it.

    ``rcpt_key`` is the first envelope recipient, lowercased: the hourly ack cap
    counts by it through an index instead of scanning the JSON ``rcpts``.
    """

    __table_args__ = (
        Index("ix_outbox_rcpt_kind_created", "rcpt_key", "kind", "created_at"),
        # the global and per-domain hourly ack caps count through these as ranges
        Index("ix_outbox_kind_created", "kind", "created_at"),
        Index("ix_outbox_domain_kind_created", "rcpt_domain", "kind", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    kind: str
    message_id: str = Field(index=True)
    mail_from: str
    rcpts: list[str] = _json_list()
    rcpt_key: str = ""
    rcpt_domain: str = ""  # the domain of rcpt_key
    # the mail's bytes; b"" while ``intent`` (core.queued, JSON) says what to write:
    # the drain renders it
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    intent: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    status: str = Field(default="queued", index=True)  # queued | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str = ""
    created_at: datetime
    sent_at: datetime | None = None


class SlackNotice(SQLModel, table=True):
    """A Slack post waiting to be made; ``dedupe_key`` makes alerts fire once."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    channel: str
    text: str
    blocks: list[Any] = _json_list()
    dedupe_key: str | None = Field(default=None, unique=True)
    status: str = Field(default="queued", index=True)
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str = ""
    created_at: datetime
    sent_at: datetime | None = None
    # which Slack call: post (a message of its own), root (a ticket's living
    # message), reply (into its thread), update (chat.update of the root)
    call: str = "post"
    thread_id: int | None = Field(default=None, index=True)  # slackthread.id (no FK: may go)
    digest: str = ""  # root / update: the state the blocks show


class SlackThread(SQLModel, table=True):
    """A ticket's living message in one channel: where it is and what state it shows.

    ``ts`` is NULL until the root is posted; ``digest`` is the state last posted,
    so the root sync updates only roots whose ticket changed since."""

    __table_args__ = (
        UniqueConstraint("ticket_id", "channel", name="uq_slack_thread_ticket_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # NULL: the message of an ops alert (a spike, a mailbox outage; see OpsAlert)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    channel: str  # as configured (a name such as #billing, or an id)
    channel_id: str = ""  # the id Slack answered with (chat.update needs it)
    ts: str | None = None
    digest: str = ""
    created_at: datetime
    updated_at: datetime


class TagArrival(SQLModel, table=True):
    """A customer mail stored on a ticket with a watched tag (spike detection counts
    these by tag and time: an index range per window)."""

    __table_args__ = (Index("ix_tagarrival_tag_at", "tag", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    tag: str
    at: datetime = Field(index=True)  # the purge of old rows is a range of it
    ticket_id: int | None = None  # no FK: a purged ticket leaves its counts alone


class SpikeWatch(SQLModel, table=True):
    """Since when a tag's arrivals are counted: how much history its baseline has."""

    tag: str = Field(primary_key=True)
    since: datetime


class OpsAlert(SQLModel, table=True):
    """An alert not about one ticket that lasts (a tag's spike, a mailbox outage):
    its own Slack message (``thread_id``), updated when it is over (``ended_at``).
    ``key`` is unique, so two daemons that see the same start make one alert."""

    __table_args__ = (Index("ix_opsalert_kind_subject", "kind", "subject", "ended_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str  # spike | outage
    subject: str  # the tag, or the mailbox name
    channel: str
    thread_id: int | None = None  # slackthread.id of its message (no FK: may go)
    started_at: datetime
    ended_at: datetime | None = None
    baseline: float = 0.0  # spike: the usual count per window when it started
    peak: int = 0  # spike: the highest count seen while on
    detail: str = ""  # outage: the last connection error
    updated_at: datetime


class SlackAction(SQLModel, table=True):
    """A Slack button press that was handled: the unique ``key`` (user, action and its
    timestamp) lets one daemon act on it, however often Slack delivers it."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    envelope_id: str = ""
    ticket_id: int | None = None
    action: str
    user_id: str
    handled_at: datetime


class Survey(SQLModel, table=True):
    """The satisfaction survey of a ticket: at most one (the unique key), its number
    bound into the answer tokens. Its ratings are events on the ticket."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", unique=True)
    recipient: str
    message_id: str = ""
    sent_at: datetime


class Digest(SQLModel, table=True):
    """A team's weekly digest that went out: the unique key sends it exactly once per
    team and week (``period``, its first local day), whichever daemon gets there first."""

    __table_args__ = (UniqueConstraint("team", "period", name="uq_digest_team_period"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str
    period: str
    sent_at: datetime


class SlaStage(SQLModel, table=True):
    """A stage of an SLA target that fired: the unique key makes it fire exactly once
    per ticket, target, clock cycle and stage, across restarts and daemons."""

    __table_args__ = (
        UniqueConstraint("ticket_id", "target", "cycle", "stage", name="uq_sla_stage_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    target: str  # first_response | next_response | resolution
    cycle: int  # which run of the clock (a reopen or a new customer mail starts another)
    stage: str  # the stage's key, e.g. "warn@75%", "breach", "breach+2h"
    fired_at: datetime


class AgentIdentity(SQLModel, table=True):
    """A stable number per agent address, bound into reply tokens."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    name: str = ""


class AssignmentCursor(SQLModel, table=True):
    """Round-robin position per team."""

    team: str = Field(primary_key=True)
    last_agent: str = ""


class MailboxLease(SQLModel, table=True):
    """Which daemon fetches a mailbox: only the ``owner`` (host:pid:random) until
    ``expires_at``; it renews while its fetcher is alive and deletes the row on a clean
    stop, so another daemon takes over within one lease period after a death."""

    mailbox: str = Field(primary_key=True)
    owner: str
    acquired_at: datetime
    expires_at: datetime


class DaemonState(SQLModel, table=True):
    """One running (or stopped) ``inboxd run``: its heartbeat and its last rule load,
    so ``inboxd status``, another process, can tell an admin what the daemon knows."""

    id: int | None = Field(default=None, primary_key=True)
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime = Field(index=True)
    stopped_at: datetime | None = None
    rules_generation: int = 0
    rules_reloaded_at: datetime
    rules_trigger: str = ""  # start | SIGHUP | file_change
    rules_errors: int = 0  # errors of that load (then the last good set is kept)
    rules_error: str = ""  # its first error, file:line:col: message


class MailboxHealth(SQLModel, table=True):
    """What the fetcher of a mailbox last reported: connection, last good sync, last
    error (written by the daemon that fetches it, from its in-memory health)."""

    mailbox: str = Field(primary_key=True)
    connected: bool = False
    last_sync_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    reported_by: str = ""  # host:pid of that daemon
    updated_at: datetime


class SlackDeferred(SQLModel, table=True):
    """A Slack alert that came while its team's calendar was closed: it waits for the
    summary posted at ``due_at`` (the next opening). ``claim`` is set, in one UPDATE,
    by the summary that takes it, so two daemons never summarize it twice."""

    __table_args__ = (Index("ix_slackdeferred_due", "claim", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    channel: str
    kind: str
    text: str
    dedupe_key: str = Field(unique=True)  # the alert's own: the same alert waits once
    created_at: datetime
    due_at: datetime
    claim: str | None = None
    summarized_at: datetime | None = None
