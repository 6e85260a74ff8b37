"""`inboxd sla replay` on tickets made by the real pipeline and agent flows.

The current rules promise a first response in 2 business hours and a
resolution in 16 on an office open 09:00-17:00 Berlin (CET, UTC+1, in early
March 2026); the proposed rules give 4 hours for the first response, open the
office 08:00-18:00 and drop the ``vip`` policy. As of Thursday 5 March 10:30Z:

    t0  Tue 20 Jan 10:00Z  created, never answered           before the period
    t1  Mon  2 Mar 08:00Z  created; 10:30Z alice #solve
        first response: current due 10:00Z (09:00+2h local) -> breached
                        proposed due 12:00Z (09:00+4h local) -> achieved      FLIP
        resolution:     solved long before either due time   -> achieved both
    t2  Mon  2 Mar 08:00Z  created; 08:30Z alice answers; Tue 3 Mar 15:30Z #solve
        first response: achieved under both (due 10:00Z / 12:00Z)
        resolution:     current Mon 8h + Tue 8h -> due Tue 16:00Z -> achieved
                        proposed Mon 09-18 9h + Tue 08-15 7h -> due Tue 14:00Z
                        -> breached                                           FLIP
    t3  Thu  5 Mar 07:00Z  created (08:00 local), unanswered
        first response: current due 10:00Z -> breached; proposed due 11:00Z -> active
        resolution:     active under both
    t4  Wed  4 Mar 10:00Z  "urgent": policy vip (1h, 24x7); 10:30Z alice answers
        first response: achieved; the proposed rules have no vip policy
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailflow_kit import Desk, mail, make_desk
from support.cli_config import cli_config

from inboxd.cli import main
from inboxd.db.sla_replay import tickets_created

TEAMS = """
    version: 1
    teams:
      frontline:
        assignment: none
        agents:
          - {name: alice, email: alice@help.example, display_name: Alice Agent}
"""
CURRENT = textwrap.dedent(
    TEAMS
    + """
    calendars:
      office:
        timezone: Europe/Berlin
        hours:
          mon-fri: 09:00-17:00
    sla_policies:
      standard:
        calendar: office
        first_response: 2h
        resolution: 16h
      vip:
        first_response: 1h
    rules:
      - name: urgent
        when: {subject: urgent}
        then: {team: frontline, sla: vip}
      - name: default
        then: {team: frontline, sla: standard}
    """
)
PROPOSED = textwrap.dedent(
    TEAMS
    + """
    calendars:
      office:
        timezone: Europe/Berlin
        hours:
          mon-fri: 08:00-18:00
    sla_policies:
      standard:
        calendar: office
        first_response: 4h
        resolution: 16h
    rules:
      - name: default
        then: {team: frontline, sla: standard}
    """
)
NOW = "2026-03-05T10:30:00+00:00"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def customer(desk: Desk, when: datetime, who: str, subject: str = "Question") -> int:
    desk.clock.now = when
    raw = mail(
        sender=f"{who} <{who}@customer.example>",
        subject=f"{subject} from {who}",
        msgid=f"{who}@customer.example",
    )
    out = desk.deliver(raw)
    assert out.status == "stored" and out.ticket_id is not None
    return out.ticket_id


@pytest.fixture
def history(tmp_path: Path, db_url: str) -> tuple[Path, list[int]]:
    """The tickets above in a real database, a config naming the current rules, and
    the proposed rules in ``tmp_path / "proposed"``."""
    desk = make_desk(tmp_path, rules=CURRENT, url=db_url)
    t0 = customer(desk, at(1, 20, 10), "old")
    t1 = customer(desk, at(3, 2, 8), "carol")
    t2 = customer(desk, at(3, 2, 8), "dave")
    desk.alice_answers(at(3, 2, 8, 30), t2, "Looking into it.\n", 1)
    desk.alice_answers(at(3, 2, 10, 30), t1, "#solve\n\nRestart it.\n", 2)
    desk.alice_answers(at(3, 3, 15, 30), t2, "#solve\n\nFixed.\n", 3)
    t4 = customer(desk, at(3, 4, 10), "erin", subject="urgent")
    desk.alice_answers(at(3, 4, 10, 30), t4, "On it.\n", 4)
    t3 = customer(desk, at(3, 5, 7), "frank")
    assert desk.ticket(t4)["sla_policy"] == "vip" and desk.ticket(t3)["sla_policy"] == "standard"
    desk.engine.dispose()
    proposed = tmp_path / "proposed"
    proposed.mkdir()
    (proposed / "00-test.yaml").write_text(PROPOSED)
    config = cli_config(tmp_path, db_url, "sla-replay-test-secret-0123456789")
    return config, [t0, t1, t2, t3, t4]


def replay(config: Path, *args: str) -> str:
    proposed = str(config.parent / "proposed")
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "sla", "replay", "--rules", proposed, "--now", NOW, *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def counts(side: dict[str, Any] | None) -> tuple[int, int, int, float | None] | None:
    if side is None:
        return None
    return side["achieved"], side["breached"], side["active"], side["rate"]


def test_compliance_and_flips_worked_out_by_hand(history: tuple[Path, list[int]]) -> None:
    config, (_, t1, t2, _, t4) = history
    data = json.loads(replay(config, "--since", "30d", "--json"))
    assert (data["tickets"], data["without_policy"]) == (4, 0)  # t0 is older than 30 days
    rows = {(r["policy"], r["target"]): r for r in data["targets"]}
    assert list(rows) == [
        ("standard", "first_response"),
        ("standard", "resolution"),
        ("vip", "first_response"),
    ]
    first = rows["standard", "first_response"]
    assert counts(first["current"]) == (1, 2, 0, 1 / 3)  # t2 / t1, t3
    assert counts(first["proposed"]) == (2, 0, 1, 1.0)  # t1, t2 / - / t3
    solved = rows["standard", "resolution"]
    assert counts(solved["current"]) == (2, 0, 1, 1.0)  # t1, t2 / - / t3
    assert counts(solved["proposed"]) == (1, 1, 1, 0.5)  # t1 / t2 / t3
    vip = rows["vip", "first_response"]
    assert (counts(vip["current"]), vip["proposed"]) == ((1, 0, 0, 1.0), None)
    assert data["flips"] == [
        {
            "ticket": t1,
            "policy": "standard",
            "target": "first_response",
            "current": "breached",
            "proposed": "achieved",
            "current_due": "2026-03-02T10:00:00+00:00",
            "proposed_due": "2026-03-02T12:00:00+00:00",
        },
        {
            "ticket": t2,
            "policy": "standard",
            "target": "resolution",
            "current": "achieved",
            "proposed": "breached",
            "current_due": "2026-03-03T16:00:00+00:00",
            "proposed_due": "2026-03-03T14:00:00+00:00",
        },
    ]
    groups = {g["policy"]: g for g in data["policies"]}
    assert (groups["standard"]["tickets"], groups["vip"]["tickets"]) == (3, 1)
    assert (groups["vip"]["in_current"], groups["vip"]["in_proposed"]) == (True, False)
    assert data["notes"] == [
        "policy 'vip' is not in the proposed rules: its 1 ticket(s) are not counted there"
    ]
    assert t4 not in {f["ticket"] for f in data["flips"]}


def test_text_output_lists_rates_and_flips(history: tuple[Path, list[int]]) -> None:
    config, (_, t1, t2, _, _) = history
    out = replay(config).splitlines()
    assert out[0].startswith("4 tickets created since 30d (0 without a policy)")
    assert out[2] == "achieved/breached/active and the achieved rate of the decided targets:"
    table = [line.split() for line in out[3:7]]
    assert table == [
        ["policy", "target", "current", "proposed", "change"],
        ["standard", "first_response", "1/2/0", "33%", "2/0/1", "100%", "+67", "pts"],
        ["standard", "resolution", "2/0/1", "100%", "1/1/1", "50%", "-50", "pts"],
        ["vip", "first_response", "1/0/0", "100%", "(not", "defined)"],
    ]
    assert out[7].startswith("note: policy 'vip' is not in the proposed rules")
    flips = out[out.index("2 outcome(s) flip:") + 1 :]
    assert [line.split()[:5] for line in flips] == [
        [f"#{t1}", "standard", "first_response", "breached", "->"],
        [f"#{t2}", "standard", "resolution", "achieved", "->"],
    ]
    # due times in the policy calendar's zone (Berlin)
    assert "due 2026-03-02T11:00:00+01:00 -> 2026-03-02T13:00:00+01:00" in flips[0]
    assert "due 2026-03-03T17:00:00+01:00 -> 2026-03-03T15:00:00+01:00" in flips[1]


def test_the_read_pages_through_the_period(history: tuple[Path, list[int]], db_url: str) -> None:
    from inboxd.db.engine import make_engine

    _, (_, t1, t2, t3, t4) = history
    now = datetime.fromisoformat(NOW)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            read = list(tickets_created(conn, now - timedelta(days=30), now, page=2))
    finally:
        engine.dispose()
    assert [(t.id, t.policy) for t in read] == [
        (t1, "standard"),
        (t2, "standard"),
        (t4, "vip"),
        (t3, "standard"),
    ]
    assert all(t.events and t.events[0].KIND == "created" for t in read)
