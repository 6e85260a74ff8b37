"""One ticket's life in the instants a report measures, read from its typed events.

Public comments are the customer's mails (``message`` events of kind
``normal``) and the public agent replies (``agent_reply``); notes,
acknowledgements, auto-replies and bounces are not. A ticket an agent opened
(its ``created`` actor is an agent) has that opening as its first public
comment, so its first-reply clock starts at the second one. docs/reports.md
states every definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from inboxd.core.desk import events as ev
from inboxd.core.desk.vocab import OPEN_STATUSES, REOPENABLE, Status

DONE = frozenset(str(s) for s in REOPENABLE)  # solved, closed
WORKING = frozenset(str(s) for s in OPEN_STATUSES)  # new, open, pending
# the only kinds a report reads; the database may leave the others out
KINDS: tuple[str, ...] = (
    ev.Created.KIND,
    ev.MessageStored.KIND,
    ev.StatusChanged.KIND,
    ev.AgentReplied.KIND,
    ev.Merged.KIND,
    ev.SurveySent.KIND,
    ev.SurveyRated.KIND,
)

Span = tuple[datetime, datetime | None]  # an end of None: still waiting


@dataclass(frozen=True, slots=True)
class TicketFacts:
    created_at: datetime | None
    agent_opened: bool
    first_response: Span | None  # None: the clock has not started (agent-opened, no answer)
    waits: tuple[Span, ...]  # next-response waits after the first reply
    replies: tuple[datetime, ...]  # public agent replies
    solves: tuple[datetime, ...]  # into solved or closed from a working status
    reopens: tuple[datetime, ...]  # out of solved or closed into a working status
    statuses: tuple[tuple[datetime, str], ...]  # every status change, in order
    surveys: tuple[datetime, ...] = ()  # satisfaction surveys sent
    ratings: tuple[tuple[datetime, str], ...] = ()  # (when, good | bad), a later one replaces

    def status_at(self, at: datetime) -> str | None:
        """The status just before instant ``at``, from the changes before it
        (None when the ticket did not exist yet)."""
        if self.created_at is None or self.created_at >= at:
            return None
        current = str(Status.NEW)
        for when, to in self.statuses:
            if when >= at:
                break
            current = to
        return current

    def last_solve(self, before: datetime) -> datetime | None:
        """The latest solve before ``before``."""
        found = [s for s in self.solves if s < before]
        return found[-1] if found else None


def _customer_comment(event: ev.Event) -> bool:
    return (
        isinstance(event, ev.MessageStored)
        and event.kind_ == "normal"
        and not event.actor.startswith("agent:")
    )


def ticket_facts(events: Sequence[ev.Event]) -> TicketFacts:
    """The facts of one ticket's log (events in stored order; same-instant order kept)."""
    created: datetime | None = None
    agent_opened = False
    fr_start: datetime | None = None
    fr_stop: datetime | None = None
    waits: list[list[datetime | None]] = []
    replies: list[datetime] = []
    solves: list[datetime] = []
    reopens: list[datetime] = []
    statuses: list[tuple[datetime, str]] = []
    surveys: list[datetime] = []
    ratings: list[tuple[datetime, str]] = []
    status = str(Status.NEW)
    for event in sorted(events, key=lambda e: e.at):
        if isinstance(event, ev.Created):
            if created is None:
                created = event.at
                agent_opened = event.actor.startswith("agent:")
                fr_start = None if agent_opened else created
        elif created is None:
            continue
        elif _customer_comment(event):
            if fr_start is None:
                fr_start = event.at
            elif fr_stop is not None and not (waits and waits[-1][1] is None):
                waits.append([event.at, None])
        elif isinstance(event, ev.AgentReplied):
            at = max(event.counted_at, created)
            replies.append(at)
            if fr_start is not None and fr_stop is None:
                fr_stop = max(at, fr_start)
            elif waits and waits[-1][1] is None:
                start = waits[-1][0]
                assert start is not None
                waits[-1][1] = max(at, start)
        elif isinstance(event, ev.StatusChanged):
            if event.to in DONE and status not in DONE:
                solves.append(event.at)
            elif status in DONE and event.to in WORKING:
                reopens.append(event.at)
            statuses.append((event.at, event.to))
            status = event.to
        elif isinstance(event, ev.SurveySent):
            surveys.append(event.at)
        elif isinstance(event, ev.SurveyRated):
            ratings.append((event.at, event.rating))
    first = (fr_start, fr_stop) if fr_start is not None else None
    return TicketFacts(
        created,
        agent_opened,
        first,
        tuple((a, b) for a, b in waits if a is not None),
        tuple(replies),
        tuple(solves),
        tuple(reopens),
        tuple(statuses),
        tuple(surveys),
        tuple(ratings),
    )
