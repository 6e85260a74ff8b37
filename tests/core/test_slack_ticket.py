"""The living root message: what it shows, its digest, and when it carries buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from inboxd.core.sla.model import Duration
from inboxd.core.sla.targets import TargetClock
from inboxd.core.slack_ticket import ACTIONS, TicketCard, digest, root_message, sla_line

DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def card(**kw: object) -> TicketCard:
    base: dict[str, object] = {
        "ticket_id": 7,
        "label": "[#7]",
        "subject": "Refund <!channel>",
        "requester": "carol@customer.example",
        "requester_name": "Carol",
        "status": "open",
        "tags": ("refund", "vip"),
        "team": "billing",
        "assignee": "dana",
        "last_mail": "Please refund & cancel.\n\n\n\nThanks",
    }
    base.update(kw)
    return TicketCard(**base)  # type: ignore[arg-type]


def test_root_shows_the_ticket_escaped() -> None:
    message = root_message(card())
    flat = json.dumps(message.blocks)
    assert message.blocks[0]["type"] == "header"
    assert "[#7] Refund <!channel>" in message.blocks[0]["text"]["text"]  # plain_text: inert
    assert "&lt;!channel&gt;" in message.text and "<!channel>" not in message.text
    for shown in ("Carol &lt;carol@customer.example&gt;", "refund, vip", "billing / dana"):
        assert shown in flat
    assert "Please refund &amp; cancel." in flat
    assert "actions" not in flat  # no Socket Mode: no buttons


def test_buttons_only_on_live_tickets() -> None:
    live = root_message(card(buttons=True)).blocks
    actions = [b for b in live if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == list(ACTIONS)
    assert {e["value"] for e in actions[0]["elements"]} == {"7"}
    for status in ("solved", "closed"):
        assert all(
            b["type"] != "actions" for b in root_message(card(status=status, buttons=True)).blocks
        )
    merged = root_message(card(status="merged", merged_into=9, buttons=True))
    assert "merged into #9" in json.dumps(merged.blocks)
    assert all(b["type"] != "actions" for b in merged.blocks)


def test_digest_follows_what_is_shown() -> None:
    assert digest(root_message(card())) == digest(root_message(card()))
    assert digest(root_message(card())) != digest(root_message(card(assignee="alice")))


def test_sla_line_breach_first_then_earliest_due() -> None:
    goal = Duration(7200)
    active = TargetClock("resolution", goal, "active", due_at=DUE + timedelta(hours=5))
    soon = TargetClock("first_response", goal, "active", due_at=DUE)
    breached = TargetClock("next_response", goal, "breached", due_at=DUE, breached_at=DUE)
    assert sla_line([active, soon]).text == "first response due 2026-03-02 14:00 UTC"
    line = sla_line([active, breached], acknowledged=True)
    assert line.breached and "next response breached since 2026-03-02 14:00 UTC" in line.text
    assert line.text.endswith("(acknowledged)")
    assert sla_line([]).text == ""
    snoozed = sla_line([soon], snoozed_until=DUE)
    assert snoozed.text.endswith("snoozed until 2026-03-02 14:00 UTC")
