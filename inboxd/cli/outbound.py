"""``inboxd outbox ...`` and ``inboxd templates check``: look at and replay side effects.

Imports are per command, as in ``inboxd.cli``: registering these groups must not
load the daemon for a command that does not use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from inboxd.daemon import App


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@click.group()
def outbox() -> None:
    """The durable outbox of outbound mail."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def outbox_list(ctx: Any, status: str | None, limit: int, as_json: bool) -> None:
    """Outbound mail, newest first (without the bytes)."""
    from inboxd.db import outbox_queries as q
    from inboxd.db.engine import make_engine

    engine = make_engine(ctx.settings.database.url)
    with engine.connect() as conn:
        rows = q.list_rows(conn, status=status, limit=limit)
        totals = q.counts(conn)
    if as_json:
        click.echo(json.dumps([{k: _iso(v) for k, v in r.items()} for r in rows], indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['id']:<6} {r['status']:<8} #{r['ticket_id'] or '-':<6} {r['kind']:<15} "
            f"try {r['attempts']:<2} {','.join(r['rcpts'])} {r['last_error'][:60]}"
        )
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(totals.items())) or "empty")


@outbox.command("retry")
@click.argument("row_id", type=int)
@click.pass_obj
def outbox_retry(ctx: Any, row_id: int) -> None:
    """Make a queued or failed mail due now (the daemon sends it on its next round)."""
    from inboxd.db import outbox_queries as q

    app: App = ctx.app()
    with app.engine.begin() as conn:
        if not q.retry_now(conn, row_id, now=app.clock()):
            raise click.ClickException(f"no retryable outbox row {row_id}")
    click.echo(f"outbox {row_id}: due now")


@outbox.command("send")
@click.pass_obj
def outbox_send(ctx: Any) -> None:
    """Deliver what is due now, once, then exit (the daemon does this continuously)."""
    app: App = ctx.app()
    report = app.outbound.drain.run_once()
    click.echo(
        f"claimed={report.claimed} sent={report.sent} retried={report.retried} "
        f"failed={report.failed}"
    )
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@click.group()
def templates() -> None:
    """Mail templates."""


@templates.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def templates_check(ctx: Any, directory: Path | None) -> None:
    """Render every template with sample data; exit 1 on any error."""
    from inboxd.flows.render import TemplateRenderer

    target = directory or Path(ctx.settings.templates.dir)
    errors = TemplateRenderer(target).check()
    for error in errors:
        click.echo(error, err=True)
    if errors:
        raise SystemExit(1)
    click.echo(f"{target}: all templates render")
