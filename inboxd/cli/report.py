"""``inboxd report``: the support figures of a period, from the event log.

Imports are per command, as in ``inboxd.cli``. docs/reports.md defines each figure.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from inboxd.core.reports.compute import BusinessTime, SlaOutcomes
    from inboxd.core.reports.model import Period


def _instant(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use ISO 8601, e.g. 2026-03-05T18:30+01:00") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _date(value: str, hint: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD", param_hint=hint) from None


def _period(
    since: str | None, first: str | None, last: str | None, now: datetime, zone: tzinfo
) -> Period:
    from inboxd.core.reports import periods

    if since and (first or last):
        raise click.UsageError("give --since or --from/--to, not both")
    if first or last:
        if not (first and last):
            raise click.UsageError("--from and --to go together")
        try:
            return periods.dates(_date(first, "--from"), _date(last, "--to"), zone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--to") from None
    from inboxd.core.rules import parse_duration

    try:
        return periods.since(now, parse_duration(since or "7d"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _clocks(ctx: Any) -> tuple[BusinessTime | None, SlaOutcomes | None, list[str]]:
    """Business time and SLA outcomes from the live rules; without them, notes saying so."""
    from pathlib import Path

    from inboxd.rulesdir import load_dir

    directory = Path(ctx.settings.rules.dir)
    result = load_dir(directory)
    if result.ruleset is None or result.errors:
        note = f"rules in {directory} did not load: business time and SLA figures left out"
        return None, None, [note]
    from inboxd.core.reports.business import on_policy_calendars
    from inboxd.core.reports.sla import outcomes

    rs = result.ruleset
    by_policy = {
        name: rs.calendars[p.calendar]
        for name, p in rs.sla_policies.items()
        if p.calendar in rs.calendars
    }
    return on_policy_calendars(by_policy), outcomes(rs.sla_policies, rs.calendars), []


@click.command("report")
@click.option("--since", help="how far back from now: 7d (default), 12h, 4w")
@click.option("--from", "first", help="first day, YYYY-MM-DD (local to --tz)")
@click.option("--to", "last", help="last day, YYYY-MM-DD, included")
@click.option("--team", help="only tickets of this team")
@click.option("--agent", help="only tickets assigned to this agent")
@click.option("--tag", help="only tickets with this tag")
@click.option("--mailbox", help="only tickets of this mailbox")
@click.option(
    "--group-by",
    type=click.Choice(["team", "agent", "tag", "mailbox", "policy"]),
    help="one row per group",
)
@click.option("--every", type=click.Choice(["day", "week"]), help="one row per day or week")
@click.option(
    "--tz",
    "tz_name",
    default="UTC",
    show_default=True,
    help="zone of dates, days and arrival hours",
)
@click.option("--now", "now_text", help="report as of this instant (ISO 8601), for a replay")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="processes folding tickets (default: one per core, up to 4, for a period "
    "with many tickets)",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True, help="one figure per row, for spreadsheets")
@click.pass_obj
def report(
    ctx: Any,
    since: str | None,
    first: str | None,
    last: str | None,
    team: str | None,
    agent: str | None,
    tag: str | None,
    mailbox: str | None,
    group_by: str | None,
    every: str | None,
    tz_name: str,
    now_text: str | None,
    workers: int | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Tickets created, solved and reopened, response and resolution times (median, p90;
    calendar and business time), SLA outcomes, the backlog and arrivals by hour."""
    from inboxd.core.calendar import parse_timezone
    from inboxd.core.reports import periods, render
    from inboxd.core.reports.compute import ReportBuilder, no_business_time
    from inboxd.core.reports.model import Filters
    from inboxd.db.report_shares import feed_url

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    try:
        zone = parse_timezone(tz_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    now = _instant(now_text) if now_text else datetime.now(UTC)
    period = _period(since, first, last, now, zone)
    business, sla, notes = _clocks(ctx)
    builder = ReportBuilder(
        period,
        now=now,
        periods=periods.split(period, every, zone),
        group_by=group_by,
        filters=Filters(team=team, agent=agent, tag=tag, mailbox=mailbox),
        zone=zone,
        zone_name=tz_name,
        business=business or no_business_time,
        sla=sla,
    )
    feed_url(ctx.settings.database.url, builder, workers)
    result = builder.result(notes)
    if as_json:
        click.echo(json.dumps(render.to_dict(result), indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows(render.csv_rows(result))
    else:
        for line in render.text_lines(result):
            click.echo(line)
