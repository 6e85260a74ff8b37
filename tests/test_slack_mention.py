"""A breach alert pings a Slack user group: the stage's own (``mention:S...`` in the
rule files), else the ticket's team's or the default one of ``[slack]``; a warning
pings nobody. The real pipeline, the SLA sweep, and slack_sdk's real WebClient against
the local Web API stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mailflow_kit import T0, Desk, mail, make_desk
from servers.slack_api import SlackApiServer

from inboxd.config import ConfigError, SlackConfig, parse_settings
from inboxd.delivery.slack import SlackDrain, make_slack_client
from inboxd.flows.sla_notices import SlaStageActions
from inboxd.sched.sla_sweep import SlaSweep

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        agents:
          - {name: alice, email: alice@help.example}
      night:
        agents:
          - {name: nick, email: nick@help.example}
    sla_policies:
      standard:
        first_response: 2h
        stages:
          - {at: 50%, alert: "#sla"}
          - {at: breach, alert: "#sla"}
          - {at: breach + 1h, alert: ["#sla", "mention:S0999XYZ"]}
    rules:
      - name: nights
        when: {subject: night}
        then: {team: night, sla: standard}
      - name: default
        then: {team: frontline, sla: standard}
    """
)


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Iterator[Desk]:
    made = make_desk(tmp_path, rules=RULES, url=db_url, acknowledge=False)
    yield made
    made.engine.dispose()


def drain(desk: Desk, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch) -> SlackDrain:
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", "xoxb-mention")
    config = SlackConfig(token_env="INBOXD_TEST_SLACK_TOKEN", base_url=api.base_url)
    client = make_slack_client(config, timeout=5)
    assert client is not None
    return SlackDrain(desk.engine, lambda: client, clock=desk.clock, rng=lambda: 0.0)


def replies(api: SlackApiServer) -> list[dict[str, Any]]:
    """The alerts posted into threads (the roots are the ticket cards)."""
    return [r.body for r in api.posts() if "thread_ts" in r.body]


def section(body: dict[str, Any]) -> str:
    return str(body["blocks"][1]["text"]["text"])


def run_stages(desk: Desk, actions: SlaStageActions, slack: SlackDrain) -> None:
    """Warning, breach and breach + 1h of a 2h first response, each sweep then drain."""
    sweep = SlaSweep(desk.engine, desk.flow.config.rules, actions, clock=desk.clock)
    for hours in (1, 2, 3):
        desk.clock.now = T0 + timedelta(hours=hours)
        sweep.run_once()
        slack.run_once()


def test_breach_pings_the_default_group_and_a_stage_its_own(
    desk: Desk, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert desk.deliver(mail()).ticket_id is not None
    actions = SlaStageActions(desk.flow, breach_mention="S0123ABC")
    run_stages(desk, actions, drain(desk, api, monkeypatch))
    warning, breach, later = replies(api)

    assert warning["text"].startswith("SLA warning") and "subteam" not in json.dumps(warning)
    assert breach["text"].startswith("<!subteam^S0123ABC> SLA breached: first response")
    assert section(breach).startswith("<!subteam^S0123ABC>\n*Printer broken*")
    # the stage names its own group: that one, not the default
    assert later["text"].startswith("<!subteam^S0999XYZ> SLA breached")
    assert "S0123ABC" not in json.dumps(later)


def test_a_team_group_comes_before_the_default(
    desk: Desk, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert desk.deliver(mail(subject="night shift printer")).ticket_id is not None
    assert desk.deliver(mail(msgid="c2@customer.example")).ticket_id is not None
    actions = SlaStageActions(
        desk.flow, breach_mention="S0123ABC", team_mentions={"night": "S0NIGHT1"}
    )
    run_stages(desk, actions, drain(desk, api, monkeypatch))
    breaches = [b for b in replies(api) if "breached" in b["text"] and "S0999XYZ" not in b["text"]]
    pings = sorted(b["text"].split(" ", 1)[0] for b in breaches)
    assert pings == ["<!subteam^S0123ABC>", "<!subteam^S0NIGHT1>"]


def test_without_a_group_a_breach_pings_nobody(
    desk: Desk, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert desk.deliver(mail()).ticket_id is not None
    run_stages(desk, SlaStageActions(desk.flow), drain(desk, api, monkeypatch))
    pinged = [b for b in replies(api) if "subteam" in json.dumps(b)]
    assert [b["text"].split(" ", 1)[0] for b in pinged] == ["<!subteam^S0999XYZ>"]


def test_config_takes_only_user_group_ids(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    ok = parse_settings('[slack]\nbreach_mention = "S0123ABC"\n', path)
    assert ok.slack.mention_for("billing") == "S0123ABC"
    teams = parse_settings(
        '[slack]\nbreach_mention = "S0123ABC"\nbreach_mentions = {billing = "S0BILL22"}\n', path
    )
    assert teams.slack.mention_for("billing") == "S0BILL22"
    assert teams.slack.mention_for(None) == "S0123ABC"
    for bad in ("!channel", "<!subteam^S1>", "U0123ABC", "s0123abc"):
        with pytest.raises(ConfigError, match=r"slack\.breach_mention"):
            parse_settings(f'[slack]\nbreach_mention = "{bad}"\n', path)
