"""Outbox drain on a real SQLite file and a real SMTP server (aiosmtpd, 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.smtp import SmtpServer
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.config import SmtpConfig
from inboxd.core.compose import OutboundKind, OutboundMail, render_message
from inboxd.core.model import Address
from inboxd.db import outbox_queries as q
from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.outbox import OutboxDrain
from inboxd.delivery.smtp_send import SendResult, SmtpSender

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = make_engine(db_url)
    upgrade(eng)
    return eng


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    srv = SmtpServer().start()
    yield srv
    srv.stop()


def make_ticket(engine: Engine) -> int:
    with engine.begin() as conn:
        return tickets.create(
            conn,
            subject="Printer",
            normalized_subject="printer",
            requester="carol@customer.example",
            requester_name="Carol",
            mailbox="support",
            now=T0,
            source="test",
            actor="customer:carol@customer.example",
        ).id


def raw_for(n: int, to: str = "carol@customer.example") -> bytes:
    return render_message(
        OutboundMail(
            kind=OutboundKind.ACK,
            ticket_id=n,
            from_addr=Address("support@help.example"),
            to=(Address(to),),
            subject=f"[#{n}] Printer",
            text=f"mail {n}\n",
            message_id=f"ibx.{n}.n{n}.sig@help.example",
        ),
        date=T0,
    )


def enqueue(
    engine: Engine,
    n: int,
    *,
    ticket_id: int | None = None,
    rcpts: tuple[str, ...] = ("carol@customer.example",),
    kind: str = "ack",
    now: datetime = T0,
) -> int:
    with engine.begin() as conn:
        return q.enqueue(
            conn,
            ticket_id=ticket_id,
            kind=kind,
            message_id=f"ibx.{n}.n{n}.sig@help.example",
            mail_from="bounces@help.example",
            rcpts=rcpts,
            raw=raw_for(n, rcpts[0]),
            now=now,
        )


def rows(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["id"]: r for r in q.list_rows(conn, limit=1000)}


def smtp_config(port: int) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, timeout=5.0, retry_for=3600.0)


def drain(
    engine: Engine,
    port: int,
    clock: Clock,
    failures: list[tuple[int, str]] | None = None,
    **kw: Any,
) -> OutboxDrain:
    def on_failed(conn: Connection, mail: q.OutboxMail, reason: str, now: datetime) -> None:
        if failures is not None:
            failures.append((mail.id, reason))

    cfg = smtp_config(port)
    return OutboxDrain(
        engine,
        lambda: SmtpSender(cfg, None),
        retry_for=cfg.retry_for,
        clock=clock,
        rng=lambda: 0.5,
        on_failed=on_failed,
        **kw,
    )


def delivered_ids(server: SmtpServer) -> Counter[str]:
    out: Counter[str] = Counter()
    for c in server.captured:
        for line in c.data.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                out[line.split(b":", 1)[1].strip().decode()] += 1
    return out


# --- the happy path ----------------------------------------------------------------------


def test_drain_sends_everything_over_one_connection(engine: Engine, server: SmtpServer) -> None:
    ids = [enqueue(engine, n) for n in range(1, 6)]
    clock = Clock(T0)
    report = drain(engine, server.port, clock).run_once()
    assert (report.claimed, report.sent, report.retried, report.failed) == (5, 5, 0, 0)
    assert len(server.captured) == 5
    assert len(server.peers()) == 1
    state = rows(engine)
    assert all(state[i]["status"] == "sent" and state[i]["attempts"] == 1 for i in ids)
    assert state[ids[0]]["sent_at"] is not None
    # nothing left: a second run claims nothing and does not even connect
    server.stop()
    assert drain(engine, server.port, clock).run_once().claimed == 0


def test_not_yet_due_rows_wait(engine: Engine, server: SmtpServer) -> None:
    enqueue(engine, 1, now=T0 + timedelta(minutes=5))
    clock = Clock(T0)
    assert drain(engine, server.port, clock).run_once().claimed == 0
    clock.advance(minutes=5)
    assert drain(engine, server.port, clock).run_once().sent == 1


def test_max_per_run(engine: Engine, server: SmtpServer) -> None:
    for n in range(1, 8):
        enqueue(engine, n)
    clock = Clock(T0)
    assert drain(engine, server.port, clock, max_per_run=3).run_once().sent == 3
    assert drain(engine, server.port, clock, max_per_run=10).run_once().sent == 4


# --- failures ------------------------------------------------------------------------------


def test_server_down_then_back_delivers_each_mail_exactly_once(
    engine: Engine, server: SmtpServer
) -> None:
    port = server.port
    server.stop()
    ids = [enqueue(engine, n) for n in range(1, 4)]
    clock = Clock(T0)
    for _ in range(3):  # down for a while: several runs, all temporary
        report = drain(engine, port, clock).run_once()
        assert report.retried == report.claimed == 3
        clock.advance(minutes=10)
    state = rows(engine)
    assert all(state[i]["status"] == "queued" for i in ids)
    assert all(state[i]["attempts"] == 3 for i in ids)
    assert "connect" in state[ids[0]]["last_error"]

    back = SmtpServer()
    back.controller.port = port
    back.start()
    try:
        clock.now = T0 + timedelta(minutes=59)  # inside retry_for (1 h) after queueing
        for _ in range(3):
            drain(engine, port, clock).run_once()
        assert delivered_ids(back) == Counter(
            {f"<ibx.{n}.n{n}.sig@help.example>": 1 for n in (1, 2, 3)}
        )
        assert all(rows(engine)[i]["status"] == "sent" for i in ids)
    finally:
        back.stop()


def test_backoff_schedule_is_stored(engine: Engine, server: SmtpServer) -> None:
    server.behaviour.rcpt_default = "451 4.3.0 later"
    row = enqueue(engine, 1)
    clock = Clock(T0)
    drain(engine, server.port, clock).run_once()
    first = rows(engine)[row]["next_attempt_at"].replace(tzinfo=UTC)
    assert first == T0 + timedelta(seconds=45)  # 1 min nominal, rng 0.5 -> 45 s
    clock.now = first
    drain(engine, server.port, clock).run_once()
    second = rows(engine)[row]["next_attempt_at"].replace(tzinfo=UTC)
    assert second == first + timedelta(seconds=90)
    assert rows(engine)[row]["attempts"] == 2


def test_permanent_failure_marks_failed_notes_ticket_and_alerts_once(
    engine: Engine, server: SmtpServer
) -> None:
    ticket = make_ticket(engine)
    server.behaviour.rcpt_default = "550 5.1.1 no such user"
    row = enqueue(engine, 1, ticket_id=ticket)
    failures: list[tuple[int, str]] = []
    clock = Clock(T0)
    report = drain(engine, server.port, clock, failures).run_once()
    assert report.failed == 1
    state = rows(engine)[row]
    assert state["status"] == "failed"
    assert "550" in state["last_error"]
    assert failures == [(row, failures[0][1])] and "550" in failures[0][1]
    events = ticket_events(engine, ticket)
    assert [e["kind"] for e in events] == ["delivery_failed"]
    assert events[0]["data"]["outbox"] == row
    # failed rows are not claimed again
    clock.advance(days=1)
    assert drain(engine, server.port, clock, failures).run_once().claimed == 0
    assert len(failures) == 1


def ticket_events(engine: Engine, ticket_id: int) -> list[dict[str, Any]]:
    """What the drain wrote on the ticket (the ``created`` event is make_ticket's)."""
    from sqlalchemy import select

    from inboxd.db.tables import Event

    table = Event.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        result = conn.execute(
            select(table.c.kind, table.c.data).where(
                table.c.ticket_id == ticket_id, table.c.kind != "created"
            )
        )
        return [dict(r) for r in result.mappings()]


def test_failed_alert_does_not_alert_again(engine: Engine, server: SmtpServer) -> None:
    server.behaviour.rcpt_default = "550 5.1.1 no such user"
    enqueue(engine, 1, kind="bounce_alert")
    failures: list[tuple[int, str]] = []
    report = drain(engine, server.port, Clock(T0), failures).run_once()
    assert report.failed == 1
    assert failures == []


def test_retry_for_exhausted_fails(engine: Engine, server: SmtpServer) -> None:
    server.behaviour.rcpt_default = "451 4.3.0 later"
    row = enqueue(engine, 1)
    failures: list[tuple[int, str]] = []
    clock = Clock(T0)
    runs = 0
    while rows(engine)[row]["status"] == "queued" and runs < 50:
        drain(engine, server.port, clock, failures).run_once()
        clock.now = rows(engine)[row]["next_attempt_at"].replace(tzinfo=UTC)
        runs += 1
    state = rows(engine)[row]
    assert state["status"] == "failed"
    assert state["last_error"].startswith(f"gave up after {state['attempts']} attempts")
    assert 5 < runs < 20  # 1 h of retries: 45 s, 90 s, 3 min ... capped, then the deadline
    assert len(failures) == 1


def test_mixed_refusals_narrow_the_retry(engine: Engine, server: SmtpServer) -> None:
    ticket = make_ticket(engine)
    server.behaviour.rcpt = {
        "gone@x.example": "550 5.1.1 no such user",
        "busy@x.example": "452 4.2.2 mailbox full",
    }
    row = enqueue(engine, 1, ticket_id=ticket, rcpts=("gone@x.example", "busy@x.example"))
    failures: list[tuple[int, str]] = []
    clock = Clock(T0)
    drain(engine, server.port, clock, failures).run_once()
    state = rows(engine)[row]
    assert state["status"] == "queued"
    assert state["rcpts"] == ["busy@x.example"]
    assert [e["kind"] for e in ticket_events(engine, ticket)] == ["delivery_refused"]
    assert len(failures) == 1 and "gone@x.example" in failures[0][1]
    server.behaviour.rcpt = {}
    clock.now = rows(engine)[row]["next_attempt_at"].replace(tzinfo=UTC)
    drain(engine, server.port, clock, failures).run_once()
    assert rows(engine)[row]["status"] == "sent"
    assert server.captured[-1].rcpt_tos == ["busy@x.example"]


def test_partial_acceptance_requeues_only_the_deferred_recipient(
    engine: Engine, server: SmtpServer
) -> None:
    server.behaviour.rcpt = {"busy@x.example": "452 4.2.2 mailbox full"}
    row = enqueue(engine, 1, rcpts=("carol@x.example", "busy@x.example"))
    clock = Clock(T0)
    drain(engine, server.port, clock).run_once()
    state = rows(engine)
    assert state[row]["status"] == "sent"
    [follow_up] = [r for i, r in state.items() if i != row]
    assert follow_up["rcpts"] == ["busy@x.example"]
    assert follow_up["status"] == "queued"
    assert follow_up["message_id"] == state[row]["message_id"]  # same mail, same id
    server.behaviour.rcpt = {}
    clock.now = follow_up["next_attempt_at"].replace(tzinfo=UTC)
    drain(engine, server.port, clock).run_once()
    assert [c.rcpt_tos for c in server.captured] == [["carol@x.example"], ["busy@x.example"]]


def test_stop_request_hands_unsent_rows_back(engine: Engine, server: SmtpServer) -> None:
    ids = [enqueue(engine, n) for n in range(1, 5)]
    clock = Clock(T0)
    d = drain(engine, server.port, clock, should_stop=lambda: len(server.captured) >= 2)
    report = d.run_once()
    assert (report.sent, report.released) == (2, 2)
    state = rows(engine)
    assert [state[i]["status"] for i in ids] == ["sent", "sent", "queued", "queued"]
    assert drain(engine, server.port, clock).run_once().sent == 2


def test_sender_exception_is_a_temporary_failure(engine: Engine) -> None:
    class Broken:
        def __enter__(self) -> Broken:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> SendResult:
            raise RuntimeError("boom")

    row = enqueue(engine, 1)
    report = OutboxDrain(
        engine, Broken, retry_for=3600, clock=Clock(T0), rng=lambda: 0.0
    ).run_once()
    assert report.retried == 1
    assert "boom" in rows(engine)[row]["last_error"]


# --- claims and crashes -------------------------------------------------------------------


def test_claim_is_a_lease(engine: Engine) -> None:
    row = enqueue(engine, 1)
    with engine.begin() as conn:
        first = q.claim(conn, now=T0, lease_until=T0 + timedelta(minutes=10), limit=10)
    with engine.begin() as conn:
        second = q.claim(conn, now=T0, lease_until=T0 + timedelta(minutes=10), limit=10)
    assert [m.id for m in first] == [row] and second == []
    with engine.begin() as conn:  # the owner died: after the lease the row is claimable
        third = q.claim(
            conn, now=T0 + timedelta(minutes=10), lease_until=T0 + timedelta(minutes=20), limit=10
        )
    assert [m.id for m in third] == [row]
    assert third[0].attempts == 2


def test_recover_releases_rows_left_sending(engine: Engine, server: SmtpServer) -> None:
    row = enqueue(engine, 1)
    with engine.begin() as conn:
        q.claim(conn, now=T0, lease_until=T0 + timedelta(hours=1), limit=10)
    clock = Clock(T0)
    d = drain(engine, server.port, clock)
    assert d.run_once().claimed == 0  # still leased
    if engine.dialect.name == "sqlite":  # one daemon a file: its own dead run's rows
        assert d.recover() == 1
    else:  # other daemons may be sending them: they wait for their lease
        assert d.recover() == 0
        clock.now = T0 + timedelta(hours=1)
    assert d.run_once().sent == 1
    assert rows(engine)[row]["status"] == "sent"


_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from inboxd.delivery.outbox import OutboxDrain
    from inboxd.delivery.smtp_send import SmtpSender
    from inboxd.config import SmtpConfig
    from inboxd.db.engine import make_engine

    engine = make_engine(sys.argv[1])
    cfg = SmtpConfig(host="127.0.0.1", port=int(sys.argv[2]), timeout=5.0)
    drain = OutboxDrain(engine, lambda: SmtpSender(cfg, None), retry_for=3600.0,
                        clock=lambda: datetime(2026, 3, 2, 12, 0, tzinfo=UTC), max_per_run=1000)
    print("ready", flush=True)
    drain.run_once()
    """
)


@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(
    engine: Engine, server: SmtpServer, tmp_path: Path
) -> None:
    """Kill -9 the sending process mid-run; the next run delivers the rest.

    Every mail arrives; at most one arrives twice (the one between the server's
    250 and our commit), and a duplicate carries the same Message-ID.
    """
    total = 40
    for n in range(1, total + 1):
        enqueue(engine, n)
    server.behaviour.delay = 0.02  # slow enough to kill mid-run
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(engine.url), str(server.port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.captured) < 10 and time.monotonic() < deadline:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    killed_at = len(server.captured)
    assert 10 <= killed_at < total

    server.behaviour.delay = 0.0
    clock = Clock(T0)
    if engine.dialect.name != "sqlite":  # no recovery there: wait out the child's lease
        clock.now = datetime.now(UTC) + timedelta(minutes=11)
    d = drain(engine, server.port, clock, max_per_run=1000)
    d.recover()
    d.run_once()
    counts = delivered_ids(server)
    assert set(counts) == {f"<ibx.{n}.n{n}.sig@help.example>" for n in range(1, total + 1)}
    assert sum(counts.values()) - total <= 1
    assert all(r["status"] == "sent" for r in rows(engine).values())


def test_drain_thread_delivers_and_stops(engine: Engine, server: SmtpServer) -> None:
    import threading

    for n in range(1, 4):
        enqueue(engine, n)
    d = drain(engine, server.port, Clock(T0), max_per_run=2)
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,), kwargs={"interval": 30.0})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(server.captured) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.captured) == 3  # two runs back to back: the first was full
        enqueue(engine, 4)
        d.wake()
        while len(server.captured) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.captured) == 4  # woken, not after the 30 s interval
    finally:
        stop.set()
        d.wake()
        thread.join(timeout=5)
    assert not thread.is_alive()
