"""Slack notices end to end: real pipeline and SQLite file in, slack_sdk's real WebClient out,
against a local stand-in of the Web API (tests/servers/slack_api.py)."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.slack_api import Reply, SlackApiServer
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.clock import Clock

from inboxd.config import ConfigError, SlackConfig
from inboxd.core.rules import RuleError
from inboxd.db import slack_queries as sq
from inboxd.db import slack_threads, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Event
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.slack_notices import (
    SlackRuleReactor,
    rule_dedupe_key,
    rules_error_key,
    rules_error_notice,
)
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source, StoredMail
from inboxd.metrics import REGISTRY
from inboxd.rulesdir import RuleStore

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = b"slack-test-secret"
TOKEN = "xoxb-test-token"

RULES = textwrap.dedent(
    """
    teams:
      billing:
        agents:
          - {name: dana, email: dana@help.example}
    rules:
      - name: refunds
        when: {subject: [refund]}
        then: {team: billing, priority: high, slack: ["#billing", "#support-leads"]}
      - name: urgent
        when: {subject: [urgent]}
        then: {priority: urgent, slack: "#billing"}
    """
)


class Recorder:
    """A second reactor that keeps what the pipeline handed the reactors."""

    def __init__(self) -> None:
        self.seen: list[StoredMail] = []

    def on_stored(self, session: Session, mail: StoredMail) -> None:
        self.seen.append(mail)


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = make_engine(db_url)
    upgrade(eng)
    return eng


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    server = SlackApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def client_for(
    server: SlackApiServer, monkeypatch: pytest.MonkeyPatch, *, connection_retries: int = 1
) -> WebClient:
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", TOKEN)
    client = make_slack_client(
        SlackConfig(token_env="INBOXD_TEST_SLACK_TOKEN", base_url=server.base_url),
        timeout=5,
        connection_retries=connection_retries,
    )
    assert client is not None
    return client


def drain_for(
    engine: Engine, server: SlackApiServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> SlackDrain:
    client = client_for(server, monkeypatch)
    return SlackDrain(
        engine, lambda: client, retry_for=3600, clock=clock, rng=lambda: 0.0, max_per_run=10
    )


def pipeline(engine: Engine, tmp_path: Path, clock: Clock, recorder: Recorder) -> Pipeline:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "10-rules.yaml").write_text(RULES, encoding="utf-8")
    store = RuleStore()
    assert store.reload(rules_dir) == []
    ctx = IngestContext(
        secret=SECRET,
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: store.current,
        clock=clock,
        reactors=(SlackRuleReactor(), recorder),
    )
    return Pipeline(engine, ctx)


def raw_mail(subject: str, body: str, n: int = 1) -> bytes:
    return (
        f"From: Carol Customer <carol@customer.example>\r\n"
        f"To: support@help.example\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <m{n}@customer.example>\r\n"
        f"Date: Mon, 02 Mar 2026 11:00:00 +0000\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def queue_plain(engine: Engine, channel: str, key: str, text: str = "hello") -> int:
    with engine.begin() as conn:
        row_id = sq.enqueue(
            conn,
            channel=channel,
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            now=T0,
            dedupe_key=key,
        )
    assert row_id is not None
    return row_id


def ticket_events(engine: Engine, ticket_id: int) -> list[Event]:
    with Session(engine) as session:
        return tickets.event_rows(session, ticket_id)


def row(engine: Engine, row_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        rows = [r for r in sq.list_rows(conn, limit=1000) if r["id"] == row_id]
    assert len(rows) == 1
    return rows[0]


# --- the reactor --------------------------------------------------------------------------


def test_reactor_queues_one_notice_per_channel_and_dedupes(
    engine: Engine, tmp_path: Path, clock: Clock
) -> None:
    recorder = Recorder()
    pipe = pipeline(engine, tmp_path, clock, recorder)
    body = "Hello,\n\nplease refund order <#42> & cancel it.\n\n> old quoted text\n"
    outcome = pipe.ingest(raw_mail("Urgent refund please", body), Source("lmtp", "support"))
    assert outcome.status == "stored" and outcome.ticket_id is not None
    tid = outcome.ticket_id

    with engine.connect() as conn:
        every = sq.list_rows(conn, ticket_id=tid)
    # each channel: the ticket's living root, then the alert as a reply in its thread
    assert sorted((r["channel"], r["call"]) for r in every) == [
        ("#billing", "reply"),
        ("#billing", "root"),
        ("#support-leads", "reply"),
        ("#support-leads", "root"),
    ]
    rows = [r for r in every if r["call"] == sq.REPLY]
    by_channel = {r["channel"]: r for r in rows}
    # two rules name #billing: still one alert there; one to #support-leads
    assert sorted(by_channel) == ["#billing", "#support-leads"]
    assert len(rows) == 2
    assert by_channel["#billing"]["dedupe_key"] == rule_dedupe_key(
        tid, outcome.message_row_id or 0, "#billing"
    )
    text = str(by_channel["#billing"]["text"])
    assert f"#{tid}" in text and "Urgent refund please" in text and "[urgent]" in text
    assert "refunds" in text  # the rule that fired

    # the same stored mail handed to the reactor again (re-processing): nothing new
    assert len(recorder.seen) == 1
    with Session(engine) as session, session.begin():
        SlackRuleReactor().on_stored(session, recorder.seen[0])
    with engine.connect() as conn:
        assert len(sq.list_rows(conn, ticket_id=tid)) == 4
    events = [e for e in ticket_events(engine, tid) if e.kind == "slack_queued"]
    assert sorted(e.data["channel"] for e in events) == ["#billing", "#support-leads"]

    # the same bytes ingested again are a duplicate: the reactors never run
    again = pipe.ingest(raw_mail("Urgent refund please", body), Source("lmtp", "support"))
    assert again.status == "duplicate"
    with engine.connect() as conn:
        assert len(sq.list_rows(conn)) == 4


def test_reactor_ignores_mail_without_slack_action(
    engine: Engine, tmp_path: Path, clock: Clock
) -> None:
    recorder = Recorder()
    pipe = pipeline(engine, tmp_path, clock, recorder)
    outcome = pipe.ingest(raw_mail("Printer jam", "It jams."), Source("lmtp", "support"))
    assert outcome.status == "stored"
    with engine.connect() as conn:
        assert sq.list_rows(conn) == []


# --- the drain --------------------------------------------------------------------------


def test_drain_posts_text_and_blocks_to_the_channel(
    engine: Engine,
    tmp_path: Path,
    clock: Clock,
    api: SlackApiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    pipe = pipeline(engine, tmp_path, clock, recorder)
    body = "please refund <!channel> & thanks"
    outcome = pipe.ingest(raw_mail("Refund", body), Source("lmtp", "support"))
    assert outcome.ticket_id is not None
    drain = drain_for(engine, api, clock, monkeypatch)

    report = drain.run_once()
    assert (report.claimed, report.sent, report.failed) == (4, 4, 0)
    posts = api.posts()
    roots = [p for p in posts if "thread_ts" not in p.body]
    replies = [p for p in posts if "thread_ts" in p.body]
    assert sorted(p.body["channel"] for p in roots) == ["#billing", "#support-leads"]
    assert sorted(p.body["channel"] for p in replies) == ["#billing", "#support-leads"]
    post = next(p for p in replies if p.body["channel"] == "#billing")
    root = next(p for p in roots if p.body["channel"] == "#billing")
    with engine.connect() as conn:
        thread = slack_threads.find(conn, outcome.ticket_id, "#billing")
    assert thread is not None and thread.ts and post.body["thread_ts"] == thread.ts
    assert posts.index(root) < posts.index(post)  # the root first, the alert in its thread
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    with engine.connect() as conn:
        stored = next(
            r
            for r in sq.list_rows(conn)
            if r["channel"] == "#billing" and r["call"] == sq.REPLY
        )
    assert post.body["text"] == stored["text"]
    blocks = post.body["blocks"]
    assert isinstance(blocks, list) and blocks[0]["type"] == "header"
    assert f"#{outcome.ticket_id}" in blocks[0]["text"]["text"]
    flat = repr(blocks)
    # the customer's text arrives escaped: no live <!channel> ping
    assert "&lt;!channel&gt; &amp; thanks" in flat and "<!channel>" not in flat
    assert "*Team*\\nbilling" in flat and "high" in flat  # routed before the alert was built
    assert stored["status"] == sq.SENT and stored["sent_at"] is not None

    # nothing left: a second round posts nothing
    assert drain.run_once().claimed == 0
    assert len(api.posts()) == 4


def test_rate_limited_then_posted(
    engine: Engine, clock: Clock, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id = queue_plain(engine, "#ops", "k-429")
    api.script(Reply.rate_limited(retry_after=1))
    drain = drain_for(engine, api, clock, monkeypatch)

    started = time.monotonic()
    report = drain.run_once()
    waited = time.monotonic() - started
    assert report.sent == 1 and report.retried == 0
    statuses = [(r.method, r.status) for r in api.requests]
    assert statuses == [("chat.postMessage", 429), ("chat.postMessage", 200)]
    assert waited >= 1.0  # the client honoured Retry-After before trying again
    assert row(engine, row_id)["status"] == sq.SENT
    assert len(api.posts()) == 1


def test_long_retry_after_is_rescheduled_not_slept(
    engine: Engine, clock: Clock, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id = queue_plain(engine, "#ops", "k-429-long")
    api.script(Reply.rate_limited(retry_after=120))
    drain = drain_for(engine, api, clock, monkeypatch)

    report = drain.run_once()
    assert report.retried == 1 and report.sent == 0
    stored = row(engine, row_id)
    assert stored["status"] == sq.QUEUED
    due = stored["next_attempt_at"]
    assert isinstance(due, datetime)
    assert due.replace(tzinfo=UTC) == clock.now + timedelta(seconds=120)

    clock.advance(seconds=119)
    assert drain.run_once().claimed == 0
    clock.advance(seconds=1)
    assert drain.run_once().sent == 1
    assert len(api.posts()) == 1


def test_permanent_error_marks_failed_with_event(
    engine: Engine,
    tmp_path: Path,
    clock: Clock,
    api: SlackApiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = pipeline(engine, tmp_path, clock, Recorder())
    outcome = pipe.ingest(raw_mail("urgent", "help"), Source("lmtp", "support"))
    assert outcome.ticket_id is not None
    api.script(Reply.error("channel_not_found"))
    drain = drain_for(engine, api, clock, monkeypatch)
    failed_before = REGISTRY.get_sample_value("inboxd_slack_posts_failed_total") or 0.0

    report = drain.run_once()
    # the root fails for good; its thread's reply fails with it, quietly (reported once)
    assert (report.claimed, report.failed, report.sent) == (2, 2, 0)
    failed_after = REGISTRY.get_sample_value("inboxd_slack_posts_failed_total")
    assert failed_after == failed_before + 1
    with engine.connect() as conn:
        reply, stored = sq.list_rows(conn)
    events = [e for e in ticket_events(engine, outcome.ticket_id) if e.kind == "slack_failed"]
    assert stored["status"] == sq.FAILED and stored["last_error"] == "channel_not_found"
    assert reply["status"] == sq.FAILED and "thread gone" in str(reply["last_error"])
    assert [e.data["channel"] for e in events] == ["#billing"]

    clock.advance(days=2)  # a failed row is never retried on its own
    assert drain.run_once().claimed == 0
    assert len(api.requests) == 1


def test_invalid_blocks_fall_back_to_text(
    engine: Engine, clock: Clock, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    row_id = queue_plain(engine, "#ops", "k-blocks", text="the text")
    api.script(Reply.error("invalid_blocks"))
    drain = drain_for(engine, api, clock, monkeypatch)

    assert drain.run_once().sent == 1
    first, second = api.requests
    assert "blocks" in first.body and "blocks" not in second.body
    assert second.body["text"] == "the text"
    stored = row(engine, row_id)
    assert stored["status"] == sq.SENT and "invalid_blocks" in str(stored["last_error"])


def test_server_down_then_back_delivers_exactly_once(
    engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SlackApiServer().start()
    port = server.port
    client = client_for(server, monkeypatch)
    server.stop()  # the port now refuses connections
    row_id = queue_plain(engine, "#ops", "k-down")
    drain = SlackDrain(engine, lambda: client, retry_for=3600, clock=clock, rng=lambda: 0.0)

    report = drain.run_once()
    assert (report.retried, report.sent, report.failed) == (1, 0, 0)
    stored = row(engine, row_id)
    assert stored["status"] == sq.QUEUED and stored["attempts"] == 1
    assert "refused" in str(stored["last_error"]).lower()

    back = SlackApiServer(port=port).start()
    try:
        assert drain.run_once().claimed == 0  # not due yet: backoff (30 s with rng 0)
        clock.advance(seconds=30)
        report = drain.run_once()
        assert report.sent == 1
        clock.advance(hours=2)
        assert drain.run_once().claimed == 0
        assert [p.body["channel"] for p in back.posts()] == ["#ops"]
        assert row(engine, row_id)["status"] == sq.SENT
    finally:
        back.stop()


def test_gives_up_after_retry_window(
    engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SlackApiServer().start()
    client = client_for(server, monkeypatch, connection_retries=0)
    server.stop()
    row_id = queue_plain(engine, "#ops", "k-gone")
    drain = SlackDrain(engine, lambda: client, retry_for=300, clock=clock, rng=lambda: 0.0)
    for _ in range(10):  # bounded: backoff reaches the 5 min deadline within a few rounds
        report = drain.run_once()
        if report.failed:
            break
        clock.advance(minutes=5)
    assert row(engine, row_id)["status"] == sq.FAILED
    assert "gave up" in str(row(engine, row_id)["last_error"])


def test_run_thread_posts_when_woken_and_stops(
    engine: Engine, clock: Clock, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    drain = drain_for(engine, api, clock, monkeypatch)
    stop = threading.Event()
    thread = threading.Thread(target=drain.run, args=(stop,), kwargs={"interval": 30.0})
    thread.start()
    try:
        queue_plain(engine, "#ops", "k-thread")
        drain.wake()
        deadline = time.monotonic() + 5
        while not api.posts() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(api.posts()) == 1
    finally:
        stop.set()
        drain.wake()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_recover_releases_rows_left_sending(engine: Engine, clock: Clock) -> None:
    row_id = queue_plain(engine, "#ops", "k-crash")
    with engine.begin() as conn:
        (claimed,) = sq.claim(conn, now=T0, lease_until=T0 + timedelta(minutes=5), limit=5)
    assert claimed.id == row_id and row(engine, row_id)["status"] == sq.SENDING
    drain = SlackDrain(engine, lambda: pytest.fail("no client needed"), clock=clock)
    if engine.dialect.name == "sqlite":  # one daemon a file: its own dead run's rows
        assert drain.recover() == 1
        assert row(engine, row_id)["status"] == sq.QUEUED
    else:  # other daemons may be sending it: it waits for its lease, untouched
        assert drain.recover() == 0
        assert row(engine, row_id)["status"] == sq.SENDING


# --- rules reload alerts ------------------------------------------------------------------


def test_rules_error_alert_once_per_error_set(
    engine: Engine, clock: Clock, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = [
        RuleError("rules/20-billing.yaml", 14, 5, "unknown condition 'subjct'"),
        RuleError("rules/30-x.yaml", 2, 1, "bad <regex> & more"),
    ]
    with engine.begin() as conn:
        first = rules_error_notice(conn, "#ops", errors, T0, generation=3)
        again = rules_error_notice(conn, "#ops", list(reversed(errors)), T0, generation=3)
        other = rules_error_notice(conn, "#ops", errors[:1], T0, generation=3)
        after_fix = rules_error_notice(conn, "#ops", errors, T0, generation=4)
        none = rules_error_notice(conn, "#ops", [], T0)
    assert first is not None and other is not None and after_fix is not None
    assert again is None and none is None
    assert rules_error_key(errors, 3) != rules_error_key(errors, 4)

    drain = drain_for(engine, api, clock, monkeypatch)
    assert drain.run_once().sent == 3
    posts = api.posts()
    assert [p.body["channel"] for p in posts] == ["#ops"] * 3
    assert posts[0].body["text"].startswith("inboxd rules reload rejected: 2 errors")
    flat = repr(posts[0].body["blocks"])
    assert "rules/20-billing.yaml:14:5: unknown condition 'subjct'" in flat
    assert "bad &lt;regex&gt; &amp; more" in flat


# --- the client -----------------------------------------------------------------------------


def test_make_slack_client_reads_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_slack_client(SlackConfig()) is None
    token_file = tmp_path / "token"
    token_file.write_text(" xoxb-file \n", encoding="utf-8")
    client = make_slack_client(SlackConfig(token_file=token_file, base_url="http://x/api"))
    assert client is not None and client.token == "xoxb-file"
    assert client.base_url == "http://x/api/"
    monkeypatch.delenv("INBOXD_NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="INBOXD_NO_SUCH_TOKEN"):
        make_slack_client(SlackConfig(token_env="INBOXD_NO_SUCH_TOKEN"))
