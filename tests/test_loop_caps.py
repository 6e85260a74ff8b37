"""Hostile and broken senders against the real pipeline, outbox and an SMTP server:
naive autoresponders (issue 14), reflection through Reply-To and ticket floods
(issue 15). Every loop is bounded in rounds and in time; counts, not timings."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailflow_kit import Desk, mail, make_desk
from servers.smtp import Captured, SmtpServer
from sqlalchemy import func, select

from inboxd.config import ConfigError, parse_settings
from inboxd.core.loops import HourlyCaps, held_subject
from inboxd.daemon.wiring import hourly_caps
from inboxd.db import slack_queries as sq
from inboxd.db.tables import Message, Ticket
from inboxd.flows.notify import AckNotifyReactor
from inboxd.flows.slack_notices import CapAlerts
from inboxd.ingest.pipeline import Pipeline
from inboxd.ingest.sink import FetchedMail

DEFAULTS = HourlyCaps()  # what [helpdesk] gives when it names no cap
MAX_ROUNDS = 80
DEADLINE_S = 90.0


def capped(desk: Desk, caps: HourlyCaps = DEFAULTS, *, ops: str | None = None) -> Desk:
    """The desk wired as the daemon wires it: caps on the acks and the new tickets."""
    on_cap = CapAlerts(ops) if ops else None
    reactor = AckNotifyReactor(desk.flow, caps=caps, on_cap=on_cap)
    ctx = dataclasses.replace(desk.pipeline.ctx, caps=caps, on_cap=on_cap, reactors=(reactor,))
    desk.pipeline = Pipeline(desk.engine, ctx)
    return desk


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def count(desk: Desk, table: type[Ticket] | type[Message]) -> int:
    with desk.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def cap_events(desk: Desk, ticket_id: int) -> list[dict[str, object]]:
    return [data for _, kind, data in desk.events(ticket_id) if kind == "cap_tripped"]


class NaiveResponder:
    """An autoresponder that marks nothing: no Auto-Submitted, no Precedence, no
    References, a fresh subject and a new From address for every mail it answers."""

    def __init__(self, domain: str = "responder.example", *, new_domain: bool = False) -> None:
        self.domain = domain
        self.new_domain = new_domain
        self.sent = 0
        self.received = 0

    def _address(self) -> str:
        if self.new_domain:
            return f"desk@r{self.sent}.{self.domain}"
        return f"bot{self.sent}@{self.domain}"

    def write(self) -> bytes:
        self.sent += 1
        return mail(
            sender=f"Auto Desk <{self._address()}>",
            subject=f"Request {self.sent} received, reference {self.sent * 7919:08d}",
            body=f"Thank you for your mail. Your reference is {self.sent * 7919:08d}.\n",
            msgid=f"auto{self.sent}@{self.domain}",
        )

    def answer(self, captured: list[Captured]) -> list[bytes]:
        """One fresh mail for every mail that reached one of its addresses."""
        mine = [c for c in captured if any(r.endswith(self.domain) for r in c.rcpt_tos)]
        self.received += len(mine)
        return [self.write() for _ in mine]


def duel(desk: Desk, relay: SmtpServer, responder: NaiveResponder) -> int:
    """Run the exchange until nobody has anything to send; returns the rounds it took."""
    drain = desk.drain()
    started = time.monotonic()
    with relay.lock:
        seen = len(relay.captured)  # an earlier duel's mail is not this responder's business
    desk.deliver(responder.write())
    for rounds in range(1, MAX_ROUNDS + 1):
        assert time.monotonic() - started < DEADLINE_S, "the duel ran out of time"
        drain.run_once()
        with relay.lock:
            new = relay.captured[seen:]
            seen = len(relay.captured)
        replies = responder.answer(new)
        if not replies:
            return rounds
        for raw in replies:
            assert desk.deliver(raw).status == "stored"
        desk.clock.advance(seconds=10)
    return MAX_ROUNDS + 1


def test_naive_autoresponder_duel_stops_at_the_domain_ack_cap(
    tmp_path: Path, relay: SmtpServer
) -> None:
    desk = capped(make_desk(tmp_path, smtp_port=relay.port))
    responder = NaiveResponder()
    rounds = duel(desk, relay, responder)
    acks = [c for c in relay.captured if c.rcpt_tos[0].endswith("@responder.example")]
    notices = [c for c in relay.captured if c.rcpt_tos[0].endswith("@help.example")]
    assert rounds <= MAX_ROUNDS, "the exchange did not stop"
    assert len(acks) == DEFAULTS.ack_per_domain  # each answered once, then the cap
    assert responder.received == len(acks)
    assert responder.sent == len(acks) + 1  # its first mail, then one answer per ack
    assert count(desk, Ticket) == responder.sent  # the ack cap ends it, not a ticket cap
    assert count(desk, Message) == responder.sent  # nothing lost
    assert len(notices) == 2 * responder.sent  # alice and bob, one per new ticket
    last = count(desk, Ticket)
    assert cap_events(desk, last) == [
        {
            "cap": "ack_per_domain_per_hour",
            "key": "responder.example",
            "count": DEFAULTS.ack_per_domain,
            "limit": DEFAULTS.ack_per_domain,
            "action": "ack_skipped",
            "message_id": f"auto{responder.sent}@responder.example",
        }
    ]


def test_responder_from_a_new_domain_each_time_stops_at_the_global_cap(
    tmp_path: Path, relay: SmtpServer
) -> None:
    caps = HourlyCaps(ack_global=12)
    desk = capped(make_desk(tmp_path, smtp_port=relay.port), caps)
    responder = NaiveResponder(new_domain=True)
    rounds = duel(desk, relay, responder)
    acks = [c for c in relay.captured if not c.rcpt_tos[0].endswith("@help.example")]
    assert rounds <= MAX_ROUNDS
    assert len(acks) == caps.ack_global
    assert responder.sent == caps.ack_global + 1
    assert count(desk, Message) == responder.sent
    assert cap_events(desk, count(desk, Ticket))[0]["cap"] == "ack_per_hour"


def test_the_caps_count_the_last_hour_only(tmp_path: Path, relay: SmtpServer) -> None:
    caps = HourlyCaps(ack_per_domain=3)
    desk = capped(make_desk(tmp_path, smtp_port=relay.port), caps)
    first = NaiveResponder()
    duel(desk, relay, first)
    assert len(desk.outbox("ack")) == 3
    desk.clock.advance(minutes=61)
    second = NaiveResponder()
    second.sent = 100  # new addresses and Message-IDs, same domain
    duel(desk, relay, second)
    assert len(desk.outbox("ack")) == 6


# --- reflection: the ack goes to Reply-To, the subject is the attacker's -------------------


SPAM = "CHEAP PILLS at pills.example"


def reflected(n: int, *, sender: str = "Mallory <mallory@attacker.example>") -> bytes:
    return mail(
        sender=sender,
        subject=f"{SPAM} {n}",
        msgid=f"spam{n}@attacker.example",
        headers=[("Reply-To", f"Victim {SPAM} <victim{n}@victims{n % 7}.example>")],
    )


def test_acks_to_reply_to_never_carry_the_subject_or_name_and_stay_capped(
    tmp_path: Path,
) -> None:
    desk = capped(make_desk(tmp_path))
    for n in range(100):
        assert desk.deliver(reflected(n)).status == "stored"
    acks = desk.outbox_mails("ack")
    # one sender: its new-ticket cap ends the tickets, and with them the acks
    assert len(acks) == DEFAULTS.tickets_per_sender
    for ack in acks:
        assert SPAM not in str(ack["Subject"]), ack["Subject"]
        assert SPAM not in str(ack["To"]) and "Victim" not in str(ack["To"])
        assert SPAM not in str(ack.get("Thread-Topic", ""))
        assert SPAM not in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert count(desk, Message) == 100


def test_many_senders_reflecting_to_one_domain_are_capped_by_domain(tmp_path: Path) -> None:
    desk = capped(make_desk(tmp_path))
    for n in range(DEFAULTS.ack_per_domain + 10):
        raw = mail(
            sender=f"Mallory {n} <m{n}@attacker{n}.example>",
            subject=f"{SPAM} {n}",
            msgid=f"spam{n}@attacker.example",
            headers=[("Reply-To", f"victim{n}@victims.example")],
        )
        desk.deliver(raw)
    acks = desk.outbox_mails("ack")
    assert len(acks) == DEFAULTS.ack_per_domain
    assert all(SPAM not in str(a["Subject"]) for a in acks)


@pytest.mark.parametrize(
    ("return_path", "quoted"),
    [
        ("<carol@customer.example>", True),  # the envelope sender is the recipient
        ("", True),  # LMTP: no Return-Path, From stands in
        ("<bounces@mallory.example>", False),  # a forged From: not the envelope sender
    ],
)
def test_only_an_ack_to_the_envelope_sender_quotes_the_subject(
    tmp_path: Path, return_path: str, quoted: bool
) -> None:
    desk = capped(make_desk(tmp_path))
    headers = [("Return-Path", return_path)] if return_path else []
    desk.deliver(mail(subject="Printer on floor 3", headers=headers))
    (ack,) = desk.outbox_mails("ack")
    assert ("Printer on floor 3" in str(ack["Subject"])) is quoted
    assert ("Carol Customer" in str(ack["To"])) is quoted
    assert "carol@customer.example" in str(ack["To"])


# --- floods of new tickets ---------------------------------------------------------------


def test_one_sender_over_the_ticket_cap_joins_its_newest_open_ticket(tmp_path: Path) -> None:
    caps = HourlyCaps(tickets_per_sender=4)
    desk = capped(make_desk(tmp_path), caps)
    outcomes = [
        desk.deliver(mail(subject=f"Question {n}", msgid=f"q{n}@customer.example"))
        for n in range(7)
    ]
    assert [o.new_ticket for o in outcomes] == [True] * 4 + [False] * 3
    assert {o.ticket_id for o in outcomes[4:]} == {4}
    assert [o.matched_by for o in outcomes[4:]] == ["group"] * 3
    assert count(desk, Message) == 7
    # the 4th ticket already met the per-recipient ack cap (3); then the ticket cap
    assert [e["action"] for e in cap_events(desk, 4)] == ["ack_skipped"] + ["joined"] * 3
    assert len(desk.outbox("ack")) == 3


def test_a_flood_in_one_imap_batch_meets_the_caps_as_mail_one_by_one(tmp_path: Path) -> None:
    """The batch reads its senders' ticket counts and its recipients' ack counts once
    (``db.recent``) and counts its own tickets and acks on top: the same tickets,
    joins and acks as the mail delivered one by one above, earlier hours included."""
    caps = HourlyCaps(tickets_per_sender=4)
    desk = capped(make_desk(tmp_path), caps)
    earlier = desk.deliver(mail(subject="Question before", msgid="q-before@customer.example"))
    assert earlier.new_ticket
    desk.clock.advance(seconds=600)
    raws = [mail(subject=f"Question {n}", msgid=f"q{n}@customer.example") for n in range(7)]
    desk.pipeline.store_batch(
        "support", "INBOX", 1, [FetchedMail(n + 1, raw) for n, raw in enumerate(raws)]
    )
    assert count(desk, Ticket) == 4  # the one before and three of the batch
    assert count(desk, Message) == 8
    assert len(desk.outbox("ack")) == 3  # the per-recipient ack cap, across both
    assert [e["action"] for e in cap_events(desk, 4)] == ["ack_skipped"] + ["joined"] * 4
    assert [cap_events(desk, n) for n in (1, 2, 3)] == [[], [], []]


def test_new_addresses_of_one_domain_over_the_cap_go_to_one_held_ticket(
    tmp_path: Path,
) -> None:
    caps = HourlyCaps(tickets_per_domain=5)
    desk = capped(make_desk(tmp_path), caps, ops="#ops")
    for n in range(25):
        raw = mail(sender=f"s{n}@flood.example", subject=f"Hi {n}", msgid=f"f{n}@flood.example")
        assert desk.deliver(raw).status == "stored"
    assert count(desk, Ticket) == 6  # five, then the held one
    assert count(desk, Message) == 25
    held = desk.ticket(6)
    assert held["subject"] == held_subject("flood.example")
    assert held["requester"] == ""
    assert len(cap_events(desk, 6)) == 20
    assert len(desk.outbox("ack")) == 5  # the held ticket is never acknowledged
    with desk.engine.connect() as conn:
        alerts = sq.list_rows(conn)
    assert [a["channel"] for a in alerts] == ["#ops"]  # one alert for twenty trips
    assert "tickets_per_domain_per_hour" in alerts[0]["text"]
    assert "flood.example" in alerts[0]["text"]


def test_one_alert_per_cap_and_hour(tmp_path: Path) -> None:
    caps = HourlyCaps(tickets_per_domain=1, ack_per_domain=1)
    desk = capped(make_desk(tmp_path), caps, ops="#ops")

    def flood(tag: str) -> None:
        for n in range(3):
            desk.deliver(mail(sender=f"{tag}{n}@flood.example", msgid=f"{tag}{n}@flood.example"))

    flood("a")
    desk.clock.advance(minutes=30)
    flood("b")  # the same clock hour (09:30): no new alert
    desk.clock.advance(minutes=40)
    flood("c")  # 10:10: the caps trip again and ops hear of it again
    with desk.engine.connect() as conn:
        keys = sorted(str(a["dedupe_key"]) for a in sq.list_rows(conn))
    assert keys == [
        "cap:tickets_per_domain_per_hour:2026-03-02T09",
        "cap:tickets_per_domain_per_hour:2026-03-02T10",
    ]


def test_without_caps_the_pipeline_opens_a_ticket_per_mail(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)  # IngestContext.caps None: what tools and old tests get
    for n in range(12):
        desk.deliver(mail(sender=f"s{n}@flood.example", msgid=f"o{n}@flood.example"))
    assert count(desk, Ticket) == 12


# --- configuration -------------------------------------------------------------------------


def test_helpdesk_keys_become_the_caps(tmp_path: Path) -> None:
    text = """
    [helpdesk]
    ack_per_sender_per_hour = 2
    ack_per_domain_per_hour = 4
    ack_per_hour = 50
    tickets_per_sender_per_hour = 6
    tickets_per_domain_per_hour = 12
    """
    settings = parse_settings(text, tmp_path / "inboxd.toml")
    assert hourly_caps(settings.helpdesk) == HourlyCaps(2, 4, 50, 6, 12)
    assert hourly_caps(parse_settings("", tmp_path / "inboxd.toml").helpdesk) == DEFAULTS
    off = parse_settings("[helpdesk]\ntickets_per_domain_per_hour = 0\n", tmp_path / "x.toml")
    assert hourly_caps(off.helpdesk).tickets_per_domain == 0  # 0: the cap is off
    with pytest.raises(ConfigError, match="tickets_per_domain_per_hour"):
        parse_settings("[helpdesk]\ntickets_per_domain_per_hour = -1\n", tmp_path / "x.toml")


def test_the_ack_caps_count_the_acks_of_the_batch_being_stored(tmp_path: Path) -> None:
    """An IMAP batch holds its outbox rows until its end: the caps count them anyway."""
    from inboxd.ingest.sink import FetchedMail

    caps = dataclasses.replace(DEFAULTS, ack_per_sender=3, tickets_per_sender=0)
    desk = capped(make_desk(tmp_path), caps)
    batch = [
        FetchedMail(n, mail(subject=f"Question {n}", msgid=f"q{n}@customer.example"))
        for n in range(1, 7)
    ]
    desk.pipeline.store_batch("support", "INBOX", 1, batch)
    assert count(desk, Ticket) == 6
    assert [r["rcpts"] for r in desk.outbox("ack")] == [["carol@customer.example"]] * 3
    skipped = [d for t in range(4, 7) for d in cap_events(desk, t)]
    assert [d["action"] for d in skipped] == ["ack_skipped"] * 3
