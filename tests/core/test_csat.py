"""core.csat: answer addresses and rating words."""

from __future__ import annotations

from inboxd.core.csat import AnswerAddress, answer_address, parse_answer_address, rating_in_text


def test_answer_addresses_round_trip() -> None:
    link = answer_address("support@help.example", "7-3-abcdefghijkl", "bad")
    assert link == "support+csat.7-3-abcdefghijkl.bad@help.example"
    assert parse_answer_address(link, ["support"]) == AnswerAddress("7-3-abcdefghijkl", "bad")
    reply = answer_address("support@help.example", "7-3-abcdefghijkl")
    assert parse_answer_address(reply, ["support"]) == AnswerAddress("7-3-abcdefghijkl", None)
    assert parse_answer_address("support+csat.7-3-x.meh@help.example", ["support"]) is None
    assert parse_answer_address("support+7-0-abcdefghijkl@help.example", ["support"]) is None


def test_rating_words_and_digits() -> None:
    assert rating_in_text("Good!\n\nThanks a lot.") == ("good", "Thanks a lot.")
    assert rating_in_text("2 - slow") == ("bad", "slow")
    assert rating_in_text("1") == ("good", "")
    assert rating_in_text("The printer still does not work") is None
    assert rating_in_text("") is None
