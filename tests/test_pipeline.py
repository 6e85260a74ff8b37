"""The ingest pipeline on a real SQLite file: dedupe, threading, quarantine, reopen."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select
from support.clock import Clock

from inboxd.core.desk import transitions
from inboxd.core.rules import load_rules
from inboxd.core.tokens import make_message_id
from inboxd.db import mailboxes, messages, sql, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message, Quarantine, Ticket
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source
from inboxd.ingest.sink import Checkpoint, FetchedMail

SECRET = b"pipeline-secret"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


def _context(clock: Clock) -> IngestContext:
    return IngestContext(
        secret=SECRET,
        support_addresses=frozenset({"support@help.example", "billing@help.example"}),
        mailbox_addresses={"support": "support@help.example", "billing": "billing@help.example"},
        rules=lambda: None,
        clock=clock,
    )


@pytest.fixture
def pipeline(db_url: str, clock: Clock) -> Iterator[Pipeline]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield Pipeline(engine, _context(clock))
    engine.dispose()


@pytest.fixture
def sqlite_pipeline(tmp_path: Path, clock: Clock) -> Iterator[Pipeline]:
    """On a SQLite file whatever ``db_url`` is: its statements can be traced."""
    engine = make_engine(f"sqlite:///{tmp_path / 'traced.db'}")
    upgrade(engine)
    yield Pipeline(engine, _context(clock))
    engine.dispose()


def raw_mail(
    msgid: str,
    *,
    sender: str = "alice@customer.example",
    to: str = "support@help.example",
    subject: str = "Printer broken",
    body: str = "It does not print.",
    in_reply_to: str = "",
    references: str = "",
    extra: str = "",
) -> bytes:
    lines = [
        "Received: from mx.example by relay; Mon, 2 Mar 2026 10:00:00 +0000",
        f"From: Alice <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + " ".join(f"<{r}>" for r in references.split()))
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def count(pipeline: Pipeline, model: type) -> int:
    with Session(pipeline.engine) as s:
        return sql.count_rows(s, model)


def test_new_mail_opens_ticket_with_requester_and_event(pipeline: Pipeline) -> None:
    out = pipeline.ingest(raw_mail("a1@c"), Source("lmtp", "support"))
    assert out.status == "stored" and out.new_ticket and out.matched_by == "new"
    with Session(pipeline.engine) as s:
        ticket = tickets.get_row(s, out.ticket_id or 0)
        assert ticket is not None
        assert (ticket.requester, ticket.status, ticket.subject) == (
            "alice@customer.example",
            "new",
            "Printer broken",
        )
        kinds = [e.kind for e in tickets.event_rows(s, ticket.id or 0)]
        assert kinds == ["created", "message"]
        [msg] = messages.ticket_messages(s, ticket.id or 0)
        assert msg.shown_text == "It does not print." and msg.source == "lmtp:support"


def test_new_text_is_stored_only_when_it_is_not_the_whole_text(pipeline: Pipeline) -> None:
    """A mail that quotes nothing keeps its text once (``new_text`` NULL, though the
    extracted text lacks the body's surrounding whitespace); a reply keeps what its
    sender wrote beside the whole text. Both read back as they were extracted."""
    body = "It does not print.\r\n\r\nIt only beeps.\r\n\r\n"
    first = pipeline.ingest(raw_mail("nt1@c", body=body), Source("lmtp", "support"))
    reply_body = "Still broken.\r\n\r\nOn Mon, Alice wrote:\r\n> It does not print.\r\n"
    reply = pipeline.ingest(
        raw_mail("nt2@c", body=reply_body, in_reply_to="nt1@c"), Source("lmtp", "support")
    )
    assert reply.ticket_id == first.ticket_id
    with Session(pipeline.engine) as s:
        one, two = messages.ticket_messages(s, first.ticket_id or 0)
        assert one.text != one.text.strip() and one.new_text is None
        assert one.shown_text == "It does not print.\n\nIt only beeps."
        assert two.new_text == "Still broken." == two.shown_text
        conn = s.connection()
        assert messages.text_of(conn, one.id or 0) == (one.shown_text, one.text, "")
        newest = messages.last_customer_summary(conn, first.ticket_id or 0)
        assert newest is not None and newest.new_text == "Still broken."


def test_same_mail_via_two_mailboxes_is_stored_once(pipeline: Pipeline) -> None:
    first = raw_mail("dup@c", to="support@help.example, billing@help.example")
    second = b"Delivered-To: billing@help.example\r\n" + first
    assert pipeline.ingest(first, Source("imap", "support", "INBOX", 1)).status == "stored"
    again = pipeline.ingest(second, Source("imap", "billing", "INBOX", 1))
    assert again.status == "duplicate"
    assert count(pipeline, Message) == 1 and count(pipeline, Ticket) == 1


def test_reused_message_id_with_other_content_is_kept(pipeline: Pipeline) -> None:
    pipeline.ingest(raw_mail("reused@c", body="first"), Source("lmtp"))
    out = pipeline.ingest(raw_mail("reused@c", body="second, different"), Source("lmtp"))
    assert out.status == "stored"
    assert count(pipeline, Message) == 2


def test_reply_threads_and_out_of_order_parent_joins(pipeline: Pipeline) -> None:
    reply = pipeline.ingest(
        raw_mail("r1@c", subject="Re: Printer", in_reply_to="p@c", references="p@c"),
        Source("lmtp"),
    )
    sibling = pipeline.ingest(raw_mail("r2@c", subject="Re: x", references="p@c"), Source("lmtp"))
    parent = pipeline.ingest(raw_mail("p@c"), Source("lmtp"))
    assert reply.ticket_id == sibling.ticket_id == parent.ticket_id
    assert parent.matched_by == "header"
    assert count(pipeline, Ticket) == 1


def test_reply_to_our_signed_message_id(pipeline: Pipeline) -> None:
    first = pipeline.ingest(raw_mail("a@c"), Source("lmtp"))
    ours = make_message_id(SECRET, first.ticket_id or 0, "n1", "help.example")
    out = pipeline.ingest(raw_mail("b@c", subject="new subject", in_reply_to=ours), Source("lmtp"))
    assert out.ticket_id == first.ticket_id and out.matched_by == "header"


def test_subject_tag_needs_a_participant(pipeline: Pipeline) -> None:
    first = pipeline.ingest(raw_mail("a@c"), Source("lmtp"))
    tag = f"Re: [#{first.ticket_id}] Printer broken"
    ok = pipeline.ingest(raw_mail("b@c", subject=tag), Source("lmtp"))
    assert ok.ticket_id == first.ticket_id and ok.matched_by == "tag"
    bad = pipeline.ingest(
        raw_mail("c@c", subject=tag, sender="mallory@evil.example"), Source("lmtp")
    )
    assert bad.ticket_id != first.ticket_id and bad.new_ticket


def set_status(pipeline: Pipeline, ticket_id: int, status: str, now: datetime) -> None:
    """What an agent's #solve or #close does, through the ticket domain."""
    with Session(pipeline.engine) as s, s.begin():
        ticket = tickets.load(s, ticket_id)
        assert ticket is not None
        tickets.save(s, transitions.change_status(ticket, status, actor="agent:test", now=now))


def test_reply_reopens_solved_and_long_closed_gets_follow_up(
    pipeline: Pipeline, clock: Clock
) -> None:
    first = pipeline.ingest(raw_mail("a@c"), Source("lmtp"))
    tid = first.ticket_id or 0
    set_status(pipeline, tid, "solved", clock.now)
    pipeline.ingest(raw_mail("b@c", in_reply_to="a@c"), Source("lmtp"))
    with Session(pipeline.engine) as s:
        assert (tickets.get_row(s, tid) or Ticket()).status == "open"
    set_status(pipeline, tid, "closed", clock.now)
    clock.now += timedelta(days=31)
    out = pipeline.ingest(raw_mail("c@c", in_reply_to="b@c"), Source("lmtp"))
    assert out.new_ticket and out.ticket_id != tid
    with Session(pipeline.engine) as s:
        follow = tickets.get_row(s, out.ticket_id or 0)
        assert follow is not None and follow.previous_ticket_id == tid


def test_auto_reply_joins_but_does_not_reopen(pipeline: Pipeline, clock: Clock) -> None:
    first = pipeline.ingest(raw_mail("a@c"), Source("lmtp"))
    tid = first.ticket_id or 0
    set_status(pipeline, tid, "solved", clock.now)
    ooo = raw_mail(
        "ooo@c", subject="Out of office", in_reply_to="a@c", extra="Auto-Submitted: auto-replied"
    )
    out = pipeline.ingest(ooo, Source("lmtp"))
    assert out.ticket_id == tid
    with Session(pipeline.engine) as s:
        assert (tickets.get_row(s, tid) or Ticket()).status == "solved"


def test_garbage_is_quarantined_not_dropped(pipeline: Pipeline) -> None:
    out = pipeline.ingest(b"\x00\x01\x02 not a mail at all", Source("lmtp", "support"))
    assert out.status == "quarantined" and out.reason
    with Session(pipeline.engine) as s:
        [q] = messages.list_quarantine(s)
        assert q.reason == out.reason
        assert messages.blob(s, q.raw_sha256) == b"\x00\x01\x02 not a mail at all"
    assert count(pipeline, Quarantine) == 1


def test_store_failure_quarantines_and_batch_continues(pipeline: Pipeline) -> None:
    class Broken:
        def on_stored(self, session: Session, mail: object) -> None:
            raise RuntimeError("reactor bug")

    object.__setattr__(pipeline.ctx, "reactors", (Broken(),))
    pipeline.store_batch(
        "support", "INBOX", 77, [FetchedMail(1, raw_mail("x1@c")), FetchedMail(2, raw_mail("x2@c"))]
    )
    with Session(pipeline.engine) as s:
        assert [q.uid for q in messages.list_quarantine(s)] == [1, 2]
        assert "reactor bug" in messages.list_quarantine(s)[0].reason
        assert mailboxes.get_checkpoint(s, "support", "INBOX") == (77, 2)
    assert count(pipeline, Ticket) == 0  # the savepoint rolled the half-stored mail back


def test_batch_commits_messages_and_checkpoint_together(pipeline: Pipeline) -> None:
    mails = [FetchedMail(uid, raw_mail(f"b{uid}@c")) for uid in (3, 5, 9)]
    pipeline.store_batch("support", "INBOX", 1, mails)
    assert pipeline.checkpoint("support", "INBOX") == Checkpoint(1, 9)
    # a rescan after a UIDVALIDITY change stores nothing twice
    pipeline.store_batch("support", "INBOX", 2, [FetchedMail(1, raw_mail("b3@c"))])
    assert pipeline.checkpoint("support", "INBOX") == Checkpoint(2, 1)
    assert count(pipeline, Message) == 3


def test_a_batch_logs_one_summary_and_each_mail_at_debug(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    mails = [FetchedMail(1, raw_mail("s1@c")), FetchedMail(2, raw_mail("s1@c"))]
    mails.append(FetchedMail(3, b"\x00 not a mail"))
    with caplog.at_level(logging.DEBUG, logger="inboxd.ingest"):
        pipeline.store_batch("support", "INBOX", 1, mails)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == [
        "ingest batch mailbox=support folder=INBOX last_uid=3 stored=1 new_tickets=1 "
        "duplicate=1 quarantined=1 queued=0"
    ]
    per_mail = [r for r in caplog.records if r.getMessage().startswith("ingest status=")]
    assert [r.levelno for r in per_mail] == [logging.DEBUG, logging.DEBUG]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("quarantined")


LEAST_OPEN_RULES = """
teams:
  ops:
    assignment: least_open
    agents:
      - {name: gina, email: gina@help.example}
      - {name: hal, email: hal@help.example}
rules:
  - name: ops
    when: {subject: [outage]}
    then: {team: ops}
"""


def test_least_open_assignment_counts_only_open_tickets(tmp_path: Path, clock: Clock) -> None:
    loaded = load_rules([("rules/ops.yaml", LEAST_OPEN_RULES)])
    assert not loaded.errors and loaded.ruleset is not None
    engine = make_engine(f"sqlite:///{tmp_path / 'lo.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=SECRET,
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: loaded.ruleset,
        clock=clock,
    )
    pipeline = Pipeline(engine, ctx)

    def assign(n: int) -> str | None:
        out = pipeline.ingest(raw_mail(f"o{n}@c", subject=f"outage {n}"), Source("lmtp", "x"))
        with Session(engine) as session:
            ticket = session.get(Ticket, out.ticket_id)
            assert ticket is not None
            return ticket.assignee

    # ties go to the first agent; then whoever has fewer open tickets
    assert [assign(n) for n in range(3)] == ["gina", "hal", "gina"]
    with Session(engine) as session, session.begin():
        for ticket in session.exec(select(Ticket).where(Ticket.assignee == "gina")):
            ticket.status = "closed"  # closed tickets no longer count: gina 0, hal 1
    assert [assign(n) for n in range(3, 6)] == ["gina", "gina", "hal"]
    with Session(engine) as session:
        assert tickets.open_ticket_counts(session, ["gina", "hal", "ivy"]) == {
            "gina": 2,
            "hal": 2,
            "ivy": 0,
        }
    engine.dispose()


def _traced(pipeline: Pipeline) -> list[str]:
    """Every statement SQLite runs from now on (new connections carry the trace)."""
    from sqlalchemy import event

    statements: list[str] = []
    pipeline.engine.dispose()
    event.listen(
        pipeline.engine,
        "connect",
        lambda conn, _rec: conn.set_trace_callback(statements.append),
    )
    return statements


def test_a_batch_without_failures_takes_no_savepoints(sqlite_pipeline: Pipeline) -> None:
    pipeline = sqlite_pipeline
    statements = _traced(pipeline)
    mails = [FetchedMail(u, raw_mail(f"o{u}@c")) for u in (1, 2, 3)]
    pipeline.store_batch("support", "INBOX", 1, mails)
    assert count(pipeline, Message) == 3
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    assert sum(1 for s in statements if s.upper().startswith("INSERT INTO MESSAGE ")) == 3


def test_a_failing_mail_sends_the_batch_round_again_mail_by_mail(
    sqlite_pipeline: Pipeline,
) -> None:
    """The first try has no savepoints; a failure rolls it back whole and the batch is
    stored again with one per mail: the others once each, the failing one quarantined."""

    class BrokenOnOne:
        def on_stored(self, session: Session, mail: Any) -> None:
            if mail.parsed.message_id == "f2@c":
                raise RuntimeError("reactor bug")

    pipeline = sqlite_pipeline
    object.__setattr__(pipeline.ctx, "reactors", (BrokenOnOne(),))
    statements = _traced(pipeline)
    mails = [
        FetchedMail(u, raw_mail(f"f{u}@c", sender=f"c{u}@customer.example")) for u in (1, 2, 3)
    ]
    pipeline.store_batch("support", "INBOX", 1, mails)
    with Session(pipeline.engine) as s:
        stored = sorted(m.message_id for m in s.exec(select(Message)))
        assert stored == ["f1@c", "f3@c"]
        [q] = messages.list_quarantine(s)
        assert q.uid == 2 and "reactor bug" in q.reason
        assert mailboxes.get_checkpoint(s, "support", "INBOX") == (1, 3)
        made = list(s.exec(select(Ticket)))
        assert len(made) == 2
        for t in made:  # each ticket's log written once, not once per try
            kinds = [e.kind for e in tickets.typed_events(s, t.id)]
            assert kinds.count("created") == 1 and kinds.count("message") == 1, kinds
    assert any("ROLLBACK" in s.upper() for s in statements)
    assert sum(1 for s in statements if s.upper().startswith("SAVEPOINT MAIL")) == 3


def test_a_database_failure_the_driver_raises_itself_fails_the_batch_and_loses_no_mail(
    sqlite_pipeline: Pipeline,
) -> None:
    """A statement run on the driver's cursor (``db.fastexec``) raises the driver's own
    error, unwrapped by SQLAlchemy. "database is locked" is the database failing,
    not the mail: the batch commits nothing (IMAP fetches it again), no mail is
    quarantined for it."""

    class LockedOnTwo:
        def on_stored(self, session: Session, mail: Any) -> None:
            if mail.parsed.message_id == "l2@c":
                raise sqlite3.OperationalError("database is locked")

    pipeline = sqlite_pipeline
    object.__setattr__(pipeline.ctx, "reactors", (LockedOnTwo(),))
    mails = [FetchedMail(u, raw_mail(f"l{u}@c")) for u in (1, 2, 3)]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        pipeline.store_batch("support", "INBOX", 1, mails)
    with Session(pipeline.engine) as s:
        assert count(pipeline, Message) == 0
        assert messages.list_quarantine(s) == []
        assert mailboxes.get_checkpoint(s, "support", "INBOX") is None


def test_a_batch_looks_up_its_duplicates_in_one_query(sqlite_pipeline: Pipeline) -> None:
    """Stored before, twice in the batch, and the same Message-ID with other content:
    each answered as before, from one lookup of the batch's Message-IDs."""
    pipeline = sqlite_pipeline
    pipeline.store_batch("support", "INBOX", 1, [FetchedMail(1, raw_mail("d1@c"))])
    statements = _traced(pipeline)
    mails = [
        FetchedMail(2, raw_mail("d1@c")),  # stored by the batch before
        FetchedMail(3, raw_mail("d2@c")),
        FetchedMail(4, raw_mail("d2@c")),  # twice in this batch
        FetchedMail(5, raw_mail("d2@c", body="Other words.")),  # same id, other content
    ]
    pipeline.store_batch("support", "INBOX", 1, mails)
    with Session(pipeline.engine) as s:
        stored = sorted(m.message_id for m in s.exec(select(Message)))
    assert stored == ["d1@c", "d2@c", "d2@c"]
    lookups = [s for s in statements if "message.content_digest = " in s]
    assert lookups == []  # no per-mail lookup
    batch = [s for s in statements if s.startswith("SELECT message.message_id, message.content")]
    assert len(batch) == 1


def test_one_batch_threads_its_own_replies_and_earlier_tickets(pipeline: Pipeline) -> None:
    """A batch looks its mails' thread keys up once at its start: the keys its own
    mails add (and the cited key its parent then makes its own) must still count."""
    from inboxd.db.tables import ThreadKey

    earlier = pipeline.ingest(raw_mail("old@c", subject="Old"), Source("lmtp"))
    mails = [
        raw_mail("r1@c", subject="Re: Printer", in_reply_to="p@c", references="p@c"),
        raw_mail("r2@c", subject="Re: x", references="p@c"),
        raw_mail("p@c"),
        raw_mail("n1@c", subject="New"),
        raw_mail("n2@c", subject="Re: New", in_reply_to="n1@c"),
        raw_mail("o2@c", subject="Re: Old", in_reply_to="old@c"),
    ]
    pipeline.store_batch(
        "support", "INBOX", 1, [FetchedMail(uid, raw) for uid, raw in enumerate(mails, 1)]
    )
    with Session(pipeline.engine) as s:
        ticket_of = {m: t for m, t in s.execute(select(Message.message_id, Message.ticket_id))}
        origin = s.execute(select(ThreadKey.origin).where(ThreadKey.key == "p@c")).scalar_one()
    assert ticket_of["r1@c"] == ticket_of["r2@c"] == ticket_of["p@c"]
    assert ticket_of["n1@c"] == ticket_of["n2@c"] != ticket_of["p@c"]
    assert ticket_of["o2@c"] == earlier.ticket_id
    assert count(pipeline, Ticket) == 3
    assert origin == "self"
    # the next batch reads what this one wrote
    pipeline.store_batch(
        "support", "INBOX", 1, [FetchedMail(7, raw_mail("n3@c", subject="x", references="n2@c"))]
    )
    with Session(pipeline.engine) as s:
        n3 = s.execute(select(Message.ticket_id).where(Message.message_id == "n3@c")).scalar_one()
    assert n3 == ticket_of["n1@c"]


@pytest.mark.parametrize("bad_at", [1, 3])  # a mail in the middle, the batch's last
def test_a_mail_whose_write_fails_late_is_quarantined_alone(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, bad_at: int
) -> None:
    """On PostgreSQL a mail's writes may be answered after the mail (db.deferred):
    one the database refuses (its participants naming no ticket, the mail's last
    write) still sends the batch to its careful try, where that mail alone is
    quarantined, wherever it is in the batch."""
    real = tickets.add_participants
    bad = "mallory@customer.example"

    def refused(db: Any, ticket_id: int, people: Any) -> None:
        wrong = any(p.email == bad for p in people)
        real(db, ticket_id + 10**6 if wrong else ticket_id, people)

    monkeypatch.setattr(tickets, "add_participants", refused)
    mails = [raw_mail(f"g{i}@c", sender=f"c{i}@customer.example") for i in range(3)]
    mails.insert(bad_at, raw_mail("bad@c", sender=bad))
    pipeline.store_batch(
        "support", "INBOX", 5, [FetchedMail(uid, raw) for uid, raw in enumerate(mails, 1)]
    )
    with Session(pipeline.engine) as s:
        assert [q.uid for q in messages.list_quarantine(s)] == [bad_at + 1]
        assert mailboxes.get_checkpoint(s, "support", "INBOX") == (5, 4)
        stored = set(s.exec(select(Message.message_id)).all())
    assert stored == {"g0@c", "g1@c", "g2@c"}


# --- PostgreSQL: message ids reserved for a batch -------------------------------------


@pytest.fixture
def pg_pipeline(postgres: Any, clock: Clock) -> Iterator[Pipeline]:
    engine = make_engine(postgres.create_database())
    upgrade(engine)
    yield Pipeline(engine, _context(clock))
    engine.dispose()


def _syncs(pipeline: Pipeline, tmp_path: Path) -> Callable[[], int]:
    """How many times the client has waited for the server's answers so far (libpq's
    trace of every connection the engine hands out: a Sync, or a Flush in pipeline
    mode, each)."""
    trace = tmp_path / "libpq.trace"
    out = trace.open("w")
    traced: list[Any] = []

    def trace_on(pgconn: Any) -> None:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def checked_out(dbapi_conn: Any, *_args: Any) -> None:
        if dbapi_conn.pgconn not in traced:
            traced.append(dbapi_conn.pgconn)
            trace_on(dbapi_conn.pgconn)

    event.listen(pipeline.engine, "checkout", checked_out)

    def count() -> int:
        for pgconn in traced:  # libpq buffers its trace until it is turned off
            pgconn.untrace()
            trace_on(pgconn)
        lines = trace.read_text().splitlines()
        return sum(line.startswith(("F\t4\tSync", "F\t4\tFlush")) for line in lines)

    return count


def test_a_batch_on_postgresql_waits_once_per_new_ticket(
    pg_pipeline: Pipeline, tmp_path: Path
) -> None:
    """A new mail waits for its ticket's id; a reply to a ticket stored before the
    batch waits for nothing: the batch read its ticket at its start, and reserved
    the message rows' ids."""
    pipeline = pg_pipeline
    for n in range(6):
        pipeline.ingest(raw_mail(f"root{n}@c", sender=f"r{n}@customer.example"), Source("lmtp"))
    syncs = _syncs(pipeline, tmp_path)
    used = []
    roots = iter(range(6))
    for size, uid in ((4, 1), (8, 10)):
        mails = [
            FetchedMail(uid + i, raw_mail(f"n{uid + i}@c", sender=f"c{uid + i}@customer.example"))
            for i in range(size // 2)
        ] + [
            FetchedMail(
                uid + size + i,
                raw_mail(
                    f"re{uid + i}@c", sender=f"r{r}@customer.example", in_reply_to=f"root{r}@c"
                ),
            )
            for i, r in zip(range(size // 2), roots, strict=False)
        ]
        before = syncs()
        pipeline.store_batch("support", "INBOX", 1, mails)
        used.append(syncs() - before)
    assert used[1] - used[0] == 2, used  # 2 new tickets and 2 replies more: 2 waits more
    with Session(pipeline.engine) as s:  # the replies found their tickets
        replies = s.exec(select(Message).where(col(Message.message_id).startswith("re"))).all()
        assert len(replies) == 6 and all(m.matched_by == "header" for m in replies)


def test_replies_in_one_batch_each_see_what_the_one_before_changed(
    pipeline: Pipeline, clock: Clock
) -> None:
    """The batch read the ticket at its start; the first reply reopens it, and the
    second must find it open (a stale snapshot would reopen it a second time)."""
    first = pipeline.ingest(raw_mail("a@c"), Source("lmtp"))
    tid = first.ticket_id or 0
    set_status(pipeline, tid, "solved", clock.now)
    mails = [
        FetchedMail(1, raw_mail("b@c", in_reply_to="a@c")),
        FetchedMail(2, raw_mail("c@c", in_reply_to="a@c", sender="bob@customer.example")),
        FetchedMail(3, raw_mail("d@c", in_reply_to="a@c", sender="bob@customer.example")),
    ]
    pipeline.store_batch("support", "INBOX", 1, mails)
    with Session(pipeline.engine) as s:
        assert (tickets.get_row(s, tid) or Ticket()).status == "open"
        kinds = [e.kind for e in tickets.typed_events(s, tid)]
        assert kinds.count("status") == 2, kinds  # solved, then open once
        joined = [e for e in tickets.typed_events(s, tid) if e.kind == "sender_joined"]
        assert len(joined) == 1  # bob joined with his first mail, not again with his second


def test_a_batch_reads_the_tickets_its_replies_go_to_in_one_query(
    sqlite_pipeline: Pipeline,
) -> None:
    pipeline = sqlite_pipeline
    for n in range(3):
        pipeline.ingest(raw_mail(f"t{n}@c", sender=f"t{n}@customer.example"), Source("lmtp"))
    statements = _traced(pipeline)
    mails = [
        FetchedMail(
            n + 1, raw_mail(f"r{n}@c", sender=f"t{n}@customer.example", in_reply_to=f"t{n}@c")
        )
        for n in range(3)
    ]
    pipeline.store_batch("support", "INBOX", 1, mails)
    reads = [s for s in statements if s.upper().startswith("SELECT TICKET.ID, TICKET.SUBJECT")]
    assert len(reads) == 1, reads
    with Session(pipeline.engine) as s:
        assert [m.ticket_id for m in s.exec(select(Message).order_by(col(Message.id)))] == [
            1, 2, 3, 1, 2, 3,
        ]  # fmt: skip


def test_a_batch_reads_no_ticket_it_created_or_wrote_itself(sqlite_pipeline: Pipeline) -> None:
    """A new ticket and the replies to it in the same batch (one from a new person):
    each reply finds the ticket as the mail before it left it, in the batch's memo
    (tests/test_batch_snapshots.py checks the memo against the database)."""
    pipeline = sqlite_pipeline
    statements = _traced(pipeline)
    mails = [
        FetchedMail(1, raw_mail("root@c")),
        FetchedMail(2, raw_mail("r1@c", in_reply_to="root@c")),
        FetchedMail(3, raw_mail("r2@c", in_reply_to="r1@c", sender="bob@customer.example")),
        FetchedMail(4, raw_mail("r3@c", in_reply_to="r2@c", sender="bob@customer.example")),
    ]
    pipeline.store_batch("support", "INBOX", 1, mails)
    reads = [s for s in statements if s.upper().startswith("SELECT TICKET.ID, TICKET.SUBJECT")]
    assert reads == []
    with Session(pipeline.engine) as s:
        assert {m.ticket_id for m in s.exec(select(Message))} == {1}
        joined = [e for e in tickets.typed_events(s, 1) if e.kind == "sender_joined"]
        assert len(joined) == 1  # bob's second mail found him on the ticket already


def test_reserved_ids_give_way_to_mail_another_writer_committed_meanwhile(
    pg_pipeline: Pipeline, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Another daemon stores a reply on a ticket after this batch reserved its ids
    and before it stores its own reply there: the ticket's mails must still read in
    the order they came (its first mail is its lowest id), so the batch is stored
    again with ids taken as it stores."""
    pipeline = pg_pipeline
    root_ticket = pipeline.ingest(raw_mail("root@c"), Source("lmtp", "support")).ticket_id
    other = Pipeline(make_engine(str(pipeline.engine.url.render_as_string(False))), _context(clock))

    class AnotherDaemonFirst:
        done = False

        def intercept(self, session: Session, arrival: Any) -> None:
            if arrival.parsed.message_id == "mine@c" and not self.done:
                self.done = True
                # a thread of its own: a fresh context, none of this batch's memos
                theirs = raw_mail("theirs@c", in_reply_to="root@c")
                writer = threading.Thread(target=other.ingest, args=(theirs, Source("lmtp", "b")))
                writer.start()
                writer.join(timeout=30)

    object.__setattr__(pipeline.ctx, "interceptors", (AnotherDaemonFirst(),))
    # found by its subject's tag, not by a key the batch read at its start: its
    # ticket is read (and locked) only when this mail comes
    tagged = f"Re: [#{root_ticket}] Printer broken"
    mails = [
        FetchedMail(1, raw_mail("mine@c", subject=tagged)),
        FetchedMail(2, raw_mail("new@c", sender="n@customer.example")),
    ]
    with caplog.at_level(logging.INFO, logger="inboxd.ingest"):
        pipeline.store_batch("support", "INBOX", 1, mails)
    other.engine.dispose()
    with Session(pipeline.engine) as s:
        root = s.exec(select(Message).where(Message.message_id == "root@c")).one()
        on_ticket = s.exec(
            select(Message).where(Message.ticket_id == root.ticket_id).order_by(Message.id)
        ).all()
        assert [m.message_id for m in on_ticket] == ["root@c", "theirs@c", "mine@c"]
        assert sql.count_rows(s, Message) == 4  # each mail once
    assert "another writer stored mail on one of its tickets" in caplog.text
