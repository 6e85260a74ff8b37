"""db.tickets is the one writer: what it saves reads back, and nothing else writes tickets."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailflow_kit import mail, make_desk, reply_to_notification
from sqlalchemy.engine import Engine
from sqlmodel import Session

from inboxd.core.desk import Change, Status, Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr
from inboxd.db import behind, tickets
from inboxd.db.engine import make_engine, upgrade

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INBOXD = Path(__file__).resolve().parents[1] / "inboxd"


def engine_at(db_url: str) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    return engine


def new_ticket(db: Session, subject: str = "Printer") -> Ticket:
    return tickets.create(
        db,
        subject=subject,
        normalized_subject=subject.lower(),
        requester="carol@customer.example",
        requester_name="Carol",
        mailbox="support",
        now=T0,
        source="lmtp",
        actor=ev.customer("carol@customer.example"),
    )


def test_created_ticket_loads_back_as_the_same_value(db_url: str) -> None:
    engine = engine_at(db_url)
    with Session(engine) as s, s.begin():
        made = new_ticket(s)
        tickets.add_participants(
            s, made.id, [tickets.Person("carol@customer.example", "C", "requester")]
        )
    with Session(engine) as s:
        loaded = tickets.load(s, made.id)
        assert loaded == replace(made, participants=frozenset({"carol@customer.example"}))
        assert loaded is not None and loaded.status is Status.NEW
        assert loaded.last_customer_mail_at == T0
        [created] = tickets.typed_events(s, made.id)
    assert created == ev.Created(at=T0, actor="customer:carol@customer.example", source="lmtp")
    engine.dispose()


def test_save_writes_the_changed_fields_and_appends_the_events(db_url: str) -> None:
    engine = engine_at(db_url)
    t1 = T0 + timedelta(hours=2)
    with Session(engine) as s, s.begin():
        made = new_ticket(s)
        change = tr.agent_replied(made, actor="agent:alice", now=t1, message=1, message_id="m@x")
        change = change.then(tr.set_priority(change.after, "urgent", actor="agent:alice", now=t1))
        assert set(change.fields) == {
            "first_agent_reply_at",
            "status",
            "status_changed_at",
            "priority",
            "updated_at",
        }
        tickets.save(s, change)
    with Session(engine) as s:
        assert tickets.load(s, made.id) == change.after
        kinds = [e.kind for e in tickets.typed_events(s, made.id)]
        row = tickets.get_row(s, made.id)
    assert kinds == ["created", "agent_reply", "status", "priority"]
    assert (
        row is not None and row.subject == "Printer" and row.requester == "carol@customer.example"
    )
    engine.dispose()


def test_an_address_the_change_adds_becomes_a_customer_participant(db_url: str) -> None:
    engine = engine_at(db_url)
    with Session(engine) as s, s.begin():
        made = new_ticket(s)
        tickets.save(s, Change(made, replace(made, participants=frozenset({"dan@x.example"}))))
    with Session(engine) as s:
        assert tickets.customer_participants(s, made.id) == [
            tickets.Person("dan@x.example", "", "customer")
        ]
    engine.dispose()


def _due(db: Session, ticket_id: int) -> datetime | None:
    row = tickets.get_row(db, ticket_id)
    assert row is not None
    return row.sla_due_at.replace(tzinfo=UTC) if row.sla_due_at else None


def test_a_change_that_moves_a_clock_makes_the_ticket_due_for_the_sweep(db_url: str) -> None:
    engine = engine_at(db_url)
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    with Session(engine) as s, s.begin():
        made = new_ticket(s)
        retagged = tr.retag(made, add=("x",), actor="agent:a", now=t1)
        tickets.save(s, retagged)
        assert _due(s, made.id) is None  # no policy: nothing to watch
        routed = Change(retagged.after, replace(retagged.after, sla_policy="standard"))
        tickets.save(s, routed)
        assert _due(s, made.id) == routed.after.updated_at
        tickets.save(s, tr.set_priority(routed.after, "high", actor="agent:a", now=t2))
        assert _due(s, made.id) == routed.after.updated_at  # a priority moves no clock
        replied = tr.agent_replied(routed.after, actor="agent:a", now=t2, message=1, message_id="m")
        tickets.save(s, replied)
        assert _due(s, made.id) == t2
    engine.dispose()


def test_resolve_follows_merges_to_the_surviving_ticket(db_url: str) -> None:
    engine = engine_at(db_url)
    with Session(engine) as s, s.begin():
        a, b, c = (new_ticket(s, name) for name in ("a", "b", "c"))
        for source, target in ((a, b), (b, c)):
            current = tickets.load(s, source.id)
            into = tickets.load(s, target.id)
            assert current is not None and into is not None
            for change in tr.merge(current, into, actor="agent:x", now=T0):
                tickets.save(s, change)
    with Session(engine) as s:
        found = tickets.resolve(s, a.id)
        assert found is not None and found.id == c.id
        assert tickets.resolve(s, 999) is None
    engine.dispose()


def test_every_event_a_mail_conversation_writes_is_a_typed_kind(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    out = desk.deliver(mail())
    assert out.ticket_id is not None
    [note] = [m for m in desk.outbox_mails("notify") if "alice" in str(m["To"])]
    desk.deliver(reply_to_notification(note, body="#tag printer\n#priority high\n\nOn it.\n"))
    desk.deliver(mail(msgid="c2@customer.example", subject="Re: Printer broken"))
    with Session(desk.engine) as s:
        rows = tickets.event_rows(s, out.ticket_id)
        typed = tickets.typed_events(s, out.ticket_id)
    assert len(rows) > 5 and len(typed) == len(rows)
    assert {row.kind for row in rows} <= set(ev.EVENT_KINDS)


_WRITES = re.compile(
    r"(?:insert|update)\(\s*(?:Ticket|Event|TicketRow)\b"
    r"|_(?:TICKET|EVENT)_T\.(?:insert|update)\("
    r"|\bEvent\.__table__\.insert\("
)


def test_only_the_writer_writes_ticket_and_event_rows() -> None:
    writers = sorted(
        str(path.relative_to(INBOXD))
        for path in INBOXD.rglob("*.py")
        if "migrations" not in path.parts and _WRITES.search(path.read_text(encoding="utf-8"))
    )
    assert writers == ["db/tickets.py"]


def test_batched_events_are_written_at_the_end_and_dropped_with_their_mail(db_url: str) -> None:
    engine = engine_at(db_url)
    t1 = T0 + timedelta(hours=1)
    with Session(engine) as s, s.begin():
        made = new_ticket(s)
        with behind.batch(s.connection()):
            tickets.record(s, made.id, ev.NoteAdded(at=t1, actor="agent:a", message=1))
            mark = behind.mark()
            tickets.record(s, made.id, ev.NoteAdded(at=t1, actor="agent:a", message=2))
            # held, not written, yet visible to reads of the log
            assert [e.kind for e in tickets.typed_events(s, made.id)] == ["created", "note", "note"]
            assert len(tickets.event_rows(s, made.id)) == 1
            behind.drop(mark)  # the second one's mail was rolled back
        rows = [(r.kind, r.data.get("message")) for r in tickets.event_rows(s, made.id)]
    assert rows == [("created", None), ("note", 1)]
    engine.dispose()


def test_a_batch_reads_an_agents_number_once_and_forgets_it_after(db_url: str) -> None:
    from sqlalchemy import text

    from inboxd.db import agents

    engine = engine_at(db_url)
    with Session(engine) as s, s.begin():
        conn = s.connection()
        assert behind.memo("agent_numbers") is None  # no batch, no memo
        with behind.batch(conn):
            first = agents.agent_number(conn, "Alice@Help.example", "Alice")
            conn.execute(text("DELETE FROM agentidentity"))  # the memo answers now
            assert agents.agent_number(conn, "alice@help.example") == first
        assert behind.memo("agent_numbers") is None
        agents.agent_number(conn, "alice@help.example")  # read again: made anew, as deleted
        assert [r[0] for r in conn.execute(text("SELECT email FROM agentidentity"))] == [
            "alice@help.example"
        ]
    engine.dispose()


def test_a_batch_keeps_its_open_counts_true_through_every_change(db_url: str) -> None:
    """Least-open assignment counts each agent's open tickets once per batch; every
    change the writer saves in the batch moves the count, so it always equals a
    fresh count."""
    engine = engine_at(db_url)
    agents = ["alice", "bob"]

    def fresh(conn: object) -> dict[str, int]:
        from sqlalchemy import text

        rows = conn.execute(  # type: ignore[attr-defined]
            text(
                "SELECT assignee, count(*) FROM ticket WHERE assignee IS NOT NULL"
                " AND status IN ('new', 'open', 'pending') GROUP BY assignee"
            )
        ).all()
        return {**dict.fromkeys(agents, 0), **{a: int(n) for a, n in rows}}

    with Session(engine) as s, s.begin():
        conn = s.connection()
        made = [new_ticket(s, f"T{n}") for n in range(4)]
        with behind.batch(conn):
            assert tickets.open_ticket_counts(conn, agents) == {"alice": 0, "bob": 0}
            now = T0 + timedelta(minutes=1)
            for t, who in zip(made, ["alice", "alice", "bob", "alice"], strict=True):
                change = tr.assign_agent(t, who, teams=[], actor="agent:x", now=now)
                tickets.save(s, change)
            current = {t.id: tickets.load(s, t.id) for t in made}
            solved = tr.change_status(current[made[0].id], "solved", actor="agent:x", now=now)
            tickets.save(s, solved)
            moved = tr.assign_agent(current[made[1].id], "bob", teams=[], actor="a", now=now)
            tickets.save(s, moved)
            assert tickets.open_ticket_counts(conn, agents) == fresh(conn) == {"alice": 1, "bob": 2}
            again = tr.change_status(solved.after, "open", actor="agent:x", now=now)
            tickets.save(s, again)
            assert tickets.open_ticket_counts(conn, agents) == fresh(conn) == {"alice": 2, "bob": 2}
    engine.dispose()
