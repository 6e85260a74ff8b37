"""Quiet hours end to end: a new VIP ticket and an SLA warning that come while the team's
calendar is closed wait for one summary at its next opening; a breach and an urgent
ticket go at once; the summary is posted once, also by two daemons at the same time.
The real pipeline with the Slack rule reactor, the SLA sweep, the summary job and the
real Slack drain (slack_sdk's WebClient against the local stand-in), on an injected
clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mailflow_kit import Desk, mail, make_desk
from servers.slack_api import SlackApiServer
from sqlalchemy import select

from inboxd.config import ConfigError, SlackConfig, parse_settings
from inboxd.core import quiet_hours as qh
from inboxd.core.inbound import Source
from inboxd.core.slack_text import SlackMessage
from inboxd.db import privacy, quiet_alerts, tickets
from inboxd.db.engine import make_engine
from inboxd.db.tables import SlackDeferred
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.sla_notices import SlaStageActions
from inboxd.flows.slack_notices import SlackRuleReactor
from inboxd.flows.slack_threads import LivingMessages
from inboxd.ingest.pipeline import Pipeline
from inboxd.sched.quiet_summaries import QuietSummaries
from inboxd.sched.sla_sweep import SlaSweep

MONDAY_EVENING = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
TUESDAY_OPENING = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        agents:
          - {name: alice, email: alice@help.example}
    calendars:
      office:
        timezone: UTC
        hours:
          mon-fri: 09:00-17:00
    sla_policies:
      standard:
        first_response: 2h          # 24x7: the SLA counts at night, the team is away
        stages:
          - {at: 50%, alert: "#vip"}
          - {at: breach, alert: "#vip"}
    vip:
      domains: [bigcorp.example]
    rules:
      - name: outage
        when: {subject: outage}
        then: {priority: urgent, slack: "#vip"}
      - name: vip
        when: {vip: true}
        then: {vip: true, priority: high, team: frontline, sla: standard, slack: "#vip"}
    """
)


@dataclass
class QuietDesk:
    desk: Desk
    pipeline: Pipeline
    sweep: SlaSweep
    summaries: QuietSummaries
    drain: SlackDrain
    api: SlackApiServer
    living: LivingMessages

    def at(self, when: datetime) -> None:
        self.desk.clock.now = when

    def mail(self, msgid: str, *, subject: str = "Invoice question") -> int:
        raw = mail(sender="Vera <vera@bigcorp.example>", subject=subject, msgid=msgid)
        out = self.pipeline.ingest(raw, Source("imap", "support", "INBOX", None))
        assert out.ticket_id is not None
        return out.ticket_id

    def texts(self) -> list[str]:
        """What reached Slack: each post's text, oldest first."""
        return [str(r.body["text"]) for r in self.api.posts()]

    def held(self) -> int:
        with self.desk.engine.connect() as conn:
            return quiet_alerts.waiting(conn)


def rows_kept(quiet: QuietDesk) -> int:
    with quiet.desk.engine.connect() as conn:
        return len(conn.execute(select(SlackDeferred.__table__.c.id)).all())  # type: ignore[attr-defined]


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def quiet(
    tmp_path: Path, db_url: str, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QuietDesk]:
    desk = make_desk(tmp_path, rules=RULES, url=db_url, acknowledge=False)
    hours = qh.QuietHours(frozenset({qh.NEW_VIP, qh.SLA_WARNING}), "office")
    living = LivingMessages(quiet=hours)
    ctx = desk.pipeline.ctx
    pipeline = Pipeline(
        desk.engine, replace(ctx, reactors=(*ctx.reactors, SlackRuleReactor(living=living)))
    )
    sweep = SlaSweep(
        desk.engine,
        desk.flow.config.rules,
        SlaStageActions(desk.flow, living=living),
        clock=desk.clock,
    )
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", "xoxb-quiet")
    config = SlackConfig(token_env="INBOXD_TEST_SLACK_TOKEN", base_url=api.base_url)
    client = make_slack_client(config, timeout=5)
    assert client is not None
    drain = SlackDrain(desk.engine, lambda: client, clock=desk.clock, rng=lambda: 0.0)
    summaries = QuietSummaries(desk.engine, clock=desk.clock)
    yield QuietDesk(desk, pipeline, sweep, summaries, drain, api, living)
    desk.engine.dispose()


def test_the_night_waits_for_one_summary_breaches_and_urgent_go_at_once(
    quiet: QuietDesk,
) -> None:
    quiet.at(MONDAY_EVENING)
    vip = quiet.mail("v1@bigcorp.example")  # a new VIP ticket after hours: held
    quiet.at(MONDAY_EVENING + timedelta(hours=1))
    quiet.sweep.run_once()  # its SLA warning at 50%: held
    quiet.drain.run_once()
    assert quiet.texts() == [] and quiet.held() == 2

    quiet.at(MONDAY_EVENING + timedelta(hours=2))
    quiet.sweep.run_once()  # the breach: at once, into the ticket's living thread
    quiet.mail("o1@bigcorp.example", subject="Total outage")  # urgent: at once
    quiet.drain.run_once()
    posted = quiet.texts()
    assert len(posted) == 4  # two roots, each with its alert
    assert any(t.startswith(f"SLA breached: first response of [#{vip}]") for t in posted)
    assert any(t.startswith("New ticket") and "Total outage" in t for t in posted)
    assert quiet.summaries.run_once() == 0  # still night

    quiet.at(TUESDAY_OPENING - timedelta(seconds=1))
    assert quiet.summaries.run_once() == 0
    quiet.at(TUESDAY_OPENING)
    assert quiet.summaries.run_once() == 1
    assert QuietSummaries(quiet.desk.engine, clock=quiet.desk.clock).run_once() == 0  # a restart
    quiet.drain.run_once()
    summary = quiet.api.posts()[-1].body
    assert summary["channel"] == "#vip" and "thread_ts" not in summary
    assert summary["text"] == "While the team was away: 2 alerts (1 new VIP ticket, 1 SLA warning)"
    lines = summary["blocks"][1]["text"]["text"].splitlines()
    assert lines[0].startswith(f"• Mon 20:00 UTC · New ticket [#{vip}] [high VIP] Invoice question")
    assert lines[1].startswith(f"• Mon 21:00 UTC · SLA warning: first response of [#{vip}]")
    assert quiet.held() == 0

    quiet.at(TUESDAY_OPENING + timedelta(hours=1))  # open: a new VIP ticket goes at once
    later = quiet.mail("v2@bigcorp.example")
    quiet.drain.run_once()
    assert any(t.startswith(f"New ticket [#{later}]") for t in quiet.texts())
    quiet.at(TUESDAY_OPENING + timedelta(days=1))
    assert quiet.summaries.run_once() == 0
    assert rows_kept(quiet) == 2  # summarized, kept a while
    quiet.at(TUESDAY_OPENING + timedelta(days=31))
    assert quiet.summaries.run_once() == 0 and rows_kept(quiet) == 0


def test_an_alert_queued_again_is_held_once_and_not_posted_by_day(quiet: QuietDesk) -> None:
    quiet.at(MONDAY_EVENING)
    ticket_id = quiet.mail("v1@bigcorp.example")
    message = SlackMessage("SLA warning: once", [])
    with quiet.desk.engine.begin() as conn:
        ticket = tickets.load(conn, ticket_id)
        assert ticket is not None
        rules = quiet.desk.flow.config.rules()
        for _ in range(2):  # a sweep that ran again after a crash, say
            got = quiet.living.alert(
                conn,
                rules,
                ticket,
                "#vip",
                message,
                MONDAY_EVENING,
                dedupe_key="k",
                kind="sla_warning",
            )
            assert got is None
    assert quiet.held() == 2  # the rule alert and this one, once
    quiet.at(TUESDAY_OPENING + timedelta(hours=1))
    with quiet.desk.engine.begin() as conn:
        again = quiet.living.alert(
            conn,
            rules,
            ticket,
            "#vip",
            message,
            quiet.desk.clock(),
            dedupe_key="k",
            kind="sla_warning",
        )
    assert again is None  # held before: in the summary, not posted on its own as well
    assert quiet.summaries.run_once() == 1
    quiet.drain.run_once()
    assert quiet.texts() == ["While the team was away: 2 alerts (1 new VIP ticket, 1 SLA warning)"]


def test_two_daemons_at_the_opening_post_one_summary(quiet: QuietDesk, db_url: str) -> None:
    quiet.at(MONDAY_EVENING)
    for n in range(5):
        quiet.mail(f"v{n}@bigcorp.example")
    assert quiet.held() == 5
    quiet.at(TUESDAY_OPENING)
    engines = [make_engine(db_url), make_engine(db_url)]
    jobs = [QuietSummaries(e, clock=quiet.desk.clock) for e in engines]
    start = threading.Barrier(2, timeout=30)
    counts: list[int] = []

    def run(job: QuietSummaries) -> None:
        start.wait()
        counts.append(job.run_once())

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert not any(t.is_alive() for t in threads)
    assert sorted(counts) == [0, 1]
    quiet.drain.run_once()
    summaries = [t for t in quiet.texts() if t.startswith("While the team was away")]
    assert summaries == ["While the team was away: 5 alerts (5 new VIP tickets)"]


def test_config_lists_only_kinds_that_may_wait(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    ok = parse_settings(
        '[slack.quiet_hours]\nkinds = ["new_vip"]\ncalendar = "office"\n'
        'teams = {night = "night-desk"}\n',
        path,
    )
    assert ok.slack.quiet_hours.teams == {"night": "night-desk"}
    with pytest.raises(ConfigError, match="breaches and urgent tickets always go at once"):
        parse_settings('[slack.quiet_hours]\nkinds = ["sla_breach"]\ncalendar = "o"\n', path)
    with pytest.raises(ConfigError, match="kinds wait for a calendar"):
        parse_settings('[slack.quiet_hours]\nkinds = ["new_vip"]\n', path)
    with pytest.raises(ConfigError, match=r"slack\.quiet_hours\.kinds"):
        parse_settings('[slack.quiet_hours]\nkinds = ["spike"]\ncalendar = "o"\n', path)


def test_forget_scrubs_a_held_alert_and_purge_removes_it(quiet: QuietDesk) -> None:
    quiet.at(MONDAY_EVENING)
    ticket_id = quiet.mail("v1@bigcorp.example")
    engine = quiet.desk.engine

    def texts() -> list[str]:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(select(SlackDeferred.__table__.c.text))]  # type: ignore[attr-defined]

    assert any("vera@bigcorp.example" in t for t in texts())
    with engine.begin() as conn:
        privacy.forget(conn, "vera@bigcorp.example", "forgotten-1@invalid", quiet.desk.clock())
    assert texts() and not any("vera@bigcorp.example" in t for t in texts())
    with engine.begin() as conn:  # on PostgreSQL the held row's foreign key would refuse
        privacy.purge(conn, [ticket_id])
    assert texts() == []
