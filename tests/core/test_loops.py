"""Acknowledgement decisions: every loop-prevention rule of issue 4, one by one."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import pytest
from core.factories import DEFAULT_DATE, parsed_message

from inboxd.core.compose import OutboundKind, OutboundMail, render_message
from inboxd.core.loops import (
    AckCounts,
    CapTrip,
    HourlyCaps,
    ack_cap,
    ack_decision,
    ack_may_quote,
    ack_recipient,
    alert_key,
    envelope_sender,
    is_ours,
    ticket_cap,
)
from inboxd.core.model import Address, AutoFlags, Bounce, MessageKind, ParsedMessage

OURS = ("support@help.example", "billing@help.example")


def decide(msg: ParsedMessage, **kw: Any) -> tuple[bool, str]:
    args: dict[str, Any] = {
        "our_addresses": OURS,
        "acks_to_sender_last_hour": 0,
        "cap": 3,
        "ticket_already_acked": False,
    }
    args.update(kw)
    return ack_decision(msg, **args)


def test_ordinary_mail_is_acknowledged() -> None:
    assert decide(parsed_message()) == (True, "ok")


def test_auto_submitted_no_is_a_person() -> None:
    assert decide(parsed_message(auto={"auto_submitted": "no"}))[0] is True


@pytest.mark.parametrize(
    ("auto", "reason"),
    [
        ({"auto_submitted": "auto-replied"}, "auto-submitted: auto-replied"),
        ({"auto_submitted": "auto-generated"}, "auto-submitted: auto-generated"),
        ({"auto_submitted": "auto-notified; owner-email=x@y"}, "auto-submitted: auto-notified"),
        ({"precedence": "bulk"}, "precedence: bulk"),
        ({"precedence": "junk"}, "precedence: junk"),
        ({"precedence": "list"}, "precedence: list"),
        ({"list_id": "<users.lists.example>"}, "list-id"),
        ({"has_list_unsubscribe": True}, "list-unsubscribe"),
        ({"return_path_empty": True}, "empty return-path"),
        ({"is_mailer_daemon": True}, "mailer-daemon sender"),
        ({"is_noreply": True}, "noreply sender"),
        ({"x_auto_response_suppress": "All"}, "x-auto-response-suppress: All"),
        ({"x_auto_response_suppress": "OOF, AutoReply"}, "x-auto-response-suppress"),
        ({"x_auto_response_suppress": "autoreply"}, "x-auto-response-suppress"),
    ],
)
def test_machine_markers_block_the_ack(auto: dict[str, Any], reason: str) -> None:
    ok, why = decide(parsed_message(auto=auto))
    assert ok is False
    assert why.startswith(reason)


def test_x_auto_response_suppress_for_receipts_only_does_not_block() -> None:
    # DR/RN only suppress delivery and read receipts, not auto replies
    assert decide(parsed_message(auto={"x_auto_response_suppress": "DR, RN, NRN"}))[0] is True


def test_precedence_first_class_is_a_person() -> None:
    assert decide(parsed_message(auto={"precedence": "first-class"}))[0] is True


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (MessageKind.AUTO_REPLY, "auto-reply"),
        (MessageKind.BULK, "bulk mail"),
        (MessageKind.BOUNCE, "bounce"),
    ],
)
def test_parser_kind_blocks_the_ack(kind: MessageKind, reason: str) -> None:
    assert decide(parsed_message(kind=kind)) == (False, reason)


def test_bounce_object_blocks_even_if_kind_says_normal() -> None:
    msg = parsed_message(bounce=Bounce(original_message_id="x@help.example"))
    assert decide(msg) == (False, "bounce")


def test_own_addresses_including_subaddresses() -> None:
    for sender in ("support@help.example", "SUPPORT+12-0-abc@help.example", "billing@help.example"):
        ok, why = decide(parsed_message(from_=sender))
        assert ok is False and why.startswith("sender is our own address"), sender
    ok, why = decide(parsed_message(reply_to="support@help.example"))
    assert ok is False
    assert decide(parsed_message(from_="support@other.example"))[0] is True


def test_no_sender() -> None:
    assert decide(parsed_message(from_=None)) == (False, "no sender")


def test_one_ack_per_ticket() -> None:
    assert decide(parsed_message(), ticket_already_acked=True) == (
        False,
        "ticket already acknowledged",
    )


def test_hourly_cap() -> None:
    assert decide(parsed_message(), acks_to_sender_last_hour=2, cap=3)[0] is True
    ok, why = decide(parsed_message(), acks_to_sender_last_hour=3, cap=3)
    assert ok is False and "hourly cap" in why
    assert decide(parsed_message(), acks_to_sender_last_hour=0, cap=0)[0] is False


def test_ack_recipient_prefers_reply_to() -> None:
    assert ack_recipient(parsed_message()) == Address("alice@customer.example", "Alice")
    assert ack_recipient(parsed_message(reply_to="x@y.example")) == Address("x@y.example")
    assert ack_recipient(parsed_message(from_=None)) is None


def test_is_ours() -> None:
    assert is_ours(Address("support+x@help.example"), OURS)
    assert not is_ours(Address("support@help.example.evil"), OURS)


def _ack_between(sender: str, recipient: str, n: int) -> ParsedMessage:
    """The ack ``sender`` renders for ``recipient``, as the recipient's parser sees it."""
    raw = render_message(
        OutboundMail(
            kind=OutboundKind.ACK,
            ticket_id=n,
            from_addr=Address(sender),
            to=(Address(recipient),),
            subject="Re: hi",
            text="got it",
            message_id=f"ack{n}@{sender.partition('@')[2]}",
        ),
        date=DEFAULT_DATE,
    )
    msg = message_from_bytes(raw, policy=email_policy.default)
    auto = {
        "auto_submitted": str(msg["Auto-Submitted"] or "").lower(),
        "precedence": str(msg["Precedence"] or "").lower(),
        "x_auto_response_suppress": str(msg["X-Auto-Response-Suppress"] or ""),
    }
    return parsed_message(from_=sender, auto=auto)


def _duel(*, honour_headers: bool, rounds: int = 50) -> int:
    """Two helpdesks acknowledging each other; returns how many acks were sent.

    Worst case assumed: every mail opens a new ticket (no one-ack-per-ticket help).
    """
    a, b = "support@a.example", "helpdesk@b.example"
    inbound = parsed_message(from_=b)  # B's first mail looks like a person's
    acks_to: dict[str, int] = {}
    sent = 0
    for n in range(rounds):
        me = a if n % 2 == 0 else b
        sender = b if me == a else a
        if not honour_headers:
            inbound = replace(inbound, auto=AutoFlags())
        ok, _ = ack_decision(
            inbound,
            our_addresses=(me,),
            acks_to_sender_last_hour=acks_to.get(sender, 0),
            cap=3,
            ticket_already_acked=False,
        )
        if not ok:
            break
        sent += 1
        acks_to[sender] = acks_to.get(sender, 0) + 1
        inbound = _ack_between(me, sender, n)
    return sent


def test_autoresponder_duel_stops_after_one_ack() -> None:
    assert _duel(honour_headers=True) == 1


def test_autoresponder_duel_is_bounded_by_the_cap_even_without_headers() -> None:
    # a peer that strips our markers: the hourly cap (3 per sender) still ends it
    assert _duel(honour_headers=False) == 2 * 3


# --- hourly caps (issue 14/15: responders that mark nothing, reflection) -------------------

CAPS = HourlyCaps(
    ack_per_sender=3, ack_per_domain=10, ack_global=200, tickets_per_sender=5, tickets_per_domain=8
)
BOT = Address("bot7@responder.example")


@pytest.mark.parametrize(
    ("counts", "cap", "key"),
    [
        (AckCounts(0, 0, 0), None, None),
        (AckCounts(2, 9, 199), None, None),
        (AckCounts(3, 3, 3), "ack_per_sender_per_hour", "bot7@responder.example"),
        (AckCounts(0, 10, 10), "ack_per_domain_per_hour", "responder.example"),
        (AckCounts(0, 0, 200), "ack_per_hour", "*"),
        (AckCounts(5, 50, 500), "ack_per_sender_per_hour", "bot7@responder.example"),
    ],
)
def test_ack_cap_names_the_most_specific_cap(
    counts: AckCounts, cap: str | None, key: str | None
) -> None:
    trip = ack_cap(BOT, counts, CAPS)
    assert (trip.cap if trip else None, trip.key if trip else None) == (cap, key)


def test_a_cap_of_zero_is_off() -> None:
    off = HourlyCaps(ack_per_sender=0, ack_per_domain=0, ack_global=0)
    assert ack_cap(BOT, AckCounts(10**6, 10**6, 10**6), off) is None
    assert ticket_cap(BOT, by_sender=10**6, by_domain=10**6, caps=HourlyCaps(0, 0, 0, 0, 0)) is None
    trip = ack_cap(BOT, AckCounts(0, 0, 1), HourlyCaps(ack_global=1))
    assert trip is not None and trip.reason.startswith("hourly cap reached (1 of 1")


def test_ticket_cap_by_sender_then_by_domain() -> None:
    assert ticket_cap(BOT, by_sender=4, by_domain=7, caps=CAPS) is None
    trip = ticket_cap(BOT, by_sender=5, by_domain=5, caps=CAPS)
    assert trip == CapTrip("tickets_per_sender_per_hour", BOT.email, 5, 5)
    trip = ticket_cap(BOT, by_sender=0, by_domain=8, caps=CAPS)
    assert trip == CapTrip("tickets_per_domain_per_hour", "responder.example", 8, 8)


def test_alert_key_is_one_per_cap_and_clock_hour() -> None:
    trip = CapTrip("ack_per_domain_per_hour", "a.example", 10, 10)
    other = CapTrip("ack_per_domain_per_hour", "b.example", 11, 10)
    at = DEFAULT_DATE.replace(minute=5)
    assert alert_key(trip, at) == alert_key(other, at.replace(minute=59))
    assert alert_key(trip, at) != alert_key(trip, at.replace(hour=11))
    assert alert_key(trip, at) != alert_key(CapTrip("ack_per_hour", "*", 1, 1), at)


@pytest.mark.parametrize(
    ("headers", "reply_to", "quote"),
    [
        ({}, None, True),  # no Return-Path (LMTP): From stands in
        ({"return-path": "<Alice@Customer.example>"}, None, True),
        ({"return-path": "<bounce-77@esp.example>"}, None, False),
        ({}, "victim@elsewhere.example", False),  # Reply-To is not the envelope sender
        ({"return-path": "<victim@elsewhere.example>"}, "victim@elsewhere.example", True),
    ],
)
def test_ack_quotes_only_to_the_envelope_sender(
    headers: dict[str, str], reply_to: str | None, quote: bool
) -> None:
    extra: dict[str, Any] = {"reply_to": reply_to} if reply_to else {}
    msg = parsed_message(headers=headers or None, **extra)
    recipient = ack_recipient(msg)
    assert recipient is not None
    assert ack_may_quote(msg, recipient) is quote


def test_envelope_sender() -> None:
    assert envelope_sender(parsed_message()) == "alice@customer.example"
    assert (
        envelope_sender(parsed_message(headers={"return-path": "< X@Y.example >"})) == "x@y.example"
    )
    assert envelope_sender(parsed_message(from_=None)) == ""
