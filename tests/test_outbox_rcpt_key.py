"""The hourly ack cap counts through outbox.rcpt_key (migration 0002 adds and fills it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import text

from inboxd.db import outbox_queries as q
from inboxd.db.engine import alembic_config, make_engine, upgrade

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def queue(conn, kind: str, rcpts: list[str], at: datetime, n: int) -> None:  # type: ignore[no-untyped-def]
    q.enqueue(
        conn,
        ticket_id=None,
        kind=kind,
        message_id=f"m{n}@help.example",
        mail_from="",
        rcpts=rcpts,
        raw=b"x",
        now=at,
    )


def test_count_to_recipient_by_first_recipient_kind_and_time(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        queue(conn, "ack", ["Carol@Customer.example"], T0, 1)
        queue(conn, "ack", ["carol@customer.example"], T0 + timedelta(minutes=30), 2)
        queue(conn, "ack", ["dave@customer.example"], T0, 3)
        queue(conn, "notify", ["carol@customer.example"], T0, 4)
        queue(conn, "ack", ["carol@customer.example"], T0 - timedelta(hours=2), 5)
        [row] = [r for r in q.list_rows(conn) if r["message_id"] == "m1@help.example"]
        assert row["rcpts"] == ["Carol@Customer.example"]  # stored as given
        since = T0 - timedelta(minutes=1)

        def count(kind: str, rcpt: str, since: datetime = since) -> int:
            return q.count_to_recipient(conn, kind=kind, rcpt=rcpt, since=since)

        assert count("ack", "CAROL@customer.example") == 2
        assert count("ack", "dave@customer.example") == 1
        assert count("notify", "carol@customer.example") == 1
        later = T0 + timedelta(minutes=10)
        assert count("ack", "carol@customer.example", later) == 1
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM outbox"
            " WHERE rcpt_key = ? AND kind = ? AND created_at >= ?",
            ("carol@customer.example", "ack", "2026-03-02"),
        ).all()
        assert "ix_outbox_rcpt_kind_created" in " ".join(str(r) for r in plan)
    engine.dispose()


def test_migration_0002_fills_rcpt_key_of_existing_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        for n, rcpts in enumerate((["Carol@Customer.example", "x@y.example"], [])):
            conn.execute(
                text(
                    "INSERT INTO outbox (kind, message_id, mail_from, rcpts, raw, status,"
                    " attempts, next_attempt_at, last_error, created_at)"
                    " VALUES ('ack', :mid, '', :rcpts, x'00', 'sent', 1, :at, '', :at)"
                ),
                {"mid": f"old{n}@help.example", "rcpts": json.dumps(rcpts), "at": "2026-03-02"},
            )
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT message_id, rcpt_key FROM outbox ORDER BY id")).all()
    assert [tuple(k) for k in keys] == [
        ("old0@help.example", "carol@customer.example"),
        ("old1@help.example", ""),
    ]
    command.downgrade(cfg, "0001")
    command.upgrade(cfg, "head")
    engine.dispose()


def test_held_rows_count_as_they_are_held_and_leave_with_a_dropped_mail(tmp_path: Path) -> None:
    """Inside an ingest batch the caps count the rows held so far; counting between holds
    (the index grows) and after a mail's rows are dropped (the index is rebuilt)."""
    from inboxd.db import behind

    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    upgrade(engine)

    def hold(conn, kind: str, rcpt: str, at: datetime, n: int) -> None:  # type: ignore[no-untyped-def]
        q.enqueue_held(
            conn,
            ticket_id=None,
            kind=kind,
            message_id=f"h{n}@help.example",
            mail_from="",
            rcpts=[rcpt],
            intent="{}",
            now=at,
        )

    since = T0 - timedelta(minutes=1)
    with engine.begin() as conn:
        queue(conn, "ack", ["carol@customer.example"], T0, 1)  # written before the batch
        with behind.batch(conn):

            def counts() -> tuple[int, int, int]:
                return (
                    q.count_to_recipient(
                        conn, kind="ack", rcpt="carol@customer.example", since=since
                    ),
                    q.count_kind(conn, kind="ack", since=since, domain="customer.example"),
                    q.count_kind(conn, kind="ack", since=since),
                )

            assert counts() == (1, 1, 1)
            hold(conn, "ack", "Carol@customer.example", T0 + timedelta(minutes=5), 2)
            assert counts() == (2, 2, 2)
            hold(conn, "ack", "dave@customer.example", T0, 3)
            hold(conn, "notify", "carol@customer.example", T0, 4)
            hold(conn, "ack", "carol@customer.example", T0 - timedelta(hours=2), 5)
            assert counts() == (2, 3, 3)
            mark = behind.mark()
            hold(conn, "ack", "carol@customer.example", T0 + timedelta(minutes=7), 6)
            hold(conn, "ack", "erin@other.example", T0, 7)
            assert counts() == (3, 4, 5)
            behind.drop(mark)  # that mail was rolled back
            assert counts() == (2, 3, 3)
            hold(conn, "ack", "erin@other.example", T0, 8)
            hold(conn, "ack", "erin@other.example", T0, 9)
            assert counts() == (2, 3, 5)  # as many held rows as before the drop, other ones
        assert counts() == (2, 3, 5)  # written at the batch's end, counted from the table
    engine.dispose()
