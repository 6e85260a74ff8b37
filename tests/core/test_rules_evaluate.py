"""Every condition and action, and the ordering / stop / priority / first-wins semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from core.rules_kit import ctx, msg, ruleset

from inboxd.core.model import Attachment
from inboxd.core.rules import evaluate


def rules_of(body: str, **kw: object):  # type: ignore[no-untyped-def]
    return ruleset("rules:\n" + body, **kw)


def names(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.rule for h in decision.hits]


def fires(cond: str, m, c=None, **kw: object) -> bool:  # type: ignore[no-untyped-def]
    rs = rules_of(
        f"  - name: r\n    on: [new, reply]\n    when: {cond}\n    then: {{tag: x}}\n", **kw
    )
    return names(evaluate(rs, m, c or ctx())) == ["r"]


# -- sender / recipient ---------------------------------------------------------------


def test_from_glob_is_case_insensitive() -> None:
    assert fires("{from: '*@Customer.example'}", msg(sender="Bob@customer.example"))
    assert not fires("{from: '*@customer.example'}", msg(sender="bob@other.example"))
    assert not fires("{from: '*@customer.example'}", msg(sender=None))


def test_from_list_any_matches() -> None:
    cond = "{from: ['noreply@*', 'alerts@x.example']}"
    assert fires(cond, msg(sender="noreply@shop.example"))
    assert fires(cond, msg(sender="alerts@x.example"))
    assert not fires(cond, msg(sender="reply@shop.example"))


def test_from_domain_includes_subdomains_but_not_lookalikes() -> None:
    cond = "{from_domain: acme.com}"
    assert fires(cond, msg(sender="a@acme.com"))
    assert fires(cond, msg(sender="a@mail.eu.acme.com"))
    assert not fires(cond, msg(sender="a@notacme.com"))
    assert not fires(cond, msg(sender="a@acme.com.evil.example"))


def test_from_domain_glob() -> None:
    assert fires("{from_domain: 'acme.*'}", msg(sender="a@acme.de"))
    assert not fires("{from_domain: 'acme.*'}", msg(sender="a@acme-corp.de"))


def test_to_cc_recipient() -> None:
    m = msg(to=("sales@example.com",), cc=("billing@example.com",))
    assert fires("{to: 'sales@*'}", m)
    assert not fires("{to: 'billing@*'}", m)
    assert fires("{cc: 'billing@*'}", m)
    assert fires("{recipient: 'billing@*'}", m)
    assert not fires("{recipient: 'ceo@*'}", m)


def test_mailbox_by_name_or_address() -> None:
    assert fires("{mailbox: support}", msg(), ctx(mailbox="support"))
    assert fires("{mailbox: 'support@*'}", msg(), ctx(mailbox="support"))
    assert not fires("{mailbox: sales}", msg(), ctx(mailbox="support"))


# -- keywords ---------------------------------------------------------------------------


def test_subject_keywords_whole_words_any_case() -> None:
    cond = "{subject: [refund, 'credit card']}"
    assert fires(cond, msg(subject="Please REFUND me"))
    assert fires(cond, msg(subject="my Credit   Card was charged"))
    assert not fires(cond, msg(subject="refunds are great"))
    assert not fires(cond, msg(subject="prefund"))
    assert not fires(cond, msg(subject="credit cards"))


def test_keywords_fold_accents_both_ways() -> None:
    assert fires("{subject: Rückerstattung}", msg(subject="RUCKERSTATTUNG bitte"))
    assert fires("{subject: ruckerstattung}", msg(subject="Rückerstattung bitte"))
    assert fires("{subject: facture}", msg(subject="Votre FACTURE n°1"))
    assert fires("{body: 'remboursé'}", msg(text="J'ai été\nremboursé hier"))


def test_keyword_with_punctuation_edges() -> None:
    assert fires("{body: 'c++'}", msg(text="we use C++, mostly"))
    assert fires("{body: '#123'}", msg(text="see ticket#123 please"))
    assert not fires("{body: 'c++'}", msg(text="we use c+"))


def test_keywords_all_mode_needs_every_word() -> None:
    cond = "{body: {all: [invoice, overdue]}}"
    assert fires(cond, msg(text="your invoice is overdue"))
    assert not fires(cond, msg(text="your invoice is here"))


def test_subject_and_body_are_separate_fields() -> None:
    assert not fires("{subject: refund}", msg(subject="hi", text="refund"))
    assert not fires("{body: refund}", msg(subject="refund", text="hi"))


def test_body_keywords_only_in_first_64k() -> None:
    far = "x " * 40_000 + "refund"
    assert not fires("{body: refund}", msg(text=far))
    assert fires("{body: refund}", msg(text="refund " + far))


def test_multiline_body_whitespace_collapses() -> None:
    assert fires("{body: 'double charged'}", msg(text="I was double\r\n  charged"))


# -- regex ----------------------------------------------------------------------------


def test_regex_is_case_insensitive_re2() -> None:
    cond = r"{body: {regex: '\bHTTP 5\d\d\b'}}"
    assert fires(cond, msg(text="got http 503 today"))
    assert not fires(cond, msg(text="got http 404 today"))


def test_regex_case_sensitive_opt_in() -> None:
    assert not fires("{subject: {regex: '(?-i:URGENT)'}}", msg(subject="urgent"))
    assert fires("{subject: {regex: '(?-i:URGENT)'}}", msg(subject="URGENT"))


def test_regex_list_is_any_and_combines_with_keywords() -> None:
    cond = "{subject: {any: [order], regex: ['#\\d{5}', 'ord-\\d+']}}"
    assert fires(cond, msg(subject="order ORD-12"))
    assert not fires(cond, msg(subject="order 12"))
    assert not fires(cond, msg(subject="ORD-12"))


def test_regex_sees_only_first_64k_of_body() -> None:
    far = "x" * 70_000 + " outage"
    assert not fires("{body: {regex: outage}}", msg(text=far))


# -- headers, attachments -------------------------------------------------------------


def test_header_tests() -> None:
    m = msg(headers=(("X-Spam-Flag", "YES"), ("List-Id", "<news.shop.example>")))
    assert fires("{header: {name: x-spam-flag, equals: 'yes'}}", m)
    assert fires("{header: {name: List-Id, exists: true}}", m)
    assert not fires("{header: {name: List-Id, exists: false}}", m)
    assert fires("{header: {name: X-Nope, exists: false}}", m)
    assert fires("{header: {name: list-id, any: [shop, other]}}", m)
    assert not fires("{header: {name: list-id, all: [shop, other]}}", m)
    assert fires("{header: {name: List-Id, regex: 'news\\.'}}", m)
    assert not fires("{header: {name: X-Spam-Flag, equals: 'no'}}", m)


def test_header_checks_every_occurrence() -> None:
    m = msg(headers=(("Received", "from a"), ("Received", "from relay.bad.example")))
    assert fires("{header: {name: received, any: ['bad.example']}}", m)


def _att(name: str, ctype: str, inline: bool = False) -> Attachment:
    return Attachment(name, ctype, b"x", inline=inline)


def test_attachment_presence_ignores_inline_images() -> None:
    assert fires("{attachment: true}", msg(attachments=(_att("a.pdf", "application/pdf"),)))
    assert not fires("{attachment: true}", msg(attachments=(_att("l.png", "image/png", True),)))
    assert fires("{attachment: false}", msg())


def test_attachment_type_by_content_type_or_name() -> None:
    m = msg(attachments=(_att("Report.XLSX", "application/octet-stream"),))
    assert fires("{attachment_type: '*.xlsx'}", m)
    assert not fires("{attachment_type: 'image/*'}", m)
    assert fires("{attachment_type: 'image/*'}", msg(attachments=(_att("p", "image/jpeg"),)))


# -- VIP, new/reply, time -------------------------------------------------------------


VIPS = "vip:\n  domains: [acme.com]\n  addresses: [Boss@Startup.example]\n"


def test_vip_condition_from_lists_and_ticket() -> None:
    assert fires("{vip: true}", msg(sender="x@eu.acme.com"), teams=True) is False  # no list
    rs = ruleset(VIPS, "rules:\n  - {name: v, when: {vip: true}, then: {tag: v}}\n")
    assert names(evaluate(rs, msg(sender="x@eu.acme.com"), ctx())) == ["v"]
    assert names(evaluate(rs, msg(sender="boss@startup.example"), ctx())) == ["v"]
    assert names(evaluate(rs, msg(sender="x@other.example"), ctx())) == []
    assert names(evaluate(rs, msg(sender="x@other.example"), ctx(ticket_vip=True))) == ["v"]


def test_vip_list_file() -> None:
    rs = ruleset(
        "vip: {files: [vip.txt]}\nrules:\n  - {name: v, when: {vip: true}, then: {tag: v}}\n",
        lists={"vip.txt": "# customers\nglobex.example\n\ncfo@initech.example  # the CFO\n"},
    )
    assert names(evaluate(rs, msg(sender="a@hq.globex.example"), ctx())) == ["v"]
    assert names(evaluate(rs, msg(sender="cfo@initech.example"), ctx())) == ["v"]
    assert names(evaluate(rs, msg(sender="ceo@initech.example"), ctx())) == []


def test_vip_marked_by_earlier_rule_counts_later() -> None:
    rs = rules_of(
        "  - {name: mark, when: {from: '*@acme.com'}, then: {vip: true}}\n"
        "  - {name: later, when: {vip: true}, then: {tag: seen}}\n"
    )
    d = evaluate(rs, msg(sender="a@acme.com"), ctx())
    assert names(d) == ["mark", "later"] and d.vip
    assert "marked VIP by rule 'mark'" in d.hits[1].reasons[0]


def test_on_defaults_to_new() -> None:
    rs = rules_of(
        "  - {name: n, then: {tag: n}}\n"
        "  - {name: r, on: reply, then: {tag: r}}\n"
        "  - {name: b, on: [new, reply], then: {tag: b}}\n"
    )
    assert names(evaluate(rs, msg(), ctx(is_new=True))) == ["n", "b"]
    assert names(evaluate(rs, msg(), ctx(is_new=False))) == ["r", "b"]


CAL = """
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: 09:00-17:30}
    holidays: [2025-12-25]
"""


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (datetime(2025, 3, 5, 7, 59, tzinfo=UTC), False),  # 08:59 Berlin
        (datetime(2025, 3, 5, 8, 0, tzinfo=UTC), True),  # 09:00 Berlin
        (datetime(2025, 3, 5, 16, 29, tzinfo=UTC), True),
        (datetime(2025, 3, 5, 16, 30, tzinfo=UTC), False),  # 17:30 Berlin
        (datetime(2025, 3, 8, 10, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2025, 12, 25, 10, 0, tzinfo=UTC), False),  # holiday
        (datetime(2025, 7, 1, 15, 29, tzinfo=UTC), True),  # summer time: 17:29
    ],
)
def test_business_hours(when: datetime, inside: bool) -> None:
    rs = ruleset(CAL, "rules:\n  - {name: b, when: {business_hours: office}, then: {tag: b}}\n")
    assert (names(evaluate(rs, msg(), ctx(now=when))) == ["b"]) is inside


def test_business_hours_24x7_builtin() -> None:
    assert fires("{business_hours: 24x7}", msg())


def test_time_of_day_overnight_with_days_and_timezone() -> None:
    cond = "{time: {between: '22:00-06:00', days: fri, timezone: America/New_York}}"
    fri_late = datetime(2025, 3, 8, 3, 30, tzinfo=UTC)  # Fri 22:30 in New York
    sat_early = datetime(2025, 3, 8, 10, 0, tzinfo=UTC)  # Sat 05:00 NY: Friday night
    sat_late = datetime(2025, 3, 9, 3, 30, tzinfo=UTC)  # Sat 22:30 NY
    assert fires(cond, msg(), ctx(now=fri_late))
    assert fires(cond, msg(), ctx(now=sat_early))
    assert not fires(cond, msg(), ctx(now=sat_late))
    assert fires("{time: '09:00-10:00'}", msg(), ctx(now=datetime(2025, 1, 1, 9, 0, tzinfo=UTC)))
    assert not fires("{time: '09:00-10:00'}", msg(), ctx(now=datetime(2025, 1, 1, 10, tzinfo=UTC)))


# -- combinators ----------------------------------------------------------------------


def test_all_any_not_and_implicit_all() -> None:
    m = msg(sender="a@acme.com", subject="refund now")
    assert fires("{all: [{from_domain: acme.com}, {subject: refund}]}", m)
    assert not fires("{all: [{from_domain: acme.com}, {subject: invoice}]}", m)
    assert fires("{any: [{from_domain: x.example}, {subject: refund}]}", m)
    assert not fires("{any: [{from_domain: x.example}, {subject: invoice}]}", m)
    assert fires("{not: {subject: invoice}}", m)
    assert not fires("{not: {subject: refund}}", m)
    assert fires("{from_domain: acme.com, subject: refund}", m)  # keys of one mapping: all
    assert not fires("{from_domain: acme.com, subject: invoice}", m)
    assert fires("[{from_domain: acme.com}, {subject: refund}]", m)  # a list: all


def test_not_of_keyword_fires_without_any_keyword_hit() -> None:
    # the gating index must not skip rules whose keywords only appear under not
    assert fires("{not: {body: {any: [refund]}}}", msg(text="nothing here"))
    assert fires("{any: [{subject: refund}, {from: '*@acme.com'}]}", msg(sender="a@acme.com"))


# -- actions and semantics ------------------------------------------------------------


def test_every_action_lands_in_the_decision() -> None:
    rs = rules_of(
        "  - name: all-actions\n"
        "    then:\n"
        "      tag: [a, B]\n"
        "      untag: old\n"
        "      priority: high\n"
        "      vip: true\n"
        "      team: billing\n"
        "      assignee: Dana@example.com\n"
        "      sla: standard\n"
        "      auto_reply: ack\n"
        "      slack: ['#one', '#two']\n"
        "      status: pending\n"
        "      group: 1h30m\n",
        known_templates={"ack"},
    )
    d = evaluate(rs, msg(), ctx())
    assert d.tags == ("a", "b") and d.untags == ("old",)
    assert (d.priority, d.vip, d.team, d.assignee, d.sla) == (
        "high",
        True,
        "billing",
        "dana",
        "standard",
    )
    assert (d.auto_reply, d.slack, d.status) == ("ack", ("#one", "#two"), "pending")
    assert d.group_window == timedelta(hours=1, minutes=30)
    assert "group_window=1h30m" in d.hits[0].applied
    assert d.origin("team") == "all-actions"


def test_all_matching_rules_apply_until_stop() -> None:
    rs = rules_of(
        "  - {name: one, then: {tag: one}}\n"
        "  - {name: two, when: {subject: spam}, then: {tag: two, stop: true}}\n"
        "  - {name: three, then: {tag: three}}\n"
    )
    assert evaluate(rs, msg(subject="hello"), ctx()).tags == ("one", "three")
    d = evaluate(rs, msg(subject="spam"), ctx())
    assert d.tags == ("one", "two") and names(d) == ["one", "two"]
    assert d.hits[1].applied[-1] == "stop"


def test_first_rule_wins_team_assignee_sla_and_later_are_overridden() -> None:
    rs = rules_of(
        "  - {name: vip, then: {team: billing, sla: vip, assignee: dana}}\n"
        "  - {name: outage, then: {team: sre, sla: standard, assignee: alice}}\n"
    )
    d = evaluate(rs, msg(), ctx())
    assert (d.team, d.sla, d.assignee) == ("billing", "vip", "dana")
    assert d.hits[1].applied == ()
    assert d.hits[1].overridden == (
        "team=sre (already billing <- vip)",
        "assignee=alice (already dana <- vip)",
        "sla=standard (already vip <- vip)",
    )


def test_priority_highest_wins_regardless_of_order() -> None:
    rs = rules_of(
        "  - {name: vip, when: {from_domain: acme.com}, then: {priority: high}}\n"
        "  - {name: outage, when: {subject: outage}, then: {priority: urgent}}\n"
        "  - {name: default, then: {priority: normal}}\n"
    )
    d = evaluate(rs, msg(sender="a@acme.com", subject="outage"), ctx())
    assert d.priority == "urgent" and d.origin("priority") == "outage"
    assert d.hits[2].overridden == ("priority=normal (already urgent <- outage)",)
    assert evaluate(rs, msg(subject="hi"), ctx()).priority == "normal"
    rs2 = rules_of(
        "  - {name: low, then: {priority: low}}\n  - {name: hi, then: {priority: high}}\n"
    )
    assert evaluate(rs2, msg(), ctx()).priority == "high"


def test_tags_accumulate_and_later_untag_removes() -> None:
    rs = rules_of(
        "  - {name: a, then: {tag: [x, y]}}\n"
        "  - {name: b, then: {untag: x, tag: z}}\n"
        "  - {name: c, then: {tag: y}}\n"
    )
    d = evaluate(rs, msg(), ctx())
    assert d.tags == ("y", "z") and d.untags == ("x",)


def test_slack_channels_deduplicate_in_order() -> None:
    rs = rules_of(
        "  - {name: a, then: {slack: '#a'}}\n  - {name: b, then: {slack: ['#b', '#a']}}\n"
    )
    assert evaluate(rs, msg(), ctx()).slack == ("#a", "#b")


def test_reasons_name_the_condition_and_keyword() -> None:
    rs = rules_of(
        "  - name: billing\n"
        "    when:\n"
        "      all:\n"
        "        - subject: [invoice, refund]\n"
        "        - from_domain: acme.com\n"
        "        - not: {header: {name: X-Spam-Flag, equals: 'YES'}}\n"
        "    then: {team: billing}\n"
    )
    d = evaluate(rs, msg(sender="a@mail.acme.com", subject="Refund please"), ctx())
    assert d.hits[0].reasons == (
        "subject contains 'refund'",
        "from_domain 'mail.acme.com' matches 'acme.com'",
        "not (header x-spam-flag equals 'YES')",
    )
    assert (d.hits[0].file, d.hits[0].line) == ("rules/11-t.yaml", 2)


def test_disabled_rule_never_fires() -> None:
    rs = rules_of("  - {name: off, enabled: false, then: {tag: x}}\n")
    assert evaluate(rs, msg(), ctx()).hits == ()


def test_many_rules_only_relevant_ones_fire() -> None:
    body = "".join(
        f"  - {{name: r{i}, when: {{subject: [kw{i}, 'shared{i % 7}']}}, then: {{tag: t{i}}}}}\n"
        for i in range(300)
    )
    rs = rules_of(body)
    d = evaluate(rs, msg(subject="about kw42 and KW299"), ctx())
    assert names(d) == ["r42", "r299"]
    d = evaluate(rs, msg(subject="shared3"), ctx())
    assert names(d) == [f"r{i}" for i in range(300) if i % 7 == 3]
