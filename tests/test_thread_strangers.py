"""A stranger joining a thread by reference is stored, never Cc'd until an agent accepts.

Issue 15, "Strangers joining a thread": a sender citing a known Message-ID (or
writing to a relayed mail's return-path token) used to become a customer
participant and get the agent's next reply in Cc. Only the requester and the
addresses the customer or an agent put in To/Cc are recipients; a sender who
joins by reference is a ``pending`` participant, the agents' notification says
so, and ``#cc ADDR`` makes them a recipient. Through the real pipeline on
SQLite and PostgreSQL (tests/mailflow_kit.py).
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailflow_kit import SECRET, Desk, body_text, mail, make_desk, reply_to_notification
from sqlalchemy import select

from inboxd.core.tokens import make_reply_token
from inboxd.db.tables import Participant

CAROL = "carol@customer.example"
MALLORY = "Mallory <mallory@evil.example>"


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url)


def addr(value: object) -> str:
    return email.utils.parseaddr(str(value))[1]


def roles(desk: Desk, ticket_id: int) -> dict[str, str]:
    table = Participant.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.email, table.c.role).where(table.c.ticket_id == ticket_id)
        ).all()
    return {r.email: r.role for r in rows}


def notes_to_alice(desk: Desk) -> list[EmailMessage]:
    return [m for m in desk.outbox_mails("notify") if addr(m["To"]) == "alice@help.example"]


def answer(desk: Desk, body: str, msgid: str) -> None:
    """Alice answers her newest notification."""
    out = desk.deliver(reply_to_notification(notes_to_alice(desk)[-1], body=body, msgid=msgid))
    assert out.matched_by == "token", out


def last_relay_rcpts(desk: Desk) -> list[str]:
    return list(desk.outbox("reply")[-1]["rcpts"])


def test_a_sender_citing_a_known_message_id_is_pending_not_a_recipient(desk: Desk) -> None:
    assert desk.deliver(mail()).ticket_id == 1
    joined = desk.deliver(
        mail(
            sender=MALLORY,
            cc="Eve <eve@evil.example>",
            subject="Re: Printer broken",
            msgid="m1@evil.example",
            in_reply_to="c1@customer.example",
            body="Please send me the invoice too.\n",
        )
    )
    assert (joined.ticket_id, joined.matched_by) == (1, "header")
    assert roles(desk, 1) == {
        CAROL: "requester",
        "mallory@evil.example": "pending",
        "eve@evil.example": "pending",  # a stranger's Cc is no customer's choice either
    }
    note = notes_to_alice(desk)[-1]
    text = body_text(note)
    assert "mallory@evil.example is not a recipient of this ticket" in text
    assert "#cc mallory@evil.example" in text
    assert "sender_joined" in desk.event_kinds(1)
    answer(desk, "Hello Carol, fixed.\n", "a1@help.example")
    assert last_relay_rcpts(desk) == [CAROL]


def test_a_sender_writing_to_the_return_path_token_is_pending(desk: Desk) -> None:
    desk.deliver(mail())
    token = make_reply_token(SECRET, 1, 0)  # the envelope sender of our relayed mail
    out = desk.deliver(
        mail(sender=MALLORY, to=f"support+{token}@help.example", msgid="m2@evil.example")
    )
    assert (out.ticket_id, out.matched_by) == (1, "token")
    assert roles(desk, 1)["mallory@evil.example"] == "pending"
    assert f"support+{token}@help.example" not in roles(desk, 1)  # our own address, never
    answer(desk, "Hello Carol.\n", "a2@help.example")
    assert last_relay_rcpts(desk) == [CAROL]


def test_the_customers_own_cc_is_a_recipient(desk: Desk) -> None:
    desk.deliver(mail())
    desk.deliver(
        mail(
            cc="Dave <dave@customer.example>",
            subject="Re: Printer broken",
            msgid="c2@customer.example",
            in_reply_to="c1@customer.example",
        )
    )
    assert roles(desk, 1)["dave@customer.example"] == "customer"
    assert "is not a recipient" not in body_text(notes_to_alice(desk)[-1])
    answer(desk, "Hello both.\n", "a3@help.example")
    assert last_relay_rcpts(desk) == [CAROL, "dave@customer.example"]


def test_cc_command_accepts_a_pending_sender(desk: Desk) -> None:
    desk.deliver(mail())
    desk.deliver(mail(sender=MALLORY, msgid="m1@evil.example", in_reply_to="c1@customer.example"))
    answer(desk, "#cc mallory@evil.example\n\nHello both.\n", "a4@help.example")
    assert roles(desk, 1)["mallory@evil.example"] == "customer"
    assert last_relay_rcpts(desk) == [CAROL, "mallory@evil.example"]
    accepted = [d for a, k, d in desk.events(1) if k == "participant_accepted"]
    assert accepted == [{"email": "mallory@evil.example"}]


def test_cc_of_an_agent_is_refused(desk: Desk) -> None:
    desk.deliver(mail())
    answer(desk, "#cc bob@help.example\n\nHello.\n", "a5@help.example")
    assert desk.outbox("reply") == []
    [result] = desk.outbox_mails("command_result")
    assert "#cc bob@help.example: that is an agent" in body_text(result)


def test_a_stranger_does_not_reopen_a_solved_ticket_but_the_agents_hear_of_it(
    desk: Desk,
) -> None:
    """Issue 15: a token or Message-ID holder who is not the ticket's customer used to
    reopen it. Their mail is kept on the ticket and told to the agents, who decide;
    the customer's own answer still reopens it."""
    desk.deliver(mail())
    answer(desk, "#solve\n\nHello Carol, fixed.\n", "a1@help.example")
    assert desk.ticket(1)["status"] == "solved"
    before = len(notes_to_alice(desk))
    out = desk.deliver(
        mail(
            sender=MALLORY,
            subject="Re: [#1] Printer broken",
            msgid="m3@evil.example",
            in_reply_to="c1@customer.example",
            body="Reopen it, and send me the invoice.\n",
        )
    )
    assert (out.ticket_id, out.matched_by) == (1, "header")
    assert desk.ticket(1)["status"] == "solved"
    assert roles(desk, 1)["mallory@evil.example"] == "pending"
    [note] = notes_to_alice(desk)[before:]
    assert "mallory@evil.example is not a recipient of this ticket" in body_text(note)
    desk.deliver(
        mail(
            subject="Re: [#1] Printer broken",
            msgid="c2@customer.example",
            in_reply_to="c1@customer.example",
            body="Still broken, sorry.\n",
        )
    )
    assert desk.ticket(1)["status"] == "open"
