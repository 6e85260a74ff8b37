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
"""

from __future__ import annotations

from collections.abc import Iterable

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
    """
    flags = msg.auto
    if msg.kind is MessageKind.BOUNCE or msg.bounce is not None:
        return False, "bounce"
    auto_submitted = flags.auto_submitted.split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return False, f"auto-submitted: {auto_submitted}"
    if flags.precedence.strip().lower() in _BULK_PRECEDENCE:
        return False, f"precedence: {flags.precedence.strip().lower()}"
    if flags.list_id:
        return False, "list-id"
    if flags.has_list_unsubscribe:
        return False, "list-unsubscribe"
    if flags.return_path_empty:
        return False, "empty return-path"
    if flags.is_mailer_daemon:
        return False, "mailer-daemon sender"
    if flags.is_noreply:
        return False, "noreply sender"
    tokens = {t.strip().lower() for t in flags.x_auto_response_suppress.split(",")}
    if tokens & _SUPPRESSING:
        return False, f"x-auto-response-suppress: {flags.x_auto_response_suppress.strip()}"
    if msg.kind is MessageKind.AUTO_REPLY:
        return False, "auto-reply"
    if msg.kind is MessageKind.BULK:
        return False, "bulk mail"
    if msg.from_ is None:
        return False, "no sender"
    ours = list(our_addresses)
    for candidate in (msg.from_, *msg.reply_to):
        if is_ours(candidate, ours):
            return False, f"sender is our own address {candidate.email}"
    if ticket_already_acked:
        return False, "ticket already acknowledged"
    if acks_to_sender_last_hour >= cap:
        return False, f"hourly cap reached ({acks_to_sender_last_hour} of {cap})"
    return True, "ok"


def ack_recipient(msg: ParsedMessage) -> Address | None:
    """Where an acknowledgement goes: the first Reply-To, else From."""
    return msg.reply_to[0] if msg.reply_to else msg.from_
