"""Pure threading: the documented order, guarded tags, merges, reopen windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inboxd.core.model import MatchedBy, ParsedMessage
from inboxd.core.parse import parse_message
from inboxd.core.thread import (
    KnownKey,
    ThreadLookup,
    TicketSnapshot,
    choose,
    tag_pattern,
    thread_keys,
)
from inboxd.core.tokens import make_message_id, make_reply_token

SECRET = b"test-secret"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def mail(
    *,
    msgid: str = "m1@client.example",
    sender: str = "alice@customer.example",
    to: str = "support@help.example",
    subject: str = "Printer broken",
    in_reply_to: str = "",
    references: str = "",
) -> ParsedMessage:
    headers = [
        f"From: Alice <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        headers.append("References: " + " ".join(f"<{r}>" for r in references.split()))
    raw = ("\r\n".join(headers) + "\r\n\r\nHello\r\n").encode()
    return parse_message(raw)


def snap(
    ticket_id: int,
    status: str = "open",
    participants: tuple[str, ...] = ("alice@customer.example",),
    changed: datetime = NOW - timedelta(days=1),
    merged_into: int | None = None,
) -> TicketSnapshot:
    return TicketSnapshot(ticket_id, status, changed, frozenset(participants), merged_into)


def decide(msg: ParsedMessage, keys: dict[str, KnownKey], tickets: list[TicketSnapshot]):  # type: ignore[no-untyped-def]
    k = thread_keys(msg, secret=SECRET, support_locals=["support"])
    return choose(
        msg, k, ThreadLookup(keys, {t.id: t for t in tickets}), now=NOW, reopen_window=WINDOW
    )


def test_new_mail_without_references_opens_a_ticket() -> None:
    match = decide(mail(), {}, [])
    assert match.ticket_id is None and match.matched_by is MatchedBy.NEW


def test_in_reply_to_known_message_joins_its_ticket() -> None:
    msg = mail(msgid="m2@c", in_reply_to="m1@c", references="m1@c")
    match = decide(msg, {"m1@c": KnownKey(7, "self")}, [snap(7)])
    assert (match.ticket_id, match.matched_by) == (7, MatchedBy.HEADER)
    assert "m1@c" in match.reason


def test_two_replies_sharing_a_missing_parent_join_one_ticket() -> None:
    # the first reply stored the parent's id as a "ref" key; the second finds it
    msg = mail(msgid="r2@c", references="parent@c")
    match = decide(msg, {"parent@c": KnownKey(3, "ref")}, [snap(3)])
    assert match.ticket_id == 3


def test_parent_arriving_after_its_reply_joins_the_reply_ticket() -> None:
    match = decide(mail(msgid="parent@c"), {"parent@c": KnownKey(4, "ref")}, [snap(4)])
    assert (match.ticket_id, match.matched_by) == (4, MatchedBy.HEADER)


def test_reused_message_id_of_a_stored_mail_does_not_glue_mails() -> None:
    match = decide(mail(msgid="same@c"), {"same@c": KnownKey(4, "self")}, [snap(4)])
    assert match.ticket_id is None


def test_our_signed_message_id_matches_even_with_rewritten_subject() -> None:
    ours = make_message_id(SECRET, 42, "abc123", "help.example")
    msg = mail(msgid="x@c", subject="totally different", in_reply_to=ours)
    match = decide(msg, {}, [snap(42)])
    assert (match.ticket_id, match.matched_by) == (42, MatchedBy.HEADER)


def test_forged_signed_message_id_is_ignored() -> None:
    forged = make_message_id(b"other-secret", 42, "abc123", "help.example")
    match = decide(mail(in_reply_to=forged), {}, [snap(42)])
    assert match.ticket_id is None


def test_reply_token_in_recipient_address() -> None:
    token = make_reply_token(SECRET, 9, 0)
    match = decide(mail(to=f"support+{token}@help.example"), {}, [snap(9)])
    assert (match.ticket_id, match.matched_by) == (9, MatchedBy.TOKEN)


def test_bad_token_is_ignored() -> None:
    match = decide(mail(to="support+9-0-aaaaaaaaaaaa@help.example"), {}, [snap(9)])
    assert match.ticket_id is None


def test_subject_tag_only_for_a_participant() -> None:
    msg = mail(subject="Re: [#5] Printer broken")
    assert decide(msg, {}, [snap(5)]).matched_by is MatchedBy.TAG
    stranger = mail(subject="Re: [#5] Printer broken", sender="mallory@evil.example")
    match = decide(stranger, {}, [snap(5)])
    assert match.ticket_id is None and "ignored" in match.reason


def test_headers_beat_token_and_tag() -> None:
    token = make_reply_token(SECRET, 9, 0)
    msg = mail(to=f"support+{token}@help.example", subject="[#5] x", in_reply_to="m1@c")
    assert decide(msg, {"m1@c": KnownKey(7, "self")}, [snap(5), snap(7), snap(9)]).ticket_id == 7


def test_merged_ticket_is_followed() -> None:
    match = decide(
        mail(in_reply_to="m1@c"),
        {"m1@c": KnownKey(7, "self")},
        [snap(7, "merged", merged_into=8), snap(8)],
    )
    assert match.ticket_id == 8


def test_solved_ticket_is_reopened() -> None:
    match = decide(mail(in_reply_to="m1@c"), {"m1@c": KnownKey(7, "self")}, [snap(7, "solved")])
    assert match.ticket_id == 7 and match.reopen


def test_long_closed_ticket_gets_a_linked_follow_up() -> None:
    old = snap(7, "closed", changed=NOW - timedelta(days=45))
    match = decide(mail(in_reply_to="m1@c"), {"m1@c": KnownKey(7, "self")}, [old])
    assert match.ticket_id is None and match.follow_up_of == 7


def test_recently_closed_ticket_reopens() -> None:
    recent = snap(7, "closed", changed=NOW - timedelta(days=3))
    match = decide(mail(in_reply_to="m1@c"), {"m1@c": KnownKey(7, "self")}, [recent])
    assert match.ticket_id == 7 and match.reopen


def test_machine_mail_joins_without_reopening() -> None:
    msg = mail(in_reply_to="m1@c")
    keys = thread_keys(msg, secret=SECRET, support_locals=["support"])
    lookup = ThreadLookup({"m1@c": KnownKey(7, "self")}, {7: snap(7, "solved")})
    match = choose(msg, keys, lookup, now=NOW, reopen_window=WINDOW, may_reopen=False)
    assert match.ticket_id == 7 and not match.reopen


def test_custom_tag_format() -> None:
    pattern = tag_pattern("(Ticket {id})")
    assert pattern.search("Re: (Ticket 77) hello") is not None
    assert pattern.search("Re: [#77] hello") is None
