"""The generic drain on a real SQLite file, with a scripted in-memory deliverer.

The queue is the real Slack notices table (``slack_queries.QUEUE``); only the
remote is played by ``Script``, which answers each row as its text says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.db import slack_queries as sq
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.drain import Deliverer, Delivery, Drain

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_T = sq.QUEUE.table


class Script(Deliverer[sq.SlackPost]):
    """Answers each row with the next outcome scripted for its text (``ok`` when none is left)."""

    def __init__(self, **outcomes: list[Delivery]) -> None:
        self.outcomes = outcomes
        self.delivered: list[str] = []
        self.rounds = 0
        self.failures: list[tuple[str, str, str]] = []  # text, reason, status seen by the hook

    @contextmanager
    def connect(self) -> Iterator[Callable[[sq.SlackPost], Delivery]]:
        self.rounds += 1
        yield self.deliver

    def deliver(self, row: sq.SlackPost) -> Delivery:
        self.delivered.append(row.text)
        script = self.outcomes.get(row.text)
        outcome = script.pop(0) if script else Delivery("ok", "fine")
        if outcome.detail == "raise":
            raise RuntimeError("deliverer bug")
        return outcome

    def describe(self, row: sq.SlackPost) -> str:
        return f"text={row.text}"

    def failed(self, conn: Connection, row: sq.SlackPost, reason: str, now: datetime) -> None:
        status = conn.execute(select(_T.c.status).where(_T.c.id == row.id)).scalar_one()
        self.failures.append((row.text, reason, status))


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = make_engine(db_url)
    upgrade(eng)
    return eng


def queue(engine: Engine, *texts: str) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for text in texts:
            row_id = sq.enqueue(conn, channel="#ops", text=text, blocks=[], now=T0)
            assert row_id is not None
            ids.append(row_id)
    return ids


def state(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {str(r["text"]): r for r in sq.list_rows(conn, limit=100)}


def due(row: dict[str, Any]) -> datetime:
    value = row["next_attempt_at"]
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def drain(engine: Engine, script: Script, clock: Clock, **kw: Any) -> Drain[sq.SlackPost]:
    return Drain(
        engine, sq.QUEUE, script, name="test", retry_for=3600, clock=clock, rng=lambda: 0.0, **kw
    )


def test_ok_rows_are_sent_in_one_round_over_one_connection(engine: Engine) -> None:
    queue(engine, "a", "b", "c")
    script, clock = Script(), Clock(T0)
    report = drain(engine, script, clock).run_once()
    assert (report.claimed, report.sent, report.retried, report.failed) == (3, 3, 0, 0)
    assert script.delivered == ["a", "b", "c"] and script.rounds == 1
    rows = state(engine)
    assert all(r["status"] == sq.SENT and r["attempts"] == 1 for r in rows.values())
    assert drain(engine, script, clock).run_once().claimed == 0
    assert script.rounds == 1  # nothing claimed: no connection opened


def test_temporary_then_ok_waits_the_backoff(engine: Engine) -> None:
    queue(engine, "busy")
    script, clock = Script(busy=[Delivery("temporary", "try later")]), Clock(T0)
    d = drain(engine, script, clock)
    report = d.run_once()
    assert (report.retried, report.sent) == (1, 0)
    row = state(engine)["busy"]
    assert row["status"] == sq.QUEUED and row["last_error"] == "try later"
    assert due(row) == T0 + timedelta(seconds=30)  # 1 min nominal, rng 0 -> 30 s
    clock.now = T0 + timedelta(seconds=29)
    assert d.run_once().claimed == 0
    clock.now = T0 + timedelta(seconds=30)
    assert d.run_once().sent == 1
    row = state(engine)["busy"]
    assert row["status"] == sq.SENT and row["attempts"] == 2
    assert script.failures == []


def test_retry_after_is_waited_exactly_and_a_crash_is_temporary(engine: Engine) -> None:
    queue(engine, "limited", "buggy")
    script = Script(
        limited=[Delivery("temporary", "rate limited", retry_after=120)],
        buggy=[Delivery("temporary", "raise")],
    )
    clock = Clock(T0)
    report = drain(engine, script, clock).run_once()
    assert (report.claimed, report.retried) == (2, 2)
    rows = state(engine)
    assert due(rows["limited"]) == T0 + timedelta(seconds=120)
    assert rows["buggy"]["status"] == sq.QUEUED
    assert "deliverer bug" in str(rows["buggy"]["last_error"])


def test_permanent_fails_at_once_and_the_hook_runs_in_the_settle_transaction(
    engine: Engine,
) -> None:
    queue(engine, "bad", "good")
    script, clock = Script(bad=[Delivery("permanent", "channel_not_found")]), Clock(T0)
    report = drain(engine, script, clock).run_once()
    assert (report.sent, report.failed, report.errors) == (1, 1, ["1: channel_not_found"])
    # the hook saw the row already failed, through the transaction that failed it
    assert script.failures == [("bad", "channel_not_found", sq.FAILED)]
    assert state(engine)["bad"]["status"] == sq.FAILED
    clock.now += timedelta(days=2)
    assert drain(engine, script, clock).run_once().claimed == 0


def test_temporary_past_retry_for_gives_up(engine: Engine) -> None:
    queue(engine, "down")
    script = Script(down=[Delivery("temporary", "refused")] * 50)
    clock = Clock(T0)
    d = drain(engine, script, clock)
    for _ in range(20):
        if d.run_once().failed:
            break
        clock.now = due(state(engine)["down"])
    row = state(engine)["down"]
    assert row["status"] == sq.FAILED
    assert str(row["last_error"]).startswith(f"gave up after {row['attempts']} attempts: refused")
    assert len(script.failures) == 1


def test_record_runs_when_sent_or_rescheduled_not_when_failed(engine: Engine) -> None:
    queue(engine, "sent", "retried", "failed")
    recorded: list[str] = []

    def note(text: str) -> Callable[[Connection, datetime], None]:
        return lambda conn, now: recorded.append(text)

    script = Script(
        sent=[Delivery("ok", record=note("sent"))],
        retried=[Delivery("temporary", "later", record=note("retried"))],
        failed=[Delivery("permanent", "no", record=note("failed"))],
    )
    drain(engine, script, Clock(T0)).run_once()
    assert recorded == ["sent", "retried"]


def test_stop_mid_round_hands_the_unsent_rows_back_due_now(engine: Engine) -> None:
    queue(engine, "a", "b", "c", "d")
    script, clock = Script(), Clock(T0)
    clock.now = T0 + timedelta(minutes=1)
    d = drain(engine, script, clock, should_stop=lambda: len(script.delivered) >= 2)
    report = d.run_once()
    assert (report.claimed, report.sent, report.released) == (4, 2, 2)
    rows = state(engine)
    assert [rows[t]["status"] for t in "abcd"] == [sq.SENT, sq.SENT, sq.QUEUED, sq.QUEUED]
    assert due(rows["c"]) == clock.now  # not left to wait out the lease
    assert rows["c"]["last_error"] == "not sent: stopped"
    again = drain(engine, script, clock).run_once()
    assert (again.claimed, again.sent) == (2, 2)
    assert script.delivered == ["a", "b", "c", "d"]


def test_a_dead_drains_rows_wait_for_the_lease_or_recover(engine: Engine) -> None:
    queue(engine, "a")
    clock = Clock(T0)
    with engine.begin() as conn:  # a drain that claimed and died
        assert len(sq.claim(conn, now=T0, lease_until=T0 + timedelta(minutes=5), limit=5)) == 1
    script = Script()
    d = drain(engine, script, clock, lease=timedelta(minutes=5))
    assert d.run_once().claimed == 0
    if engine.dialect.name == "sqlite":  # one daemon a file: its own dead run's rows
        assert d.recover() == 1
    else:  # other daemons may be sending them: they wait for their lease
        assert d.recover() == 0
        clock.now = T0 + timedelta(minutes=5)
    assert d.run_once().sent == 1
    assert state(engine)["a"]["attempts"] == 2
