"""``#merge`` joins threads, not audiences, and only for agents of both tickets.

Issue 15, "Merge crosses customers and teams": any agent could merge into another
team's ticket, the merged ticket's customers then received the replies meant for
the other customer, and a token of the merged ticket still acted. Defined here:

* who may merge: an agent who may act on both tickets, i.e. for each of them
  its assignee or a member of its team (a ticket without team and assignee:
  any agent);
* recipients stay per original requester: a reply goes to the customers of
  the ticket whose notification the agent answered (its requester and the Cc
  they chose); the merged ticket's customers are kept on the surviving ticket
  as ``pending`` and hear its replies only after an agent's ``#cc``;
* a token of a ticket merged away runs no command and relays nothing; the
  mail is kept as a note on the surviving ticket, an ``agent_token_refused``
  event says why, and the agent is told.
"""

from __future__ import annotations

import email.utils
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailflow_kit import RULES, Desk, body_text, mail, make_desk, reply_to_notification

from inboxd.db import tickets

CAROL = "Carol Customer <carol@customer.example>"
DAVE = "Dave Customer <dave@other.example>"
BILLING_RULES = RULES.replace(
    "  - name: default\n    then: {team: frontline}\n",
    textwrap.dedent(
        """\
          - name: invoices
            when: {subject: [invoice]}
            then: {team: billing}
          - name: default
            when: {not: {subject: [invoice]}}
            then: {team: frontline}
        """
    ),
)


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url, rules=BILLING_RULES)


def addr(value: object) -> str:
    return email.utils.parseaddr(str(value))[1]


def note(desk: Desk, agent: str, ticket_id: int, index: int = -1) -> EmailMessage:
    mails = [
        m
        for m in desk.outbox_mails("notify")
        if addr(m["To"]) == agent and str(m["Subject"]).startswith(f"[#{ticket_id}]")
    ]
    assert mails, f"no notification to {agent} about #{ticket_id}"
    return mails[index]


def open_two(desk: Desk, *, dave_subject: str = "Printer again") -> None:
    assert desk.deliver(mail(sender=CAROL, msgid="c1@customer.example")).ticket_id == 1
    out = desk.deliver(mail(sender=DAVE, msgid="d1@other.example", subject=dave_subject))
    assert out.ticket_id == 2 and out.new_ticket


def result_text(desk: Desk) -> str:
    return body_text(desk.outbox_mails("command_result")[-1])


def test_merge_into_another_teams_ticket_is_refused(desk: Desk) -> None:
    open_two(desk, dave_subject="Invoice wrong")
    assert (desk.ticket(1)["team"], desk.ticket(2)["team"]) == ("frontline", "billing")
    desk.deliver(reply_to_notification(note(desk, "alice@help.example", 1), body="#merge 2\n"))
    assert desk.ticket(1)["merged_into"] is None
    assert "#merge 2: alice may not act on ticket #2" in result_text(desk)


def test_merge_by_an_agent_of_neither_ticket_is_refused(desk: Desk) -> None:
    open_two(desk, dave_subject="Invoice wrong")
    # dana (billing) answers about ticket 2 and tries to pull frontline's ticket 1 in
    desk.deliver(
        reply_to_notification(
            note(desk, "dana@help.example", 2),
            sender="Dana Billing <dana@help.example>",
            body="#merge 1\n",
        )
    )
    assert desk.ticket(2)["merged_into"] is None
    assert "#merge 1: dana may not act on ticket #2" not in result_text(desk)
    assert "#merge 1: dana may not act on ticket #1" in result_text(desk)


def test_replies_stay_with_each_requester_after_a_merge(desk: Desk) -> None:
    open_two(desk)
    desk.deliver(
        reply_to_notification(
            note(desk, "alice@help.example", 1),
            body="#merge 2\n\nHello Carol, we go on in one ticket.\n",
            msgid="a1@help.example",
        )
    )
    assert desk.ticket(1)["merged_into"] == 2
    [to_carol] = desk.outbox("reply")
    assert to_carol["rcpts"] == ["carol@customer.example"]  # the ticket alice answered
    desk.deliver(
        reply_to_notification(
            note(desk, "alice@help.example", 2), body="Hello Dave.\n", msgid="a2@help.example"
        )
    )
    assert desk.outbox("reply")[-1]["rcpts"] == ["dave@other.example"]
    with desk.engine.connect() as conn:
        assert tickets.participant_roles(conn, 2)["carol@customer.example"] == "pending"


def test_a_token_of_a_merged_ticket_executes_nothing(desk: Desk) -> None:
    open_two(desk)
    old = note(desk, "alice@help.example", 1)
    desk.deliver(reply_to_notification(old, body="#merge 2\n", msgid="a1@help.example"))
    before = desk.ticket(2)
    out = desk.deliver(
        reply_to_notification(old, body="#close\n\nHello, all done.\n", msgid="a2@help.example")
    )
    assert out.ticket_id == 2
    assert desk.ticket(2)["status"] == before["status"]
    assert desk.outbox("reply") == []
    refused = [d for _, k, d in desk.events(2) if k == "agent_token_refused"]
    assert [r["reason"] for r in refused] == [
        "ticket #1 was merged into #2: its reply address no longer acts; "
        "answer from a notification of #2"
    ]
    assert "ticket #1 was merged into #2" in result_text(desk)
