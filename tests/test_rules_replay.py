"""`inboxd rules replay`: stored mail re-run against a candidate rule set, on a real SQLite DB."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from inboxd.cli import main
from inboxd.cli.rules import replay_stored
from inboxd.db.engine import make_engine, upgrade
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source
from inboxd.rulesdir import load_dir

ROOT = Path(__file__).resolve().parent.parent


def business_noon() -> datetime:
    """A recent Wednesday 12:00 UTC that is no holiday: inside office-eu hours."""
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    day -= timedelta(days=1)
    live = load_dir(ROOT / "rules").ruleset
    assert live is not None
    while day.weekday() != 2 or day.date() in live.calendars["office-eu"].holidays:
        day -= timedelta(days=1)
    return day


def mail(msgid: str, sender: str, subject: str, body: str, extra: str = "") -> bytes:
    head = [
        f"From: <{sender}>",
        "To: support@help.example.com",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        "Date: Wed, 05 Mar 2025 10:00:00 +0000",
    ]
    if extra:
        head.append(extra)
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A config, a DB filled through the real pipeline under the example rules."""
    (tmp_path / "secret").write_text("replay-secret")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "inboxd.db"}"
[helpdesk]
domain = "help.example.com"
secret_file = "secret"
[rules]
dir = "{ROOT / "rules"}"
[templates]
dir = "{ROOT / "templates"}"
[[mailbox]]
name = "support"
address = "support@help.example.com"
"""
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'inboxd.db'}")
    upgrade(engine)
    live = load_dir(ROOT / "rules").ruleset
    assert live is not None
    anchor = business_noon()
    clock = iter([anchor - timedelta(days=40)] + [anchor + timedelta(minutes=m) for m in range(4)])
    ctx = IngestContext(
        secret=b"replay-secret",
        support_addresses=frozenset({"support@help.example.com"}),
        mailbox_addresses={"support": "support@help.example.com"},
        rules=lambda: live,
        clock=lambda: next(clock),
    )
    pipe = Pipeline(engine, ctx)
    src = Source("lmtp", "support")
    pipe.ingest(mail("old@c", "a@customer.example", "Refund please", "old one"), src)
    pipe.ingest(mail("r1@c", "b@customer.example", "Refund for order 7", "charged twice"), src)
    pipe.ingest(mail("n1@c", "c@customer.example", "Printer on fire", "help"), src)
    pipe.ingest(
        mail("n2@c", "news@shop.example", "Sale", "buy", "List-Unsubscribe: <mailto:u@x>"), src
    )
    pipe.ingest(mail("v1@c", "ceo@startup.example", "Question", "hello"), src)
    engine.dispose()
    yield tmp_path


def candidate(tmp_path: Path, edit: dict[str, tuple[str, str]]) -> Path:
    out = tmp_path / "candidate"
    shutil.copytree(ROOT / "rules", out)
    for name, (old, new) in edit.items():
        text = (out / name).read_text()
        assert old in text
        (out / name).write_text(text.replace(old, new))
    return out


def run(site: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["-c", str(site / "inboxd.toml"), "rules", "replay", *args], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_changed_rule_shows_per_ticket_field_changes(site: Path) -> None:
    cand = candidate(site, {"30-billing.yaml": ("then: {team: billing,", "then: {team: sre,")})
    code, out = run(site, "--since", "30d", "--rules", str(cand), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert (data["tickets"], data["messages"]) == (4, 4)  # the 40-day-old ticket is out
    assert data["changes"] == [{"ticket": 2, "field": "team", "old": "billing", "new": "sre"}]
    assert data["changed_tickets"] == 1 and data["totals"] == {"team": 1}


def test_added_rule_and_removed_filter(site: Path) -> None:
    cand = candidate(
        site,
        {
            "10-filters.yaml": (
                "    then: {tag: newsletter, priority: low, status: closed, stop: true}",
                "    enabled: false\n    then: {tag: newsletter}",
            ),
            "40-urgent.yaml": ("subject: [urgent,", "subject: [fire, urgent,"),
        },
    )
    code, out = run(site, "--rules", str(cand), "--json")
    assert code == 0, out
    changes = {(c["ticket"], c["field"]): (c["old"], c["new"]) for c in json.loads(out)["changes"]}
    assert changes[(3, "priority")] == ("normal", "urgent")
    assert changes[(3, "tags")] == ([], ["urgent"])
    assert changes[(4, "team")] == (None, "frontline")
    assert changes[(4, "status")] == ("closed", "new")
    assert changes[(4, "tags")] == (["newsletter"], [])


def test_same_rules_change_nothing_and_say_so(site: Path) -> None:
    code, out = run(site, "--since", "30d")
    assert code == 0
    assert "note: the candidate is the live rules dir" in out
    assert out.rstrip().endswith("0 tickets would change; nothing")


def test_baseline_tickets_compares_with_stored_fields(site: Path) -> None:
    cand = candidate(
        site, {"20-vip.yaml": ("domains: [acme.com]", "domains: [acme.com, customer.example]")}
    )
    code, out = run(site, "--rules", str(cand), "--baseline", "tickets")
    assert code == 0, out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("#")]
    assert ["#2", "vip", "False", "True"] in lines
    assert ["#2", "sla_policy", "standard", "vip"] in lines
    assert ["#3", "priority", "normal", "high"] in lines
    assert "replayed 4 messages in 4 tickets since 30d (stored tickets vs" in out


def test_broken_candidate_exits_1(site: Path) -> None:
    cand = candidate(site, {"30-billing.yaml": ("team: billing,", "team: biling,")})
    code, out = run(site, "--rules", str(cand))
    assert code == 1 and "unknown team 'biling' (did you mean 'billing'?)" in out


def test_replay_stored_without_config(site: Path) -> None:
    live = load_dir(ROOT / "rules").ruleset
    assert live is not None
    engine = make_engine(f"sqlite:///{site / 'inboxd.db'}")
    try:
        report = replay_stored(engine, live, live, datetime.now(UTC) - timedelta(days=100), {}, "x")
    finally:
        engine.dispose()
    assert (report.tickets, report.messages, report.changes) == (5, 5, [])
