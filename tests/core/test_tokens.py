"""Token signatures keep their format: tokens already out in mail must still verify."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from inboxd.core import tokens
from inboxd.core.tokens import (
    citation_refusal,
    cited_tickets,
    make_message_id,
    make_reply_token,
    ticket_from_message_id,
    verify_reply_token,
)


def reference_sign(secret: bytes, payload: str) -> str:
    """The definition: lowercase base32 of HMAC-SHA256, first 12 characters."""
    digest = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:12]


def test_known_values_from_before_the_fast_signer() -> None:
    assert make_message_id(b"bench-secret", 42, "abc123", "help.example") == (
        "ibx.42.abc123.m65okbm4rqta@help.example"
    )
    assert make_reply_token(b"bench-secret", 9, 3) == "9-3-eoccqm33oxis"


@pytest.mark.parametrize("secret", [b"", b"k", b"bench-secret", bytes(range(256))])
def test_sign_matches_b32encode(secret: bytes) -> None:
    for n in range(2000):
        payload = f"mid:{n}:{n * 7919:020x}" if n % 2 else f"rt:{n}:{n % 13}"
        assert tokens._sign(secret, payload) == reference_sign(secret, payload), payload


def test_tokens_roundtrip() -> None:
    token = make_reply_token(b"s", 123456, 7)
    assert verify_reply_token(b"s", token) == tokens.TicketToken(123456, 7)
    assert verify_reply_token(b"t", token) is None
    message_id = make_message_id(b"s", 77, "ABCdef0123", "help.example")
    assert ticket_from_message_id(b"s", message_id) == 77
    assert ticket_from_message_id(b"t", message_id) is None


# --- does a mail to a ticket's agent token answer our mail of that ticket? ----------------

SECRET = b"s"


def mid(ticket_id: int, nonce: str = "n0") -> str:
    return make_message_id(SECRET, ticket_id, nonce, "help.example")


def test_cited_tickets_are_ours_only_in_order_once_each() -> None:
    forged = mid(3).replace("ibx.3.", "ibx.4.")  # a signature made for ticket 3
    ids = ["c1@customer.example", mid(2), mid(0), forged, mid(1), mid(2, "n1"), ""]
    assert cited_tickets(SECRET, ids) == (2, 1)
    assert cited_tickets(b"t", ids) == ()


@pytest.mark.parametrize(
    ("references", "cited", "survivors", "refusal"),
    [
        ((mid(2),), (2,), {}, None),
        ((mid(1), mid(2)), (1, 2), {}, None),  # the thread of a merge, ours among them
        ((mid(1),), (1,), {1: 2, 2: 2}, None),  # ticket 1 was merged into ticket 2
        ((mid(1),), (1,), {2: 1}, None),  # the token's ticket was merged into 1
        ((), (), {}, "cites no mail at all (no In-Reply-To or References)"),
        (("c1@customer.example",), (), {}, "cites none of our mail"),
        ((mid(1),), (1,), {}, "cites our mail of ticket #1 only, not of #2"),
        (
            (mid(1), mid(3)),
            (1, 3),
            {1: 1, 2: 2},
            "cites our mail of tickets #1, #3 only, not of #2",
        ),
        ((mid(1),), (1,), {1: 3, 2: 2}, "cites our mail of ticket #1 only, not of #2"),
    ],
)
def test_citation_refusal(
    references: tuple[str, ...],
    cited: tuple[int, ...],
    survivors: dict[int, int],
    refusal: str | None,
) -> None:
    got = citation_refusal(2, references=references, cited=cited, survivors=survivors)
    assert got == refusal
