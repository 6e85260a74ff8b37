"""In a reply, body conditions see only what the sender wrote this time."""

from __future__ import annotations

import dataclasses

from core.rules_kit import ctx, msg, ruleset

from inboxd.core.rules import evaluate

RULES = """
rules:
  - name: refunds
    on: [new, reply]
    when: {body: {any: [refund]}}
    then: {tag: refund}
"""


def test_quoted_history_does_not_refire_in_a_reply() -> None:
    rules = ruleset(RULES)
    quoted = msg(text="Thanks, that works.\n\n> I want a refund")
    reply = dataclasses.replace(quoted, new_text="Thanks, that works.")
    assert "refund" not in evaluate(rules, reply, ctx(is_new=False)).tags
    assert "refund" in evaluate(rules, reply, ctx(is_new=True)).tags


def test_new_words_in_a_reply_fire() -> None:
    rules = ruleset(RULES)
    reply = dataclasses.replace(
        msg(text="Now I want a refund.\n> old"), new_text="Now I want a refund."
    )
    assert "refund" in evaluate(rules, reply, ctx(is_new=False)).tags
