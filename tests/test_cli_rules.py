"""`inboxd rules check|test|schema` through click, on the shipped example rules and on tmp dirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from click.testing import CliRunner

from inboxd.cli.rules import rules
from inboxd.rulesdir import RuleStore, load_dir

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "rules"

MAIL = b"""From: Carla <carla@eu.acme.com>
To: support@example.com
Subject: Refund for invoice INV-20331 - site down!
Message-ID: <abc@acme.com>
Date: Wed, 05 Mar 2025 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Hi, we were charged twice and the site is down (HTTP 503).
"""

NEWSLETTER = b"""From: Shop <newsletter@shop.example>
To: support@example.com
Subject: Spring sale: refund guarantee!
List-Unsubscribe: <mailto:unsub@shop.example>
Message-ID: <n1@shop.example>
Content-Type: text/plain

Big sale.
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(rules, list(args), catch_exceptions=False)


def test_check_example_rules_ok() -> None:
    result = run("check", str(EXAMPLE), "--templates", str(ROOT / "templates"))
    assert result.exit_code == 0, result.output
    assert "OK: 8 rules in 6 files, 3 teams" in result.output


def test_check_reports_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "10-a.yaml").write_text(
        "rules:\n  - name: a\n    when: {subjct: x}\n    then: {}\n"
    )
    (tmp_path / "20-b.yml").write_text("rules:\n  - {name: a, then: {team: nope}}\n")
    (tmp_path / "notes.md").write_text("not a rule file")
    result = run("check", str(tmp_path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"{tmp_path}/10-a.yaml:3:12: unknown condition 'subjct' (did you mean 'subject'?)",
        f"{tmp_path}/10-a.yaml:4:11: then: a rule needs at least one action",
        f"{tmp_path}/20-b.yml:2:12: duplicate rule name 'a' "
        f"(first defined at {tmp_path}/10-a.yaml:2:5)",
        f"{tmp_path}/20-b.yml:2:28: unknown team 'nope'",
        f"{tmp_path}: 4 error(s)",
    ]


def test_check_missing_directory(tmp_path: Path) -> None:
    result = run("check", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "rules directory not found" in result.output


def test_test_shows_hits_reasons_and_result(tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(MAIL)
    result = run("test", str(eml), "--rules", str(EXAMPLE), "--now", "2025-03-05T19:00+01:00")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "vip-customers  (" in out and "because  VIP: domain acme.com is on the VIP list" in out
    assert "because  subject contains 'refund'" in out
    assert "ignored  team=frontline (already billing <- billing)" in out
    assert "because  not (inside business hours of office-eu)" in out
    team_line = next(line for line in out.splitlines() if line.strip().startswith("team "))
    assert "billing" in team_line and team_line.endswith("<- billing")


def test_test_json_is_complete(tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(MAIL)
    result = run("test", str(eml), "--rules", str(EXAMPLE), "--json", "--now", "2025-03-05T11:00Z")
    data = json.loads(result.output)
    d = data["decision"]
    assert (d["team"], d["priority"], d["sla"], d["vip"]) == ("billing", "urgent", "vip", True)
    assert d["tags"] == ["vip", "billing", "urgent"]  # inside business hours: no after-hours
    assert d["origins"]["priority"] == "outage"
    assert [h["rule"] for h in d["hits"]] == ["vip-customers", "billing", "outage", "default"]
    assert data["context"]["now"] == "2025-03-05T11:00:00+00:00"


def test_test_newsletter_is_filtered_and_stops(tmp_path: Path) -> None:
    eml = tmp_path / "n.eml"
    eml.write_bytes(NEWSLETTER)
    data = json.loads(run("test", str(eml), "--rules", str(EXAMPLE), "--json").output)
    d = data["decision"]
    assert [h["rule"] for h in d["hits"]] == ["newsletters"]
    assert (d["status"], d["priority"], d["team"]) == ("closed", "low", None)


def test_test_reply_flag_changes_which_rules_run(tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(MAIL)
    args = ("test", str(eml), "--rules", str(EXAMPLE), "--json", "--now", "2025-03-05T11:00Z")
    hits = json.loads(run(*args, "--reply").output)["decision"]["hits"]
    assert [h["rule"] for h in hits] == ["vip-customers", "outage"]


def test_test_with_broken_rules_exits_1(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules: {}\n")
    eml = tmp_path / "m.eml"
    eml.write_bytes(MAIL)
    result = run("test", str(eml), "--rules", str(tmp_path))
    assert result.exit_code == 1 and "expected a list of rules" in result.output


def _yaml12(node: yaml.Node) -> Any:
    """YAML node -> value the way a YAML 1.2 editor sees it (bools and ints typed)."""
    if isinstance(node, yaml.MappingNode):
        return {k.value: _yaml12(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_yaml12(v) for v in node.value]
    value = node.value
    if node.style is None:
        if value in ("true", "false"):
            return value == "true"
        if value.isdigit():
            return int(value)
        if value in ("", "null", "~"):
            return None
    return value


def test_schema_is_valid_and_accepts_the_examples() -> None:
    result = run("schema")
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(EXAMPLE.glob("*.yaml")):
        doc = _yaml12(yaml.compose(path.read_text(), Loader=yaml.BaseLoader))
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == [], (path.name, errors)
    bad = {"rules": [{"name": "a", "when": {"subjct": "x"}, "then": {"team": "b"}}]}
    assert list(validator.iter_errors(bad))


def test_published_schema_file_is_current() -> None:
    published = json.loads((ROOT / "docs" / "rules.schema.json").read_text())
    assert published == json.loads(run("schema").output)


def test_rule_store_keeps_last_good_set(tmp_path: Path) -> None:
    (tmp_path / "10-a.yaml").write_text("rules:\n  - {name: a, then: {tag: one}}\n")
    store = RuleStore()
    assert store.current is None
    assert store.reload(tmp_path) == []
    first = store.current
    assert first is not None and first.rules[0].then.tags == ("one",) and store.generation == 1
    (tmp_path / "10-a.yaml").write_text("rules:\n  - {name: a, then: {tagg: two}}\n")
    errors = store.reload(tmp_path)
    assert [str(e) for e in errors] == [
        f"{tmp_path}/10-a.yaml:2:22: unknown action 'tagg' (did you mean 'tag'?)"
    ]
    assert store.current is first and store.generation == 1 and store.last_errors == errors
    (tmp_path / "10-a.yaml").write_text("rules:\n  - {name: a, then: {tag: two}}\n")
    assert store.reload(tmp_path) == []
    assert store.current is not first and store.current is not None
    assert store.current.rules[0].then.tags == ("two",) and store.generation == 2


def test_load_dir_reads_lexical_order_and_vip_lists(tmp_path: Path) -> None:
    (tmp_path / "20-b.yaml").write_text("rules:\n  - {name: b, then: {tag: b}}\n")
    (tmp_path / "10-a.yml").write_text(
        "vip: {files: [vips.txt]}\nrules:\n  - {name: a, then: {tag: a}}\n"
    )
    (tmp_path / "vips.txt").write_text("acme.com\n")
    result = load_dir(tmp_path)
    assert result.errors == [] and result.ruleset is not None
    assert [r.name for r in result.ruleset.rules] == ["a", "b"]
    assert result.ruleset.vip.domains == frozenset({"acme.com"})
    assert result.ruleset.source_files == (f"{tmp_path}/10-a.yml", f"{tmp_path}/20-b.yaml")


def test_unreadable_rule_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "10-a.yaml").write_bytes(b"rules: \xff\xfe\n")
    result = load_dir(tmp_path)
    assert result.ruleset is None
    assert result.errors[0].message.startswith("cannot read:")


def test_check_prints_every_policy_in_plain_words_with_an_example_due_time() -> None:
    result = run("check", str(EXAMPLE), "--example", "2026-03-06T16:00+01:00")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "SLA policy standard: counted on calendar office-eu (Europe/Berlin); " in lines[1]
    # 4 business hours from Friday 16:00 on 09:00-17:30: 1.5h Friday, 2.5h Monday
    assert (
        "  first response within 4 hours of business time: "
        "from Fri 2026-03-06 16:00 CET due Mon 2026-03-09 11:30 CET" in lines
    )
    # 3d is three business days, said so: not 72 hours
    assert (
        "  resolution within 3 business days (the same time of day 3 business days later, "
        "not 72h): from Fri 2026-03-06 16:00 CET due Wed 2026-03-11 16:00 CET" in lines
    )
    assert (
        "  resolution within 8 hours: from Fri 2026-03-06 15:00 UTC due Fri 2026-03-06 "
        "23:00 UTC" in lines
    )
    assert any(line.startswith("  stage: remind assignee (in open hours) at 75%") for line in lines)


def test_sla_calc_prints_the_due_time_of_every_target() -> None:
    from inboxd.cli.sla import sla

    args = ["calc", "--policy", "standard", "--start", "2026-03-06T13:30+01:00"]
    result = CliRunner().invoke(sla, [*args, "--rules", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    due = {t["target"]: t["due"] for t in out["targets"]}
    # the Friday 13:30 example: 4 business hours are due at Friday's closing time
    assert due == {
        "first_response": "2026-03-06T17:30:00+01:00",
        "resolution": "2026-03-11T13:30:00+01:00",
    }
    first = out["targets"][0]
    assert first["business_seconds"] == 4 * 3600 and first["unit"] == "seconds"
    assert [s["stage"] for s in first["stages"]] == ["remind@75%", "alert@breach"]
    assert first["stages"][0]["at"] == "2026-03-06T16:30:00+01:00"
    text = CliRunner().invoke(sla, [*args, "--rules", str(EXAMPLE)])
    assert "due 2026-03-06T17:30:00+01:00" in text.output
    bad = CliRunner().invoke(
        sla, ["calc", "--policy", "standrd", "--start", "2026-03-06", "--rules", str(EXAMPLE)]
    )
    assert bad.exit_code == 2 and "did you mean 'standard'?" in bad.output
