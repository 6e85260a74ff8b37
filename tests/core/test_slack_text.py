"""Slack message building: escaping, truncation, Block Kit limits (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inboxd.core.slack_text import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    FiredRule,
    TicketAlert,
    escape,
    excerpt,
    fit,
    rules_error_message,
    ticket_alert,
    truncate,
)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text string in the blocks, with the limit that applies to it."""
    out: list[str] = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        for item in block.get("fields", []) + block.get("elements", []):
            out.append(item["text"])
    return out


def test_escape_only_the_three_control_characters() -> None:
    assert escape("a & b <@U1> <!channel> *bold*") == (
        "a &amp; b &lt;@U1&gt; &lt;!channel&gt; *bold*"
    )


def test_truncate_prefers_word_boundary_and_marks_the_cut() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("one two three four five six", 16)
    assert cut == "one two three…" and len(cut) <= 16
    assert truncate("x" * 50, 10) == "x" * 9 + "…"
    assert truncate("anything", 0) == ""


def test_fit_never_leaves_half_an_entity() -> None:
    escaped = escape("ab<<<<")  # ab&lt;&lt;&lt;&lt;
    for limit in range(3, len(escaped)):
        cut = fit(escaped, limit)
        assert len(cut) <= limit
        body = cut.removesuffix("…")
        assert body.count("&") == body.count(";"), cut


def test_excerpt_squeezes_blank_lines_and_spaces() -> None:
    assert excerpt("  Hi   there\n\n\n\n\nBye \t now \n") == "Hi there\n\nBye now"
    assert len(excerpt("word " * 500)) <= 500


def alert(**kw: Any) -> TicketAlert:
    values: dict[str, Any] = {
        "ticket_id": 42,
        "subject": "Refund <script> & more",
        "requester": "carol@customer.example",
        "requester_name": "Carol",
        "priority": "urgent",
        "vip": True,
        "team": "billing",
        "assignee": "dana",
        "status": "open",
        "rules": (FiredRule("refunds", ("subject has 'refund'",)),),
        "text": "Please refund <!here> now & then.",
    }
    values.update(kw)
    return TicketAlert(**values)


def test_ticket_alert_carries_every_fact_escaped() -> None:
    msg = ticket_alert(alert())
    assert msg.text.startswith("New ticket #42 [urgent VIP] Refund &lt;script&gt; &amp; more")
    assert "Carol &lt;carol@customer.example&gt;" in msg.text and "rule: refunds" in msg.text
    header = msg.blocks[0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "#42 Refund <script> & more", "emoji": False},
    }
    body = "\n".join(texts(msg.blocks[1:]))
    assert "*Requester*\nCarol &lt;carol@customer.example&gt;" in body
    assert "*Priority*\nurgent :star: VIP" in body
    assert "*Team*\nbilling" in body and "*Assignee*\ndana" in body
    assert "`refunds`: subject has 'refund'" in body
    assert ">Please refund &lt;!here&gt; now &amp; then." in body
    assert "<!here>" not in json.dumps(msg.blocks)
    assert "status open" in body


def test_ticket_alert_reply_without_rules_or_routing() -> None:
    msg = ticket_alert(
        alert(new_ticket=False, rules=(), team=None, assignee=None, vip=False, text="", subject="")
    )
    assert msg.text.startswith("Customer reply #42 [urgent] (no subject)")
    body = "\n".join(texts(msg.blocks))
    assert "*Team*\n—" in body and "Rule" not in body and "VIP" not in body
    assert [b["type"] for b in msg.blocks] == ["header", "section", "context"]


def test_ticket_alert_respects_block_kit_limits() -> None:
    huge = "<&>" * 5000
    many = tuple(FiredRule(f"r{i}", (huge,)) for i in range(9))
    msg = ticket_alert(
        alert(subject=huge, requester=huge, team=huge, text=huge, rules=many, ticket_label="[#42]")
    )
    assert len(msg.blocks[0]["text"]["text"]) <= HEADER_LIMIT
    for field in msg.blocks[1]["fields"]:
        assert len(field["text"]) <= FIELD_LIMIT
    for block in msg.blocks[2:]:
        for text in texts([block]):
            assert len(text) <= SECTION_LIMIT
    rules_text = msg.blocks[2]["text"]["text"]
    assert "… and 4 more" in rules_text and "`r4`" in rules_text and "`r5`" not in rules_text
    assert len(msg.text) < 4000


def test_rules_error_message_lists_errors_and_cuts_at_whole_lines() -> None:
    errors = [f"rules/20-billing.yaml:{n}:5: unknown condition 'subjct' <x>" for n in range(1, 4)]
    msg = rules_error_message(errors, directory="rules/", trigger="SIGHUP")
    assert msg.text == (
        "inboxd rules reload rejected: 3 errors in rules/; the previous rules stay in force"
    )
    body = "\n".join(texts(msg.blocks))
    assert "*3 errors* in rules/ (trigger: SIGHUP)" in body
    assert "```\nrules/20-billing.yaml:1:5: unknown condition 'subjct' &lt;x&gt;\n" in body
    assert "inboxd rules check" in body and "more" not in body

    many = [f"rules/a.yaml:{n}:1: " + "y" * 400 for n in range(100)]
    msg = rules_error_message(many)
    code = msg.blocks[2]["text"]["text"]
    assert len(code) <= SECTION_LIMIT
    shown = [line for line in code.splitlines() if line.startswith("rules/a.yaml:")]
    assert 1 <= len(shown) <= 20
    assert all(len(line) <= 300 for line in shown)
    assert code.endswith(f"… and {100 - len(shown)} more")
    assert rules_error_message(["x"]).text.startswith("inboxd rules reload rejected: 1 error;")


def test_rules_error_message_cannot_break_out_of_the_code_block() -> None:
    msg = rules_error_message(["rules/a.yaml:1:1: bad ```value```"])
    code = msg.blocks[2]["text"]["text"]
    assert code.count("```") == 2


def test_mention_is_a_user_group_ping_and_nothing_else() -> None:
    from inboxd.core.sla.model import Recipient, parse_recipient
    from inboxd.core.slack_text import mention

    assert mention("S0123ABC") == "<!subteam^S0123ABC>"
    for bad in ("!channel", "here", "U0123ABC", "S0123ABC>", "<!subteam^S0123ABC>"):
        with pytest.raises(ValueError, match="user group id"):
            mention(bad)
    assert parse_recipient("mention:S0123ABC") == Recipient("mention", "S0123ABC")
    assert str(parse_recipient("mention:S0123ABC")) == "mention:S0123ABC"
    with pytest.raises(ValueError, match="mention:USERGROUP_ID"):
        parse_recipient("mention:@oncall")


def test_a_spike_without_a_thread_does_not_promise_one() -> None:
    from datetime import UTC, datetime, timedelta

    from inboxd.core.slack_text import spike_message

    at = datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    args = {"tag": "refund", "count": 12, "usual": 0.6, "window": timedelta(hours=1)}
    threaded = spike_message(**args, started_at=at)  # type: ignore[arg-type]
    alone = spike_message(**args, started_at=at, grouped=False)  # type: ignore[arg-type]
    assert "go into this thread" in json.dumps(threaded.blocks)
    assert "thread" not in json.dumps(alone.blocks)
    assert alone.text == threaded.text == "refund spike: 12 mails in 1 h against 0.6 usual"
