"""Loading rule files: structure, YAML quirks, and every validation error with line:column."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from core.rules_kit import TEAMS, errors, load, ruleset

from inboxd.core.rules import RuleError, load_rules, parse_duration
from inboxd.core.sla.model import Duration, Recipient, Stage, When


def rule(body: str) -> str:
    return "rules:\n  - name: a\n" + body


# -- structure --------------------------------------------------------------------------


def test_teams_agents_and_lookup_by_email() -> None:
    rs = ruleset(
        """
        agents:
          gina: {email: Gina@Example.com, display_name: Gina G}
        teams:
          ops:
            lead: gina
            assignment: least_open
            agents: [gina, {name: hal, email: hal@example.com}]
          night:
            agents: [gina]
        """,
        teams=False,
    )
    ops = rs.teams["ops"]
    assert [a.name for a in ops.agents] == ["gina", "hal"]
    assert (ops.lead, ops.assignment) == ("gina", "least_open")
    assert rs.teams["night"].assignment == "none"
    gina = rs.agent_by_email(" GINA@example.com ")
    assert gina is not None and gina.teams == ("ops", "night") and gina.display_name == "Gina G"
    assert rs.agent_by_email("nobody@example.com") is None


def test_definitions_may_come_after_their_use_in_a_later_file() -> None:
    rs = load(
        "rules:\n  - {name: a, then: {team: late, sla: s}}\n",
        "teams: {late: {agents: [{name: z, email: z@x.example}]}}\n"
        "sla_policies: {s: {first_response: 1h}}\n",
    ).ruleset
    assert rs is not None and rs.rules[0].then.team == "late"


def test_calendars_and_sla_policies() -> None:
    rs = ruleset(
        """
        calendars:
          office:
            timezone: Europe/Berlin
            hours:
              mon-thu: 09:00-12:00, 13:00-17:30
              fri: [09:00-12:00]
              sat: closed
            holidays: [2025-12-25]
        sla_policies:
          gold:
            calendar: office
            first_response: 1h30m
            resolution: 2d
            warn_before: 10m
            pause_when: pending
        """,
        teams=False,
    )
    cal = rs.calendars["office"]
    assert cal.hours[0] == ((540, 720), (780, 1050)) and cal.hours[4] == ((540, 720),)
    assert cal.hours[5] == () and cal.hours[6] == ()
    assert "24x7" in rs.calendars
    gold = rs.sla_policies["gold"]
    assert gold.calendar == "office" and gold.first_response == Duration(5400, "seconds")
    assert gold.resolution == Duration(2, "days") and gold.pause_when == ("pending",)
    # warn_before is a stage: remind the assignee 10 business minutes before each breach
    assert gold.stages == (
        Stage(
            When("before", offset=Duration(600)),
            "remind",
            (Recipient("assignee"),),
            ("first_response", "resolution"),
        ),
    )


def test_yaml_scalars_stay_strings() -> None:
    # safe_load would read 'no' as False and 17:30 as 1050 (sexagesimal)
    rs = ruleset(
        "calendars: {c: {timezone: UTC, hours: {mon: 08:00-17:30}}}\n"
        "rules:\n  - {name: a, when: {subject: [no, 'on', 404]}, then: {tag: no}}\n",
        teams=False,
    )
    assert rs.calendars["c"].hours[0] == ((480, 1050),)
    assert rs.rules[0].then.tags == ("no",)


def test_rule_keeps_description_and_position() -> None:
    rs = ruleset("rules:\n  - name: a\n    description: Why it exists\n    then: {tag: x}\n")
    rule = rs.rules[0]
    assert (rule.name, rule.description, rule.file, rule.line) == (
        "a",
        "Why it exists",
        "rules/11-t.yaml",
        2,
    )
    assert rule.on == frozenset({"new"}) and rule.when is None


def test_empty_file_and_version_are_fine() -> None:
    assert load("", "version: 1\n").errors == []


def test_durations() -> None:
    assert parse_duration("1w2d3h4m5s") == timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)
    for bad in ("", "4", "h", "0m", "1.5h", "4 hours"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_rule_error_str_and_order() -> None:
    a = RuleError("rules/a.yaml", 3, 5, "x")
    assert str(a) == "rules/a.yaml:3:5: x"
    b = RuleError("rules/a.yaml", 3, 12, "y")
    c = RuleError("rules/b.yaml", 1, 1, "z")
    assert sorted([c, b, a]) == [a, b, c]


# -- validation errors, each with its position --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            rule("    when:\n      subjct: refund\n    then: {tag: x}\n"),
            "rules/11-t.yaml:4:7: unknown condition 'subjct' (did you mean 'subject'?)",
        ),
        (
            rule("    then: {teem: billing}\n"),
            "rules/11-t.yaml:3:12: unknown action 'teem' (did you mean 'team'?)",
        ),
        (
            rule("    then: {team: bilin}\n"),
            "rules/11-t.yaml:3:18: unknown team 'bilin' (did you mean 'billing'?)",
        ),
        (
            rule("    then: {assignee: zed}\n"),
            "rules/11-t.yaml:3:22: unknown agent 'zed' (expected one of: alice, dana)",
        ),
        (
            rule("    then: {sla: vipp}\n"),
            "rules/11-t.yaml:3:17: unknown sla 'vipp' (did you mean 'vip'?)",
        ),
        (
            rule("    when: {business_hours: ofice}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:28: unknown calendar 'ofice' (expected one of: 24x7)",
        ),
        (
            rule("    then: {tag: x}\n    then: {tag: y}\n"),
            "rules/11-t.yaml:4:5: duplicate key 'then' (first at line 3:5)",
        ),
        (
            rule("    when: {body: {regex: 'a(b'}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:26: body: bad regex /a(b/: missing ): a(b",
        ),
        (
            rule("    when: {subject: {regex: '(a)\\1'}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:29: subject: bad regex /(a)\\1/: invalid escape sequence: \\1",
        ),
        (
            rule("    when: {header: {name: X-A, regex: '(?P<x'}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:39: header: bad regex /(?P<x/: invalid named capture group: (?P<x",
        ),
        (
            rule("    then: {stop: true}\n  - name: b\n    then: {tag: x}\n"),
            "rules/11-t.yaml:4:5: rule 'b' can never run: rule 'a' (rules/11-t.yaml:2:5) "
            "stops every new message before it",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon-fri: 09:00-1730}\n",
            "rules/11-t.yaml:4:22: calendar 'c': hours mon-fri: bad time range '09:00-1730': "
            "expected HH:MM-HH:MM",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon-fri: 09:00-09:00}\n",
            "rules/11-t.yaml:4:22: calendar 'c': hours mon-fri: bad time range '09:00-09:00': "
            "end must be after start",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon-fry: 09:00-17:00}\n",
            "rules/11-t.yaml:4:13: calendar 'c': bad day 'fry' in 'mon-fry': "
            "use mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            "calendars:\n  c:\n    timezone: Europe/Berln\n    hours: {mon: 09:00-17:00}\n",
            "rules/11-t.yaml:3:15: calendar 'c': unknown timezone 'Europe/Berln' "
            "(did you mean 'Europe/Berlin'?)",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon: 9-5}\n",
            "rules/11-t.yaml:4:18: calendar 'c': hours mon: bad time range '9-5': "
            "expected HH:MM-HH:MM",
        ),
        (
            rule("    when: {time: '25:00-06:00'}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:18: time: bad time range '25:00-06:00': expected HH:MM-HH:MM",
        ),
        (
            "rules:\n  - name: [a\n",
            "rules/11-t.yaml:3:1: YAML syntax: did not find expected ',' or ']' "
            "(while parsing a flow sequence)",
        ),
        ("rulez: []\n", "rules/11-t.yaml:1:1: unknown section 'rulez' (did you mean 'rules'?)"),
        (
            rule("    then: {priority: hihg}\n"),
            "rules/11-t.yaml:3:22: unknown priority 'hihg' (did you mean 'high'?)",
        ),
        (
            rule("    then: {status: close}\n"),
            "rules/11-t.yaml:3:20: unknown status 'close' (did you mean 'closed'?)",
        ),
        (
            rule("    when: {from: acme.com}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:18: from: 'acme.com' has no '@' and can never match an address "
            "(did you mean from_domain?)",
        ),
        (
            rule("    when: {from_domain: 'a@acme.com'}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:25: from_domain: 'a@acme.com' is an address (use from:)",
        ),
        (
            rule("    then: {group: 2 hours}\n"),
            "rules/11-t.yaml:3:19: group: bad duration '2 hours': expected e.g. 30m, 4h, 1h30m, 3d",
        ),
        (
            rule("    when: {attachment: maybe}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:24: attachment: expected true or false, got 'maybe'",
        ),
        (
            rule("    on: [new, replies]\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:15: on: unknown kind 'replies' (did you mean 'reply'?)",
        ),
        (
            rule("    when: {any: {subject: x}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:17: any: expected a non-empty list of conditions, got a mapping",
        ),
        (
            rule("    when: {}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:11: empty condition",
        ),
        (rule("    then: {}\n"), "rules/11-t.yaml:3:11: then: a rule needs at least one action"),
        (
            rule("    when: {subject: x}\n"),
            "rules/11-t.yaml:2:5: rule 'a': 'then' is required (what the rule does)",
        ),
        ("rules:\n  - then: {tag: x}\n", "rules/11-t.yaml:2:5: rule: 'name' is required"),
        (
            rule("    then: {tag: 'two words'}\n"),
            "rules/11-t.yaml:3:17: tag: bad tag 'two words' (no spaces or commas)",
        ),
        (
            rule("    when: {header: {name: X-A, containz: b}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:32: unknown header test 'containz' "
            "(expected one of: all, any, equals, exists, name, regex)",
        ),
        (
            rule("    when: {subject: {any: ['  ']}}\n    then: {tag: x}\n"),
            "rules/11-t.yaml:3:28: subject any: value is empty",
        ),
        (
            rule("    then: {vip: false}\n"),
            "rules/11-t.yaml:3:17: vip: only 'vip: true' is meaningful (rules never un-VIP)",
        ),
        (
            "version: 2\n",
            "rules/11-t.yaml:1:10: unsupported version '2' (this inboxd reads version 1)",
        ),
        (
            "sla_policies:\n  s: {warn_before: 5m}\n",
            "rules/11-t.yaml:2:3: SLA policy 's': set at least one of first_response, "
            "next_response, resolution",
        ),
        (
            "teams:\n  t:\n    lead: alice\n    agents: [dana]\n",
            "rules/11-t.yaml:3:11: lead 'alice' is not an agent of team 't'",
        ),
        (
            "teams:\n  t: {assignment: round_robin}\n",
            "rules/11-t.yaml:2:3: team 't' assigns round_robin but has no agents",
        ),
        (
            "teams:\n  billing: {}\n",
            "rules/11-t.yaml:2:3: team 'billing' is already defined at rules/10-t.yaml:6:3",
        ),
        (
            "agents:\n  alice: {email: other@example.com}\n",
            "rules/11-t.yaml:2:10: agent 'alice' is already defined with alice@example.com "
            "at rules/10-t.yaml:5:9",
        ),
        (
            "agents:\n  al: {email: Alice@example.com}\n",
            "rules/11-t.yaml:2:15: address alice@example.com already belongs to agent 'alice'",
        ),
        (
            "agents:\n  Al Ice: {email: al@example.com}\n",
            "rules/11-t.yaml:2:3: bad agent name 'Al Ice': use lowercase letters, digits, '.', "
            "'_' or '-' (the full name goes in display_name)",
        ),
        (
            "vip: {files: [vips.txt]}\n",
            "rules/11-t.yaml:1:15: VIP list file 'vips.txt' not found next to the rules",
        ),
        (
            "vip: {domains: ['*@x']}\n",
            "rules/11-t.yaml:1:17: bad VIP domain '*@x' (a domain covers its subdomains; "
            "no wildcards needed)",
        ),
    ],
)
def test_each_error_names_file_line_column(text: str, expected: str) -> None:
    assert errors(TEAMS, text) == [expected]


def test_unknown_template_only_checked_when_templates_known() -> None:
    text = "rules:\n  - {name: a, then: {auto_reply: ackk}}\n"
    assert errors(text) == []
    assert errors(text, known_templates={"ack"}) == [
        "rules/10-t.yaml:2:34: unknown template 'ackk' (did you mean 'ack'?)"
    ]


def test_duplicate_rule_name_across_files_names_the_first() -> None:
    assert errors(
        "rules:\n  - {name: a, then: {tag: x}}\n", "rules:\n\n  - {name: a, then: {tag: y}}\n"
    ) == ["rules/11-t.yaml:3:12: duplicate rule name 'a' (first defined at rules/10-t.yaml:2:5)"]


def test_disabled_rules_still_validated_and_named() -> None:
    assert errors(
        "rules:\n  - {name: a, enabled: false, then: {team: nope}}\n  - {name: a, then: {tag: x}}\n"
    ) == [
        "rules/10-t.yaml:2:44: unknown team 'nope'",
        "rules/10-t.yaml:3:12: duplicate rule name 'a' (first defined at rules/10-t.yaml:2:5)",
    ]


def test_stop_for_new_does_not_hide_reply_rules() -> None:
    text = (
        "rules:\n  - {name: a, then: {stop: true}}\n"
        "  - {name: b, on: reply, then: {tag: x}}\n"
        "  - {name: c, on: [new, reply], then: {tag: x}}\n"
        "  - {name: d, on: [reply], then: {stop: true}}\n"
        "  - {name: e, on: [new, reply], then: {tag: x}}\n"
    )
    assert errors(text) == [
        "rules/10-t.yaml:6:5: rule 'e' can never run: rule 'a' (rules/10-t.yaml:2:5) "
        "stops every new/reply message before it"
    ]


def test_conditional_or_broken_stop_does_not_make_later_rules_unreachable() -> None:
    ok = (
        "rules:\n  - {name: a, when: {subject: x}, then: {stop: true}}\n"
        "  - {name: b, then: {tag: x}}\n"
    )
    assert errors(ok) == []
    broken = (
        "rules:\n  - {name: a, when: {sbj: x}, then: {stop: true}}\n  - {name: b, then: {tag: x}}\n"
    )
    assert [e.split(": ", 1)[1] for e in errors(broken)] == [
        "unknown condition 'sbj' (did you mean 'subject'?)"
    ]


def test_all_errors_reported_sorted_and_no_ruleset() -> None:
    result = load(
        "rules:\n  - {name: a, then: {team: x}}\n  - {name: b, then: {priority: p}}\n",
        "rules:\n  - {name: a, then: {tag: x}}\n",
    )
    assert result.ruleset is None and not result.ok
    assert [(e.file, e.line) for e in result.errors] == [
        ("rules/10-t.yaml", 2),
        ("rules/10-t.yaml", 3),
        ("rules/11-t.yaml", 2),
    ]


def test_vip_list_file_errors_point_into_the_list() -> None:
    result = load_rules(
        [("rules/10-vip.yaml", "vip: {files: [vip.txt]}\n")],
        lists={"vip.txt": "acme.com\n\nbad domain!\n"},
    )
    assert [str(e) for e in result.errors] == [
        "vip.txt:3:1: bad VIP domain 'bad domain!' (a domain covers its subdomains; "
        "no wildcards needed)"
    ]


def test_24x7_cannot_be_redefined() -> None:
    assert errors("calendars:\n  24x7: {timezone: UTC, hours: {mon: 09:00-10:00}}\n") == [
        "rules/10-t.yaml:2:3: calendar '24x7' is built in and cannot be redefined"
    ]


def test_overlapping_hours_and_day_given_twice() -> None:
    assert errors(
        "calendars:\n  c:\n    timezone: UTC\n    hours:\n      mon-fri: 09:00-17:00\n"
        "      fri: 10:00-11:00\n      sat: 09:00-12:00, 11:00-13:00\n"
    ) == [
        "rules/10-t.yaml:6:7: calendar 'c': hours for fri given twice",
        "rules/10-t.yaml:7:12: calendar 'c': hours sat: overlapping time ranges in "
        "'09:00-12:00, 11:00-13:00'",
    ]


# -- calendars: overnight shifts, special days; SLA targets keep their unit; stages -------


def test_overnight_shifts_special_days_and_closures() -> None:
    rs = ruleset(
        """
        calendars:
          night:
            timezone: Europe/Berlin
            hours:
              mon-fri: 22:00-06:00
              sat: 08:00-12:00
            holidays: [2025-12-25]
            special_days:
              2025-12-24: 22:00-02:00
              2025-12-31: closed
              2026-01-02: {closed: 00:00-03:00}
        """,
        teams=False,
    )
    cal = rs.calendars["night"]
    assert cal.hours[0] == ((1320, 1800),) and cal.hours[5] == ((480, 720),)
    assert cal.special == {date(2025, 12, 24): ((1320, 1560),), date(2025, 12, 31): ()}
    assert cal.closures == {date(2026, 1, 2): ((0, 180),)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {sat: closed}\n",
            "rules/10-t.yaml:2:3: calendar 'c' is never open: give hours for at least one day",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n"
            "    hours: {mon: 22:00-06:00, tue: 05:00-09:00}\n",
            "rules/10-t.yaml:2:3: calendar 'c': overlapping hours: mon 22:00-06:00 runs into "
            "tue's hours from 05:00",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon: 09:00-17:00}\n"
            "    holidays: [2025-12-24]\n    special_days: {2025-12-24: 09:00-12:00}\n",
            "rules/10-t.yaml:5:16: calendar 'c': 2025-12-24 is both a holiday and a special day",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon: 09:00-17:00}\n"
            "    special_days: {2025-13-01: closed}\n",
            "rules/10-t.yaml:5:20: calendar 'c': special_days: bad date '2025-13-01': "
            "expected YYYY-MM-DD",
        ),
        (
            "calendars:\n  c:\n    timezone: UTC\n    hours: {mon: 09:00-17:00}\n"
            "    special_days: {2025-12-24: {open: 09:00-12:00}}\n",
            "rules/10-t.yaml:5:33: unknown special day key 'open' (expected one of: closed, hours)",
        ),
        (
            "sla_policies:\n  s: {resolution: 1d12h}\n",
            "rules/10-t.yaml:2:19: resolution: bad duration '1d12h': d and w count business "
            "days and cannot be mixed with h, m or s (write e.g. 1d or 36h)",
        ),
        (
            "sla_policies:\n  s: {resolution: 3d, warn_before: 1d}\n",
            "rules/10-t.yaml:2:36: warn_before: count back in hours (e.g. 8h), not business days",
        ),
        (
            "sla_policies:\n  s: {resolution: 3d, stages: [warn at 175%]}\n",
            "rules/10-t.yaml:2:32: SLA policy 's': stage: bad stage time 'warn at 175%': a share "
            "is 1% to 100% (then: breach + 2h)",
        ),
        (
            "sla_policies:\n  s:\n    resolution: 3d\n    stages:\n"
            "      - {at: breach, alert: lead, targets: first_response}\n",
            "rules/10-t.yaml:5:44: SLA policy 's': stage: 'first_response' is not a target of "
            "this policy (expected one of: resolution)",
        ),
        (
            "sla_policies:\n  s:\n    resolution: 3d\n    stages:\n"
            "      - {at: breach, alert: boss}\n",
            "rules/10-t.yaml:5:29: SLA policy 's': stage: bad stage recipient 'boss': expected "
            "assignee, team, team:NAME, lead, lead:NAME, a Slack channel (#name) or "
            "mention:USERGROUP_ID (S0123ABC)",
        ),
        (
            "sla_policies:\n  s:\n    resolution: 3d\n    stages:\n"
            "      - {at: breach, alert: lead, remind: assignee}\n",
            "rules/10-t.yaml:5:9: SLA policy 's': stage: say exactly one of remind or alert "
            "(and to whom)",
        ),
        (
            "sla_policies:\n  s:\n    resolution: 3d\n    stages: [at breach, breach]\n",
            "rules/10-t.yaml:4:25: SLA policy 's': stage alert@breach of resolution given twice "
            "(first at line 4)",
        ),
        (
            "sla_policies:\n  s:\n    resolution: 3d\n    stages:\n"
            "      - {at: breach, alert: team:biling}\n",
            "rules/10-t.yaml:5:29: unknown team 'biling'",
        ),
    ],
)
def test_calendar_and_stage_errors(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_targets_keep_their_unit_and_stages_parse() -> None:
    rs = ruleset(
        """
        sla_policies:
          gold:
            first_response: 4h
            resolution: 1w
            stages:
              - warn at 75%
              - at breach
              - {at: breach + 2h, alert: [lead, "#escalations"], targets: resolution}
              - {at: 90%, remind: [assignee, team:billing]}
        """
    )
    gold = rs.sla_policies["gold"]
    assert gold.first_response == Duration(14400) and gold.resolution == Duration(7, "days")
    both = ("first_response", "resolution")
    assert gold.stages == (
        Stage(When("percent", 75), "remind", (Recipient("assignee"),), both),
        Stage(When("breach"), "alert", (Recipient("lead"),), both),
        Stage(
            When("breach", offset=Duration(7200)),
            "alert",
            (Recipient("lead"), Recipient("slack", "#escalations")),
            ("resolution",),
        ),
        Stage(
            When("percent", 90),
            "remind",
            (Recipient("assignee"), Recipient("team", "billing")),
            both,
        ),
    )
    assert [s.key for s in gold.stages] == [
        "remind@75%",
        "alert@breach",
        "alert@breach+2h",
        "remind@90%",
    ]
