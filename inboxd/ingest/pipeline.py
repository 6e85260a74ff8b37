"""The one sequence every inbound mail goes through, whichever way it came in.

parse, then the steps ``STEPS`` names in order (dedupe, intercept, thread,
join, judge, place, route, store, react), inside the caller's transaction and a
savepoint per mail: a mail that fails anywhere after the
bytes were read is quarantined with the reason in the same transaction, so
nothing is dropped and one bad mail never blocks the rest. Only a failure of
the database itself propagates (then nothing is committed and IMAP refetches /
LMTP answers 4xx).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from inboxd.core.desk import Ticket, transitions
from inboxd.core.desk import events as ev
from inboxd.core.inbound import Arrival, Outcome, Source, StoredMail
from inboxd.core.loops import CAP_WINDOW, CapTrip, HourlyCaps, held_subject, ticket_cap
from inboxd.core.model import Direction, MatchedBy, MessageKind, ParsedMessage, ParseFailure
from inboxd.core.parse import parse_outcome
from inboxd.core.rules import Decision, RuleContext, RuleSet, evaluate
from inboxd.core.thread import (
    DEFAULT_TAG_PATTERN,
    ThreadJoin,
    ThreadKeys,
    ThreadLookup,
    ThreadMatch,
    choose,
    plan_join,
    thread_keys,
)
from inboxd.db import behind, deferred, mailboxes, messages, outbox_queries, tickets
from inboxd.db.sql import savepoint
from inboxd.ingest.sink import Checkpoint, FetchedMail
from inboxd.metrics import INGEST_LATENCY, MAIL_INGESTED, RULE_HITS, TICKETS_CREATED

log = logging.getLogger("inboxd.ingest")

# (db, trip, ticket id, what was done instead, now): the ops alert for a tripped cap
CapAlert = Callable[[Connection, CapTrip, int, str, datetime], object]


class Reactor(Protocol):
    """A follow-up inside the ingest transaction, e.g. queueing an acknowledgement.

    Reactors only write rows (outbox, notices, events); they never do I/O.
    """

    def on_stored(self, session: Session, mail: StoredMail) -> None: ...


@runtime_checkable
class BatchReader(Protocol):
    """A reactor that reads for a whole IMAP batch before its mails are stored (in
    the batch's transaction, into ``db.behind`` memos), e.g. the ack caps' counts
    of every recipient at once instead of a query per mail."""

    def before_batch(
        self, session: Session, mails: Sequence[ParsedMessage], now: datetime
    ) -> None: ...


class Interceptor(Protocol):
    """Takes a mail before normal threading (e.g. an agent's reply relayed to the
    customer, or a bounce attached to the mail it reports). Returns an Outcome
    when it handled the mail, None to let the normal path run."""

    def intercept(self, session: Session, arrival: Arrival) -> Outcome | None: ...


@dataclass(frozen=True)
class IngestContext:
    secret: bytes
    support_addresses: frozenset[str]
    mailbox_addresses: dict[str, str]  # mailbox name -> address
    rules: Callable[[], RuleSet | None]
    clock: Callable[[], datetime]
    reopen_window: timedelta = timedelta(days=30)
    tag_re: re.Pattern[str] = DEFAULT_TAG_PATTERN
    max_bytes: int = 50 * 1024 * 1024
    reactors: Sequence[Reactor] = ()
    interceptors: Sequence[Interceptor] = field(default_factory=tuple)
    on_commit: Sequence[Callable[[], None]] = ()  # e.g. wake the outbox drain
    # the new-ticket caps (None: off; the daemon sets them from [helpdesk]) and
    # the ops alert told of every trip
    caps: HourlyCaps | None = None
    on_cap: CapAlert | None = None

    @property
    def support_locals(self) -> tuple[str, ...]:
        return tuple(sorted({a.partition("@")[0] for a in self.support_addresses}))


class _RedoCarefully(Exception):
    """A batch stored without savepoints failed (a mail of it, or the order check of
    its reserved ids): store the batch again with one savepoint per mail and no
    reserved ids (raised from the cause)."""


class _IdsOutOfOrder(Exception):
    """Another writer committed mail with a higher id on a ticket this batch stored
    mail on with ids reserved before (``messages.reserve_message_ids``)."""


def _is_db_failure(exc: BaseException, driver_failures: tuple[type[BaseException], ...]) -> bool:
    """The database failed (locked, gone), not the mail: as SQLAlchemy wraps it, or
    as the driver raises it from the statements run on its own cursor
    (``db.fastexec``), which SQLAlchemy never sees."""
    return isinstance(exc, (OperationalError, *driver_failures)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Pipeline:
    """Stores raw mail; also the MailboxSink the IMAP fetchers hand batches to."""

    def __init__(self, engine: Engine, ctx: IngestContext) -> None:
        self.engine = engine
        self.ctx = ctx
        driver = engine.dialect.dbapi
        self._driver_failures: tuple[type[BaseException], ...] = (
            (driver.OperationalError, driver.InterfaceError) if driver is not None else ()
        )

    # --- entry points ---------------------------------------------------------

    def ingest(self, raw: bytes, source: Source) -> Outcome:
        """Store one mail in its own transaction (LMTP, CLI import). The mail is parsed
        before the transaction opens: on SQLite that is BEGIN IMMEDIATE, the write
        lock every other delivery waits for (IMAP batches come parsed by the workers
        or the prefetch the same way)."""
        arrived = time.time()
        parsed = self._parse(raw)
        with Session(self.engine) as session, session.begin():
            outcome = self.ingest_in(session, raw, source, parsed)
        count_committed(source.mailbox, [(outcome, arrived)])
        self._committed()
        return outcome

    def _parse(self, raw: bytes) -> ParsedMessage | ParseFailure:
        return parse_outcome(raw, max_bytes=self.ctx.max_bytes)

    def _committed(self) -> None:
        for callback in self.ctx.on_commit:
            callback()

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        with Session(self.engine) as session:
            found = mailboxes.get_checkpoint(session, mailbox, folder)
        return Checkpoint(*found) if found else None

    def store_batch(
        self,
        mailbox: str,
        folder: str,
        uidvalidity: int,
        mails: Sequence[FetchedMail],
        *,
        guard: Callable[[Connection], None] | None = None,
    ) -> None:
        if not mails:
            return
        started = time.time()  # the arrival of a mail without ``fetched_at`` (a test's sink)
        last = max(m.uid for m in mails)
        oversize = [m for m in mails if m.oversize]
        self._quarantine_oversize(mailbox, folder, oversize)
        # parsed outside the write lock (a worker's batch comes parsed already)
        mails = [
            m if m.parsed is not None else replace(m, parsed=self._parse(m.raw))
            for m in mails
            if not m.oversize
        ]
        attempt = functools.partial(
            self._batch_once, mailbox, folder, uidvalidity, mails, last, started, oversize, guard
        )
        try:
            done, tally, last = attempt(careful=False)
        except _RedoCarefully as redo:
            log.info(
                "the batch's first try failed (%r): storing the batch again, each mail in "
                "a savepoint of its own",
                redo.__cause__,
            )
            done, tally, last = attempt(careful=True)
        count_committed(mailbox, done)
        log.info(
            "ingest batch mailbox=%s folder=%s last_uid=%d stored=%d new_tickets=%d "
            "duplicate=%d quarantined=%d queued=%d",
            mailbox,
            folder,
            last,
            tally["stored"],
            tally["new_tickets"],
            tally["duplicate"],
            tally["quarantined"],
            tally["queued"],
        )
        self._committed()

    def _batch_once(
        self,
        mailbox: str,
        folder: str,
        uidvalidity: int,
        mails: Sequence[FetchedMail],
        last: int,
        started: float,
        oversize: Sequence[FetchedMail],
        guard: Callable[[Connection], None] | None,
        *,
        careful: bool,
    ) -> tuple[list[tuple[Outcome, float]], Counter[str], int]:
        """One transaction for the batch and its checkpoint. Not ``careful``: no
        savepoint per mail, and a mail that fails raises ``_RedoCarefully`` (the
        transaction and every held row and memo go with it) so the caller stores
        the batch again carefully, where a failing mail alone is rolled back."""
        with Session(self.engine) as session, session.begin():
            if guard is not None:  # e.g. the mailbox's lease, locked until this commit
                guard(session.connection())
            stored = mailboxes.get_checkpoint(session, mailbox, folder)
            if stored and stored[0] != uidvalidity:
                log.warning(
                    "uidvalidity changed mailbox=%s folder=%s old=%s new=%s: rescanning",
                    mailbox,
                    folder,
                    stored[0],
                    uidvalidity,
                )
            tally: Counter[str] = Counter(quarantined=len(oversize))
            done: list[tuple[Outcome, float]] = []
            # a failure that is not the database's sends the batch to its careful try,
            # also when it shows after its mail: a write's answer may wait (db.deferred)
            with self._redo_on_failure(careful):
                # the batch's events, outbox rows and our new Message-IDs' thread keys
                # go in one statement each (several per mail), at the end of this block
                with behind.batch(session.connection()):
                    parsed = [m.parsed for m in mails if isinstance(m.parsed, ParsedMessage)]
                    identities = [(p.message_id, p.content_digest) for p in parsed]
                    messages.prefetch_messages(session.connection(), identities)  # one query
                    messages.prefetch_thread_keys(session.connection(), parsed)  # one or two
                    messages.prefetch_ticket_snapshots(session.connection())  # one
                    if not careful:  # the careful try takes each id as it stores
                        messages.reserve_message_ids(session.connection(), len(parsed))
                    self._before_batch(session, [m.parsed for m in mails])
                    for mail in mails:
                        source = Source("imap", mailbox, folder, mail.uid)
                        outcome = self.ingest_in(
                            session, mail.raw, source, mail.parsed, quiet=True, careful=careful
                        )
                        tally[outcome.status] += 1
                        tally["new_tickets"] += outcome.new_ticket
                        done.append((outcome, mail.fetched_at or started))
                    tally["queued"] = outbox_queries.held_count()
                    if not messages.reserved_ids_in_order(session.connection()):
                        raise _RedoCarefully() from _IdsOutOfOrder(
                            "another writer stored mail on one of its tickets meanwhile"
                        )
                deferred.settle(session.connection())
            if stored and stored[0] == uidvalidity:
                last = max(last, stored[1])
            mailboxes.set_checkpoint(session, mailbox, folder, uidvalidity, last, self.ctx.clock())
        return done, tally, last

    @contextmanager
    def _redo_on_failure(self, careful: bool) -> Iterator[None]:
        """Not ``careful``: a failure that is not the database's raises
        ``_RedoCarefully``. A mail's write may fail after the mail (its answer waited
        in PostgreSQL's pipeline): in the next mail's work or at the batch's end."""
        try:
            yield
        except _RedoCarefully:
            raise
        except Exception as exc:
            if careful or _is_db_failure(exc, self._driver_failures):
                raise
            raise _RedoCarefully() from exc

    def _before_batch(
        self, session: Session, parsed: Sequence[ParsedMessage | ParseFailure | None]
    ) -> None:
        """The batch's reads done once: the new-ticket cap's counts of its senders, and
        what each reactor reads ahead (``BatchReader``)."""
        mails = [p for p in parsed if isinstance(p, ParsedMessage)]
        now = self.ctx.clock()
        caps = self.ctx.caps
        if caps is not None and caps.tickets_per_sender:
            senders = [m.from_.email for m in mails if m.from_ is not None]
            tickets.prefetch_created(session.connection(), senders, since=now - CAP_WINDOW)
        for reactor in self.ctx.reactors:
            if isinstance(reactor, BatchReader):
                reactor.before_batch(session, mails, now)

    def _quarantine_oversize(self, mailbox: str, folder: str, mails: list[FetchedMail]) -> None:
        """Mail over the size limit, kept by reference (headers and size), each in a
        transaction of its own before the batch's: never the batch's bytes or risk."""
        for mail in mails:
            source = Source("imap", mailbox, folder, mail.uid)
            with Session(self.engine) as session, session.begin():
                qid = messages.quarantine_oversize(
                    session.connection(),
                    mail.raw,
                    source,
                    size=mail.oversize,
                    limit=self.ctx.max_bytes,
                    now=self.ctx.clock(),
                )
            MAIL_INGESTED.labels(mailbox, "quarantined" if qid is not None else "duplicate").inc()
            if qid is not None:
                log.warning(
                    "quarantined id=%s source=%s reason=oversize %d bytes > %d (left on server)",
                    qid,
                    source.label,
                    mail.oversize,
                    self.ctx.max_bytes,
                )

    # --- the sequence -----------------------------------------------------------

    def ingest_in(
        self,
        session: Session,
        raw: bytes,
        source: Source,
        parsed: ParsedMessage | ParseFailure | None = None,
        *,
        quiet: bool = False,
        careful: bool = True,
    ) -> Outcome:
        """``parsed``: ``raw`` already parsed (by an ingest worker), else parsed here.
        ``quiet``: the per-mail line at DEBUG (a batch logs one INFO summary; a
        quarantined mail is always a WARNING). ``careful``: the mail in a savepoint,
        quarantined when storing it fails; else (a batch's first try) a failure
        raises ``_RedoCarefully``."""
        now = self.ctx.clock()
        db = session.connection()
        if parsed is None:
            parsed = parse_outcome(raw, max_bytes=self.ctx.max_bytes)
        if isinstance(parsed, ParseFailure):  # a parser bug too: it must not lose the mail
            return self._quarantine(db, raw, source, now, parsed.reason)
        if not careful:
            with self._redo_on_failure(careful):
                outcome = self._store(session, db, parsed, raw, source, now)
            self._log_stored(outcome, parsed, source, quiet)
            return outcome
        mark = behind.mark()
        try:
            with savepoint(db):
                outcome = self._store(session, db, parsed, raw, source, now)
        except Exception as exc:
            behind.drop(mark)  # the savepoint took the mail's rows back
            if _is_db_failure(exc, self._driver_failures):
                raise
            log.exception("store failed msgid=%s source=%s", parsed.message_id, source.label)
            return self._quarantine(db, raw, source, now, f"could not store: {exc!r}")
        self._log_stored(outcome, parsed, source, quiet)
        return outcome

    @staticmethod
    def _log_stored(outcome: Outcome, parsed: ParsedMessage, source: Source, quiet: bool) -> None:
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "ingest status=%s ticket=%s msgid=%s source=%s matched_by=%s",
            outcome.status,
            outcome.ticket_id,
            parsed.message_id,
            source.label,
            outcome.matched_by,
        )

    def _quarantine(
        self, db: Connection, raw: bytes, source: Source, now: datetime, reason: str
    ) -> Outcome:
        with savepoint(db, "quarantine"):
            qid = messages.quarantine_raw(db, raw, source, reason=reason, now=now)
        log.warning("quarantined id=%s source=%s reason=%s", qid, source.label, reason[:200])
        return Outcome("quarantined", reason=reason)

    def _store(
        self,
        session: Session,
        db: Connection,
        parsed: ParsedMessage,
        raw: bytes,
        source: Source,
        now: datetime,
    ) -> Outcome:
        mail = _Mail(session, db, Arrival(parsed, raw, source, now, self.ctx.rules()))
        for _name, step in STEPS:
            outcome = step(self, mail)
            if outcome is not None:
                return outcome
        raise AssertionError("the last step always answers")  # pragma: no cover

    # --- the steps, in the order STEPS names them ------------------------------------

    def dedupe(self, mail: _Mail) -> Outcome | None:
        """The same mail (Message-ID and content) stored before: nothing to do."""
        parsed = mail.arrival.parsed
        dup = messages.find_message(mail.db, parsed.message_id, parsed.content_digest)
        if dup is not None:
            return Outcome("duplicate", dup[1], dup[0], reason="already stored")
        return None

    def intercept(self, mail: _Mail) -> Outcome | None:
        """Mail the flows take before threading: agent replies, bounces, Sent folder."""
        for interceptor in self.ctx.interceptors:
            handled = interceptor.intercept(mail.session, mail.arrival)
            if handled is not None:
                return handled
        return None

    def thread(self, mail: _Mail) -> Outcome | None:
        """Find the ticket the mail belongs to (core.thread decides, in its order)."""
        parsed = mail.arrival.parsed
        keys = thread_keys(
            parsed,
            secret=self.ctx.secret,
            support_locals=self.ctx.support_locals,
            tag_re=self.ctx.tag_re,
        )
        lookup = messages.thread_lookup(mail.db, keys)
        mail.keys, mail.lookup = keys, lookup
        own_key = lookup.keys.get(parsed.message_id)
        mail.own_was_ref = own_key is not None and own_key.origin == "ref"
        mail.match = choose(
            parsed,
            keys,
            lookup,
            now=mail.arrival.now,
            reopen_window=self.ctx.reopen_window,
            may_reopen=mail.person,
        )
        ticket_id = mail.match.ticket_id
        if ticket_id is not None:
            snapshot = lookup.tickets.get(ticket_id)
            if snapshot is not None and snapshot.ticket is not None:
                mail.ticket = snapshot.ticket  # read with the lookup, in this transaction
            else:
                mail.ticket = tickets.load(mail.db, ticket_id)
        return None

    def join(self, mail: _Mail) -> Outcome | None:
        """Make one ticket of the tickets the mail's references join (``core.thread.plan_join``).

        They are apart only because mail of one thread arrived out of order; each
        younger one is merged as ``#merge`` would (its customers kept on the survivor
        as pending) and its thread keys re-pointed to the survivor, or, when they may
        not be merged, both get a ``related`` event once.
        """
        if mail.keys is None or mail.lookup is None:
            return None
        sender = mail.arrival.parsed.from_
        plan = plan_join(
            mail.keys,
            mail.lookup,
            mail.match,
            now=mail.arrival.now,
            reopen_window=self.ctx.reopen_window,
            may_reopen=mail.person,
            sender=sender.email if sender is not None else "",
        )
        if plan is None:
            return None
        self._merge_joined(mail, plan)
        self._relate_joined(mail, plan)
        mail.match = plan.match
        if plan.match.ticket_id is not None:
            mail.ticket = tickets.load(mail.db, plan.match.ticket_id)
        return None

    def _merge_joined(self, mail: _Mail, plan: ThreadJoin) -> None:
        db, now = mail.db, mail.arrival.now
        for younger_id, older_id in plan.merges:
            younger, older = tickets.load(db, younger_id), tickets.load(db, older_id)
            assert younger is not None and older is not None  # in the lookup just now
            merged, into = transitions.merge(younger, older, actor=ev.SYSTEM, now=now)
            tickets.save(db, merged)
            tickets.save(db, into)
            tickets.copy_customers(db, younger_id, older_id)
            moved = messages.repoint_thread_keys(db, younger_id, older_id)
            log.info(
                "thread join: ticket=%s merged into=%s keys=%d msgid=%s",
                younger_id,
                older_id,
                moved,
                mail.arrival.parsed.message_id,
            )

    def _relate_joined(self, mail: _Mail, plan: ThreadJoin) -> None:
        db, now = mail.db, mail.arrival.now
        msgid = mail.arrival.parsed.message_id
        for rel in plan.relations:
            if rel.other in tickets.related_ids(db, rel.ticket):
                continue
            tickets.record_many(
                db,
                [
                    (a, ev.Related(at=now, ticket=b, reason=rel.reason, message_id=msgid))
                    for a, b in ((rel.ticket, rel.other), (rel.other, rel.ticket))
                ],
            )
            log.info("thread join: ticket=%s related to=%s: %s", rel.ticket, rel.other, rel.reason)

    def judge(self, mail: _Mail) -> Outcome | None:
        """Run the rules; a rule's group window may place a new mail on an open ticket."""
        arrival = mail.arrival
        if arrival.rules is None:
            return None
        address = self.ctx.mailbox_addresses.get(arrival.source.mailbox, "")
        ctx = RuleContext(
            is_new=mail.ticket is None,
            mailbox=arrival.source.mailbox,
            mailbox_address=address,
            now=arrival.now,
            ticket_vip=bool(mail.ticket and mail.ticket.vip),
        )
        decision = mail.decision = evaluate(arrival.rules, arrival.parsed, ctx)
        if mail.ticket is None and decision.group_window:
            parsed = arrival.parsed
            grouped = tickets.find_group_ticket(
                mail.db,
                parsed.from_.email if parsed.from_ else "",
                parsed.normalized_subject,
                arrival.now - decision.group_window,
            )
            if grouped is not None:
                mail.match = ThreadMatch(grouped, MatchedBy.GROUP, "grouped with open ticket")
                mail.ticket = tickets.load(mail.db, grouped)
        return None

    def place(self, mail: _Mail) -> Outcome | None:
        """Open a ticket, or tell the ticket a mail arrived (it may reopen).

        Over a new-ticket cap (``core.loops.ticket_cap``) the mail opens nothing:
        it joins the sender's newest open ticket, else the sender domain's held
        ticket (one per domain while mail keeps arriving within the hour; no
        requester, never acknowledged), so a flood is stored in full but costs a
        bounded number of tickets and acks.
        """
        arrival, match = mail.arrival, mail.match
        if mail.ticket is None:
            trip = self._ticket_cap(mail)
            if trip is not None:
                self._over_cap(mail, trip)
                return None
            sender = arrival.parsed.from_
            mail.ticket = tickets.create(
                mail.db,
                subject=arrival.parsed.subject,
                normalized_subject=arrival.parsed.normalized_subject,
                requester=sender.email if sender else "",
                requester_name=sender.name if sender else "",
                mailbox=arrival.source.mailbox,
                now=arrival.now,
                source=arrival.source.label,
                actor=mail.actor,
                follow_up_of=match.follow_up_of,
                person=mail.person,
            )
            mail.new_ticket = True
            return None
        change = transitions.customer_mail(
            mail.ticket, now=arrival.now, person=mail.person, reopen=match.reopen
        )
        tickets.save(mail.db, change)
        mail.ticket = change.after
        return None

    def _ticket_cap(self, mail: _Mail) -> CapTrip | None:
        """The new-ticket cap this mail would exceed, from the last hour's counts."""
        sender, caps = mail.arrival.parsed.from_, self.ctx.caps
        if caps is None or sender is None:
            return None
        since = mail.arrival.now - CAP_WINDOW
        # count only what a cap is set for (0: off): each count is a query per new ticket
        by_sender = by_domain = 0
        if caps.tickets_per_sender:
            by_sender = tickets.count_created(mail.db, since=since, requester=sender.email)
        if caps.tickets_per_domain:
            by_domain = tickets.count_created(mail.db, since=since, domain=sender.domain)
        return ticket_cap(sender, by_sender=by_sender, by_domain=by_domain, caps=caps)

    def _over_cap(self, mail: _Mail, trip: CapTrip) -> None:
        """Place the mail on the sender's newest open ticket, else the held ticket."""
        arrival = mail.arrival
        sender = arrival.parsed.from_
        assert sender is not None  # a trip needs a sender
        target = tickets.newest_open_ticket(mail.db, sender.email)
        action = "joined"
        if target is None:
            action, target = "held", self._held_ticket(mail, sender.domain)
        mail.match = ThreadMatch(target, MatchedBy.GROUP, f"{action}: {trip.reason}")
        ticket = tickets.load(mail.db, target)
        assert ticket is not None
        change = transitions.customer_mail(
            ticket, now=arrival.now, person=mail.person, reopen=False
        )
        tripped = ev.CapTripped(
            at=arrival.now,
            cap=trip.cap,
            key=trip.key,
            count=trip.count,
            limit=trip.limit,
            action=action,
            message_id=arrival.parsed.message_id,
        )
        tickets.save(mail.db, change)
        tickets.record(mail.db, target, tripped)
        mail.ticket = change.after
        log.warning(
            "cap tripped cap=%s key=%s msgid=%s: %s ticket=%s",
            trip.cap,
            trip.key,
            arrival.parsed.message_id,
            action,
            target,
        )
        if self.ctx.on_cap is not None:
            self.ctx.on_cap(mail.db, trip, target, f"mail {action}", arrival.now)

    def _held_ticket(self, mail: _Mail, domain: str) -> int:
        """The domain's held ticket of the last hour, opened when there is none."""
        arrival = mail.arrival
        subject = held_subject(domain)
        since = arrival.now - CAP_WINDOW
        found = tickets.find_group_ticket(mail.db, "", subject.casefold(), since)
        if found is not None:
            return found
        held = tickets.create(
            mail.db,
            subject=subject,
            normalized_subject=subject.casefold(),
            requester="",
            requester_name="",
            mailbox=arrival.source.mailbox,
            now=arrival.now,
            source=arrival.source.label,
            actor=ev.SYSTEM,
            person=mail.person,
        )
        return held.id

    def route(self, mail: _Mail) -> Outcome | None:
        """Apply what the rules decided (nothing to do when no rule fired)."""
        decision, ticket = mail.decision, mail.ticket
        if decision is None or not decision.hits or ticket is None:
            return None
        team = transitions.team_to_staff(ticket, decision)
        picked = self._pick_agent(mail.db, mail.arrival.rules, team) if team else None
        change = transitions.apply_rules(
            ticket, decision, decision.hits, now=mail.arrival.now, picked=picked
        )
        tickets.save(mail.db, change)
        mail.ticket = change.after
        return None

    def store(self, mail: _Mail) -> Outcome | None:
        """Keep the mail, its new participants and its ``message`` event."""
        arrival, ticket, match = mail.arrival, mail.ticket, mail.match
        assert ticket is not None
        parsed = arrival.parsed
        mail.row_id = messages.store_mail(
            mail.db,
            arrival,
            ticket_id=ticket.id,
            direction=Direction.INBOUND.value,
            matched_by=match.matched_by.value,
            reason=match.reason,
            own_was_ref=mail.own_was_ref,
        )
        joined: list[ev.Event] = []
        if parsed.kind is MessageKind.NORMAL:
            # only the people the ticket does not know yet: most replies add nobody
            people = [p for p in self._people(mail) if p.email not in ticket.participants]
            tickets.add_participants(mail.db, ticket.id, people)
            joined = [
                ev.SenderJoined(at=arrival.now, email=p.email, matched_by=match.matched_by.value)
                for p in people[:1]
                if p.role == "pending" and parsed.from_ and p.email == parsed.from_.email
            ]
        stored = ev.MessageStored(
            at=arrival.now,
            actor=mail.actor,
            message=mail.row_id,
            kind_=parsed.kind.value,
            matched_by=match.matched_by.value,
        )
        tickets.record(mail.db, ticket.id, *joined, stored)
        return None

    def react(self, mail: _Mail) -> Outcome | None:
        """Hand the stored mail to the reactors (acknowledgement, notifications, Slack)."""
        assert mail.ticket is not None
        stored = StoredMail(
            mail.arrival,
            mail.ticket,
            mail.row_id,
            mail.new_ticket,
            mail.match,
            mail.decision,
            mail.sender_role,
        )
        for reactor in self.ctx.reactors:
            reactor.on_stored(mail.session, stored)
        match, decision = mail.match, mail.decision
        return Outcome(
            "stored",
            mail.ticket.id,
            mail.row_id,
            match.matched_by.value,
            match.reason,
            mail.new_ticket,
            tuple(hit.rule for hit in decision.hits) if decision is not None else (),
        )

    # --- helpers ------------------------------------------------------------------

    def _people(self, mail: _Mail) -> list[tickets.Person]:
        """Who the mail puts on the ticket, and as what. Only the requester and the
        addresses a customer or an agent put in To/Cc receive replies: a sender new to
        the ticket (who found it by citing its mail or a return-path token) and the
        addresses they copy are ``pending`` until an agent accepts them (``#cc``)."""
        parsed, ticket = mail.arrival.parsed, mail.ticket
        assert ticket is not None
        sender = parsed.from_
        rules = mail.arrival.rules
        if mail.new_ticket:
            sender_role, trusted = "requester", True
        elif sender is not None and rules is not None and rules.agent_by_email(sender.email):
            sender_role, trusted = "agent", True
        else:
            role = self._roles(mail, ticket).get(sender.email if sender else "")
            trusted = role in tickets.RECIPIENT_ROLES
            sender_role = role if role is not None else "pending"
        # what the reactors see: the stored role, or what a new address is added as
        # (add_participants keeps a stored one); an agent's address counts as agent
        mail.sender_role = sender_role if sender else ""
        people = [tickets.Person(sender.email, sender.name, sender_role)] if sender else []
        cc_role = "customer" if trusted else "pending"
        people += [
            tickets.Person(a.email, a.name, cc_role)
            for a in parsed.recipients
            if not self._ours(a.email)
        ]
        return people

    def _roles(self, mail: _Mail, ticket: Ticket) -> Mapping[str, str]:
        """Each address's role on ``ticket``: from the thread lookup when it read this
        ticket and the mail has not changed its people since, else read."""
        snapshot = mail.lookup.tickets.get(ticket.id) if mail.lookup is not None else None
        if snapshot is not None and snapshot.participants == ticket.participants:
            return snapshot.roles
        return tickets.participant_roles(mail.db, ticket.id)

    def _ours(self, address: str) -> bool:
        """A support address, also with a ``+TOKEN`` (our reply and return-path addresses)."""
        local, _, domain = address.lower().rpartition("@")
        return f"{local.split('+', 1)[0]}@{domain}" in self.ctx.support_addresses

    def _pick_agent(self, db: Connection, ruleset: RuleSet | None, team_name: str) -> str | None:
        team = ruleset.teams.get(team_name) if ruleset is not None else None
        if team is None or not team.agents:
            return None
        names = [a.name for a in team.agents]
        if team.assignment == "round_robin":
            return tickets.round_robin_next(db, team_name, names)
        if team.assignment == "least_open":
            counts = tickets.open_ticket_counts(db, names)
            return min(names, key=lambda n: (counts[n], names.index(n)))
        return None


def count_committed(mailbox: str, done: Sequence[tuple[Outcome, float]]) -> None:
    """The metrics of committed mail, each with its arrival (Unix time). Called only
    after the commit: a batch rolled back is fetched again and must not count twice."""
    now = time.time()
    for outcome, arrived in done:
        MAIL_INGESTED.labels(mailbox, outcome.status).inc()
        if outcome.new_ticket:
            TICKETS_CREATED.labels(mailbox).inc()
        for rule in outcome.rules:
            RULE_HITS.labels(rule).inc()
        INGEST_LATENCY.observe(max(0.0, now - arrived))  # a wall clock may step back


class _Mail:
    """One mail's state as the steps fill it in (lives for one ``_store`` call)."""

    __slots__ = (
        "arrival",
        "db",
        "decision",
        "keys",
        "lookup",
        "match",
        "new_ticket",
        "own_was_ref",
        "row_id",
        "sender_role",
        "session",
        "ticket",
    )

    def __init__(self, session: Session, db: Connection, arrival: Arrival) -> None:
        self.session = session
        self.db = db
        self.arrival = arrival
        self.match = ThreadMatch(None, MatchedBy.NEW, "")
        self.keys: ThreadKeys | None = None
        self.lookup: ThreadLookup | None = None
        self.own_was_ref = False
        self.ticket: Ticket | None = None
        self.decision: Decision | None = None
        self.new_ticket = False
        self.row_id = 0
        self.sender_role = ""

    @property
    def person(self) -> bool:
        """A human wrote it: not an auto-reply, a list mail or a bounce."""
        return self.arrival.parsed.kind is MessageKind.NORMAL

    @property
    def actor(self) -> str:
        sender = self.arrival.parsed.from_
        return ev.customer(sender.email) if sender else ev.SYSTEM


Step = Callable[[Pipeline, _Mail], Outcome | None]

# The order every stored mail goes through; a step answering an Outcome ends it.
STEPS: tuple[tuple[str, Step], ...] = (
    ("dedupe", Pipeline.dedupe),
    ("intercept", Pipeline.intercept),
    ("thread", Pipeline.thread),
    ("join", Pipeline.join),
    ("judge", Pipeline.judge),
    ("place", Pipeline.place),
    ("route", Pipeline.route),
    ("store", Pipeline.store),
    ("react", Pipeline.react),
)


__all__ = ["STEPS", "IngestContext", "Outcome", "Pipeline", "Source", "StoredMail"]
