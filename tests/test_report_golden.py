"""Every figure of `inboxd report`, pinned for a seeded desk of a few hundred tickets.

test_report.py works figures out by hand on three tickets; this one pins the
whole output (JSON and CSV, several periods, groups, filters and zones) of a
larger seeded history to ``tests/data/report_golden.json``, so that work on how
the report is computed (its speed) cannot move a single figure unseen. The
history mixes what the figures distinguish: customer- and agent-opened tickets,
notes and auto-replies, Sent-folder replies dated earlier, pending spells,
solves, closes, reopens, merges, surveys and changed ratings, on calendars
with holidays, a special day, a closure, an overnight shift and two DST
changes, and policies with pauses, next-response cycles, business days, one
policy no longer in the rules and none at all.

The golden file was written by the report as it was before that work; after a
deliberate change of a definition, rewrite it with ``INBOXD_WRITE_GOLDEN=1``
(and say why in the commit).
"""

from __future__ import annotations

import json
import os
import random
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert
from support.cli_config import cli_config

from inboxd.cli import main
from inboxd.core.desk import events as ev
from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Ticket

GOLDEN = Path(__file__).parent / "data" / "report_golden.json"
NOW = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
START = datetime(2026, 2, 16, 6, 0, tzinfo=UTC)
TICKETS = 400
RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        assignment: none
        agents:
          - {name: alice, email: alice@help.example}
          - {name: bob, email: bob@help.example}
      billing:
        assignment: none
        agents:
          - {name: dana, email: dana@help.example}
    calendars:
      office:
        timezone: Europe/Berlin
        hours:
          mon-thu: 09:00-12:00, 13:00-17:30
          fri: 09:00-15:00
        holidays: [2026-04-03, 2026-04-06]
        special_days:
          2026-03-20: 09:00-12:00
          2026-03-25: {closed: 12:00-15:00}
      night:
        timezone: America/New_York
        hours:
          mon-fri: 22:00-06:00
          sat: 08:00-12:00
    sla_policies:
      standard:
        calendar: office
        first_response: 4h
        next_response: 8h
        resolution: 3d
        pause_when: [pending]
      vip:
        first_response: 30m
        resolution: 8h
      incident:
        first_response: 15m
        next_response: 1h
      nightly:
        calendar: night
        first_response: 2h
        resolution: 1d
        pause_when: [pending, new]
    rules:
      - name: default
        then: {team: frontline, sla: standard}
    """
)
POLICIES = ["standard", "standard", "vip", "incident", "nightly", "retired", None]
TEAMS = {"frontline": ["alice", "bob"], "billing": ["dana"]}
TAGS = [[], [], ["printer"], ["invoice"], ["printer", "urgent"]]
BERLIN_DAYS = ["--every", "day", "--tz", "Europe/Berlin"]
# the report invocations pinned, all as of NOW
RUNS: dict[str, list[str]] = {
    "since_30d": ["--since", "30d"],
    "since_7d_by_policy": ["--since", "7d", "--group-by", "policy"],
    "weeks_by_team": ["--since", "8w", "--every", "week", "--group-by", "team"],
    "days_berlin": ["--from", "2026-03-23", "--to", "2026-04-07", *BERLIN_DAYS],
    "by_tag_ny": ["--since", "21d", "--group-by", "tag", "--tz", "America/New_York"],
    "by_agent_frontline": ["--since", "30d", "--team", "frontline", "--group-by", "agent"],
    "mailbox_and_tag": ["--since", "60d", "--mailbox", "sales", "--tag", "printer"],
    "agent_by_mailbox": ["--since", "14d", "--agent", "dana", "--group-by", "mailbox"],
    "past_month": ["--from", "2026-02-20", "--to", "2026-03-10"],
}


class _Life:
    """One ticket's seeded history, as typed events and its row's present values."""

    def __init__(self, tid: int, rnd: random.Random) -> None:
        self.tid, self.rnd = tid, rnd
        self.team = rnd.choice(list(TEAMS))
        self.agent = rnd.choice([*TEAMS[self.team], None])
        self.who = f"customer{tid % 37}@example.net"
        self.events: list[ev.Event] = []
        self.status = "new"
        self.at = START + (NOW - START) * rnd.random() ** 0.7
        self.created = self.at
        self.reopened = 0
        self.merged = False

    def _later(self) -> datetime:
        self.at += timedelta(
            minutes=self.rnd.choice([2, 20, 90, 400, 1500, 4000]) * self.rnd.random()
        )
        return self.at

    def _status(self, to: str, actor: str) -> None:
        if self.status in ("solved", "closed") and to in ("new", "open", "pending"):
            self.reopened += 1
        self.events.append(ev.StatusChanged(at=self.at, actor=actor, from_=self.status, to=to))
        self.status = to

    def _customer(self, kind: str = "normal") -> None:
        self.events.append(
            ev.MessageStored(at=self.at, actor=ev.customer(self.who), message=1, kind_=kind)
        )

    def _reply(self) -> None:
        agent = self.agent or "bob"
        via, sent_at = None, None
        if self.rnd.random() < 0.2:  # found in the Sent folder, dated earlier
            via = "sent_folder"
            back = timedelta(minutes=self.rnd.choice([1, 30, 600, 3000]))
            sent_at = (self.at - back).isoformat()
        self.events.append(
            ev.AgentReplied(
                at=self.at, actor=ev.agent(agent), message=2, message_id=f"r{self.tid}",
                first_response=False, to=(self.who,), via=via, sent_at=sent_at,
            )
        )  # fmt: skip
        if self.status == "new":
            self._status("open", ev.agent(agent))

    def play(self) -> None:
        rnd, opener = self.rnd, rnd_actor(self.rnd, self.agent)
        self.events.append(ev.Created(at=self.at, actor=opener, source="lmtp"))
        self.events.append(ev.RuleApplied(at=self.at, actor="rule:default", file="r", line=1))
        if opener.startswith("agent:"):
            self._reply()
        else:
            self._customer()
        self.events.append(ev.Notified(at=self.at, agents=("alice",), event="created"))
        for _ in range(rnd.randint(1, 9)):
            if self._later() >= NOW + timedelta(days=2) or self.merged:
                break
            self._step(rnd.random())

    def _step(self, roll: float) -> None:
        agent = ev.agent(self.agent or "alice")
        if roll < 0.25:
            self._reply()
        elif roll < 0.45:
            self._customer()
            if self.status in ("solved", "closed", "pending"):
                self._status("open", ev.SYSTEM)
        elif roll < 0.5:
            self._customer(self.rnd.choice(["auto_reply", "bulk"]))
        elif roll < 0.55:
            self.events.append(ev.NoteAdded(at=self.at, actor=agent, message=3))
        elif roll < 0.65 and self.status in ("new", "open"):
            self._status("pending", agent)
        elif roll < 0.8 and self.status in ("new", "open", "pending"):
            self._status(self.rnd.choice(["solved", "solved", "closed"]), agent)
        elif roll < 0.84 and self.status == "solved":
            self._status("closed", ev.SYSTEM)
        elif roll < 0.9 and self.status in ("solved", "closed"):
            self.events.append(ev.SurveySent(at=self.at, survey=self.tid, to=self.who,
                                             message_id=f"s{self.tid}"))  # fmt: skip
        elif roll < 0.96:
            rating = self.rnd.choice(["good", "good", "bad"])
            self.events.append(ev.SurveyRated(at=self.at, actor=ev.customer(self.who),
                                              survey=self.tid, rating=rating, via="mailto",
                                              message=4))  # fmt: skip
        elif roll < 0.98 and self.tid > 1:
            self.events.append(ev.Merged(at=self.at, into=self.tid - 1))
            self._status("closed", ev.SYSTEM)
            self.merged = True
        else:
            self.events.append(ev.TagsChanged(at=self.at, tags=("printer",)))

    def row(self) -> dict[str, Any]:
        last = max(e.at for e in self.events)
        return {
            "id": self.tid,
            "subject": f"Question {self.tid}",
            "status": self.status,
            "requester": self.who,
            "mailbox": self.rnd.choice(["support", "support", "sales"]),
            "team": self.team,
            "assignee": self.agent,
            "sla_policy": self.rnd.choice(POLICIES),
            "tags": self.rnd.choice(TAGS),
            "created_at": self.created,
            "updated_at": last,
            "status_changed_at": last,
            "reopened_count": self.reopened,
        }


def rnd_actor(rnd: random.Random, agent: str | None) -> str:
    return ev.agent(agent or "bob") if rnd.random() < 0.15 else ev.customer("someone@example.net")


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Path:
    engine = make_engine(db_url)
    upgrade(engine)
    rnd = random.Random(20260408)
    lives = [_Life(tid, rnd) for tid in range(1, TICKETS + 1)]
    with engine.begin() as conn:
        for life in lives:
            life.play()
            conn.execute(insert(Ticket.__table__), [life.row()])  # type: ignore[attr-defined]
        tickets.record_many(conn, [(life.tid, e) for life in lives for e in life.events])
    engine.dispose()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-desk.yaml").write_text(RULES)
    config = cli_config(tmp_path, db_url, "report-golden-secret-0123456789")
    return config


def report(config: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "report", "--now", NOW.isoformat(), *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_every_figure_is_as_pinned(desk: Path) -> None:
    got: dict[str, Any] = {
        name: json.loads(report(desk, *args, "--json")) for name, args in RUNS.items()
    }
    got["since_30d_csv"] = report(desk, "--since", "30d", "--csv").splitlines()
    if os.environ.get("INBOXD_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name


def test_tickets_folded_in_several_processes_give_the_pinned_figures(desk: Path) -> None:
    """``--workers 3``: three shares folded in forked processes and absorbed into one
    report; a share lost or counted twice moves a figure."""
    want = json.loads(GOLDEN.read_text())
    for name, args in RUNS.items():
        assert json.loads(report(desk, *args, "--workers", "3", "--json")) == want[name], name


def test_the_desk_exercises_what_the_figures_distinguish(desk: Path) -> None:
    """A pinned output is only as good as the history behind it: check it has each case."""
    data = json.loads(report(desk, "--since", "8w", "--group-by", "policy", "--json"))
    rows = {r["group"]: r for r in data["rows"]}
    every = rows["(all)"]
    assert every["created"] > 200 and every["solved"] > 50 and every["reopened"] > 5
    assert every["surveys_sent"] > 5 and every["rated_good"] > 5 and every["rated_bad"] > 2
    assert 0 < every["one_touch"] < every["solved"]
    assert every["next_response"]["calendar"]["n"] > 20
    # business time only for tickets whose policy is still defined
    assert every["first_response"]["business"]["n"] < every["first_response"]["calendar"]["n"]
    assert {"standard", "vip", "incident", "nightly", "retired", "(none)"} <= set(rows)
    sla = {(s["policy"], s["target"]): s for s in every["sla"]}
    assert ("standard", "next_response") in sla and ("nightly", "resolution") in sla
    assert all(sum(sla[k][s] for k in sla) > 0 for s in ("achieved", "breached", "active"))
    assert data["backlog"]["total"] > 10
