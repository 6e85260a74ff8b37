"""Threading in any arrival order (issue 14): one thread ends in one ticket.

A reply that arrives before the mail it answers opens a ticket of its own; the
mail that links it to the rest of the thread (citing one branch, cited by the
other) merges the younger ticket into the older while no agent has answered
either, and relates them (a ``related`` event on both) otherwise. Tickets of two
customers are never joined by a stranger citing both. Through the real pipeline
on SQLite and PostgreSQL (tests/mailflow_kit.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mailflow_kit import Desk, mail, make_desk, reply_to_notification
from sqlalchemy import select

from inboxd.db import tickets
from inboxd.db.tables import Message, ThreadKey

CAROL = "Carol Customer <carol@customer.example>"
DAVE = "Dave Colleague <dave@customer.example>"
THREAD = 30


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url)


def msgid(n: int) -> str:
    return f"t{n}@customer.example"


def parent(n: int) -> int:
    """A binary tree: the root has two branches, every reply has up to two replies."""
    return (n - 1) // 2


def ancestors(n: int) -> list[int]:
    chain: list[int] = []
    for _ in range(THREAD):  # bounded: the depth is below the thread's size
        if n == 0:
            break
        n = parent(n)
        chain.insert(0, n)
    return chain


def thread_mail(n: int) -> bytes:
    """Mail ``n`` of the thread: Carol and Dave take turns, each copying the other.

    Odd mails carry the whole References chain; even ones cite only their parent
    (clients that send In-Reply-To alone), so a reply arriving before its parent
    cannot find the rest of the thread.
    """
    sender, other = (CAROL, DAVE) if n % 2 == 0 else (DAVE, CAROL)
    if n == 0:
        return mail(sender=sender, cc=other, msgid=msgid(0), subject="Printer broken")
    refs = [msgid(a) for a in ancestors(n)] if n % 2 else [msgid(parent(n))]
    return mail(
        sender=sender,
        cc=other,
        msgid=msgid(n),
        subject="Re: Printer broken",
        body=f"Reply {n}.\n",
        in_reply_to=msgid(parent(n)),
        references=refs,
    )


def ticket_of(desk: Desk, message_id: str) -> int:
    table = Message.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        found = conn.execute(
            select(table.c.ticket_id).where(table.c.message_id == message_id)
        ).scalar_one()
        survivor = tickets.resolve(conn, int(found))
    assert survivor is not None
    return survivor.id


def key_tickets(desk: Desk) -> set[int]:
    table = ThreadKey.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        return {int(t) for t in conn.execute(select(table.c.ticket_id)).scalars()}


def kinds(desk: Desk, ticket_id: int, kind: str) -> list[dict[str, object]]:
    return [data for _, k, data in desk.events(ticket_id) if k == kind]


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_thread_ends_in_one_ticket(desk: Desk, seed: int) -> None:
    order = list(range(THREAD))
    random.Random(seed).shuffle(order)
    outcomes = []
    for n in order:
        desk.clock.advance(minutes=3)
        outcomes.append(desk.deliver(thread_mail(n)))
    assert all(o.status == "stored" for o in outcomes), outcomes
    opened = sorted({o.ticket_id for o in outcomes if o.new_ticket and o.ticket_id})
    survivors = {ticket_of(desk, msgid(n)) for n in range(THREAD)}
    assert len(survivors) == 1, (order, survivors)
    (survivor,) = survivors
    assert survivor == opened[0]  # the oldest ticket survives
    assert desk.ticket(survivor)["status"] != "merged"
    for ticket_id in opened[1:]:
        assert desk.ticket(ticket_id)["status"] == "merged"
        assert [a for a, k, _ in desk.events(ticket_id) if k == "merged"] == ["system"]
    # a ticket merged before its survivor was merged too: count the folds on every ticket
    assert sum(len(kinds(desk, t, "merged_from")) for t in opened) == len(opened) - 1
    # the merged tickets' keys name the survivor: a later reply finds it directly
    assert key_tickets(desk) == {survivor}
    late = desk.deliver(
        mail(sender=CAROL, msgid="late@customer.example", in_reply_to=msgid(THREAD - 1))
    )
    assert (late.ticket_id, late.matched_by, late.new_ticket) == (survivor, "header", False)


def test_branch_already_answered_is_related_not_merged(desk: Desk) -> None:
    # R <- A <- B, each citing only its parent; B arrives first and is answered
    def link(n: str, to: str = "") -> bytes:
        return mail(sender=CAROL, msgid=f"{n}@customer.example", in_reply_to=to, body=f"{n}\n")

    first = desk.deliver(link("b", "a@customer.example"))
    notes = [m for m in desk.outbox_mails("notify") if "alice" in str(m["To"])]
    answer = reply_to_notification(notes[-1], body="We are on it.", msgid="ans@help.example")
    assert desk.deliver(answer).matched_by == "token"
    assert desk.ticket(first.ticket_id or 0)["first_agent_reply_at"] is not None
    root = desk.deliver(link("r"))
    assert root.new_ticket
    middle = desk.deliver(link("a", "r@customer.example"))
    answered, other = first.ticket_id or 0, root.ticket_id or 0
    assert middle.ticket_id == other
    for ticket_id in (answered, other):
        assert desk.ticket(ticket_id)["status"] != "merged"
        assert "merged" not in desk.event_kinds(ticket_id)
    (on_answered,) = kinds(desk, answered, "related")
    (on_other,) = kinds(desk, other, "related")
    assert on_answered["ticket"] == other and on_other["ticket"] == answered
    assert f"#{answered} already answered by an agent" in str(on_other["reason"])
    assert on_other["message_id"] == "a@customer.example"
    # more of the thread citing both links them once
    desk.deliver(
        mail(
            sender=CAROL,
            msgid="c@customer.example",
            in_reply_to="a@customer.example",
            references=["r@customer.example", "a@customer.example", "b@customer.example"],
        )
    )
    assert len(kinds(desk, answered, "related")) == len(kinds(desk, other, "related")) == 1


def test_stranger_citing_two_customers_tickets_merges_nothing(desk: Desk) -> None:
    carol = desk.deliver(mail(sender=CAROL, msgid="c1@customer.example"))
    dave = desk.deliver(
        mail(sender="Dave <dave@other.example>", msgid="d1@other.example", subject="Invoice")
    )
    for n in range(2):  # the second one is sent once mallory is pending on a ticket
        desk.deliver(
            mail(
                sender="Mallory <mallory@evil.example>",
                msgid=f"m{n}@evil.example",
                in_reply_to="c1@customer.example",
                references=["d1@other.example", "c1@customer.example"],
            )
        )
    for ticket_id in (carol.ticket_id or 0, dave.ticket_id or 0):
        assert desk.ticket(ticket_id)["status"] != "merged"
        assert not {"merged", "merged_from", "related"} & set(desk.event_kinds(ticket_id))


def test_unrelated_tickets_of_one_customer_stay_apart(desk: Desk) -> None:
    first = desk.deliver(mail(sender=CAROL, msgid="p1@customer.example"))
    second = desk.deliver(mail(sender=CAROL, msgid="p2@customer.example", subject="Toner"))
    reply = desk.deliver(
        mail(sender=CAROL, msgid="p3@customer.example", in_reply_to="p2@customer.example")
    )
    assert reply.ticket_id == second.ticket_id != first.ticket_id
    assert "merged_from" not in desk.event_kinds(second.ticket_id or 0)
    assert desk.ticket(first.ticket_id or 0)["status"] != "merged"
