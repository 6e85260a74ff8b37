"""The one writer of tickets: ticket rows, their participants and their event log.

``load`` returns a :class:`core.desk.Ticket`; ``save`` writes a
:class:`core.desk.Change` (the changed columns in one UPDATE, its events in
one INSERT); ``record`` appends events that change no field. Nothing else in
inboxd writes a ``ticket`` or ``event`` row, so every change to a ticket has
gone through a transition in ``core.desk`` and left its typed events.
Also here: the reads about tickets as a whole (grouping, least-open counts,
round robin) and the CLI's listings, which return typed rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from inboxd.core.desk import OPEN_STATUSES, STORED_FIELDS, Change, Status, Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk.vocab import REOPENABLE
from inboxd.core.thread import TicketSnapshot
from inboxd.db import behind
from inboxd.db.fastexec import Prepared, PreparedQuery
from inboxd.db.recent import RecentTimes
from inboxd.db.sql import DB, conn_of, in_values, insert_ignore, one_of, utc
from inboxd.db.tables import AssignmentCursor, Event, Participant
from inboxd.db.tables import Ticket as TicketRow

_TICKET_T = TicketRow.__table__  # type: ignore[attr-defined]
_EVENT_T = Event.__table__  # type: ignore[attr-defined]
_PART_T = Participant.__table__  # type: ignore[attr-defined]

COLUMNS = ("id", *STORED_FIELDS)  # a ticket row as ``from_row`` reads it
_DATETIMES = frozenset(name for name in STORED_FIELDS if name.endswith("_at"))
_LOAD = PreparedQuery(
    lambda _n: sa_select(*(_TICKET_T.c[name] for name in COLUMNS)).where(
        _TICKET_T.c.id == bindparam("tid")
    )
)
_PEOPLE = PreparedQuery(
    lambda _n: sa_select(_PART_T.c.email).where(_PART_T.c.ticket_id == bindparam("tid"))
)
_INSERT_TICKET = Prepared(lambda _d: _TICKET_T.insert().returning(_TICKET_T.c.id))
_UPDATE_TICKET = Prepared(lambda _d: _TICKET_T.update().where(_TICKET_T.c.id == bindparam("tid")))
_INSERT_EVENT = Prepared(lambda _d: _EVENT_T.insert())
_MERGE_HOPS = 16


def from_row(row: Sequence[Any], participants: frozenset[str]) -> Ticket:
    """The ticket value of a row of ``COLUMNS`` (a read that joins in more than tickets)."""
    return Ticket(participants=participants, **_as_read(dict(zip(COLUMNS, row, strict=True))))


def _as_read(values: dict[str, Any]) -> dict[str, Any]:
    """Column values (all of them, or those just written) as a read gives them back."""
    for name in _DATETIMES.intersection(values):
        values[name] = utc(values[name])
    if "tags" in values:
        values["tags"] = tuple(values["tags"] or ())
    if "status" in values:
        values["status"] = Status(values["status"])
    if "reopened_count" in values:
        values["reopened_count"] = int(values["reopened_count"] or 0)
    return values


def load(db: DB, ticket_id: int, *, participants: frozenset[str] | None = None) -> Ticket | None:
    """The ticket as a value. ``participants``: the addresses when the caller has
    them already (threading read them), else they are read too."""
    conn = conn_of(db)
    rows = _LOAD.all(conn, {"tid": ticket_id})
    if not rows:
        return None
    if participants is None:
        people = _PEOPLE.all(conn, {"tid": ticket_id})
        participants = frozenset(str(p[0]) for p in people)
    return from_row(rows[0], participants)


def load_many(db: DB, ticket_ids: Sequence[int]) -> dict[int, Ticket]:
    """Several tickets in one query, for batch work (the SLA sweep); their
    ``participants`` are left empty: nothing that reads them loads this way."""
    if not ticket_ids:
        return {}
    rows = db.execute(
        sa_select(*(_TICKET_T.c[name] for name in COLUMNS)).where(
            _TICKET_T.c.id.in_(list(ticket_ids))
        )
    )
    return {int(row[0]): from_row(tuple(row), frozenset()) for row in rows}


def resolve(db: DB, ticket_id: int) -> Ticket | None:
    """The ticket, following merges to the one that survives (bounded)."""
    current = load(db, ticket_id)
    seen: set[int] = set()
    while current is not None and current.merged_into and current.id not in seen:
        seen.add(current.id)
        if len(seen) > _MERGE_HOPS:
            break
        current = load(db, current.merged_into)
    return current


def create(
    db: DB,
    *,
    subject: str,
    normalized_subject: str,
    requester: str,
    requester_name: str,
    mailbox: str,
    now: datetime,
    source: str,
    actor: str,
    follow_up_of: int | None = None,
    person: bool = True,
) -> Ticket:
    """A new ticket and its ``created`` event. ``person``: a human wrote the mail
    that opens it (its time is the last customer mail)."""
    values: dict[str, Any] = {
        "subject": subject[:998],
        "normalized_subject": normalized_subject[:998],
        "status": Status.NEW.value,
        "requester": requester,
        "requester_name": requester_name,
        "mailbox": mailbox,
        "created_at": now,
        "updated_at": now,
        "status_changed_at": now,
        "previous_ticket_id": follow_up_of,
        "tags": [],
        "last_customer_mail_at": now if person else None,
    }
    ticket_id = int(_INSERT_TICKET.run(conn_of(db), values).fetchone()[0])
    if requester:
        _CREATED_BY.add(requester, now)
    record(db, ticket_id, ev.Created(at=now, actor=actor, source=source, follow_up_of=follow_up_of))
    values.pop("tags")
    ticket = Ticket(
        id=ticket_id, status=Status.NEW, **{k: v for k, v in values.items() if k != "status"}
    )
    snapshots = behind.memo(SNAPSHOTS)
    if snapshots is not None:  # the batch's later mail on it finds it here (no read)
        snapshots[ticket_id] = _Unapplied(ticket, {})
    return ticket


def _column_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def save(db: DB, change: Change) -> None:
    """Write a change: its changed columns, the addresses it added to the ticket
    (as customers), then its events, in the caller's transaction. A change that
    may move an SLA clock makes the ticket due for the sweep (``sla_due_at``),
    which recomputes its clocks from the event log."""
    fields = change.fields
    if change.moves_clocks and (change.after.sla_policy or "sla_policy" in fields):
        fields["sla_due_at"] = change.at if change.after.sla_policy else None
    solve = _solve_time(change)
    if solve is not None:
        fields["survey_due_at"] = solve  # the survey job looks after its delay
    if fields:
        values = {k: _column_value(v) for k, v in fields.items()}
        _UPDATE_TICKET.write(conn_of(db), {**values, "tid": change.ticket_id})
        _move_open_counts(change)
        pending = _rewrite_snapshot(change.ticket_id)
        if pending is not None:
            pending.saved.append(change)
    added = change.after.participants - change.before.participants
    if added:
        add_participants(db, change.ticket_id, [Person(e, "", "customer") for e in sorted(added)])
    for event in change.events:
        if isinstance(event, ev.ParticipantAccepted):
            accept_participant(db, change.ticket_id, event.email)
    record(db, change.ticket_id, *change.events)


_WORKING: frozenset[str] = frozenset(s.value for s in OPEN_STATUSES)


def _solve_time(change: Change) -> datetime | None:
    """When the change solved the ticket (into solved or closed from a working status)."""
    solves = [
        e.at
        for e in change.events
        if isinstance(e, ev.StatusChanged) and e.to in REOPENABLE and e.from_ in _WORKING
    ]
    return solves[-1] if solves else None


def record(db: DB, ticket_id: int, *events: ev.Event) -> None:
    """Append events to the ticket's log (rows are never updated or deleted)."""
    record_many(db, [(ticket_id, e) for e in events])


def record_many(db: DB, items: Sequence[tuple[int, ev.Event]]) -> None:
    """Append events to several tickets' logs in one statement (batch work); inside
    an ingest batch (``db.behind.batch``) they wait for the batch's one statement,
    and reads of the log (``typed_events_of``) see them."""
    rows = [
        {"ticket_id": ticket_id, "at": e.at, "actor": e.actor, "kind": e.kind, "data": e.data()}
        for ticket_id, e in items
    ]
    _HELD_EVENTS.add(db, rows)


def _write_events(db: DB, rows: Sequence[dict[str, Any]]) -> None:
    if len(rows) == 1:
        _INSERT_EVENT.write(conn_of(db), rows[0])
    elif rows:
        _INSERT_EVENT.run_many(conn_of(db), rows)


# the events of an ingest batch, written together at its end
_HELD_EVENTS = behind.Held("events", _write_events)


# --- participants ---------------------------------------------------------------------


class Person(NamedTuple):
    email: str
    name: str
    # requester | customer (both receive replies) | pending (joined by reference,
    # not a recipient until an agent accepts them) | agent
    role: str


RECIPIENT_ROLES = ("requester", "customer")


SNAPSHOTS = "ticket_snapshots"  # the batch memo: ticket id -> its snapshot (db.messages)


def snapshot_of(ticket: Ticket, roles: Mapping[str, str]) -> TicketSnapshot:
    """What threading needs of a ticket, from its value and its addresses' roles."""
    people = frozenset(roles)
    return TicketSnapshot(
        ticket.id,
        ticket.status,
        ticket.status_changed_at,
        people,
        ticket.merged_into,
        created_at=ticket.created_at,
        requester=ticket.requester,
        mailbox=ticket.mailbox,
        answered=ticket.first_agent_reply_at is not None,
        customers=frozenset(e for e, r in roles.items() if r in RECIPIENT_ROLES),
        ticket=ticket if ticket.participants == people else replace(ticket, participants=people),
        roles=roles,
    )


@dataclass(slots=True)
class _Unapplied:
    """A ticket in the batch's memo and the batch's writes to it since: most tickets
    a batch writes are not read again in it, so a write only notes itself and the
    snapshot is made when the ticket is read (``batch_snapshot``)."""

    ticket: Ticket
    roles: Mapping[str, str]
    saved: list[Change] = field(default_factory=list)  # each wrote its changed fields
    people: list[Person] = field(default_factory=list)  # inserted (a known one keeps its role)
    accepted: list[str] = field(default_factory=list)  # made customers

    def applied(self) -> TicketSnapshot:
        written: dict[str, Any] = {}
        for change in self.saved:
            written.update((k, getattr(change.after, k)) for k in change.fields)
        roles = dict(self.roles)
        for person in self.people:
            roles.setdefault(person.email, person.role)
        for email in self.accepted:  # after the inserts: accepting inserts first
            if roles.get(email) not in RECIPIENT_ROLES:
                roles[email] = "customer"
        ticket = replace(self.ticket, **_as_read(written)) if written else self.ticket
        return snapshot_of(ticket, roles)


def batch_snapshot(memo: dict[int, Any], ticket_id: int) -> TicketSnapshot | None:
    """The ticket's snapshot in the batch's memo (``SNAPSHOTS``), the batch's writes
    to it applied; None when the memo has none."""
    found = memo.get(ticket_id)
    if isinstance(found, _Unapplied):
        found = memo[ticket_id] = found.applied()
    return found


def _rewrite_snapshot(ticket_id: int) -> _Unapplied | None:
    """The batch writes the ticket: its snapshot in the batch's memo is to take the
    same change (the caller notes it on what this returns), so the batch's next
    mail on it need not read it again. Every write of a snapshot's columns and
    people goes through this module, and the memo only holds tickets read locked
    or created in the batch, so it stays what the database holds. None: the memo
    has no snapshot of it."""
    snapshots = behind.memo(SNAPSHOTS)
    if not snapshots:
        return None
    found = snapshots.get(ticket_id)
    if found is None or isinstance(found, _Unapplied):
        return found
    if found.ticket is None:
        del snapshots[ticket_id]
        return None
    pending = snapshots[ticket_id] = _Unapplied(found.ticket, found.roles)
    return pending


def add_participants(db: DB, ticket_id: int, people: Iterable[Person]) -> None:
    """An address already on the ticket keeps its role."""
    added = [p for p in people if p.email]
    rows = [
        {"ticket_id": ticket_id, "email": p.email, "name": p.name, "role": p.role} for p in added
    ]
    insert_ignore(db, Participant, rows)
    pending = _rewrite_snapshot(ticket_id)
    if pending is not None:
        pending.people += added


def customer_participants(db: DB, ticket_id: int) -> list[Person]:
    """The requester and customer-side participants (the recipients), oldest first."""
    rows = db.execute(
        sa_select(_PART_T.c.email, _PART_T.c.name, _PART_T.c.role)
        .where(_PART_T.c.ticket_id == ticket_id, _PART_T.c.role.in_(RECIPIENT_ROLES))
        .order_by(_PART_T.c.id)
    ).all()
    return [Person(r.email, r.name, r.role) for r in rows]


_ROLES = PreparedQuery(
    lambda _n: sa_select(_PART_T.c.email, _PART_T.c.role).where(
        _PART_T.c.ticket_id == bindparam("tid")
    )
)


def participant_roles(db: DB, ticket_id: int) -> dict[str, str]:
    """Every address on the ticket -> its role (who may add recipients, who is pending).
    Read for every stored mail: a prepared statement."""
    return {str(email): str(role) for email, role in _ROLES.all(conn_of(db), {"tid": ticket_id})}


def accept_participant(db: DB, ticket_id: int, email: str) -> None:
    """An agent's ``#cc``: ``email`` receives the ticket's replies from now on (a pending
    participant becomes a customer; a new address is added as one)."""
    add_participants(db, ticket_id, [Person(email, "", "customer")])
    db.execute(
        update(_PART_T)
        .where(
            _PART_T.c.ticket_id == ticket_id,
            _PART_T.c.email == email,
            _PART_T.c.role.notin_(RECIPIENT_ROLES),
        )
        .values(role="customer")
    )
    pending = _rewrite_snapshot(ticket_id)
    if pending is not None:
        pending.accepted.append(email)


def copy_customers(db: DB, source_id: int, target_id: int) -> None:
    """A merge: the merged ticket's customers are kept on the target as ``pending``, on
    record but not recipients of the target's replies until an agent's ``#cc`` (a merge
    joins threads, not audiences)."""
    people = customer_participants(db, source_id)
    add_participants(db, target_id, [Person(p.email, p.name, "pending") for p in people])


def related_ids(db: DB, ticket_id: int) -> frozenset[int]:
    """The tickets already linked to this one as related (``related`` events), so a
    thread that keeps citing both links them once. Read only when a mail joins two."""
    # through typed_events: it also sees the events an ingest batch holds back
    found = typed_events(db, ticket_id)
    return frozenset(e.ticket for e in found if isinstance(e, ev.Related))


# --- tickets as a whole -------------------------------------------------------------


def find_group_ticket(
    db: DB, requester: str, normalized_subject: str, since: datetime
) -> int | None:
    """An open ticket of the same sender and subject touched since ``since``."""
    return db.execute(
        select(TicketRow.id)
        .where(
            TicketRow.requester == requester,
            TicketRow.normalized_subject == normalized_subject,
            col(TicketRow.status).in_([s.value for s in OPEN_STATUSES]),
            TicketRow.updated_at >= since,
            col(TicketRow.merged_into).is_(None),
        )
        .order_by(col(TicketRow.id).desc())
        .limit(1)
    ).scalar_one_or_none()


def _at_domain(domain: str) -> str:
    """LIKE pattern for any address at ``domain`` (``!`` escapes, the same on every database)."""
    literal = domain.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return "%@" + literal


_COUNT_BY_REQUESTER = PreparedQuery(
    lambda _n: sa_select(func.count()).where(
        _TICKET_T.c.requester == bindparam("who"), _TICKET_T.c.created_at >= bindparam("since")
    )
)


# the new-ticket cap's counts by requester, read for a whole ingest batch
_CREATED_BY = RecentTimes(
    "tickets_by_requester",
    PreparedQuery(
        lambda n: sa_select(_TICKET_T.c.requester, _TICKET_T.c.created_at).where(
            one_of(_TICKET_T.c.requester, n), _TICKET_T.c.created_at >= bindparam("since")
        )
    ),
)


def prefetch_created(db: DB, requesters: Iterable[str], *, since: datetime) -> None:
    """Inside an ingest batch: read when each of ``requesters`` opened tickets since
    ``since``, in one query, for ``count_created`` by requester (``db.recent``)."""
    _CREATED_BY.prefetch(db, [r for r in requesters if r], since)


def count_created(db: DB, *, since: datetime, requester: str = "", domain: str = "") -> int:
    """Tickets opened since ``since`` by ``requester``, or by any address at ``domain``
    (the new-ticket caps). Held tickets have no requester and never count.

    By requester it is a range of ``ix_ticket_requester``; by domain a scan of
    the ticket rows, which are small and carry no mail (an index on
    ``created_at`` would make it a range).
    """
    if requester:  # on every new ticket: the batch's read, else a range of the index
        known = _CREATED_BY.count(requester, since)
        if known is not None:
            return known
        rows = _COUNT_BY_REQUESTER.all(conn_of(db), {"who": requester, "since": since})
        return int(rows[0][0])
    where: list[Any] = [col(TicketRow.created_at) >= since]
    if domain:
        where.append(col(TicketRow.requester).like(_at_domain(domain), escape="!"))
    else:
        where.append(TicketRow.requester != "")
    return int(db.execute(select(func.count()).select_from(TicketRow).where(*where)).scalar_one())


def newest_open_ticket(db: DB, requester: str) -> int | None:
    """The requester's newest open, unmerged ticket: where a mail over a new-ticket cap goes."""
    return db.execute(
        select(TicketRow.id)
        .where(
            TicketRow.requester == requester,
            col(TicketRow.status).in_([s.value for s in OPEN_STATUSES]),
            col(TicketRow.merged_into).is_(None),
        )
        .order_by(col(TicketRow.id).desc())
        .limit(1)
    ).scalar_one_or_none()


_OPEN_COUNTS = PreparedQuery(
    lambda n: (
        sa_select(_TICKET_T.c.assignee, func.count())
        .where(
            one_of(_TICKET_T.c.assignee, n),
            _TICKET_T.c.status.in_([bindparam(f"s{i}") for i in range(len(OPEN_STATUSES))]),
        )
        .group_by(_TICKET_T.c.assignee)
    )
)
_OPEN_STATUS_PARAMS = {f"s{i}": status.value for i, status in enumerate(OPEN_STATUSES)}


def open_ticket_counts(db: DB, agents: Sequence[str]) -> dict[str, int]:
    """Open tickets per agent (least-open assignment, on every new ticket of a team).

    An index-only count over ix_ticket_assignee_status, whose cost grows with the
    open tickets; an ingest batch counts each agent once and keeps the count true
    through every change of the batch (``save``, the only writer, moves it)."""
    known = behind.memo("open_counts")
    if known is not None and all(a in known for a in agents):
        return {a: known[a] for a in agents}
    counts = dict.fromkeys(agents, 0)
    agent_params, shape = in_values(agents, conn_of(db))
    params = {**agent_params, **_OPEN_STATUS_PARAMS}
    for assignee, n in _OPEN_COUNTS.all(conn_of(db), params, shape):
        counts[assignee] = int(n)
    if known is not None:
        known.update(counts)
    return counts


def _move_open_counts(change: Change) -> None:
    """Keep a batch's remembered open counts (``open_ticket_counts``) true."""
    known = behind.memo("open_counts")
    if not known:
        return
    before, after = change.before, change.after
    was = before.assignee if before.status in OPEN_STATUSES else None
    now = after.assignee if after.status in OPEN_STATUSES else None
    if was == now:
        return
    if was in known:
        known[was] -= 1
    if now in known:
        known[now] += 1


def round_robin_next(db: DB, team: str, agents: Sequence[str]) -> str | None:
    """The agent after the team's last pick, advancing the cursor in this transaction.

    The cursor row is created first and then read locked (FOR UPDATE on
    PostgreSQL; SQLite's write lock already serialises writers and SQLite renders
    no FOR UPDATE), so two daemons assigning at once never hand two tickets to the
    same slot."""
    if not agents:
        return None
    insert_ignore(db, AssignmentCursor, [{"team": team, "last_agent": ""}])
    conn = conn_of(db)
    found = _CURSOR_READ.all(conn, {"cursor_team": team})
    last = found[0][0] if found else None
    nxt = agents[(agents.index(last) + 1) % len(agents)] if last in agents else agents[0]
    _CURSOR_MOVE.write(conn, {"cursor_team": team, "last_agent": nxt})
    return nxt


_CURSOR_T = AssignmentCursor.__table__  # type: ignore[attr-defined]
_CURSOR_READ = PreparedQuery(
    lambda _n: (
        sa_select(_CURSOR_T.c.last_agent)
        .where(_CURSOR_T.c.team == bindparam("cursor_team"))
        .with_for_update()
    )
)
_CURSOR_MOVE = Prepared(
    lambda _d: _CURSOR_T.update().where(_CURSOR_T.c.team == bindparam("cursor_team"))
)


# --- the CLI's reads (ORM rows) ----------------------------------------------------------


def get_row(session: Session, ticket_id: int) -> TicketRow | None:
    return session.get(TicketRow, ticket_id)


def list_rows(
    session: Session, status: str | None = None, limit: int = 1000, after: int = 0
) -> list[TicketRow]:
    """Up to ``limit`` tickets by id, those after ``after`` (a page that stays put)."""
    stmt = select(TicketRow).where(col(TicketRow.id) > after).order_by(col(TicketRow.id))
    if status:
        stmt = stmt.where(TicketRow.status == status)
    return list(session.execute(stmt.limit(limit)).scalars())


def participant_rows(session: Session, ticket_id: int) -> list[Participant]:
    return list(
        session.execute(
            select(Participant)
            .where(Participant.ticket_id == ticket_id)
            .order_by(col(Participant.id))
        ).scalars()
    )


def event_rows(session: Session, ticket_id: int) -> list[Event]:
    return list(
        session.execute(
            select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id))
        ).scalars()
    )


def typed_events(db: DB, ticket_id: int) -> list[ev.Event]:
    """The ticket's log as typed events, oldest first (kinds this version does not
    know are left out): what SLA clocks and reports compute from."""
    return typed_events_of(db, [ticket_id]).get(ticket_id, [])


def typed_events_of(db: DB, ticket_ids: Sequence[int]) -> dict[int, list[ev.Event]]:
    """The logs of several tickets in one query (batch work such as the SLA sweep)."""
    rows = db.execute(
        sa_select(
            _EVENT_T.c.ticket_id, _EVENT_T.c.kind, _EVENT_T.c.at, _EVENT_T.c.actor, _EVENT_T.c.data
        )
        .where(_EVENT_T.c.ticket_id.in_(list(ticket_ids)))
        .order_by(_EVENT_T.c.id)
    )
    found = [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
    wanted = set(ticket_ids)
    found += [
        (p["ticket_id"], p["kind"], p["at"], p["actor"], p["data"])
        for p in _HELD_EVENTS.held()
        if p["ticket_id"] in wanted
    ]
    out: dict[int, list[ev.Event]] = {int(i): [] for i in ticket_ids}
    for ticket_id, kind, at, actor, data in found:
        when = utc(at)
        assert when is not None
        event = ev.decode(kind, when, actor, data or {})
        if event is not None:
            out[int(ticket_id)].append(event)
    return out
