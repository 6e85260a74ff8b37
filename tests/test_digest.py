"""The weekly digest: one mail per team lead and week, exactly once, from real history.

The week Monday 2 to Sunday 8 March 2026 (Europe/Berlin): three tickets, one
answered and solved, two still open whose 1h first response has breached.
The digest is due Monday 9 March 08:00 Berlin (07:00Z).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mailflow_kit import Desk, body_text, mail, make_desk, reply_to_notification

from inboxd.config import DigestConfig
from inboxd.flows.digest import DigestMail
from inboxd.sched.digest import DigestJob

RULES = """
version: 1
teams:
  frontline:
    assignment: none
    lead: bob
    agents:
      - {name: alice, email: alice@help.example, display_name: Alice Agent}
      - {name: bob, email: bob@help.example, display_name: Bob Lead}
sla_policies:
  standard:
    first_response: 1h
rules:
  - name: default
    then: {team: frontline, sla: standard}
"""
CONFIG = DigestConfig(enabled=True, timezone="Europe/Berlin", cc=["ops@help.example"])


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    desk = make_desk(tmp_path, url=db_url, rules=RULES)
    for n, day in enumerate((2, 3, 5), start=1):
        desk.clock.now = datetime(2026, 3, day, 10, tzinfo=UTC)
        desk.deliver(mail(subject=f"Problem {n}", msgid=f"c{n}@customer.example"))
    note = next(m for m in desk.outbox_mails("notify") if "alice@" in str(m["To"]))
    desk.clock.now = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    desk.deliver(reply_to_notification(note, body="#solve\n\nFixed.\n"))
    return desk


def job(desk: Desk) -> DigestJob:
    sender = DigestMail(desk.flow, cc=CONFIG.cc)
    return DigestJob(desk.engine, desk.flow.config.rules, sender, CONFIG, clock=desk.clock)


def test_digest_once_per_team_and_week(desk: Desk) -> None:
    desk.clock.now = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)  # 08:30 in Berlin
    assert job(desk).run_once() == ["frontline"]
    assert job(desk).run_once() == []  # another daemon, or the next run: claimed
    desk.clock.now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert job(desk).run_once() == []  # still the same week

    [digest] = desk.outbox_mails("digest")
    rcpts = sorted(a for _, a in email.utils.getaddresses([str(digest["To"])]))
    assert rcpts == ["bob@help.example", "ops@help.example"]
    assert digest["Auto-Submitted"] == "auto-generated"
    assert "2026-03-02 to 2026-03-08" in str(digest["Subject"])
    text = body_text(digest)
    assert "Tickets created" in text and "(week before: 0)" in text
    html_part = digest.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert "bgcolor=" in html and "<img" not in html and "http" not in html.lower()
    assert "#2" in html and "#3" in html and "breached" in html  # at risk: unanswered
    assert "#1 " not in text  # solved: not at risk
    rows = html.split("<tr>")
    monday = next(r for r in rows if ">mon<" in r)
    assert monday.count("<td align=\"center\"") == 24


def test_after_downtime_the_missed_week_goes_once(desk: Desk) -> None:
    desk.clock.now = datetime(2026, 3, 13, 7, tzinfo=UTC)  # Friday: Monday's run was missed
    assert job(desk).run_once() == ["frontline"]
    [digest] = desk.outbox_mails("digest")
    assert "2026-03-02 to 2026-03-08" in str(digest["Subject"])
    desk.clock.now = datetime(2026, 3, 16, 6, 59, tzinfo=UTC)  # 07:59 Berlin: not yet
    assert job(desk).run_once() == []
