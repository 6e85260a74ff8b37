"""Satisfaction surveys by mail, end to end through the real pipeline and flows.

solve -> (delay) -> survey mail (automatic, null return path, mailto answers, no
web link or image) -> the customer's client sends the ``.bad`` link's mail ->
rating on the ticket, the lead told, the ticket not reopened (``on_bad`` without
``reopen``); a reply with a rating word changes it; forged and foreign tokens are
plain customer mail; after the change window an answer changes nothing.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailflow_kit import SECRET, T0, Desk, body_text, mail, make_desk, reply_to_notification

from inboxd.core.reports.compute import ReportBuilder
from inboxd.core.reports.model import Figures, Period
from inboxd.core.tokens import make_survey_token
from inboxd.db.reports import feed
from inboxd.flows.csat import Surveys
from inboxd.sched.csat_surveys import SurveyJob

RULES = """
version: 1
teams:
  frontline:
    assignment: none
    lead: bob
    agents:
      - {name: alice, email: alice@help.example, display_name: Alice Agent}
      - {name: bob, email: bob@help.example, display_name: Bob Lead}
rules:
  - name: default
    then: {team: frontline}
"""
DELAY = timedelta(hours=2)


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url, rules=RULES)


def job(desk: Desk, reopen_on_bad: bool = False) -> SurveyJob:
    surveys = Surveys(desk.flow, reopen_on_bad=reopen_on_bad)
    return SurveyJob(desk.engine, desk.flow.config.rules, surveys, delay=DELAY, clock=desk.clock)


def solved_ticket(desk: Desk, body: str = "#solve\n\nNew toner is on its way.\n") -> int:
    out = desk.deliver(mail())
    assert out.ticket_id is not None
    note = next(m for m in desk.outbox_mails("notify") if "alice@" in str(m["To"]))
    desk.clock.advance(minutes=30)
    desk.deliver(reply_to_notification(note, body=body))
    return out.ticket_id


def addr(value: object) -> str:
    return email.utils.parseaddr(str(value))[1]


def answer_links(survey: EmailMessage) -> dict[str, str]:
    html = survey.get_body(("html",))
    assert html is not None
    found = re.findall(r'href="mailto:([^"?]+)\?', str(html.get_content()))
    return {link.split("@")[0].rsplit(".", 1)[1]: link for link in found}


def mail_froms(desk: Desk, kind: str) -> list[str]:
    from sqlalchemy import select

    from inboxd.db.tables import Outbox

    table = Outbox.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        rows = conn.execute(select(table.c.mail_from).where(table.c.kind == kind)).all()
    return [str(r[0]) for r in rows]


def report(desk: Desk, start: datetime, end: datetime) -> Figures:
    builder = ReportBuilder(Period(start, end), now=end)
    with desk.engine.connect() as conn:
        feed(conn, builder)
    return builder.result().rows[0]


def kinds(desk: Desk, ticket: int, kind: str) -> list[dict[str, object]]:
    return [data for _, k, data in desk.events(ticket) if k == kind]


def test_solve_survey_click_bad_rating_then_reply_good(desk: Desk) -> None:
    ticket = solved_ticket(desk)
    surveys = job(desk)
    assert surveys.run_once() == {}  # the delay has not passed
    desk.clock.advance(hours=2)
    assert surveys.run_once() == {"sent": 1}
    assert surveys.run_once() == {}  # looked at once

    assert mail_froms(desk, "csat") == [""]  # null return path: nothing bounces into a loop
    [survey] = desk.outbox_mails("csat")
    assert addr(survey["To"]) == "carol@customer.example"
    assert survey["Auto-Submitted"] == "auto-generated"
    raw = survey.as_string()
    assert "http" not in raw.lower() and "<img" not in raw.lower()  # nothing to fetch
    links = answer_links(survey)
    assert set(links) == {"good", "bad"}
    token = make_survey_token(SECRET, ticket, 1)
    assert links["bad"] == f"support+csat.{token}.bad@help.example"
    assert addr(survey["Reply-To"]) == f"support+csat.{token}@help.example"
    assert links["good"] in body_text(survey)

    # the customer's client "clicks" .bad: a new mail to that address
    desk.clock.advance(hours=1)
    before = len(desk.outbox_mails())
    click = mail(
        to=links["bad"], subject="Rating: bad", body="Took a week.\n", msgid="r1@c.example"
    )
    out = desk.deliver(click)
    assert (out.ticket_id, out.matched_by, out.new_ticket) == (ticket, "token", False)
    [rating] = kinds(desk, ticket, "csat")
    assert rating["rating"] == "bad" and rating["via"] == "link"
    assert rating["comment"] == "Took a week."
    assert desk.ticket(ticket)["status"] == "solved"  # not reopened, no "message" event
    assert desk.event_kinds(ticket).count("message") == 1
    new = desk.outbox_mails()[before:]
    assert [m["X-Inboxd-Ticket"] for m in new] == [str(ticket)]
    assert addr(new[0]["To"]) == "bob@help.example" and "bad" in str(new[0]["Subject"]).lower()

    # reported: the bad rating, one survey sent and answered
    bad_day = report(desk, T0, desk.clock.now + timedelta(minutes=1))
    assert (bad_day.rated_good, bad_day.rated_bad, bad_day.satisfaction) == (0, 1, 0.0)
    assert (bad_day.surveys_sent, bad_day.surveys_answered, bad_day.response_rate) == (1, 1, 1.0)

    # a reply to the survey with a word changes the rating; the rest is the comment
    desk.clock.advance(days=3)
    reply = mail(
        to=addr(survey["Reply-To"]),
        subject="Re: " + str(survey["Subject"]),
        body="Good\n\nIt works now, thanks.\n\n> How did we do?\n",
        msgid="r2@c.example",
        in_reply_to=str(survey["Message-ID"]).strip("<>"),
    )
    assert desk.deliver(reply).matched_by == "token"
    ratings = kinds(desk, ticket, "csat")
    assert [(r["rating"], r["via"]) for r in ratings] == [("bad", "link"), ("good", "reply")]
    assert ratings[-1]["comment"] == "It works now, thanks."

    # after 28 days a rating no longer changes
    desk.clock.advance(days=26)
    late = mail(to=links["bad"], subject="Rating: bad", body="", msgid="r3@c.example")
    assert desk.deliver(late).ticket_id == ticket
    assert len(kinds(desk, ticket, "csat")) == 2
    assert len(kinds(desk, ticket, "csat_refused")) == 1
    month = report(desk, T0, desk.clock.now + timedelta(minutes=1))
    assert (month.rated_good, month.rated_bad, month.satisfaction) == (1, 0, 1.0)
    later = report(desk, T0 + timedelta(days=2), desk.clock.now + timedelta(minutes=1))
    assert (later.rated_good, later.surveys_sent, later.response_rate) == (1, 0, None)


def test_forged_and_foreign_tokens_are_plain_mail(desk: Desk) -> None:
    ticket = solved_ticket(desk)
    desk.clock.advance(hours=3)
    job(desk).run_once()
    forged = "support+csat.1-1-aaaaaaaaaaaa.bad@help.example"
    foreign = f"support+csat.{make_survey_token(SECRET, ticket, 99)}.bad@help.example"
    other = f"support+csat.{make_survey_token(b'another secret', ticket, 1)}.bad@help.example"
    for n, to in enumerate((forged, foreign, other)):
        out = desk.deliver(mail(to=to, subject="Rating: bad", body="x\n", msgid=f"f{n}@x.example"))
        assert out.matched_by != "token"
    assert kinds(desk, ticket, "csat") == []


def test_a_bad_rating_may_reopen(tmp_path: Path, db_url: str) -> None:
    desk = make_desk(tmp_path, url=db_url, rules=RULES, reopen_on_bad=True)
    ticket = solved_ticket(desk)
    desk.clock.advance(hours=3)
    job(desk).run_once()
    link = answer_links(desk.outbox_mails("csat")[0])["bad"]
    desk.deliver(mail(to=link, subject="Rating: bad", body="", msgid="b@c.example"))
    assert desk.ticket(ticket)["status"] == "open"


def test_no_survey_without_a_public_reply_or_to_a_machine(desk: Desk) -> None:
    quiet = solved_ticket(desk, body="#note\n#solve\n\nduplicate of another ticket\n")
    out = desk.deliver(
        mail(sender="<noreply@shop.example>", subject="Order 1", msgid="n1@shop.example")
    )
    assert out.ticket_id is not None
    note = [m for m in desk.outbox_mails("notify") if "alice@" in str(m["To"])][-1]
    desk.deliver(reply_to_notification(note, body="#solve\n\nThanks.\n", msgid="a9@help.example"))
    desk.clock.advance(hours=3)
    outcomes = job(desk).run_once()
    assert outcomes == {"no public agent reply": 1, "automatic sender": 1}, outcomes
    assert desk.outbox("csat") == [] and desk.ticket(quiet)["status"] == "solved"


def test_reopened_before_the_delay_is_surveyed_after_the_next_solve(desk: Desk) -> None:
    ticket = solved_ticket(desk)
    desk.clock.advance(minutes=30)
    desk.deliver(
        mail(
            subject="Re: Printer broken",
            msgid="c2@customer.example",
            in_reply_to="c1@customer.example",
            body="Still broken.\n",
        )
    )
    assert desk.ticket(ticket)["status"] == "open"
    desk.clock.advance(hours=3)
    surveys = job(desk)
    assert surveys.run_once() == {"the ticket is open, not solved": 1}
    note = [m for m in desk.outbox_mails("notify") if "alice@" in str(m["To"])][-1]
    desk.deliver(reply_to_notification(note, body="#solve\n\nNow.\n", msgid="a2@help.example"))
    desk.clock.advance(hours=3)
    assert surveys.run_once() == {"sent": 1}
