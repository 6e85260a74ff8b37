"""End to end: Dovecot holds the support mailbox, aiosmtpd is the outgoing relay.

customer mail -> IMAP fetch -> ticket -> acknowledgement (captured, headers checked)
-> notification to the agents -> the agent replies with ``#assign bob`` and text
(delivered into the support mailbox, as the MTA would for support+TOKEN@) ->
the customer receives the text threaded under their own Message-ID, bob is the
assignee, and neither the command nor an internal note ever reaches the customer.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailflow_kit import SUPPORT, Desk, body_text, mail, make_desk, parse, reply_to_notification
from servers.dovecot import DovecotServer
from servers.smtp import Captured, SmtpServer

from inboxd.config import MailboxConfig
from inboxd.ingest.imap import MailboxFetcher

pytestmark = pytest.mark.server

CUSTOMER = "carol@customer.example"


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    srv = SmtpServer().start()
    yield srv
    srv.stop()


def fetcher(server: DovecotServer, user: str, desk: Desk) -> MailboxFetcher:
    config = MailboxConfig(
        name="support",
        address=SUPPORT,
        imap_host=server.host,
        imap_port=server.port,
        imap_security="none",
        username=user,
        imap_timeout=10.0,
    )
    return MailboxFetcher(config, desk.pipeline, password=user)


def to(captured: Captured, rcpt: str) -> bool:
    return rcpt in captured.rcpt_tos


def test_customer_agent_round_trip(
    dovecot: DovecotServer, imap_user: str, relay: SmtpServer, tmp_path: Path
) -> None:
    desk = make_desk(tmp_path, smtp_port=relay.port)
    box = fetcher(dovecot, imap_user, desk)
    drain = desk.drain()

    # 1. the customer writes; the MTA drops it into the support mailbox
    dovecot.append(imap_user, "INBOX", [mail(msgid="c1@customer.example")])
    assert box.sync_once().fetched == 1
    assert drain.run_once().sent == 3  # ack + notification to alice and bob

    [ack] = [c for c in relay.captured if to(c, CUSTOMER)]
    assert ack.mail_from == "<>"
    ack_msg = parse(ack.data)
    assert ack_msg["In-Reply-To"] == "<c1@customer.example>"
    assert ack_msg["Auto-Submitted"] == "auto-replied"
    assert ack_msg["Subject"] == "Re: [#1] Printer broken"
    assert ack_msg["Thread-Index"] and ack_msg["Thread-Topic"] == "Printer broken"

    [note_alice] = [parse(c.data) for c in relay.captured if to(c, "alice@help.example")]
    assert note_alice["Reply-To"] and "+1-" in str(note_alice["Reply-To"])

    # 2. alice answers from her mail client: a command, then text for the customer;
    #    and an internal note in a second mail
    answer = reply_to_notification(
        note_alice,
        body="#assign bob\n\nHello Carol,\n\nthe technician comes at 2 pm.\n\nAlice",
        msgid="alice-1@help.example",
    )
    internal = reply_to_notification(
        note_alice,
        body="#note\nSECRET: customer owes us money, be careful.",
        msgid="alice-2@help.example",
    )
    dovecot.append(imap_user, "INBOX", [answer, internal])
    assert box.sync_once().fetched == 2
    drain.run_once()

    # 3. the customer got exactly the text, threaded under their own mail
    to_customer = [parse(c.data) for c in relay.captured if to(c, CUSTOMER)]
    assert len(to_customer) == 2  # the ack and the relayed answer
    relayed = to_customer[1]
    assert relayed["In-Reply-To"] == "<c1@customer.example>"
    assert "<c1@customer.example>" in str(relayed["References"])
    assert email.utils.parseaddr(str(relayed["From"])) == ("Alice Agent", SUPPORT)
    text = body_text(relayed)
    assert "the technician comes at 2 pm." in text
    for secret in ("#assign", "#note", "SECRET", "owes us money", "New ticket"):
        for msg in to_customer:
            assert secret not in msg.as_string()

    # 4. the command ran; the note is on the ticket, confirmed to alice only
    ticket = desk.ticket(1)
    assert ticket["assignee"] == "bob"
    assert "note" in desk.event_kinds(1)
    note_acks = [c for c in relay.captured if to(c, "alice@help.example")]
    assert any("Note added" in str(parse(c.data)["Subject"]) for c in note_acks)

    # 5. the customer answers the relayed mail: same ticket, bob is told, no new ack
    customer_reply = mail(
        msgid="c2@customer.example",
        subject=str(relayed["Subject"]),
        in_reply_to=str(relayed["Message-ID"]).strip("<>"),
        references=["c1@customer.example", str(relayed["Message-ID"]).strip("<>")],
        body="Great, thanks!\n",
    )
    dovecot.append(imap_user, "INBOX", [customer_reply])
    box.sync_once()
    drain.run_once()
    assert len([c for c in relay.captured if to(c, CUSTOMER)]) == 2
    bob_mail = [parse(c.data) for c in relay.captured if to(c, "bob@help.example")]
    assert "Customer replied" in str(bob_mail[-1]["Subject"])
    assert desk.ticket(1)["status"] == "open"


def test_spoofed_agent_mail_executes_nothing(
    dovecot: DovecotServer, imap_user: str, relay: SmtpServer, tmp_path: Path
) -> None:
    desk = make_desk(tmp_path, smtp_port=relay.port)
    box = fetcher(dovecot, imap_user, desk)
    drain = desk.drain()
    dovecot.append(imap_user, "INBOX", [mail(msgid="c1@customer.example")])
    box.sync_once()
    drain.run_once()
    note_bob = next(parse(c.data) for c in relay.captured if to(c, "bob@help.example"))

    forged = [
        # From: an agent, no token at all
        mail(
            sender="Alice Agent <alice@help.example>",
            subject="Re: [#1] Printer broken",
            msgid="f1@evil.example",
            in_reply_to="c1@customer.example",
            body="#close\n#assign alice\n\nclosing\n",
        ),
        # From: alice, with bob's (valid) token
        reply_to_notification(
            note_bob,
            sender="Alice Agent <alice@help.example>",
            body="#close\n\nclosing\n",
            msgid="f2@evil.example",
        ),
        # the customer, with a token that is not ours
        mail(
            to="support+1-1-aaaaaaaaaaaa@help.example",
            msgid="f3@customer.example",
            body="#close\n\nthanks\n",
        ),
    ]
    dovecot.append(imap_user, "INBOX", forged)
    assert box.sync_once().fetched == 3
    drain.run_once()
    ticket = desk.ticket(1)
    assert ticket["status"] != "closed"
    assert ticket["assignee"] is None
    assert not any("closing" in c.data.decode() for c in relay.captured if to(c, CUSTOMER))
