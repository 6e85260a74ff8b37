"""Everything that can happen to a ticket, as pure functions.

Each takes a :class:`Ticket`, the input and ``now`` and returns a
:class:`Change` (the ticket after, and the typed events saying why); nothing
here reads or writes anything. The rules every path must agree on live here
once: a customer's mail reopens a pending, solved or (recently) closed
ticket; the first public agent reply is the first response and opens a new
ticket; a rule fills routing fields a ticket does not have yet; a merged
ticket is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from inboxd.core.desk import events as ev
from inboxd.core.desk.ticket import Change, Ticket, unchanged
from inboxd.core.desk.vocab import REOPENABLE, Status, may_transition, priority_rank


class TransitionError(ValueError):
    """A change the ticket's state does not allow (e.g. anything after a merge)."""


def record(ticket: Ticket, *events: ev.Event) -> Change:
    """Events that change no field (a notification queued, an ack skipped, ...)."""
    return Change(ticket, ticket, tuple(events))


def _with_status(ticket: Ticket, to: str, now: datetime) -> Ticket:
    after = replace(ticket, status=to, status_changed_at=now)
    if to == Status.SOLVED:
        after = replace(after, solved_at=now)
    elif to == Status.CLOSED:
        after = replace(after, closed_at=now)
    if ticket.status in REOPENABLE and to not in REOPENABLE and to != Status.MERGED:
        after = replace(after, reopened_count=ticket.reopened_count + 1)
    return after


def change_status(
    ticket: Ticket, to: str, *, actor: str, now: datetime, why: str | None = None
) -> Change:
    """Move to status ``to``; the same status again changes nothing."""
    if not may_transition(ticket.status, to):
        raise TransitionError(f"a {ticket.status} ticket cannot become {to}")
    if to == ticket.status:
        return unchanged(ticket)
    event = ev.StatusChanged(at=now, actor=actor, from_=ticket.status, to=to, why=why)
    return Change(ticket, _with_status(ticket, to, now), (event,))


def customer_mail(ticket: Ticket, *, now: datetime, person: bool, reopen: bool) -> Change:
    """A mail joined the ticket. ``person``: a human wrote it (not an auto-reply,
    a list or a bounce); ``reopen``: threading decided it reopens a solved or
    closed ticket. A person's mail also ends a wait on the customer."""
    touched = (
        replace(ticket, updated_at=now, last_customer_mail_at=now)
        if person
        else replace(ticket, updated_at=now)
    )
    change = Change(ticket, touched)
    if reopen or (person and ticket.status == Status.PENDING):
        change = change.then(
            change_status(touched, Status.OPEN, actor=ev.SYSTEM, now=now, why="customer replied")
        )
    return change


def agent_replied(
    ticket: Ticket,
    *,
    actor: str,
    now: datetime,
    message: int,
    message_id: str,
    to: Sequence[str] = (),
    canned: str | None = None,
    via: str | None = None,
    sent_at: str | None = None,
) -> Change:
    """A public agent answer: the first one is the first response; a new ticket opens."""
    event = ev.AgentReplied(
        at=now,
        actor=actor,
        message=message,
        message_id=message_id,
        first_response=not ticket.answered,
        to=tuple(to),
        canned=canned,
        via=via,
        sent_at=sent_at,
    )
    answered = replace(ticket, first_agent_reply_at=ticket.first_agent_reply_at or now)
    change = Change(ticket, answered, (event,))
    if ticket.status == Status.NEW:
        change = change.then(
            change_status(answered, Status.OPEN, actor=actor, now=now, why="agent replied")
        )
    return change


def acknowledged(
    ticket: Ticket, *, to: str, message_id: str, template: str, now: datetime
) -> Change:
    """The customer was told we have their mail (once per ticket)."""
    event = ev.Acknowledged(at=now, to=to, message_id=message_id, template=template)
    return Change(ticket, replace(ticket, acknowledged=True), (event,))


def note(ticket: Ticket, *, actor: str, now: datetime, message: int) -> Change:
    return record(ticket, ev.NoteAdded(at=now, actor=actor, message=message))


def assign_agent(
    ticket: Ticket, name: str, *, teams: Sequence[str], actor: str, now: datetime
) -> Change:
    """Give the ticket to agent ``name``; it moves to the agent's first team unless
    it is already in one of ``teams``."""
    after = replace(ticket, assignee=name, updated_at=now)
    if teams and ticket.team not in teams:
        after = replace(after, team=teams[0])
    return Change(ticket, after, (ev.Assigned(at=now, actor=actor, to=name),))


def assign_team(ticket: Ticket, team: str, *, actor: str, now: datetime) -> Change:
    """Hand the ticket to a team, nobody in particular."""
    after = replace(ticket, team=team, assignee=None, updated_at=now)
    return Change(ticket, after, (ev.Assigned(at=now, actor=actor, team=team),))


def set_priority(ticket: Ticket, priority: str, *, actor: str, now: datetime) -> Change:
    after = replace(ticket, priority=priority, updated_at=now)
    return Change(ticket, after, (ev.PriorityChanged(at=now, actor=actor, to=priority),))


def retag(
    ticket: Ticket,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    actor: str,
    now: datetime,
) -> Change:
    """Add then remove tags, keeping their order; one event with the tags after."""
    tags = list(ticket.tags)
    tags += [t for t in dict.fromkeys(add) if t not in tags]
    tags = [t for t in tags if t not in remove]
    after = replace(ticket, tags=tuple(tags), updated_at=now)
    return Change(ticket, after, (ev.TagsChanged(at=now, actor=actor, tags=tuple(tags)),))


def merge(ticket: Ticket, target: Ticket, *, actor: str, now: datetime) -> tuple[Change, Change]:
    """Fold ``ticket`` into ``target``: (the merged ticket's change, the target's)."""
    if ticket.id == target.id:
        raise TransitionError("a ticket cannot be merged into itself")
    if ticket.status == Status.MERGED or target.status == Status.MERGED:
        raise TransitionError("a merged ticket cannot take part in another merge")
    merged = replace(
        _with_status(ticket, Status.MERGED, now), merged_into=target.id, updated_at=now
    )
    return (
        Change(ticket, merged, (ev.Merged(at=now, actor=actor, into=target.id),)),
        record(target, ev.MergedFrom(at=now, actor=actor, ticket=ticket.id)),
    )


# --- rules --------------------------------------------------------------------------


class DecisionLike(Protocol):
    """What a rule evaluation decided (``core.rules.Decision``)."""

    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def untags(self) -> tuple[str, ...]: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def vip(self) -> bool: ...
    @property
    def team(self) -> str | None: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def sla(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...


class HitLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...
    @property
    def applied(self) -> tuple[str, ...]: ...
    @property
    def overridden(self) -> tuple[str, ...]: ...


def team_to_staff(ticket: Ticket, decision: DecisionLike) -> str | None:
    """The team the decision routes an unowned ticket to without naming an agent:
    the caller picks one of its agents (round robin, least open) and passes it
    to :func:`apply_rules`."""
    if ticket.team or ticket.assignee or decision.assignee or not decision.team:
        return None
    return decision.team


def apply_rules(
    ticket: Ticket,
    decision: DecisionLike,
    hits: Sequence[HitLike],
    *,
    now: datetime,
    picked: str | None = None,
) -> Change:
    """Apply a rule decision. Scalars the ticket already has (team, assignee, SLA
    policy) are kept: rules fill what is empty, so a reply never re-routes a
    ticket an agent already owns. Priority only rises; tags accumulate and
    untags remove; VIP is sticky. ``picked``: the agent chosen for
    :func:`team_to_staff`'s team."""
    tags = list(ticket.tags)
    tags += [t for t in dict.fromkeys(decision.tags) if t not in tags]
    tags = [t for t in tags if t not in decision.untags]
    moved: dict[str, Any] = {"tags": tuple(tags)}  # one replace: each one copies the ticket
    if decision.priority and priority_rank(decision.priority) > priority_rank(ticket.priority):
        moved["priority"] = decision.priority
    if decision.vip:
        moved["vip"] = True
    if decision.team and not ticket.team:
        moved["team"] = decision.team
    if decision.assignee and not ticket.assignee:
        moved["assignee"] = decision.assignee
    elif picked and not ticket.assignee:
        moved["assignee"] = picked
    if decision.sla and not ticket.sla_policy:
        moved["sla_policy"] = decision.sla
    after = replace(ticket, **moved)
    events: list[ev.Event] = [
        ev.RuleApplied(
            at=now,
            actor=ev.rule(hit.rule),
            file=hit.file,
            line=hit.line,
            reasons=tuple(hit.reasons),
            applied=tuple(hit.applied),
            overridden=tuple(hit.overridden),
        )
        for hit in hits
    ]
    if after.assignee != ticket.assignee and after.assignee:
        events.append(ev.Assigned(at=now, actor=ev.SYSTEM, to=after.assignee))
    change = Change(ticket, after, tuple(events))
    status = decision.status
    if status and status != after.status and may_transition(after.status, status):
        change = change.then(change_status(after, status, actor=ev.SYSTEM, now=now, why="rule"))
    return change


# --- SLA holds (Slack buttons) -------------------------------------------------------


def snooze_stages(ticket: Ticket, until: datetime, *, actor: str, now: datetime) -> Change:
    """Hold the ticket's SLA stages until ``until`` (``core.sla.holds``)."""
    if ticket.status == Status.MERGED:
        raise TransitionError("a merged ticket has no SLA stages to snooze")
    return record(ticket, ev.SlaSnoozed(at=now, actor=actor, until=until.isoformat()))


def acknowledge_breach(ticket: Ticket, *, actor: str, now: datetime) -> Change:
    """Someone took charge of the ticket's breaches: their further stages are skipped."""
    if ticket.status == Status.MERGED:
        raise TransitionError("a merged ticket has no SLA stages to acknowledge")
    return record(ticket, ev.SlaAcknowledged(at=now, actor=actor))


# --- satisfaction surveys ------------------------------------------------------------


def survey_sent(ticket: Ticket, *, survey: int, to: str, message_id: str, now: datetime) -> Change:
    return record(ticket, ev.SurveySent(at=now, survey=survey, to=to, message_id=message_id))


def rated(
    ticket: Ticket,
    *,
    survey: int,
    rating: str,
    via: str,
    message: int,
    sender: str,
    comment: str,
    now: datetime,
    reopen_on_bad: bool = False,
) -> Change:
    """A satisfaction rating; a bad one reopens a solved ticket when ``reopen_on_bad``."""
    event = ev.SurveyRated(
        at=now,
        actor=ev.customer(sender) if sender else ev.SYSTEM,
        survey=survey,
        rating=rating,
        via=via,
        message=message,
        sender=sender,
        comment=comment[:2000],
    )
    change = record(ticket, event)
    if reopen_on_bad and rating == "bad" and ticket.status in REOPENABLE:
        change = change.then(
            change_status(ticket, Status.OPEN, actor=ev.SYSTEM, now=now, why="bad rating")
        )
    return change
