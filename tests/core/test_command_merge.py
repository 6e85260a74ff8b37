"""Who may ``#merge``: an agent who may act on both tickets (assignee or team member)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from core.rules_kit import ruleset

from inboxd.core.commands import CommandContext, parse_commands, run
from inboxd.core.desk import Status, Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE = Ticket(
    id=7,
    subject="Printer",
    status=Status.OPEN,
    requester="carol@customer.example",
    mailbox="support",
    created_at=T0,
    updated_at=T0,
    status_changed_at=T0,
)


def check(actor: str, mine: Ticket, target: Ticket) -> list[str]:
    ctx = CommandContext(actor=actor, now=T0, rules=ruleset(), tickets={9: target})
    return run.check(ctx, mine, parse_commands("#merge 9").commands)


@pytest.mark.parametrize(
    ("mine", "target", "error"),
    [
        ({"team": "frontline"}, {"team": "frontline"}, None),
        ({"team": "frontline"}, {"team": "sre"}, None),  # alice is in both teams
        ({}, {}, None),  # nobody's tickets
        ({"team": "billing", "assignee": "alice"}, {"team": "frontline"}, None),
        ({"team": "frontline"}, {"team": "billing"}, "alice may not act on ticket #9"),
        ({"team": "billing"}, {"team": "frontline"}, "alice may not act on ticket #7"),
        ({"team": "frontline"}, {"assignee": "dana"}, "alice may not act on ticket #9 (dana)"),
    ],
)
def test_merge_needs_the_agent_on_both_tickets(
    mine: dict[str, str], target: dict[str, str], error: str | None
) -> None:
    found = check("agent:alice", replace(BASE, **mine), replace(BASE, id=9, **target))
    if error is None:
        assert found == []
    else:
        [message] = found
        assert message.startswith("#merge 9: " + error)


def test_merge_by_someone_who_is_no_agent_is_refused() -> None:
    [message] = check("agent:nobody", BASE, replace(BASE, id=9))
    assert message == "#merge 9: only an agent of both tickets may merge them"
