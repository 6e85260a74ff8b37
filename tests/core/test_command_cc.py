"""``#cc ADDRESS``: parse, check and apply, pure (the role change is db.tickets.save's)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from core.rules_kit import ruleset

from inboxd.core.commands import CommandContext, parse_commands, run
from inboxd.core.desk import Status, Ticket
from inboxd.core.desk import events as ev

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CTX = CommandContext(actor="agent:alice", now=T0, rules=ruleset())
TICKET = Ticket(
    id=7,
    subject="Printer",
    status=Status.OPEN,
    requester="carol@customer.example",
    mailbox="support",
    created_at=T0,
    updated_at=T0,
    status_changed_at=T0,
)


def test_cc_records_the_accepted_address_lowercased() -> None:
    parsed = parse_commands("#cc <Mallory@Evil.Example>\n\nHello")
    assert parsed.errors == ()
    outcome = run.apply(CTX, TICKET, parsed.commands)
    [event] = outcome.change.events
    assert isinstance(event, ev.ParticipantAccepted)
    assert (event.email, event.actor) == ("mallory@evil.example", "agent:alice")
    assert outcome.change.after == TICKET  # no field changes: the role is a participant row


@pytest.mark.parametrize("line", ["#cc", "#cc a b@x.example", "#cc not-an-address", "#cc a@b"])
def test_cc_needs_one_address(line: str) -> None:
    [error] = parse_commands(line).errors
    assert error.startswith("#cc needs one mail address")


def test_cc_of_an_agent_is_refused() -> None:
    parsed = parse_commands("#cc dana@example.com")
    assert run.check(CTX, TICKET, parsed.commands) == [
        "#cc dana@example.com: that is an agent (agents never get the customer's copy)"
    ]
