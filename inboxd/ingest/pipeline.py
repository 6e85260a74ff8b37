"""The one sequence every inbound mail goes through, whichever way it came in.

parse -> dedupe -> thread -> rules -> store -> react, inside the caller's
transaction and a savepoint per mail: a mail that fails anywhere after the
bytes were read is quarantined with the reason in the same transaction, so
nothing is dropped and one bad mail never blocks the rest. Only a failure of
the database itself propagates (then nothing is committed and IMAP refetches /
LMTP answers 4xx).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from inboxd.core.model import (
    Direction,
    IngestOutcome,
    MatchedBy,
    MessageKind,
    ParsedMessage,
    ParseFailure,
    TicketStatus,
)
from inboxd.core.parse import parse_outcome
from inboxd.core.rules import Decision, RuleContext, RuleSet, evaluate
from inboxd.core.thread import DEFAULT_TAG_PATTERN, ThreadMatch, choose, thread_keys
from inboxd.core.ticket_fields import PRIORITY_ORDER, apply_decision
from inboxd.db import repo
from inboxd.ingest.sink import Checkpoint, FetchedMail

log = logging.getLogger("inboxd.ingest")


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


Outcome = IngestOutcome


@dataclass(frozen=True, slots=True)
class StoredMail:
    """What reactors (acknowledgements, notifications, agent replies) get to see."""

    parsed: ParsedMessage
    source: Source
    ticket_id: int
    message_row_id: int
    new_ticket: bool
    match: ThreadMatch
    decision: Decision | None
    now: datetime


class Reactor(Protocol):
    """A follow-up inside the ingest transaction, e.g. queueing an acknowledgement.

    Reactors only write rows (outbox, notices, events); they never do I/O.
    """

    def on_stored(self, session: Session, mail: StoredMail) -> None: ...


class Interceptor(Protocol):
    """Takes a mail before normal threading (e.g. an agent's reply relayed to the
    customer, or a bounce attached to the mail it reports). Returns an Outcome
    when it handled the mail, None to let the normal path run."""

    def intercept(
        self, session: Session, parsed: ParsedMessage, raw: bytes, source: Source, now: datetime
    ) -> Outcome | None: ...


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

    @property
    def support_locals(self) -> tuple[str, ...]:
        return tuple(sorted({a.partition("@")[0] for a in self.support_addresses}))


def _is_db_failure(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Pipeline:
    """Stores raw mail; also the MailboxSink the IMAP fetchers hand batches to."""

    def __init__(self, engine: Engine, ctx: IngestContext) -> None:
        self.engine = engine
        self.ctx = ctx

    # --- entry points ---------------------------------------------------------

    def ingest(self, raw: bytes, source: Source) -> Outcome:
        """Store one mail in its own transaction (LMTP, CLI import)."""
        with Session(self.engine) as session, session.begin():
            outcome = self.ingest_in(session, raw, source)
        self._committed()
        return outcome

    def _committed(self) -> None:
        for callback in self.ctx.on_commit:
            callback()

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        with Session(self.engine) as session:
            found = repo.get_checkpoint(session, mailbox, folder)
        return Checkpoint(*found) if found else None

    def store_batch(
        self, mailbox: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail]
    ) -> None:
        if not mails:
            return
        with Session(self.engine) as session, session.begin():
            stored = repo.get_checkpoint(session, mailbox, folder)
            if stored and stored[0] != uidvalidity:
                log.warning(
                    "uidvalidity changed mailbox=%s folder=%s old=%s new=%s: rescanning",
                    mailbox,
                    folder,
                    stored[0],
                    uidvalidity,
                )
            tally: Counter[str] = Counter()
            for mail in mails:
                source = Source("imap", mailbox, folder, mail.uid)
                outcome = self.ingest_in(session, mail.raw, source, mail.parsed, quiet=True)
                tally[outcome.status] += 1
                tally["new_tickets"] += outcome.new_ticket
            last = max(m.uid for m in mails)
            if stored and stored[0] == uidvalidity:
                last = max(last, stored[1])
            repo.set_checkpoint(session, mailbox, folder, uidvalidity, last, self.ctx.clock())
        log.info(
            "ingest batch mailbox=%s folder=%s last_uid=%d stored=%d new_tickets=%d "
            "duplicate=%d quarantined=%d",
            mailbox,
            folder,
            last,
            tally["stored"],
            tally["new_tickets"],
            tally["duplicate"],
            tally["quarantined"],
        )
        self._committed()

    # --- the sequence -----------------------------------------------------------

    def ingest_in(
        self,
        session: Session,
        raw: bytes,
        source: Source,
        parsed: ParsedMessage | ParseFailure | None = None,
        *,
        quiet: bool = False,
    ) -> Outcome:
        """``parsed``: ``raw`` already parsed (by an ingest worker), else parsed here.
        ``quiet``: the per-mail line at DEBUG (a batch logs one INFO summary; a
        quarantined mail is always a WARNING)."""
        now = self.ctx.clock()
        db = session.connection()
        if parsed is None:
            parsed = parse_outcome(raw, max_bytes=self.ctx.max_bytes)
        if isinstance(parsed, ParseFailure):  # a parser bug too: it must not lose the mail
            return self._quarantine(db, raw, source, now, parsed.reason)
        try:
            with repo.savepoint(db):
                outcome = self._store(session, db, parsed, raw, source, now)
        except Exception as exc:
            if _is_db_failure(exc):
                raise
            log.exception("store failed msgid=%s source=%s", parsed.message_id, source.label)
            return self._quarantine(db, raw, source, now, f"could not store: {exc!r}")
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "ingest status=%s ticket=%s msgid=%s source=%s matched_by=%s",
            outcome.status,
            outcome.ticket_id,
            parsed.message_id,
            source.label,
            outcome.matched_by,
        )
        return outcome

    def _quarantine(
        self, db: Connection, raw: bytes, source: Source, now: datetime, reason: str
    ) -> Outcome:
        with repo.savepoint(db, "quarantine"):
            qid = repo.quarantine_raw(
                db,
                raw,
                reason=reason,
                source_label=source.label,
                mailbox=source.mailbox,
                folder=source.folder,
                uid=source.uid,
                now=now,
            )
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
        dup = repo.find_message(db, parsed.message_id, parsed.content_digest)
        if dup is not None:
            return Outcome("duplicate", dup[1], dup[0], reason="already stored")
        for interceptor in self.ctx.interceptors:
            handled = interceptor.intercept(session, parsed, raw, source, now)
            if handled is not None:
                return handled

        keys = thread_keys(
            parsed,
            secret=self.ctx.secret,
            support_locals=self.ctx.support_locals,
            tag_re=self.ctx.tag_re,
        )
        lookup = repo.thread_lookup(db, keys)
        own_key = lookup.keys.get(parsed.message_id)
        machine = parsed.kind is not MessageKind.NORMAL
        match = choose(
            parsed,
            keys,
            lookup,
            now=now,
            reopen_window=self.ctx.reopen_window,
            may_reopen=not machine,
        )
        ruleset = self.ctx.rules()
        # the existing ticket's routing fields, read once for the rules, the touch and
        # the decision (a grouped ticket is read when it is found)
        routing = repo.ticket_routing(db, match.ticket_id) if match.ticket_id else None
        ticket_vip = bool(routing and routing["vip"])
        decision = self._evaluate(ruleset, parsed, source, match, now, ticket_vip)
        if match.ticket_id is None and decision is not None and decision.group_window:
            sender = parsed.from_.email if parsed.from_ else ""
            grouped = repo.find_group_ticket(
                db, sender, parsed.normalized_subject, now - decision.group_window
            )
            if grouped is not None:
                match = ThreadMatch(grouped, MatchedBy.GROUP, "grouped with open ticket")
                routing = repo.ticket_routing(db, grouped)

        new_ticket = match.ticket_id is None
        if new_ticket:
            ticket_id = self._open_ticket(db, parsed, source, match, now)
        else:
            assert match.ticket_id is not None
            ticket_id = match.ticket_id
            if routing is not None:
                self._touch_ticket(db, ticket_id, routing, match, now, machine)
        if decision is not None and decision.hits:  # no rule fired: nothing to apply
            routing = routing or repo.ticket_routing(db, ticket_id)
            if routing is not None:
                self._apply(db, ticket_id, routing, decision, ruleset, now)

        snapshot = None if new_ticket else lookup.tickets.get(ticket_id)
        row_id = self._store_message(
            db,
            ticket_id,
            parsed,
            raw,
            source,
            match,
            now,
            new_ticket=new_ticket,
            own_was_ref=own_key is not None and own_key.origin == "ref",
            known_people=snapshot.participants if snapshot else frozenset(),
        )
        stored = StoredMail(parsed, source, ticket_id, row_id, new_ticket, match, decision, now)
        for reactor in self.ctx.reactors:
            reactor.on_stored(session, stored)
        return Outcome(
            "stored", ticket_id, row_id, match.matched_by.value, match.reason, new_ticket
        )

    def _evaluate(
        self,
        ruleset: RuleSet | None,
        parsed: ParsedMessage,
        source: Source,
        match: ThreadMatch,
        now: datetime,
        ticket_vip: bool,
    ) -> Decision | None:
        if ruleset is None:
            return None
        address = self.ctx.mailbox_addresses.get(source.mailbox, "")
        ctx = RuleContext(
            is_new=match.ticket_id is None,
            mailbox=source.mailbox,
            mailbox_address=address,
            now=now,
            ticket_vip=ticket_vip,
        )
        return evaluate(ruleset, parsed, ctx)

    # --- writes -------------------------------------------------------------------

    def _open_ticket(
        self,
        db: Connection,
        parsed: ParsedMessage,
        source: Source,
        match: ThreadMatch,
        now: datetime,
    ) -> int:
        sender = parsed.from_
        ticket_id = repo.create_ticket(
            db,
            {
                "subject": parsed.subject[:998],
                "normalized_subject": parsed.normalized_subject[:998],
                "status": TicketStatus.NEW.value,
                "requester": sender.email if sender else "",
                "requester_name": sender.name if sender else "",
                "mailbox": source.mailbox,
                "created_at": now,
                "updated_at": now,
                "status_changed_at": now,
                "previous_ticket_id": match.follow_up_of,
                "tags": [],
            },
        )
        repo.add_event(
            db,
            ticket_id,
            now,
            f"customer:{sender.email}" if sender else "system",
            "created",
            {"source": source.label, "follow_up_of": match.follow_up_of},
        )
        return ticket_id

    def _touch_ticket(
        self,
        db: Connection,
        ticket_id: int,
        ticket: dict[str, Any],
        match: ThreadMatch,
        now: datetime,
        machine: bool,
    ) -> None:
        """Bump updated_at; reopen on a customer reply. ``ticket`` (its routing
        fields) is updated in place so the rules' decision sees the new status."""
        values: dict[str, Any] = {"updated_at": now}
        customer_wrote = not machine
        if match.reopen or (customer_wrote and ticket["status"] == TicketStatus.PENDING.value):
            values.update(status=TicketStatus.OPEN.value, status_changed_at=now)
            repo.add_event(
                db,
                ticket_id,
                now,
                "system",
                "status",
                {"from": ticket["status"], "to": "open", "why": "customer replied"},
            )
            ticket["status"] = TicketStatus.OPEN.value
        repo.update_ticket(db, ticket_id, values)

    def _apply(
        self,
        db: Connection,
        ticket_id: int,
        ticket: dict[str, Any],
        decision: Decision,
        ruleset: RuleSet | None,
        now: datetime,
    ) -> None:
        changes = apply_decision(ticket, decision)
        if "team" in changes and "assignee" not in changes and ruleset is not None:
            picked = self._pick_agent(db, ruleset, changes["team"])
            if picked:
                changes["assignee"] = picked
        if changes.get("status") and changes["status"] != ticket["status"]:
            changes["status_changed_at"] = now
        repo.update_ticket(db, ticket_id, changes)
        for hit in decision.hits:
            repo.add_event(
                db,
                ticket_id,
                now,
                f"rule:{hit.rule}",
                "rule",
                {
                    "file": hit.file,
                    "line": hit.line,
                    "reasons": list(hit.reasons),
                    "applied": list(hit.applied),
                    "overridden": list(hit.overridden),
                },
            )
        if "assignee" in changes:
            repo.add_event(db, ticket_id, now, "system", "assigned", {"to": changes["assignee"]})

    def _pick_agent(self, db: Connection, ruleset: RuleSet, team_name: str) -> str | None:
        team = ruleset.teams.get(team_name)
        if team is None or not team.agents:
            return None
        names = [a.name for a in team.agents]
        if team.assignment == "round_robin":
            return repo.round_robin_next(db, team_name, names)
        if team.assignment == "least_open":
            counts = repo.open_ticket_counts(db, names)
            return min(names, key=lambda n: (counts[n], names.index(n)))
        return None

    def _store_message(
        self,
        db: Connection,
        ticket_id: int,
        parsed: ParsedMessage,
        raw: bytes,
        source: Source,
        match: ThreadMatch,
        now: datetime,
        *,
        new_ticket: bool,
        own_was_ref: bool,
        known_people: frozenset[str],
    ) -> int:
        """``known_people``: the ticket's participants as threading read them; only
        the others are added (most replies add nobody: no statement at all)."""
        row_id = repo.store_mail(
            db,
            ticket_id=ticket_id,
            parsed=parsed,
            raw=raw,
            source_label=source.label,
            mailbox=source.mailbox,
            direction=Direction.INBOUND.value,
            matched_by=match.matched_by.value,
            reason=match.reason,
            now=now,
            own_was_ref=own_was_ref,
        )
        sender = parsed.from_
        if parsed.kind is MessageKind.NORMAL:
            ours = self.ctx.support_addresses
            role = "requester" if new_ticket else "customer"
            people = [(sender.email, sender.name, role)] if sender else []
            people += [
                (a.email, a.name, "customer") for a in parsed.recipients if a.email not in ours
            ]
            repo.add_participants(db, ticket_id, [p for p in people if p[0] not in known_people])
        repo.add_event(
            db,
            ticket_id,
            now,
            f"customer:{sender.email}" if sender else "system",
            "message",
            {"message": row_id, "kind": parsed.kind.value, "matched_by": match.matched_by.value},
        )
        return row_id


__all__ = ["PRIORITY_ORDER", "IngestContext", "Outcome", "Pipeline", "Source", "StoredMail"]
