"""SLA stages end to end: the real pipeline and flows, the sweep, a controllable clock.

A ticket reaches its warning and then its breach; the reminder (inside open
hours) and the breach alert go out once each, and a sweep started afresh (a
restart) repeats nothing; a first response stops the first-response stages; a
``#pending`` reply pauses the clock and the customer's next mail resumes it.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mailflow_kit import Desk, mail, make_desk, reply_to_notification
from sqlmodel import Session, col, select

from inboxd.core.sla import targets
from inboxd.db import tickets
from inboxd.db.tables import SlackNotice
from inboxd.flows.sla_notices import SlaStageActions
from inboxd.metrics import REGISTRY
from inboxd.sched.sla_sweep import SlaSweep, policy_of

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        assignment: none
        lead: bob
        agents:
          - {name: alice, email: alice@help.example, display_name: Alice Agent}
          - {name: bob, email: bob@help.example, display_name: Bob Lead}
    calendars:
      office:
        timezone: UTC
        hours:
          mon-fri: 09:00-17:00
    sla_policies:
      standard:
        calendar: office
        first_response: 2h
        next_response: 4h
        resolution: 8h
        pause_when: [pending]
        stages:
          - warn at 75%
          - {at: breach, alert: [lead, "#sla"]}
    rules:
      - name: default
        then: {team: frontline, assignee: alice, sla: standard}
    """
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, rules=RULES, url=db_url)


def sweep(desk: Desk) -> SlaSweep:
    """A sweep as the daemon builds it (a new one stands for a restart)."""
    return SlaSweep(
        desk.engine,
        desk.flow.config.rules,
        SlaStageActions(desk.flow),
        clock=desk.clock,
    )


def sla_mails(desk: Desk) -> list[tuple[str, str]]:
    return [
        (row["kind"], row["rcpts"][0])
        for row in desk.outbox()
        if row["kind"] in ("sla_reminder", "sla_breach")
    ]


def slack_rows(desk: Desk) -> list[str]:
    """The Slack calls queued, as ``channel call`` (an alert: the ticket's root, a reply)."""
    with Session(desk.engine) as s:
        rows = s.exec(select(SlackNotice).order_by(col(SlackNotice.id)))
        return [f"{n.channel} {n.call}" for n in rows]


def sla_counts(policy: str = "standard") -> tuple[float, float]:
    """The process's SLA warning and breach counters for ``policy``."""
    labels = {"policy": policy}
    return (
        REGISTRY.get_sample_value("inboxd_sla_warnings_total", labels) or 0.0,
        REGISTRY.get_sample_value("inboxd_sla_breaches_total", labels) or 0.0,
    )


def run_at(desk: Desk, when: datetime, runner: SlaSweep | None = None) -> None:
    desk.clock.now = when
    (runner or sweep(desk)).run_once()


def test_warning_inside_open_hours_then_breach_once_each_across_a_restart(desk: Desk) -> None:
    warned, breached = sla_counts()
    desk.clock.now = at(0, 15, 30)  # 2h target: 1.5 h today, 75% lands on the 17:00 close
    out = desk.deliver(mail())
    assert out.ticket_id is not None
    first = sweep(desk)
    run_at(desk, at(0, 15, 31), first)
    run_at(desk, at(0, 17, 0), first)
    run_at(desk, at(0, 23, 0), first)
    assert sla_mails(desk) == []  # the reminder waits for the opening
    run_at(desk, at(1, 9, 0), first)
    assert sla_mails(desk) == [("sla_reminder", "alice@help.example")]
    run_at(desk, at(1, 9, 10))  # a restart: a new sweep
    assert sla_mails(desk) == [("sla_reminder", "alice@help.example")]
    run_at(desk, at(1, 9, 30))  # due: 30 min of Monday + 90 min of Tuesday... minus none
    run_at(desk, at(1, 9, 31))
    run_at(desk, at(1, 12, 0))
    assert sla_mails(desk) == [
        ("sla_reminder", "alice@help.example"),
        ("sla_breach", "bob@help.example"),
    ]
    assert slack_rows(desk) == ["#sla root", "#sla reply"]
    assert sla_counts() == (warned + 1, breached + 1)  # once each, the restart included
    with Session(desk.engine) as s:
        fired = [e for e in tickets.typed_events(s, out.ticket_id) if e.kind == "sla_stage"]
    assert [(e.target, e.stage) for e in fired] == [  # type: ignore[attr-defined]
        ("first_response", "remind@75%"),
        ("first_response", "alert@breach"),
    ]


def test_first_response_stops_its_stages_and_pending_pauses_resolution(desk: Desk) -> None:
    desk.clock.now = at(0, 9, 0)
    out = desk.deliver(mail())
    assert out.ticket_id is not None
    tid = out.ticket_id
    run_at(desk, at(0, 9, 1))
    desk.clock.now = at(0, 10, 0)
    [note] = [m for m in desk.outbox_mails("notify") if "alice" in str(m["To"])]
    desk.deliver(reply_to_notification(note, body="#pending\n\nWhich model is it?\n"))
    for hour in (10, 11, 12, 13):
        run_at(desk, at(0, hour, 1))
    assert sla_mails(desk) == []  # answered at 10:00: no first-response warning or breach
    desk.clock.now = at(0, 14, 0)
    desk.deliver(
        mail(
            msgid="c2@customer.example",
            subject="Re: Printer broken",
            in_reply_to="c1@customer.example",
        )
    )
    run_at(desk, at(0, 14, 1))
    with Session(desk.engine) as s:
        ticket = tickets.load(s, tid)
        assert ticket is not None and ticket.status == "open"
        events = tickets.typed_events(s, tid)
    found = policy_of(desk.flow.config.rules(), ticket.sla_policy)
    assert found is not None
    policy, calendar = found
    state = {tc.target: tc for tc in targets.clocks(events, policy, calendar, at(0, 14, 1))}
    assert state["first_response"].state == "achieved"
    resolution = state["resolution"]
    # 1 h used before the pause (09:00-10:00), paused 10:00-14:00, then 3 h Monday
    # and 4 h Tuesday: due Tuesday 13:00 instead of Monday 17:00
    assert resolution.state == "active" and resolution.due_at == at(1, 13, 0)
    # the customer's mail started a next-response cycle from 14:00: 3 h + 1 h
    assert state["next_response"].due_at == at(1, 10, 0)


def test_tickets_show_explains_each_target(desk: Desk, tmp_path: Path, db_url: str) -> None:
    from click.testing import CliRunner

    from inboxd.cli import main

    desk.clock.now = at(0, 15, 30)
    out = desk.deliver(mail())
    run_at(desk, at(1, 9, 0))  # the reminder fired
    (tmp_path / "secret").write_text("s")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f'[database]\nurl = "{db_url}"\n[helpdesk]\nsecret_file = "secret"\n'
        f'[rules]\ndir = "{tmp_path / "rules"}"\n[[mailbox]]\nname = "support"\n'
        'address = "support@help.example"\n'
    )
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "tickets", "show", str(out.ticket_id), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["sla"]
    assert report["policy"] == "standard"
    first = {t["target"]: t for t in report["targets"]}["first_response"]
    assert first["goal"] == "2h" and first["due_at"] == at(1, 9, 30).isoformat()
    assert [s["stage"] for s in first["stages"]] == ["remind@75%"]
    text = CliRunner().invoke(main, ["--config", str(cfg), "tickets", "show", str(out.ticket_id)])
    assert "SLA standard (calendar office):" in text.output
    assert "stage remind@75% fired" in text.output
