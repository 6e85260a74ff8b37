"""A mailbox unreachable for N minutes: one alert of its own (not one per late ticket),
alerts about its tickets in its thread meanwhile, and the message updated when the
mailbox is reachable again. The job reads what the fetchers report to
``inboxd.metrics.HEALTH``; slack_sdk's WebClient against the local Web API stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from servers.slack_api import SlackApiServer
from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.config import SlackConfig
from inboxd.core.slack_text import SlackMessage
from inboxd.db import ops_alerts, slack_threads, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.slack_threads import LivingMessages
from inboxd.metrics import MailboxHealth
from inboxd.sched.outage import OutageJob

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


def test_health_outage_starts_at_the_first_failure_and_ends_only_with_a_sync() -> None:
    health = MailboxHealth()
    health.down("support", "ConnectionRefusedError: [Errno 111]", at=100.0)
    health.up("support")  # logged in, then the SELECT failed again
    health.down("support", "IMAP4.error: SELECT failed", at=160.0)
    assert health.outages() == {"support": (100.0, "IMAP4.error: SELECT failed")}
    health.synced("support", 200.0)
    assert health.outages() == {}


def test_one_alert_per_outage_threads_its_tickets_and_says_when_it_is_back(
    engine: Engine, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", "xoxb-outage")
    client = make_slack_client(
        SlackConfig(token_env="INBOXD_TEST_SLACK_TOKEN", base_url=api.base_url), timeout=5
    )
    assert client is not None
    clock = Clock(T0)
    drain = SlackDrain(engine, lambda: client, retry_for=3600, clock=clock, rng=lambda: 0.0)
    health = MailboxHealth()
    job = OutageJob(
        engine, health.outages, channel="#ops", after=timedelta(minutes=10), clock=clock
    )
    living = LivingMessages()
    with engine.begin() as conn:
        ticket = tickets.create(
            conn,
            subject="Printer broken",
            normalized_subject="printer broken",
            requester="carol@customer.example",
            requester_name="Carol",
            mailbox="support",
            now=T0,
            source="imap:support/INBOX",
            actor="customer:carol@customer.example",
        )

    down_at = T0.timestamp()
    health.down("support", "ConnectionRefusedError: [Errno 111] Connection refused", at=down_at)
    clock.now = T0 + timedelta(minutes=9)
    assert job.run_once().alerted == ()  # not yet N minutes
    clock.now = T0 + timedelta(minutes=10)
    assert job.run_once().alerted == ("support",)
    health.down("support", "still refused", at=down_at + 700)  # more failed attempts
    clock.now = T0 + timedelta(minutes=11)
    assert job.run_once().alerted == ()  # one alert per outage, not one per run
    drain.run_once()
    (post,) = [r.body for r in api.posts()]
    assert post["channel"] == "#ops"
    assert post["text"] == "mailbox support unreachable for 10 min"
    assert "Connection refused" in str(post["blocks"])

    # an alert about one of its tickets meanwhile goes into the outage's thread
    with engine.begin() as conn:
        (alert,) = ops_alerts.active(conn, ops_alerts.OUTAGE)
        assert alert.thread_id is not None
        thread = slack_threads.get(conn, alert.thread_id)
        note = SlackMessage("SLA breached: first response of [#1]", [])
        assert living.alert(conn, None, ticket, "#ops", note, clock.now, dedupe_key="sla:1")
        assert slack_threads.of_tickets(conn, [ticket.id]) == []  # no living root for it
    assert thread is not None and thread.ts
    drain.run_once()
    reply = api.posts()[-1].body
    assert reply["thread_ts"] == thread.ts and reply["text"].startswith("SLA breached")

    # reachable again: the alert's message is updated, once
    health.synced("support", down_at + 14 * 60)
    clock.now = T0 + timedelta(minutes=14)
    assert job.run_once().back == ("support",)
    assert job.run_once().back == ()
    drain.run_once()
    updates = [r.body for r in api.requests if r.method == "chat.update"]
    assert len(updates) == 1 and updates[0]["ts"] == thread.ts
    assert updates[0]["text"] == "mailbox support reachable again after 14 min"
    with engine.connect() as conn:
        assert ops_alerts.active(conn) == []
