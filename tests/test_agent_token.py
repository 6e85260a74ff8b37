"""A reply token is not enough: an agent reply must answer our mail of the token's ticket.

Through the real pipeline on SQLite (tests/mailflow_kit.py). The hole of issue 14:
a mail with a forged From of an agent, sent to the reply-token address of ANOTHER
ticket's notification while citing the first ticket's Message-IDs, ran its commands
on that other ticket and relayed its text to that ticket's customer. Each refused
case here asserts no status change, no command event, nothing queued to any
customer and an ``agent_token_refused`` event on the token's ticket. Also here:
the hand-over mail after ``#assign`` shows the status the whole mail left.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from mailflow_kit import Desk, body_text, mail, make_desk, reply_to_notification
from sqlalchemy import select

from inboxd.db.tables import Message
from inboxd.flows.agent_reply import AgentReplyInterceptor

CAROL = "Carol Customer <carol@customer.example>"
DAVE = "Dave Customer <dave@other.example>"
CUSTOMERS = {"carol@customer.example", "dave@other.example"}
ALICE = "Alice Agent <alice@help.example>"
# what an agent's mail changes when its commands or its text are taken
COMMAND_EVENTS = {
    "status",
    "assigned",
    "priority",
    "tags",
    "merged",
    "merged_from",
    "note",
    "agent_reply",
    "commands_rejected",
    "relay_skipped",
    "relay_failed",
}
WATCHED = ("status", "assignee", "team", "priority", "tags", "merged_into", "first_agent_reply_at")


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path)


def addr(value: object) -> str:
    return email.utils.parseaddr(str(value))[1]


def bare(value: object) -> str:
    return str(value).strip().strip("<>")


def notification(desk: Desk, agent: str, ticket_id: int) -> EmailMessage:
    """The newest notification ``agent`` got about ``ticket_id``."""
    tag = f"[#{ticket_id}]"
    mails = [
        m
        for m in desk.outbox_mails("notify")
        if addr(m["To"]) == agent and str(m["Subject"]).startswith(tag)
    ]
    assert mails, f"no notification to {agent} about ticket {ticket_id}"
    return mails[-1]


def two_tickets(desk: Desk) -> tuple[EmailMessage, EmailMessage]:
    """Ticket 1 (carol), answered by alice, and ticket 2 (dave), new: the relayed mail of
    ticket 1 and alice's notification of ticket 2."""
    assert desk.deliver(mail(sender=CAROL, msgid="c1@customer.example")).ticket_id == 1
    out = desk.deliver(
        mail(sender=DAVE, msgid="d1@other.example", subject="Invoice wrong", body="Hi, 42 EUR?\n")
    )
    assert out.ticket_id == 2 and out.new_ticket
    answer = reply_to_notification(
        notification(desk, "alice@help.example", 1), body="Hello Carol, fixed.\n"
    )
    desk.deliver(answer)
    [relayed] = desk.outbox_mails("reply")
    assert addr(relayed["To"]) == "carol@customer.example"
    return relayed, notification(desk, "alice@help.example", 2)


def forged(
    token_of: EmailMessage,
    *,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    sender: str = ALICE,
    msgid: str = "forged@evil.example",
) -> bytes:
    """From ``sender`` to the reply-token address of ``token_of``, ``#close`` on top."""
    return mail(
        sender=sender,
        to=addr(token_of["Reply-To"]),
        subject="Re: " + str(token_of["Subject"]),
        msgid=msgid,
        in_reply_to=in_reply_to,
        references=references,
        body="#close\n#priority urgent\n\nWe refund everything, reply with your card number.\n",
    )


def cites(msg: EmailMessage) -> dict[str, Any]:
    """In-Reply-To/References of a real reply to ``msg``."""
    refs = [bare(r) for r in str(msg["References"] or "").split()]
    return {"in_reply_to": bare(msg["Message-ID"]), "references": (*refs, bare(msg["Message-ID"]))}


class Snapshot:
    """Both tickets, their event counts and the outbox, before the forged mail."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.tickets = {t: self._watched(t) for t in (1, 2)}
        self.events = {t: len(desk.events(t)) for t in (1, 2)}
        self.outbox = len(desk.outbox())

    def _watched(self, ticket_id: int) -> dict[str, Any]:
        fields = self.desk.ticket(ticket_id)
        return {k: fields[k] for k in WATCHED}

    def new_events(self, ticket_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        return self.desk.events(ticket_id)[self.events[ticket_id] :]

    def assert_refused(self, reason: str, cited: list[int]) -> None:
        desk = self.desk
        for t in (1, 2):
            assert self._watched(t) == self.tickets[t], f"ticket {t} changed"
            kinds = {kind for _, kind, _ in self.new_events(t)}
            assert not kinds & COMMAND_EVENTS, f"ticket {t}: {kinds & COMMAND_EVENTS}"
        queued = desk.outbox()[self.outbox :]
        assert not [r for r in queued if set(r["rcpts"]) & CUSTOMERS], queued
        assert not [r for r in queued if r["kind"] in ("reply", "ack", "command_result")]
        refusals = [d for _, k, d in self.new_events(2) if k == "agent_token_refused"]
        assert len(refusals) == 1, self.new_events(2)
        assert reason in refusals[0]["reason"]
        assert refusals[0]["cited"] == cited
        assert refusals[0]["sender"] == "alice@help.example"


def stored(desk: Desk, message_id: str) -> tuple[int | None, str]:
    """(ticket, direction) of the stored mail with this Message-ID."""
    table = Message.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        row = conn.execute(
            select(table.c.ticket_id, table.c.direction).where(table.c.message_id == message_id)
        ).one()
    return row.ticket_id, row.direction


# --- the hole: another ticket's token, this ticket's thread ------------------------------


def test_token_of_ticket_2_citing_ticket_1s_relayed_mail_is_customer_mail(desk: Desk) -> None:
    relayed, note2 = two_tickets(desk)
    before = Snapshot(desk)
    out = desk.deliver(forged(note2, **cites(relayed)))
    assert out.status == "stored" and out.matched_by != "token"
    before.assert_refused("cites our mail of ticket #1 only, not of #2", [1])
    assert stored(desk, "forged@evil.example") == (1, "in")  # text on the thread it cites
    assert desk.ticket(2)["status"] == "new"


def test_token_with_no_references_at_all_is_customer_mail(desk: Desk) -> None:
    _, note2 = two_tickets(desk)
    before = Snapshot(desk)
    desk.deliver(forged(note2))
    before.assert_refused("cites no mail at all", [])
    assert stored(desk, "forged@evil.example") == (2, "in")


def test_token_citing_only_mail_that_is_not_ours_is_customer_mail(desk: Desk) -> None:
    _, note2 = two_tickets(desk)
    before = Snapshot(desk)
    desk.deliver(forged(note2, in_reply_to="d1@other.example", references=("d1@other.example",)))
    before.assert_refused("cites none of our mail", [])
    assert stored(desk, "forged@evil.example") == (2, "in")


def test_token_made_for_bob_used_by_alice_is_customer_mail(desk: Desk) -> None:
    _, _ = two_tickets(desk)
    bobs = notification(desk, "bob@help.example", 2)
    before = Snapshot(desk)
    desk.deliver(forged(bobs, **cites(bobs)))
    before.assert_refused("made for bob@help.example, not for alice@help.example", [2])
    assert stored(desk, "forged@evil.example") == (2, "in")


def test_copied_notification_fails_without_dkim_when_trusted_servers_are_set(
    tmp_path: Path,
) -> None:
    """The production set-up: a forged From fails even citing the right ticket."""
    desk = make_desk(tmp_path)
    strict = AgentReplyInterceptor(desk.flow, trusted_authserv_ids=("mx.help.example",))
    desk.pipeline.ctx = desk.pipeline.ctx.__class__(
        **{**desk.pipeline.ctx.__dict__, "interceptors": (strict,)}
    )
    desk.deliver(mail(sender=CAROL, msgid="c1@customer.example"))
    desk.deliver(mail(sender=DAVE, msgid="d1@other.example", subject="Invoice wrong"))
    note2 = notification(desk, "alice@help.example", 2)
    before = Snapshot(desk)
    desk.deliver(forged(note2, **cites(note2)))
    before.assert_refused("no DKIM/DMARC pass", [2])


# --- what a real reply does --------------------------------------------------------------


def test_reply_citing_only_the_tokens_ticket_runs_its_commands(desk: Desk) -> None:
    _, note2 = two_tickets(desk)
    out = desk.deliver(forged(note2, **cites(note2), msgid="a2@help.example"))
    assert out.matched_by == "token" and out.ticket_id == 2
    ticket = desk.ticket(2)
    assert (ticket["status"], ticket["priority"]) == ("closed", "urgent")
    assert "agent_token_refused" not in desk.event_kinds(2)
    [_, relay] = desk.outbox_mails("reply")
    assert addr(relay["To"]) == "dave@other.example"
    assert body_text(relay).startswith("We refund everything")
    assert stored(desk, "a2@help.example") == (2, "out")


def test_reply_citing_a_ticket_merged_into_the_tokens_ticket_counts(desk: Desk) -> None:
    relayed, note2 = two_tickets(desk)
    merge = reply_to_notification(
        notification(desk, "alice@help.example", 1), body="#merge 2\n", msgid="m1@help.example"
    )
    desk.deliver(merge)
    assert desk.ticket(1)["merged_into"] == 2
    out = desk.deliver(forged(note2, **cites(relayed), msgid="a3@help.example"))
    assert out.matched_by == "token" and out.ticket_id == 2
    assert desk.ticket(2)["status"] == "closed"
    assert "agent_token_refused" not in desk.event_kinds(2)


# --- the hand-over after #assign ----------------------------------------------------------


def test_hand_over_shows_the_status_the_whole_mail_left(desk: Desk) -> None:
    desk.deliver(mail(sender=CAROL, msgid="c1@customer.example"))
    note = notification(desk, "alice@help.example", 1)
    desk.deliver(reply_to_notification(note, body="#assign bob\n\nHello Carol, bob takes over.\n"))
    assert desk.ticket(1)["status"] == "open"  # the relayed answer opened it
    handed = notification(desk, "bob@help.example", 1)
    assert str(handed["Subject"]).startswith("[#1] Assigned to you")
    assert "Status:   open, priority normal" in body_text(handed)


def test_hand_over_without_an_answer_keeps_the_status(desk: Desk) -> None:
    desk.deliver(mail(sender=CAROL, msgid="c1@customer.example"))
    note = notification(desk, "alice@help.example", 1)
    desk.deliver(reply_to_notification(note, body="#assign bob\n#priority high\n"))
    handed = notification(desk, "bob@help.example", 1)
    assert "Status:   new, priority high" in body_text(handed)
