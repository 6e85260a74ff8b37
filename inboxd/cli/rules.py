"""``inboxd rules``: check, test, schema and replay rule files without touching the daemon.

``check`` exits 1 on any error so admins can run it in their rules repo's CI;
``test`` shows what the rules would decide for one saved mail; ``replay``
re-runs stored mail of the last days against a candidate rule set.

The rule engine and the parser are imported by the commands that use them, so
that registering this group under ``inboxd`` costs the other commands nothing.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from inboxd.core.model import ParsedMessage
    from inboxd.core.rules import RuleContext, RuleSet
    from inboxd.core.rules.replay import ReplayReport


def _settings() -> Any | None:
    """The daemon config when one is reachable (under ``inboxd``), else None."""
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    if obj is None:
        return None
    try:
        return obj.settings
    except (click.ClickException, AttributeError):
        return None


def _rules_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    settings = _settings()
    return Path(settings.rules.dir) if settings is not None else Path("rules")


def _templates_dir(given: Path | None) -> Path | None:
    if given is not None:
        return given
    settings = _settings()
    if settings is not None:
        return Path(settings.templates.dir)
    default = Path("templates")
    return default if default.is_dir() else None


def _load(directory: Path, templates: Path | None) -> RuleSet:
    """Load or print every error and exit 1."""
    from inboxd.rulesdir import load_dir

    result = load_dir(directory, templates=templates)
    if result.ruleset is None or result.errors:
        for error in result.errors:
            click.echo(str(error), err=True)
        click.echo(f"{directory}: {len(result.errors)} error(s)", err=True)
        sys.exit(1)
    return result.ruleset


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use ISO 8601, e.g. 2025-03-05T18:30+01:00") from None
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


@click.group()
def rules() -> None:
    """Check, test, replay and describe rule files."""


@rules.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--templates", type=click.Path(path_type=Path), help="templates dir to check names")
@click.option(
    "--example",
    help="creation time of the example ticket (ISO 8601; default: the coming Friday 16:00 "
    "in each policy's calendar)",
)
def check(directory: Path | None, templates: Path | None, example: str | None) -> None:
    """Validate DIRECTORY (default: the configured rules dir); exit 1 on any error.

    Then every SLA policy in plain words, with the due time of each target for an
    example ticket."""
    from inboxd.core.rules.report import policy_lines, summary

    directory = _rules_dir(directory)
    ruleset = _load(directory, _templates_dir(templates))
    click.echo(f"{directory}: OK: {summary(ruleset)}")
    given = _parse_now(example) if example is not None else None
    for policy in ruleset.sla_policies.values():
        cal = ruleset.calendars[policy.calendar]
        start = given or _coming_friday(cal.zone)
        click.echo("\n".join(policy_lines(policy, cal, start)))


def _coming_friday(zone: Any) -> datetime:
    """Friday 16:00 local, this week or next: an example that runs into a weekend."""
    from datetime import timedelta

    today = datetime.now(zone)
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    return friday.replace(hour=16, minute=0, second=0, microsecond=0)


@rules.command()
def schema() -> None:
    """Print the JSON Schema of rule files (for editors' YAML language servers)."""
    from inboxd.core.rules import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@rules.command("test")
@click.argument("message", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), help="rules directory")
@click.option("--templates", type=click.Path(path_type=Path), help="templates directory")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--now", help="evaluate at this time (ISO 8601; default: now)")
@click.option("--reply", is_flag=True, help="evaluate as a reply to an existing ticket")
@click.option("--vip", is_flag=True, help="the existing ticket is already VIP")
@click.option("--mailbox", default=None, help="mailbox name the mail arrived in")
def test_cmd(
    message: Path,
    rules_dir: Path | None,
    templates: Path | None,
    as_json: bool,
    now: str | None,
    reply: bool,
    vip: bool,
    mailbox: str | None,
) -> None:
    """Show which rules match MESSAGE (.eml), why, and the resulting ticket fields."""
    from inboxd.core.model import ParseError
    from inboxd.core.parse import parse_message
    from inboxd.core.rules import RuleContext, evaluate
    from inboxd.core.rules.report import decision_dict

    ruleset = _load(_rules_dir(rules_dir), _templates_dir(templates))
    try:
        parsed = parse_message(message.read_bytes())
    except ParseError as exc:
        raise click.ClickException(f"{message}: cannot parse: {exc.reason}") from exc
    box, address = _mailbox(mailbox, parsed)
    ctx = RuleContext(
        is_new=not reply, mailbox=box, mailbox_address=address, now=_parse_now(now), ticket_vip=vip
    )
    decision = evaluate(ruleset, parsed, ctx)
    if as_json:
        out = {
            "message": _message_json(parsed),
            "context": {
                "is_new": ctx.is_new,
                "mailbox": ctx.mailbox,
                "mailbox_address": ctx.mailbox_address,
                "now": ctx.now.isoformat(),
                "ticket_vip": ctx.ticket_vip,
            },
            "decision": decision_dict(decision),
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    _print_test(ruleset, parsed, ctx, decision_dict(decision))


def _mailbox(name: str | None, parsed: ParsedMessage) -> tuple[str, str]:
    settings = _settings()
    boxes = list(settings.mailbox) if settings is not None else []
    for box in boxes:
        if name is None or box.name == name:
            return box.name, box.address
    if name is not None:
        return name, ""
    first_to = parsed.to[0].email if parsed.to else ""
    return first_to.partition("@")[0] or "support", first_to


def _message_json(parsed: ParsedMessage) -> dict[str, Any]:
    return {
        "message_id": parsed.message_id,
        "from": parsed.from_.email if parsed.from_ else None,
        "to": [a.email for a in parsed.to],
        "cc": [a.email for a in parsed.cc],
        "subject": parsed.subject,
        "attachments": [a.filename or a.content_type for a in parsed.attachments],
    }


def _print_test(
    ruleset: RuleSet, parsed: ParsedMessage, ctx: RuleContext, decision: dict[str, Any]
) -> None:
    from inboxd.core.rules.report import DECISION_FIELDS

    sender = parsed.from_.email if parsed.from_ else "(no sender)"
    kind = "new ticket" if ctx.is_new else "reply"
    click.echo(f"message: {parsed.subject!r} from {sender}")
    click.echo(f"as:      {kind} in mailbox {ctx.mailbox} at {ctx.now.isoformat()}")
    hits = decision["hits"]
    click.echo(f"\n{len(hits)} rule(s) matched:" if hits else "\nno rule matched")
    for hit in hits:
        click.echo(f"  {hit['rule']}  ({hit['file']}:{hit['line']})")
        for reason in hit["reasons"]:
            click.echo(f"      because  {reason}")
        if hit["applied"]:
            click.echo(f"      set      {', '.join(hit['applied'])}")
        for item in hit["overridden"]:
            click.echo(f"      ignored  {item}")
    click.echo("\nresult:")
    origins = decision["origins"]
    for name in DECISION_FIELDS:
        value = decision[name]
        if isinstance(value, list):
            shown = ", ".join(value) if value else "-"
        elif value is None or value is False:
            shown = "-"
        else:
            shown = str(value)
        origin = origins.get("group_window" if name == "group_window" else name)
        line = f"  {name:<12} {shown}"
        if origin:
            line = f"{line:<40} <- {origin}"
        if name == "sla" and value in ruleset.sla_policies:
            line += "  " + _sla_text(ruleset, value)
        click.echo(line.rstrip())


def _sla_text(ruleset: RuleSet, name: str) -> str:
    policy = ruleset.sla_policies[name]
    parts = [
        f"{label} {value}"
        for label, value in (
            ("first response", policy.first_response),
            ("next response", policy.next_response),
            ("resolution", policy.resolution),
        )
        if value is not None
    ]
    return f"({', '.join(parts)}; calendar {policy.calendar})"


# --- replay ---------------------------------------------------------------------------


def replay_stored(
    engine: Any,
    candidate: RuleSet,
    baseline: RuleSet | None,
    since: datetime,
    mailbox_addresses: dict[str, str],
    label: str,
) -> ReplayReport:
    """Re-run the stored tickets since ``since``; compare with ``baseline`` rules, or
    with the tickets' stored fields when ``baseline`` is None."""
    from inboxd.core.model import ParseError
    from inboxd.core.parse import parse_message
    from inboxd.core.rules import RuleContext
    from inboxd.core.rules.replay import ReplayReport, diff, simulate
    from inboxd.db.replay_queries import tickets_since

    report = ReplayReport(label)
    report.changes = []
    for ticket in tickets_since(engine, since):
        messages: list[tuple[ParsedMessage, RuleContext]] = []
        for stored in ticket.messages:
            try:
                parsed = parse_message(stored.raw)
            except ParseError:
                report.unparseable += 1
                continue
            ctx = RuleContext(
                is_new=not messages,
                mailbox=stored.mailbox,
                mailbox_address=mailbox_addresses.get(stored.mailbox, ""),
                now=stored.received_at,
            )
            messages.append((parsed, ctx))
        if not messages:
            continue
        report.tickets += 1
        report.messages += len(messages)
        new = simulate(candidate, messages)
        if baseline is not None:
            old = simulate(baseline, messages)
        else:
            old = dict(ticket.fields)
            if new["assignee"] is None:  # team picks are not replayed: do not report them
                old["assignee"] = None
        report.add(diff(ticket.id, old, new))
    return report


def _show_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value) if value else "-"
    return str(value)


@rules.command()
@click.option("--since", default="30d", show_default=True, help="how far back: 30d, 12h, 2w")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), help="candidate rules dir")
@click.option("--templates", type=click.Path(path_type=Path), help="templates directory")
@click.option(
    "--baseline",
    type=click.Choice(["rules", "tickets"]),
    default="rules",
    show_default=True,
    help="compare with the live rules replayed the same way, or with the tickets as stored",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def replay(
    since: str, rules_dir: Path | None, templates: Path | None, baseline: str, as_json: bool
) -> None:
    """Preview a rule change: re-evaluate the stored mail of the last SINCE against the
    candidate rules and list what would change (ticket, field, old, new) with totals."""
    settings = _settings()
    if settings is None:
        raise click.ClickException("replay needs the daemon config (inboxd -c inboxd.toml ...)")
    from inboxd.core.rules import parse_duration
    from inboxd.db.engine import make_engine

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    live_dir = Path(settings.rules.dir)
    candidate_dir = rules_dir or live_dir
    templates_dir = _templates_dir(templates)
    candidate = _load(candidate_dir, templates_dir)
    live: RuleSet | None = None
    if baseline == "rules":
        if candidate_dir.resolve() == live_dir.resolve():
            click.echo(
                "note: the candidate is the live rules dir; give --rules DIR, "
                "or --baseline tickets to compare with the tickets as stored",
                err=True,
            )
        live = _load(live_dir, templates_dir)
    engine = make_engine(settings.database.url)
    try:
        report = replay_stored(
            engine,
            candidate,
            live,
            datetime.now(UTC) - window,
            {box.name: box.address for box in settings.mailbox},
            since,
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    changes = report.changes or []
    if changes:
        click.echo(f"{'ticket':>8}  {'field':<10}  {'old':<20}  new")
    for change in changes:
        click.echo(
            f"{'#' + str(change.ticket):>8}  {change.field:<10}  "
            f"{_show_value(change.old):<20}  {_show_value(change.new)}"
        )
    totals = ", ".join(f"{k} {v}" for k, v in report.totals().items()) or "nothing"
    click.echo(
        f"\nreplayed {report.messages} messages in {report.tickets} tickets since {since} "
        f"({'live rules' if live is not None else 'stored tickets'} vs {candidate_dir}): "
        f"{report.changed_tickets} tickets would change; {totals}"
        + (f"; {report.unparseable} unparseable" if report.unparseable else "")
    )
