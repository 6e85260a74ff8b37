"""Should a new ticket's mail get an acknowledgement? (loop prevention)

An acknowledgement is the one mail inboxd sends without a person deciding to,
so it is where mail loops start: two autoresponders answering each other, or a
list re-distributing our answer to a thousand subscribers. The rules are the
list in issue 4, checked in a fixed order so the reason recorded on the ticket
is the most specific one. Every answer is (ack?, reason); the reason is logged
and stored in the ticket's event log, so "why did I not get an ack" has an answer.

Two inboxd instances acknowledging each other stop after one mail each: our
acknowledgement carries ``Auto-Submitted: auto-replied``, which the other side
refuses to answer; without that header, the per-sender hourly cap and the one
ack per ticket still bound the exchange.

A responder that marks nothing, writes a fresh subject and answers from a new
address each time defeats all of that, so every ack and every new ticket also
passes hourly caps (:class:`HourlyCaps`): acks per recipient, per recipient
domain and in all; new tickets per sender and per sender domain. The caps are
decided here from counts the caller read (``ack_cap``, ``ticket_cap``); a trip
is a :class:`CapTrip` the caller records on the ticket and alerts ops about
once per cap and hour (``alert_key``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from inboxd.core.model import Address, MessageKind, ParsedMessage

_SUPPRESSING = frozenset({"all", "autoreply", "oof"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def _base_address(email: str) -> str:
    """``support+token@d`` -> ``support@d``: a subaddress of ours is still ours."""
    local, _, domain = email.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def is_ours(addr: Address, our_addresses: Iterable[str]) -> bool:
    ours = {_base_address(a) for a in our_addresses}
    return _base_address(addr.email) in ours


def ack_refusal(
    msg: ParsedMessage, *, our_addresses: Iterable[str], ticket_already_acked: bool
) -> str | None:
    """Why no acknowledgement may go out whatever the counts, or None (then the caps decide)."""
    flags = msg.auto
    if msg.kind is MessageKind.BOUNCE or msg.bounce is not None:
        return "bounce"
    auto_submitted = flags.auto_submitted.split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {auto_submitted}"
    if flags.precedence.strip().lower() in _BULK_PRECEDENCE:
        return f"precedence: {flags.precedence.strip().lower()}"
    if flags.list_id:
        return "list-id"
    if flags.has_list_unsubscribe:
        return "list-unsubscribe"
    if flags.return_path_empty:
        return "empty return-path"
    if flags.is_mailer_daemon:
        return "mailer-daemon sender"
    if flags.is_noreply:
        return "noreply sender"
    tokens = {t.strip().lower() for t in flags.x_auto_response_suppress.split(",")}
    if tokens & _SUPPRESSING:
        return f"x-auto-response-suppress: {flags.x_auto_response_suppress.strip()}"
    if msg.kind is MessageKind.AUTO_REPLY:
        return "auto-reply"
    if msg.kind is MessageKind.BULK:
        return "bulk mail"
    if msg.from_ is None:
        return "no sender"
    ours = list(our_addresses)
    for candidate in (msg.from_, *msg.reply_to):
        if is_ours(candidate, ours):
            return f"sender is our own address {candidate.email}"
    if ticket_already_acked:
        return "ticket already acknowledged"
    return None


def ack_decision(
    msg: ParsedMessage,
    *,
    our_addresses: Iterable[str],
    acks_to_sender_last_hour: int,
    cap: int,
    ticket_already_acked: bool,
) -> tuple[bool, str]:
    """(True, "ok") when an acknowledgement may go out, else (False, reason).

    ``acks_to_sender_last_hour`` counts acknowledgements already queued to the
    address that would receive this one (Reply-To or From) in the last hour.
    Only the per-recipient cap: the flow checks all of them with :func:`ack_cap`.
    """
    refusal = ack_refusal(
        msg, our_addresses=our_addresses, ticket_already_acked=ticket_already_acked
    )
    if refusal is not None:
        return False, refusal
    if acks_to_sender_last_hour >= cap:
        return False, f"hourly cap reached ({acks_to_sender_last_hour} of {cap})"
    return True, "ok"


def ack_recipient(msg: ParsedMessage) -> Address | None:
    """Where an acknowledgement goes: the first Reply-To, else From."""
    return msg.reply_to[0] if msg.reply_to else msg.from_


def envelope_sender(msg: ParsedMessage) -> str:
    """The address the mail came from in the SMTP envelope: Return-Path when the
    delivering MTA wrote one, else From (all LMTP gives us); "" when neither."""
    return_path = msg.header("return-path").strip().strip("<>").strip().lower()
    if return_path:
        return return_path
    return msg.from_.email if msg.from_ is not None else ""


# What an ack that may not quote the sender calls the mail instead of its subject.
NEUTRAL_SUBJECT = "your message"


def ack_may_quote(msg: ParsedMessage, recipient: Address) -> bool:
    """Whether the ack may carry the mail's subject and the recipient's display name.

    Both are the sender's words: an ack to any other address than the envelope
    sender (a Reply-To, a forged From) would reflect them to a stranger, e.g. a
    spam subject to a hundred Reply-To victims. Such an ack is neutral text.
    """
    return recipient.email == envelope_sender(msg)


# --- hourly caps ----------------------------------------------------------------------


CAP_WINDOW = timedelta(hours=1)  # the rolling hour every cap counts over


@dataclass(frozen=True, slots=True)
class HourlyCaps:
    """Limits per rolling hour (``[helpdesk]`` keys of the same names + ``_per_hour``);
    0 turns a cap off."""

    ack_per_sender: int = 3
    ack_per_domain: int = 50
    ack_global: int = 500
    tickets_per_sender: int = 20
    # off unless set: one domain is often many real customers (a large company, a
    # freemail provider), and a backlog of theirs must open one ticket each
    tickets_per_domain: int = 0


@dataclass(frozen=True, slots=True)
class AckCounts:
    """Acknowledgements queued in the last hour: to the recipient, its domain, in all."""

    to_recipient: int
    to_domain: int
    total: int


@dataclass(frozen=True, slots=True)
class CapTrip:
    """A cap that stopped something: which (``cap``, the config key), for whom (``key``:
    an address, a domain or ``*``), the count seen and the limit."""

    cap: str
    key: str
    count: int
    limit: int

    @property
    def reason(self) -> str:
        return f"hourly cap reached ({self.count} of {self.limit}, {self.cap} {self.key})"


def _first_trip(checks: Iterable[tuple[str, str, int, int]]) -> CapTrip | None:
    for cap, key, count, limit in checks:
        if limit and count >= limit:  # 0: that cap is off
            return CapTrip(cap, key, count, limit)
    return None


def ack_cap(recipient: Address, counts: AckCounts, caps: HourlyCaps) -> CapTrip | None:
    """The first cap (most specific first) another ack to ``recipient`` would exceed."""
    return _first_trip(
        (
            ("ack_per_sender_per_hour", recipient.email, counts.to_recipient, caps.ack_per_sender),
            ("ack_per_domain_per_hour", recipient.domain, counts.to_domain, caps.ack_per_domain),
            ("ack_per_hour", "*", counts.total, caps.ack_global),
        )
    )


def ticket_cap(
    sender: Address, *, by_sender: int, by_domain: int, caps: HourlyCaps
) -> CapTrip | None:
    """The first cap a new ticket for ``sender`` would exceed, given the tickets it and
    its domain opened in the last hour; None: the mail may open a ticket."""
    return _first_trip(
        (
            ("tickets_per_sender_per_hour", sender.email, by_sender, caps.tickets_per_sender),
            ("tickets_per_domain_per_hour", sender.domain, by_domain, caps.tickets_per_domain),
        )
    )


def alert_key(trip: CapTrip, now: datetime) -> str:
    """The same cap in the same clock hour -> the same key: ops hear once per cap and hour,
    however many senders or domains trip it."""
    return f"cap:{trip.cap}:{now:%Y-%m-%dT%H}"


def held_subject(domain: str) -> str:
    """Subject of the ticket that holds mail over a new-ticket cap with nowhere else to go."""
    return f"Held: mail from {domain or 'unknown senders'} over the new-ticket cap"
