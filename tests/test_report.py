"""`inboxd report` on a scripted history made by the real pipeline and agent flows.

Three tickets between Friday 27 March and Wednesday 1 April 2026: a weekend and
the switch to summer time in Berlin (Sunday 29 March, 02:00 CET -> 03:00 CEST)
lie inside the clocks. Office hours: Monday to Friday 09:00-17:00 Berlin. Every
expected figure is worked out by hand below, in calendar and in business time.

    t1 carol  Fri 27 15:00Z (16:00 CET) created
              Mon 30 08:00Z alice answers, #pending      first reply
              Mon 30 10:00Z carol answers (reopens pending -> open)
              Mon 30 11:30Z alice answers, #solve         next reply 1h30
              Tue 31 07:00Z carol answers: reopened
              Tue 31 09:00Z alice answers, #solve         next reply 2h
    t2 dave   Sat 28 10:00Z created
              Mon 30 10:30Z alice answers, #solve         one touch
    t3 erin   Tue 31 12:00Z created, unanswered (backlog)
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailflow_kit import Desk, mail, make_desk
from support.cli_config import cli_config

from inboxd.cli import main

H = 3600.0
RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        assignment: none
        agents:
          - {name: alice, email: alice@help.example, display_name: Alice Agent}
          - {name: bob, email: bob@help.example, display_name: Bob Agent}
    calendars:
      office:
        timezone: Europe/Berlin
        hours:
          mon-fri: 09:00-17:00
    sla_policies:
      standard:
        calendar: office
        first_response: 4h
        resolution: 3d
        pause_when: [pending]
    rules:
      - name: default
        then: {team: frontline, sla: standard}
    """
)
NOW = "2026-04-01T18:00:00+00:00"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def customer(desk: Desk, when: datetime, who: str, n: int, first: int = 0) -> int:
    desk.clock.now = when
    subject = "Question from " + who
    if first:
        raw = mail(
            sender=f"{who} <{who}@customer.example>",
            subject="Re: " + subject,
            msgid=f"{who}{n}@customer.example",
            in_reply_to=f"{who}{first}@customer.example",
            body="Still not working.\n",
        )
    else:
        raw = mail(
            sender=f"{who} <{who}@customer.example>",
            subject=subject,
            msgid=f"{who}{n}@customer.example",
        )
    out = desk.deliver(raw)
    assert out.status == "stored" and out.ticket_id is not None
    return out.ticket_id


@pytest.fixture
def history(tmp_path: Path, db_url: str) -> Path:
    """The scripted history in a real database, and a config to report on it."""
    desk = make_desk(tmp_path, rules=RULES, url=db_url)
    t1 = customer(desk, at(27, 15), "carol", 1)
    t2 = customer(desk, at(28, 10), "dave", 1)
    desk.alice_answers(at(30, 8), t1, "#pending\n#tag printer\n\nPlease restart it.\n", 1)
    assert customer(desk, at(30, 10), "carol", 2, first=1) == t1
    desk.alice_answers(at(30, 10, 30), t2, "#solve\n\nDone.\n", 2)
    desk.alice_answers(at(30, 11, 30), t1, "#solve\n\nFixed.\n", 3)
    assert customer(desk, at(31, 7), "carol", 3, first=1) == t1
    desk.alice_answers(at(31, 9), t1, "#solve\n\nFixed for good.\n", 4)
    customer(desk, at(31, 12), "erin", 1)
    assert desk.ticket(t1)["reopened_count"] == 1 and desk.ticket(t2)["status"] == "solved"
    desk.engine.dispose()
    config = cli_config(tmp_path, db_url, "report-test-secret-0123456789")
    return config


def run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["--config", str(config), "report", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def timing(row: dict[str, Any], name: str, kind: str) -> tuple[int, float | None, float | None]:
    s = row[name][kind]
    return s["n"], s["median"], s["p90"]


def test_report_figures_worked_out_by_hand(history: Path) -> None:
    data = json.loads(run(history, "--since", "7d", "--now", NOW, "--json"))
    [row] = data["rows"]
    assert (row["created"], row["solved"], row["reopened"]) == (3, 2, 1)
    # first reply. t1: Fri 15:00Z -> Mon 08:00Z = 65h; open: Fri 16-17 CET, Mon 09-10 CEST = 2h.
    # t2: Sat 10:00Z -> Mon 10:30Z = 48h30; open: Mon 09:00-12:30 CEST = 3h30.
    assert timing(row, "first_response", "calendar") == (2, (65 + 48.5) / 2 * H, 65 * H)
    assert timing(row, "first_response", "business") == (2, (2 + 3.5) / 2 * H, 3.5 * H)
    # next reply, both of t1: 10:00Z -> 11:30Z and 07:00Z -> 09:00Z, all in open hours
    assert timing(row, "next_response", "calendar") == (2, 1.75 * H, 2 * H)
    assert timing(row, "next_response", "business") == (2, 1.75 * H, 2 * H)
    # first solve. t1: Fri 15:00Z -> Mon 11:30Z = 68h30, open 1h + Mon 09:00-13:30 = 5h30.
    # t2: the same as its first reply.
    assert timing(row, "resolution", "calendar") == (2, (68.5 + 48.5) / 2 * H, 68.5 * H)
    assert timing(row, "resolution", "business") == (2, (5.5 + 3.5) / 2 * H, 5.5 * H)
    # last solve. t1: Fri 15:00Z -> Tue 09:00Z = 90h, open 1h + Mon 8h + Tue 09-11 = 11h.
    assert timing(row, "full_resolution", "calendar") == (2, (90 + 48.5) / 2 * H, 90 * H)
    assert timing(row, "full_resolution", "business") == (2, (11 + 3.5) / 2 * H, 11 * H)
    # t2 got one public reply, t1 three; t1 was reopened after its solve
    assert (row["one_touch"], row["one_touch_rate"]) == (1, 0.5)
    assert (row["reopened_after_solve"], row["reopen_rate"]) == (1, 0.5)


def test_sla_outcomes_per_policy_and_target(history: Path) -> None:
    data = json.loads(run(history, "--since", "7d", "--now", NOW, "--json"))
    assert data["sla_included"] is True
    sla = {(s["policy"], s["target"]): s for s in data["rows"][0]["sla"]}
    # t1 answered after 2 business hours, t2 after 3h30; t3 (Tue 14:00 CEST) was due
    # Wed 10:00 CEST after 3h on Tuesday and 1h on Wednesday: breached in the period
    first = sla["standard", "first_response"]
    assert (first["achieved"], first["breached"], first["active"]) == (2, 1, 0)
    # t1 and t2 solved well inside 3 business days; t3's resolution still runs
    solved = sla["standard", "resolution"]
    assert (solved["achieved"], solved["breached"], solved["active"]) == (2, 0, 1)


def test_backlog_and_arrivals(history: Path) -> None:
    data = json.loads(run(history, "--since", "7d", "--now", NOW, "--json"))
    backlog = data["backlog"]
    assert backlog["as_of"] == NOW
    assert backlog["total"] == 1
    assert backlog["by_status"] == {"new": 1}
    assert backlog["by_team"] == {"frontline": 1}
    assert backlog["by_agent"] == {"(none)": 1}
    assert backlog["by_tag"] == {"(none)": 1}
    assert backlog["by_age"] == {"<1d": 0, "1-3d": 1, "3-7d": 0, "7-30d": 0, ">=30d": 0}  # 30h
    arrivals = data["arrivals"]
    assert arrivals["fri"][15] == arrivals["sat"][10] == arrivals["tue"][12] == 1
    assert sum(map(sum, arrivals.values())) == 3
    berlin = json.loads(
        run(history, "--since", "7d", "--now", NOW, "--tz", "Europe/Berlin", "--json")
    )
    # 16:00 CET on Friday, 13:00 CEST on Tuesday
    assert berlin["arrivals"]["fri"][16] == berlin["arrivals"]["tue"][14] == 1


def test_a_past_period_is_recomputed_from_the_log(history: Path) -> None:
    """Up to Monday 30th in Berlin: t1 pending, t2 not yet solved, nothing reopened yet."""
    data = json.loads(
        run(
            history, "--from", "2026-03-27", "--to", "2026-03-29", "--tz", "Europe/Berlin", "--json"
        )
    )
    [row] = data["rows"]
    assert (row["created"], row["solved"], row["reopened"]) == (2, 0, 0)
    assert row["first_response"]["calendar"]["n"] == 0
    assert data["backlog"]["as_of"] == "2026-03-29T22:00:00+00:00"  # Monday 00:00 CEST
    assert data["backlog"]["by_status"] == {"new": 2}


def test_filters_groups_and_days(history: Path) -> None:
    tagged = json.loads(run(history, "--since", "7d", "--now", NOW, "--tag", "printer", "--json"))
    assert [r["created"] for r in tagged["rows"]] == [1]
    grouped = json.loads(run(history, "--since", "7d", "--now", NOW, "--group-by", "tag", "--json"))
    assert {r["group"]: r["created"] for r in grouped["rows"]} == {
        "(all)": 3, "(none)": 2, "printer": 1
    }  # fmt: skip
    daily = json.loads(run(history, "--since", "7d", "--now", NOW, "--every", "day", "--json"))
    solved = {r["period"]["start"][:10]: r["solved"] for r in daily["rows"] if r["solved"]}
    assert solved == {"2026-03-30": 2, "2026-03-31": 1}


def test_csv_has_one_figure_per_row(history: Path) -> None:
    rows = list(csv.reader(io.StringIO(run(history, "--since", "7d", "--now", NOW, "--csv"))))
    assert rows[0] == [
        "section",
        "period_start",
        "period_end",
        "group_by",
        "group",
        "metric",
        "value",
    ]
    figures = {r[5]: r[6] for r in rows if r[0] == "figures"}
    assert figures["created"] == "3"
    assert figures["first_response_business_p90"] == str(3.5 * H)
    assert figures["sla_standard_first_response_breached"] == "1"
    assert ["backlog", *rows[1][1:3], "status", "new", "tickets", "1"] in rows


def test_tickets_list_csv_has_the_json_fields(history: Path) -> None:
    runner = CliRunner()
    as_json = json.loads(
        runner.invoke(main, ["--config", str(history), "tickets", "list", "--json"]).output
    )
    out = runner.invoke(main, ["--config", str(history), "tickets", "list", "--csv"]).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(as_json[0])
    assert len(rows) == len(as_json) == 3
    assert rows[0]["tags"] == "printer" and rows[0]["vip"] == "false"
    assert rows[0]["created_at"] == as_json[0]["created_at"]
    assert rows[2]["assignee"] == "" and as_json[2]["assignee"] is None
