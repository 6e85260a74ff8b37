"""A desk for the Slack living-message tests: rules with an SLA policy, tickets made
through the real writer, the alerts, the root sync and the real Slack drain against
the local Web API stand-in (tests/servers/slack_api.py)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from servers.slack_api import SlackApiServer
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.clock import Clock

from inboxd.config import SlackConfig
from inboxd.core.desk import Ticket
from inboxd.core.desk import transitions as tr
from inboxd.core.rules import Decision, RuleSet
from inboxd.core.slack_text import SlackMessage
from inboxd.db import slack_queries as sq
from inboxd.db import slack_threads, tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.slack_threads import LivingMessages
from inboxd.rulesdir import RuleStore
from inboxd.sched.slack_roots import RootSync

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "xoxb-threads"

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        assignment: none
        agents:
          - {name: alice, email: alice@help.example, display_name: Alice Agent}
    calendars:
      office:
        timezone: UTC
        hours:
          mon-fri: 09:00-17:00
    sla_policies:
      standard:
        calendar: office
        first_response: 2h
        stages:
          - {at: breach, alert: ["#sla"]}
          - {at: breach+1h, alert: ["#sla"]}
    rules:
      - name: default
        then: {team: frontline}
    """
)


@dataclass
class SlackDesk:
    engine: Engine
    rules: RuleSet
    clock: Clock
    api: SlackApiServer
    client: WebClient
    living: LivingMessages
    drain: SlackDrain
    sync: RootSync

    def ticket(self, subject: str = "Printer on fire", *, sla: bool = False) -> Ticket:
        """A new ticket routed to frontline (with the standard SLA policy if ``sla``)."""
        now = self.clock()
        with self.engine.begin() as conn:
            made = tickets.create(
                conn,
                subject=subject,
                normalized_subject=subject.lower(),
                requester="carol@customer.example",
                requester_name="Carol",
                mailbox="support",
                now=now,
                source="lmtp",
                actor="customer:carol@customer.example",
            )
            decision = Decision(team="frontline", sla="standard" if sla else None)
            tickets.save(conn, tr.apply_rules(made, decision, (), now=now))
            loaded = tickets.load(conn, made.id)
        assert loaded is not None
        return loaded

    def alert(self, ticket_id: int, text: str, key: str, channel: str = "#alerts") -> int | None:
        message = SlackMessage(
            text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        )
        with self.engine.begin() as conn:
            ticket = tickets.load(conn, ticket_id)
            assert ticket is not None
            return self.living.alert(
                conn, self.rules, ticket, channel, message, self.clock(), dedupe_key=key
            )

    def change(self, ticket_id: int, how: str) -> None:
        """Change the ticket as an agent would: assign, pending, solve."""
        now = self.clock()
        with self.engine.begin() as conn:
            ticket = tickets.load(conn, ticket_id)
            assert ticket is not None
            if how == "assign":
                change = tr.assign_agent(
                    ticket, "alice", teams=("frontline",), actor="agent:alice", now=now
                )
            else:
                change = tr.change_status(ticket, how, actor="agent:alice", now=now)
            tickets.save(conn, change)

    def thread(self, ticket_id: int, channel: str = "#alerts") -> slack_threads.Thread | None:
        with self.engine.connect() as conn:
            return slack_threads.find(conn, ticket_id, channel)

    def rows(self, ticket_id: int | None = None) -> list[dict[str, object]]:
        with Session(self.engine) as session:
            return sq.list_rows(session, ticket_id=ticket_id, limit=1000)

    def calls(self, method: str) -> list[dict[str, object]]:
        return [r.body for r in self.api.requests if r.method == method]


def make_slack_desk(
    tmp_path: Path,
    db_url: str,
    api: SlackApiServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    buttons: bool = False,
) -> SlackDesk:
    engine = make_engine(db_url)
    upgrade(engine)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "10-rules.yaml").write_text(RULES, encoding="utf-8")
    store = RuleStore()
    assert store.reload(rules_dir) == []
    assert store.current is not None
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", TOKEN)
    client = make_slack_client(
        SlackConfig(token_env="INBOXD_TEST_SLACK_TOKEN", base_url=api.base_url), timeout=5
    )
    assert client is not None
    clock = Clock(MONDAY_NOON)
    living = LivingMessages(buttons=buttons)
    drain = SlackDrain(
        engine, lambda: client, retry_for=3600, clock=clock, rng=lambda: 0.0, max_per_run=20
    )
    rules = store.current
    sync = RootSync(engine, lambda: rules, living.refresh, clock=clock)
    return SlackDesk(engine, rules, clock, api, client, living, drain, sync)
