"""Rows written through the DB-API fast path read back through the ORM unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import Session

from inboxd.db import repo
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Event, Ticket


def test_fast_insert_and_query_round_trip_types(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fast.db'}")
    upgrade(engine)
    berlin = timezone(timedelta(hours=1))
    created = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=berlin)
    with Session(engine) as s, s.begin():
        tid = repo.create_ticket(
            s,
            {
                "subject": "Grüße ✓",
                "created_at": created,
                "updated_at": created,
                "status_changed_at": created,
                "tags": ["vip", "ä"],
            },
        )
        repo.add_event(s, tid, created, "system", "created", {"nested": {"x": [1, None]}})
        repo.update_ticket(s, tid, {"priority": "urgent", "tags": ["b"], "assignee": None})
        routing = repo.ticket_routing(s, tid)
        snaps = repo.ticket_snapshots(s, [tid, 999])
    assert routing is not None
    assert routing["tags"] == ["b"] and routing["priority"] == "urgent"
    assert routing["status"] == "new"  # scalar default filled in by the fast path
    assert set(snaps) == {tid}
    assert snaps[tid].status_changed_at == created.astimezone(UTC)
    with Session(engine) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        assert ticket.subject == "Grüße ✓" and ticket.vip is False
        assert ticket.created_at == created.astimezone(UTC)
        [event] = repo.events(s, tid)
        assert isinstance(event, Event) and event.data == {"nested": {"x": [1, None]}}
    engine.dispose()


def test_savepoint_rolls_back_only_its_own_writes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    upgrade(engine)
    now = datetime.now(UTC)
    values = {"created_at": now, "updated_at": now, "status_changed_at": now, "tags": []}
    with Session(engine) as s, s.begin():
        conn = s.connection()
        kept = repo.create_ticket(conn, values)
        try:
            with repo.savepoint(conn):
                repo.create_ticket(conn, values)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    with Session(engine) as s:
        assert [t.id for t in repo.list_tickets(s)] == [kept]
    engine.dispose()
