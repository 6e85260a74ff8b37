"""A spike on a tag: a burst of "refund" mails after a quiet baseline raises one spike
alert in Slack, the tickets' alerts land in its thread while it is on, and the alert
is updated when the burst is over. The real pipeline (rules, the arrival counter, the
Slack rule reactor), the spike job and slack_sdk's WebClient against the local Web
API stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from servers.slack_api import SlackApiServer
from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.config import SlackConfig
from inboxd.db import ops_alerts, slack_threads
from inboxd.db import slack_queries as sq
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.slack_notices import SlackRuleReactor
from inboxd.flows.spikes import TagArrivals
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source
from inboxd.rulesdir import RuleStore
from inboxd.sched.spikes import SpikeJob

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
RULES = textwrap.dedent(
    """
    teams:
      billing:
        agents:
          - {name: dana, email: dana@help.example}
    spikes:
      factor: 3
      min_count: 8
      window: 1h
      channel: "#billing"
      tags: [refund]
    rules:
      - name: refunds
        when: {subject: [refund]}
        then: {team: billing, tag: refund, slack: "#billing"}
    """
)


class Desk:
    def __init__(self, engine: Engine, tmp_path: Path, api: SlackApiServer, token: str) -> None:
        self.engine = engine
        self.clock = Clock(T0)
        self.api = api
        rules_dir = tmp_path / "rules"
        rules_dir.mkdir()
        (rules_dir / "10-rules.yaml").write_text(RULES, encoding="utf-8")
        store = RuleStore()
        assert store.reload(rules_dir) == []
        self.pipeline = Pipeline(
            engine,
            IngestContext(
                secret=b"spike-secret",
                support_addresses=frozenset({"support@help.example"}),
                mailbox_addresses={"support": "support@help.example"},
                rules=lambda: store.current,
                clock=self.clock,
                reactors=(TagArrivals(), SlackRuleReactor()),
            ),
        )
        client = make_slack_client(SlackConfig(token_env=token, base_url=api.base_url), timeout=5)
        assert client is not None
        self.drain = SlackDrain(
            engine, lambda: client, retry_for=3600, clock=self.clock, rng=lambda: 0.0
        )
        self.job = SpikeJob(engine, lambda: store.current, channel="#ops", clock=self.clock)
        self.sent = 0

    def mail(self, subject: str = "Where is my refund?") -> int:
        self.sent += 1
        n = self.sent
        raw = (
            f"From: Customer {n} <c{n}@customer{n}.example>\r\nTo: support@help.example\r\n"
            f"Subject: {subject} ({n})\r\nMessage-ID: <s{n}@customer.example>\r\n\r\n"
            "I was charged twice, please refund one of them.\r\n"
        ).encode()
        outcome = self.pipeline.ingest(raw, Source("lmtp", "support"))
        assert outcome.status == "stored" and outcome.ticket_id is not None
        return outcome.ticket_id

    def deliver(self) -> None:
        for _ in range(5):  # bounded: replies wait one round for their root
            if self.drain.run_once().sent == 0:
                return

    def posts(self) -> list[dict[str, object]]:
        return [r.body for r in self.api.posts()]


@pytest.fixture
def desk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", "xoxb-spikes")
    engine = make_engine(db_url)
    upgrade(engine)
    with SlackApiServer() as api:
        yield Desk(engine, tmp_path, api, "INBOXD_TEST_SLACK_TOKEN")
    engine.dispose()


def test_refund_burst_raises_one_spike_threads_its_alerts_and_clears(desk: Desk) -> None:
    # a quiet baseline: a refund mail every two hours, the job every hour
    assert desk.job.run_once().started == ()  # watching starts now
    for hour in range(8):
        if hour % 2 == 0:
            desk.mail()
        desk.clock.advance(hours=1)
        assert desk.job.run_once().started == ()
    desk.deliver()
    quiet = desk.posts()
    roots = [p for p in quiet if "thread_ts" not in p]
    assert len(roots) == 4  # each quiet ticket: its living root (and its alert in it)

    # the burst: 12 refund mails in 12 minutes, then the job notices
    for _ in range(12):
        desk.mail()
        desk.clock.advance(minutes=1)
    first = desk.job.run_once()
    assert first.started == ("refund",)
    assert desk.job.run_once().started == ()  # once per spike, not once per run
    desk.deliver()
    spike_posts = [p for p in desk.posts() if "spike" in str(p.get("text"))]
    assert len(spike_posts) == 1
    (spike,) = spike_posts
    assert spike["channel"] == "#billing" and "thread_ts" not in spike
    assert str(spike["text"]).startswith("refund spike: 12 mails in 1 h against 0.")
    with desk.engine.connect() as conn:
        (alert,) = ops_alerts.active(conn, ops_alerts.SPIKE)
        assert alert.thread_id is not None
        thread = slack_threads.get(conn, alert.thread_id)
    assert thread is not None and thread.ticket_id is None and thread.ts
    spike_ts = thread.ts

    # while it is on, the tickets' alerts go into the spike's thread: no root each
    before = len(desk.posts())
    storm = [desk.mail() for _ in range(5)]
    desk.deliver()
    during = desk.posts()[before:]
    assert len(during) == 5
    assert all(p.get("thread_ts") == spike_ts for p in during)
    assert all(p["channel"] == "#billing" for p in during)
    with desk.engine.connect() as conn:
        calls = [str(r["call"]) for t in storm for r in sq.list_rows(conn, ticket_id=t)]
    assert calls == ["reply"] * 5  # no living root was made for them
    desk.clock.advance(minutes=1)
    assert desk.job.run_once() == type(first)()  # still on: the peak goes up to 17

    # the burst is over once an hour without it has passed: the alert is updated
    desk.clock.advance(minutes=61)
    assert desk.job.run_once().over == ("refund",)
    desk.deliver()
    updates = [r.body for r in desk.api.requests if r.method == "chat.update"]
    assert len(updates) == 1
    assert updates[0]["ts"] == spike_ts
    assert str(updates[0]["text"]).startswith("refund spike over: 17 mails in 1 h against 0.")
    with desk.engine.connect() as conn:
        assert ops_alerts.active(conn) == []
        assert ops_alerts.last(conn, ops_alerts.SPIKE, "refund").id == alert.id  # type: ignore[union-attr]

    # after it, a refund ticket gets its own living root again
    before = len(desk.posts())
    desk.mail()
    desk.deliver()
    after = desk.posts()[before:]
    assert [("thread_ts" in p) for p in after] == [False, True]
    assert desk.job.run_once() == type(first)()  # one mail is no spike
