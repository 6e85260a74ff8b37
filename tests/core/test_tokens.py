"""Token signatures keep their format: tokens already out in mail must still verify."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from inboxd.core import tokens
from inboxd.core.tokens import (
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
