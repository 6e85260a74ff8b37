"""Mailbox leases on SQLite and PostgreSQL: one daemon fetches a mailbox at a time.

The conditional upsert, expiry and takeover, a clean release, a race of many
takers for a free mailbox, and the batch guard: a daemon that lost its lease
commits neither mail nor checkpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from inboxd.db import leases, mailboxes
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message
from inboxd.ingest.lease import LeaseLost, MailboxLease, daemon_owner
from inboxd.ingest.pipeline import IngestContext, Pipeline
from inboxd.ingest.sink import FetchedMail

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERIOD = timedelta(seconds=60)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def take(engine: Engine, owner: str, now: datetime, mailbox: str = "support") -> bool:
    with engine.begin() as conn:
        return leases.take(conn, mailbox, owner, now, PERIOD)


def holder(engine: Engine, mailbox: str = "support") -> leases.Holder | None:
    with engine.connect() as conn:
        return leases.holder(conn, mailbox)


def test_a_held_lease_is_refused_until_it_expires(engine: Engine) -> None:
    assert take(engine, "a", T0)
    assert not take(engine, "b", T0 + timedelta(seconds=30))
    assert take(engine, "a", T0 + timedelta(seconds=30))  # a renewal
    found = holder(engine)
    assert found == leases.Holder("a", T0 + timedelta(seconds=90))
    assert not take(engine, "b", T0 + timedelta(seconds=89))
    assert take(engine, "b", T0 + timedelta(seconds=90))  # expired: taken over
    assert holder(engine) == leases.Holder("b", T0 + timedelta(seconds=150))
    assert not take(engine, "a", T0 + timedelta(seconds=91))
    assert take(engine, "a", T0, mailbox="billing")  # each mailbox has its own


def test_confirm_fails_for_a_daemon_that_lost_the_lease(engine: Engine) -> None:
    assert take(engine, "a", T0)
    with engine.begin() as conn:
        assert leases.confirm(conn, "support", "a", T0 + timedelta(seconds=10), PERIOD)
    assert holder(engine) == leases.Holder("a", T0 + timedelta(seconds=70))
    assert take(engine, "b", T0 + timedelta(seconds=70))
    with engine.begin() as conn:
        assert not leases.confirm(conn, "support", "a", T0 + timedelta(seconds=71), PERIOD)
    assert holder(engine) == leases.Holder("b", T0 + timedelta(seconds=130))


def test_release_frees_the_mailbox_at_once_but_only_for_its_owner(engine: Engine) -> None:
    assert take(engine, "a", T0)
    with engine.begin() as conn:
        leases.release(conn, "support", "b")  # not b's to give up
    assert holder(engine) is not None and holder(engine).owner == "a"  # type: ignore[union-attr]
    with engine.begin() as conn:
        leases.release(conn, "support", "a")
    assert holder(engine) is None
    assert take(engine, "b", T0 + timedelta(seconds=1))


def test_many_takers_racing_for_a_free_mailbox_one_wins(engine: Engine) -> None:
    takers = 8
    start = threading.Barrier(takers, timeout=30)
    won: list[str] = []
    errors: list[BaseException] = []

    def race(owner: str) -> None:
        try:
            start.wait()
            if take(engine, owner, T0):
                won.append(owner)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"d{i}",)) for i in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(won) == 1, won
    assert holder(engine) is not None and holder(engine).owner == won[0]  # type: ignore[union-attr]


def test_a_batch_under_a_lost_lease_commits_no_mail_and_no_checkpoint(engine: Engine) -> None:
    ctx = IngestContext(
        secret=b"lease-secret",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: T0,
    )
    pipeline = Pipeline(engine, ctx)
    mine = MailboxLease(engine, "support", seconds=60, owner="a", clock=lambda: T0)
    assert take(engine, "a", T0)
    raw = (
        b"From: Carol <carol@customer.example>\r\nTo: support@help.example\r\n"
        b"Subject: Hello\r\nMessage-ID: <lease-1@customer.example>\r\n\r\nHi.\r\n"
    )
    pipeline.store_batch("support", "INBOX", 7, [FetchedMail(1, raw)], guard=mine.confirm)
    assert take(engine, "b", T0 + timedelta(seconds=61))  # a stalled past its expiry
    later = raw.replace(b"lease-1", b"lease-2")
    with pytest.raises(LeaseLost):
        pipeline.store_batch("support", "INBOX", 7, [FetchedMail(2, later)], guard=mine.confirm)
    with Session(engine) as session:
        assert mailboxes.get_checkpoint(session, "support", "INBOX") == (7, 1)
        stored = session.exec(select(func.count()).select_from(Message)).one()
    assert stored == 1


def test_a_waiting_daemon_takes_over_after_expiry_and_a_release_at_once(engine: Engine) -> None:
    """Real clocks, a 1.5 s lease: the waiter gets it within one period of the holder's
    last renewal, and at once when the holder gives it up."""
    dead = MailboxLease(engine, "support", seconds=1.5, owner="dead")
    waiter = MailboxLease(engine, "support", seconds=1.5, owner="waiter")
    stop = threading.Event()
    assert dead.acquire(stop)
    renewed = time.monotonic()
    timer = threading.Timer(10.0, stop.set)  # bounds the wait if the takeover never comes
    timer.start()
    try:
        assert waiter.acquire(stop)
        took = time.monotonic() - renewed
        with pytest.raises(LeaseLost):
            time.sleep(dead.renew_every)
            dead.keep()
        waiter.release()
        started = time.monotonic()
        assert dead.acquire(stop)
        again = time.monotonic() - started
    finally:
        timer.cancel()
    assert 1.4 <= took <= 1.5 + 0.5, took
    assert again < 0.5, again


def test_the_owner_names_host_pid_and_a_random_part() -> None:
    host, pid, rand = daemon_owner().split(":")
    assert host and int(pid) > 0 and len(rand) == 8
    assert daemon_owner() == f"{host}:{pid}:{rand}"  # one per process


def test_a_daemon_waiting_for_another_daemons_mailbox_is_its_standby_not_unready(
    engine: Engine,
) -> None:
    """/readyz asks the mailboxes of this daemon: one another daemon holds is not down."""
    from inboxd.metrics import MailboxHealth

    health = MailboxHealth()
    holder = MailboxLease(engine, "support", seconds=1.0, owner="holder")
    waiter = MailboxLease(engine, "support", seconds=1.0, owner="waiter")
    stop = threading.Event()
    assert holder.acquire(stop)
    assert health.not_connected(["support"]) == ["support"]  # never connected here
    seen: list[str] = []

    def on_held(owner: str) -> None:
        seen.append(owner)
        health.standby("support", owner)
        stop.set()  # enough: the test needs the wait, not the takeover

    assert not waiter.acquire(stop, on_held=on_held)
    assert seen == ["holder"]
    assert health.not_connected(["support"]) == []
    health.down("support", "connection refused")  # the holder died, we connect and fail
    assert health.not_connected(["support"]) == ["support"]
    health.standby("support", "holder")
    health.up("support")
    assert health.standby_for == {} and health.not_connected(["support"]) == []
