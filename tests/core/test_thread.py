"""Pure threading: the documented order, guarded tags, merges, reopen windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inboxd.core.model import MatchedBy, ParsedMessage
from inboxd.core.parse import parse_message
from inboxd.core.thread import (
    KnownKey,
    ThreadLookup,
    ThreadMatch,
    TicketSnapshot,
    choose,
    joined_tickets,
    plan_join,
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


# --- tickets a mail's references join (out-of-order arrival) ------------------------

CAROL, DAVE = "carol@customer.example", "dave@other.example"


def branch(
    ticket_id: int,
    *,
    age_days: float,
    requester: str = CAROL,
    answered: bool = False,
    mailbox: str = "support",
    status: str = "new",
) -> TicketSnapshot:
    return TicketSnapshot(
        ticket_id,
        status,
        NOW - timedelta(days=age_days),
        frozenset({requester}),
        created_at=NOW - timedelta(days=age_days),
        requester=requester,
        mailbox=mailbox,
        answered=answered,
        customers=frozenset({requester}),
    )


def join(msg: ParsedMessage, keys: dict[str, KnownKey], tickets: list[TicketSnapshot]):  # type: ignore[no-untyped-def]
    k = thread_keys(msg, secret=SECRET, support_locals=["support"])
    lookup = ThreadLookup(keys, {t.id: t for t in tickets})
    match = choose(msg, k, lookup, now=NOW, reopen_window=WINDOW)
    return match, plan_join(k, lookup, match, now=NOW, reopen_window=WINDOW)


# the missing link A arrives: its parent R opened #2, its reply B (citing only A) opened #1
LINK = {"r@c": KnownKey(2, "self"), "a@c": KnownKey(1, "ref")}


def test_joined_tickets_are_the_others_oldest_first() -> None:
    msg = mail(msgid="a@c", in_reply_to="r@c", references="x@c r@c")
    keys = {**LINK, "x@c": KnownKey(3, "self")}
    snaps = [branch(1, age_days=1), branch(2, age_days=2), branch(3, age_days=3)]
    k = thread_keys(msg, secret=SECRET, support_locals=["support"])
    lookup = ThreadLookup(keys, {t.id: t for t in snaps})
    match = choose(msg, k, lookup, now=NOW, reopen_window=WINDOW)
    assert match.ticket_id == 2
    found = joined_tickets(k, lookup, match, now=NOW, reopen_window=WINDOW)
    assert [t.id for t in found] == [3, 1]


def test_missing_link_merges_the_younger_branch_into_the_older() -> None:
    match, plan = join(
        mail(msgid="a@c", sender=CAROL, in_reply_to="r@c"),
        LINK,
        [branch(1, age_days=1), branch(2, age_days=2)],
    )
    assert match.ticket_id == 2 and plan is not None
    assert plan.merges == ((1, 2),) and plan.relations == ()
    assert plan.match.ticket_id == 2


def test_mail_lands_on_the_survivor_when_its_ticket_is_merged() -> None:
    # the reply's ticket #2 is the younger one here: the mail follows it to #1
    _, plan = join(
        mail(msgid="a@c", sender=CAROL, in_reply_to="r@c"),
        LINK,
        [branch(1, age_days=3), branch(2, age_days=2)],
    )
    assert plan is not None and plan.merges == ((2, 1),)
    assert plan.match.ticket_id == 1 and plan.match.matched_by is MatchedBy.HEADER
    assert "#2 merged into #1" in plan.match.reason


def test_answered_ticket_is_related_not_merged() -> None:
    _, plan = join(
        mail(msgid="a@c", sender=CAROL, in_reply_to="r@c"),
        LINK,
        [branch(1, age_days=1, answered=True), branch(2, age_days=2)],
    )
    assert plan is not None and plan.merges == ()
    (rel,) = plan.relations
    assert (rel.ticket, rel.other) == (1, 2)
    assert "#1 already answered by an agent" in rel.reason and "<a@c>" in rel.reason
    assert plan.match.ticket_id == 2


def test_tickets_in_different_mailboxes_are_related_not_merged() -> None:
    _, plan = join(
        mail(msgid="a@c", sender=CAROL, in_reply_to="r@c"),
        LINK,
        [branch(1, age_days=1, mailbox="billing"), branch(2, age_days=2)],
    )
    assert plan is not None and plan.merges == ()
    assert "different mailboxes" in plan.relations[0].reason


def test_tickets_of_two_customers_are_left_alone() -> None:
    stranger = mail(msgid="s@c", sender="mallory@evil.example", references="c1@c d1@c")
    keys = {"c1@c": KnownKey(1, "self"), "d1@c": KnownKey(2, "self")}
    match, plan = join(
        stranger, keys, [branch(1, age_days=2), branch(2, age_days=1, requester=DAVE)]
    )
    assert match.ticket_id == 2 and plan is None


def test_a_recipient_on_both_tickets_is_a_shared_customer() -> None:
    dave_cc_carol = TicketSnapshot(
        1,
        "new",
        NOW,
        frozenset({DAVE, CAROL}),
        created_at=NOW - timedelta(days=1),
        requester=DAVE,
        mailbox="support",
        customers=frozenset({DAVE, CAROL}),
    )
    snaps = [dave_cc_carol, branch(2, age_days=2)]
    _, plan = join(mail(msgid="a@c", in_reply_to="r@c"), LINK, snaps)
    assert plan is not None and plan.merges == ((1, 2),)


def test_pending_participants_do_not_make_a_shared_customer() -> None:
    # mallory joined both by reference (pending): not a customer of either
    with_mallory = [
        TicketSnapshot(
            t.id,
            t.status,
            t.status_changed_at,
            t.participants | {"mallory@evil.example"},
            created_at=t.created_at,
            requester=t.requester,
            mailbox=t.mailbox,
            customers=t.customers,
        )
        for t in (branch(1, age_days=1), branch(2, age_days=2, requester=DAVE))
    ]
    _, plan = join(mail(msgid="a@c", in_reply_to="r@c"), LINK, with_mallory)
    assert plan is None


def test_one_ticket_or_long_closed_ones_join_nothing() -> None:
    msg = mail(msgid="a@c", in_reply_to="r@c")
    assert join(msg, {"r@c": KnownKey(2, "self")}, [branch(2, age_days=2)])[1] is None
    old = branch(1, age_days=60, status="closed")
    assert join(msg, LINK, [old, branch(2, age_days=2)])[1] is None


def test_a_mail_opening_a_ticket_joins_nothing() -> None:
    msg = mail(msgid="a@c")
    k = thread_keys(msg, secret=SECRET, support_locals=["support"])
    lookup = ThreadLookup({}, {})
    new = ThreadMatch(None, MatchedBy.NEW, "no known reference")
    assert joined_tickets(k, lookup, new, now=NOW, reopen_window=WINDOW) == ()
    assert plan_join(k, lookup, new, now=NOW, reopen_window=WINDOW) is None


def test_three_branches_merge_around_an_answered_one() -> None:
    msg = mail(msgid="a@c", in_reply_to="r@c", references="x@c r@c")
    keys = {**LINK, "x@c": KnownKey(3, "self")}
    snaps = [branch(3, age_days=3, answered=True), branch(2, age_days=2), branch(1, age_days=1)]
    _, plan = join(msg, keys, snaps)
    assert plan is not None
    assert plan.merges == ((1, 2),)
    assert [(r.ticket, r.other) for r in plan.relations] == [(2, 3)]
    assert plan.match.ticket_id == 2
