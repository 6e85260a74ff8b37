"""``sentiment:`` as a rule condition: VADER on the mail's new text, unknown for
text it cannot score (never negative), scored only when a rule asks."""

from __future__ import annotations

import dataclasses

import pytest
from core.rules_kit import ctx, errors, msg, ruleset

from inboxd.core.rules import conditions, evaluate
from inboxd.core.sentiment import score

ANGRY = (
    "This is unacceptable. I have waited three weeks for my refund and nobody answers. "
    "Your service is terrible and I am furious."
)
HAPPY = "Thank you so much, the new printer works great and your team was wonderful!"
PLAIN = "Hello, please send me a copy of my invoice for March."
GERMAN = "Das ist eine Katastrophe, ich warte seit drei Wochen und niemand antwortet. Schrecklich!"
SPANISH = "Es terrible, nadie contesta y quiero mi dinero ahora mismo."

PAGE = """
rules:
  - name: angry
    when: {sentiment: negative}
    then: {priority: high, slack: "#support-leads"}
"""


def names(text: str, rules: str = PAGE, *, is_new: bool = True) -> list[str]:
    decision = evaluate(ruleset(rules), msg(text=text), ctx(is_new=is_new))
    return [h.rule for h in decision.hits]


def test_an_angry_mail_raises_priority_and_pages_slack() -> None:
    decision = evaluate(ruleset(PAGE), msg(text=ANGRY), ctx())
    assert [h.rule for h in decision.hits] == ["angry"]
    assert decision.priority == "high"
    assert decision.slack == ("#support-leads",)
    (reason,) = decision.hits[0].reasons
    assert reason.startswith("sentiment negative: score -0.") and reason.endswith("<= -0.50")


@pytest.mark.parametrize("text", [HAPPY, PLAIN])
def test_calm_english_is_not_negative(text: str) -> None:
    assert names(text) == []


@pytest.mark.parametrize("text", [GERMAN, SPANISH, "ok!!", ""])
def test_text_it_cannot_score_is_unknown_never_negative(text: str) -> None:
    assert score(text).label == "unknown"
    assert names(text) == []
    unknown = "rules:\n  - {name: u, when: {sentiment: unknown}, then: {tag: other-language}}\n"
    assert names(text, unknown) == ["u"]


def test_threshold_and_positive() -> None:
    strict = (
        "rules:\n  - {name: a, when: {sentiment: {is: negative, threshold: 0.99}},"
        " then: {tag: x}}\n"
    )
    assert names(ANGRY, strict) == []  # angry, but not -0.99 angry
    mild = (
        "rules:\n  - {name: a, when: {sentiment: {is: negative, threshold: 0.1}}, then: {tag: x}}\n"
    )
    assert names(ANGRY, mild) == ["a"]
    praise = "rules:\n  - {name: p, when: {sentiment: positive}, then: {tag: praise}}\n"
    assert names(HAPPY, praise) == ["p"]
    assert names(ANGRY, praise) == []


def test_only_the_new_text_of_a_reply_is_scored() -> None:
    m = msg(text=PLAIN + "\n\n> " + ANGRY)
    m = dataclasses.replace(m, new_text=PLAIN)
    decision = evaluate(ruleset(PAGE), m, ctx(is_new=False))
    assert decision.hits == ()


def test_scored_once_and_only_when_a_rule_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(text: str) -> object:
        calls.append(text)
        return score(text)

    monkeypatch.setattr(conditions, "score", counting)
    two = """
rules:
  - {name: a, when: {sentiment: negative}, then: {tag: a}}
  - {name: b, when: {sentiment: {is: negative, threshold: 0.2}}, then: {tag: b}}
  - {name: c, when: {subject: refund, sentiment: negative}, then: {tag: c}}
"""
    assert names(ANGRY, two) == ["a", "b"]
    assert len(calls) == 1
    calls.clear()
    plain = "rules:\n  - {name: r, when: {subject: refund}, then: {tag: r}}\n"
    assert names(ANGRY, plain) == []
    guarded = (
        "rules:\n  - {name: r, when: [{subject: refund}, {sentiment: negative}], then: {tag: r}}\n"
    )
    assert names(ANGRY, guarded) == []
    assert calls == []


def test_bad_sentiment_values_are_file_line_errors() -> None:
    bad = errors(
        "rules:\n"
        "  - {name: a, when: {sentiment: angry}, then: {tag: x}}\n"
        "  - {name: b, when: {sentiment: {is: negative, threshold: 2}}, then: {tag: x}}\n"
        "  - {name: c, when: {sentiment: {threshold: 0.5}}, then: {tag: x}}\n"
        "  - {name: d, when: {sentiment: {is: negative, level: 1}}, then: {tag: x}}\n"
    )
    assert bad == [
        "rules/10-t.yaml:2:33: sentiment: unknown value 'angry'"
        " (expected one of: negative, positive, unknown)",
        "rules/10-t.yaml:3:59: sentiment: threshold '2' must be a number above 0 and at most 1",
        "rules/10-t.yaml:4:33: sentiment: 'is' is required (e.g. is: negative)",
        "rules/10-t.yaml:5:48: unknown sentiment key 'level' (expected one of: is, threshold)",
    ]
