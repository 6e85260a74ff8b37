"""The ``inboxd`` command: run the daemon, sync once, look at tickets, manage the DB.

``--json`` outputs are a stable interface (documented in the README): fields
are only ever added, never renamed or removed.

Each command imports what it uses when it runs, not at module import: a read
command (``tickets list``) must not pay for loading the daemon, the parser and
the flows, which it never touches. ``tests/test_cli_imports.py`` holds this.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from inboxd.logs import setup_logging

if TYPE_CHECKING:
    from sqlmodel import Session

    from inboxd.config import Settings
    from inboxd.daemon import App
    from inboxd.db.tables import Message, Quarantine, Ticket


class Context:
    def __init__(self, config: str | None, verbose: bool) -> None:
        self.config_path = config
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from inboxd.config import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._settings

    def app(self) -> App:
        """The wired app of a command that writes state (it may create the database)."""
        from inboxd.config import ConfigError
        from inboxd.daemon import App, private_files
        from inboxd.db.engine import SchemaError

        private_files()
        try:
            return App.build(self.settings)
        except (ConfigError, SchemaError) as exc:
            raise click.ClickException(str(exc)) from exc


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option("--config", "-c", envvar="INBOXD_CONFIG", help="TOML config (default inboxd.toml)")
@click.option("--verbose", "-v", is_flag=True, help="debug logging")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="INBOXD_LOG_FORMAT",
    help="text for a terminal, json: one object per line",
)
@click.pass_context
def main(click_ctx: click.Context, config: str | None, verbose: bool, log_format: str) -> None:
    """inboxd: email-first shared-inbox helpdesk."""
    setup_logging(
        logging.DEBUG if verbose else logging.INFO, "json" if log_format == "json" else "text"
    )
    click_ctx.obj = Context(config, verbose)


@main.command()
@pass_ctx
def run(ctx: Context) -> None:
    """Run the daemon in the foreground (logs to stderr)."""
    from inboxd.daemon import Daemon

    # a reload request that arrives while we are still starting must not kill us;
    # the daemon installs its real handler before it reports READY
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    Daemon(ctx.app()).run_forever()


@main.command()
@click.option("--once", is_flag=True, required=True, help="fetch everything pending, then exit")
@pass_ctx
def sync(ctx: Context, once: bool) -> None:
    """Fetch and process all pending mail in every mailbox."""
    app = ctx.app()
    try:
        counts = app.sync_once()
    finally:
        app.close()
    for name, n in counts.items():
        click.echo(f"{name}: {n} fetched")


@main.command("import")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mailbox", default="", help="mailbox name to record as the source")
@pass_ctx
def import_(ctx: Context, files: tuple[Path, ...], mailbox: str) -> None:
    """Ingest .eml files (e.g. a saved mail) as if they had arrived."""
    from inboxd.core.inbound import Source

    app = ctx.app()
    for path in files:
        outcome = app.pipeline.ingest(path.read_bytes(), Source("file", mailbox))
        click.echo(f"{path}: {outcome.status} ticket={outcome.ticket_id} {outcome.reason}")


# --- tickets --------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def ticket_json(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "subject": t.subject,
        "status": t.status,
        "requester": t.requester,
        "tags": list(t.tags),
        "priority": t.priority,
        "assignee": t.assignee,
        "team": t.team,
        "vip": t.vip,
        "sla_policy": t.sla_policy,
        "mailbox": t.mailbox,
        "created_at": _iso(t.created_at),
        "updated_at": _iso(t.updated_at),
        "merged_into": t.merged_into,
        "previous_ticket_id": t.previous_ticket_id,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "from": m.from_email,
        "from_name": m.from_name,
        "date": _iso(m.date),
        "received_at": _iso(m.received_at),
        "direction": m.direction,
        "kind": m.kind,
        "subject": m.subject,
        "text": m.shown_text,
        "matched_by": m.matched_by,
        "match_reason": m.match_reason,
        "attachments": m.attachment_count,
    }


def quarantine_json(q: Quarantine) -> dict[str, Any]:
    return {
        "id": q.id,
        "reason": q.reason,
        "source": q.source,
        "mailbox": q.mailbox,
        "folder": q.folder,
        "uid": q.uid,
        "received_at": _iso(q.received_at),
        "sha256": q.raw_sha256,
    }


TICKET_FIELDS = (
    "id", "subject", "status", "requester", "tags", "priority", "assignee", "team", "vip",
    "sla_policy", "mailbox", "created_at", "updated_at", "merged_into", "previous_ticket_id",
)  # fmt: skip
QUARANTINE_FIELDS = ("id", "reason", "source", "mailbox", "folder", "uid", "received_at", "sha256")


def _csv_value(value: Any) -> Any:
    """A list as its items joined by commas, booleans as in JSON, null as empty."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _write_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([_csv_value(r[f]) for f in fields] for r in rows)


def _read_session(ctx: Context) -> Session:
    """For commands that only look: they never wait for the daemon's write lock."""
    from sqlmodel import Session

    from inboxd.db.engine import make_engine

    return Session(make_engine(ctx.settings.database.url, read_only=True))


PAGE = 1000  # tickets list's page unless --limit says otherwise
MAX_PAGE = 100_000
_Row = TypeVar("_Row")


class Page:
    """One page of ``tickets list``: one row more is read than printed, so a page
    that is not the last says where the next starts (on stderr: stdout stays the
    JSON or CSV)."""

    def __init__(self, limit: int, after: int) -> None:
        self.limit = limit
        self.after = after
        self.next_after: int | None = None

    def cut(self, rows: list[_Row], ids: list[int]) -> list[_Row]:
        """The rows to print of the ``limit + 1`` read (``ids``: theirs, in order)."""
        if len(rows) > self.limit:
            self.next_after = ids[self.limit - 1]
        return rows[: self.limit]

    def say_more(self) -> None:
        if self.next_after is not None:
            click.echo(
                f"more tickets after this page of {self.limit}: --after {self.next_after}",
                err=True,
            )


@main.group()
def tickets() -> None:
    """Look at tickets."""


@tickets.command("list")
@click.option("--status", help="only tickets with this status")
@click.option("--quarantined", is_flag=True, help="list quarantined mail instead")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True, help="the --json fields as CSV, for spreadsheets")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE),
    default=PAGE,
    show_default=True,
    help="at most this many tickets (by id)",
)
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    metavar="ID",
    help="only tickets after this id: the next page (stderr names it)",
)
@pass_ctx
def tickets_list(
    ctx: Context,
    status: str | None,
    quarantined: bool,
    as_json: bool,
    as_csv: bool,
    limit: int,
    after: int,
) -> None:
    """List tickets (or the quarantine), oldest first, a page at a time."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    page = Page(limit, after)
    if not quarantined and _quick_list(ctx, status, as_json, as_csv, page):
        return
    with _read_session(ctx) as session:
        if quarantined:
            from inboxd.db import messages as message_rows

            held = message_rows.list_quarantine(session)
            if as_json:
                click.echo(json.dumps([quarantine_json(q) for q in held], indent=2))
                return
            if as_csv:
                _write_csv([quarantine_json(q) for q in held], list(QUARANTINE_FIELDS))
                return
            for q in held:
                stamp = q.received_at.isoformat(timespec="seconds")
                click.echo(f"Q{q.id:<5} {stamp} {q.source:<20} {q.reason}")
            return
        from inboxd.db import tickets as ticket_rows

        rows = ticket_rows.list_rows(session, status, page.limit + 1, page.after)
        found = page.cut(rows, [t.id or 0 for t in rows])
        if as_json:
            click.echo(json.dumps([ticket_json(t) for t in found], indent=2))
        elif as_csv:
            _write_csv([ticket_json(t) for t in found], list(TICKET_FIELDS))
        else:
            for t in found:
                who = t.assignee or t.team or "-"
                click.echo(
                    f"#{t.id:<6} {t.status:<8} {t.priority:<7} {who:<12} "
                    f"{t.requester:<30} {t.subject}"
                )
        page.say_more()


def _quick_list(ctx: Context, status: str | None, as_json: bool, as_csv: bool, page: Page) -> bool:
    """``tickets list`` through ``cli.quick`` (SQLite, no SQLAlchemy); False: not here."""
    from inboxd.cli import quick

    file = quick.sqlite_file(ctx.config_path)
    rows = quick.tickets(file, status, page.limit + 1, page.after) if file is not None else None
    if rows is None:
        return False
    found = page.cut(rows, [int(t["id"]) for t in rows])
    if as_json:
        click.echo(json.dumps(found, indent=2))
    elif as_csv:
        _write_csv(found, list(TICKET_FIELDS))
    else:
        for t in found:
            who = t["assignee"] or t["team"] or "-"
            click.echo(
                f"#{t['id']:<6} {t['status']:<8} {t['priority']:<7} {who:<12} "
                f"{t['requester']:<30} {t['subject']}"
            )
    page.say_more()
    return True


@tickets.command("show")
@click.argument("ticket_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--events", is_flag=True, help="include the event log")
@pass_ctx
def tickets_show(ctx: Context, ticket_id: int, as_json: bool, events: bool) -> None:
    """Show one ticket with its messages in order."""
    from inboxd.db import messages as message_rows
    from inboxd.db import tickets as ticket_rows

    with _read_session(ctx) as session:
        ticket = ticket_rows.get_row(session, ticket_id)
        if ticket is None:
            raise click.ClickException(f"no ticket #{ticket_id}")
        messages = message_rows.ticket_messages(session, ticket_id)
        log_rows = ticket_rows.event_rows(session, ticket_id) if (events or as_json) else []
        if as_json:
            data = ticket_json(ticket)
            data["messages"] = [message_json(m) for m in messages]
            data["participants"] = [
                {"email": p.email, "name": p.name, "role": p.role}
                for p in ticket_rows.participant_rows(session, ticket_id)
            ]
            data["events"] = [
                {"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "data": e.data}
                for e in log_rows
            ]
            if ticket.sla_policy:
                data["sla"] = _sla(ctx, session, ticket_id, ticket.sla_policy)
            click.echo(json.dumps(data, indent=2))
            return
        click.echo(f"#{ticket.id} [{ticket.status}] {ticket.subject}")
        click.echo(
            f"requester={ticket.requester} priority={ticket.priority} team={ticket.team} "
            f"assignee={ticket.assignee} tags={','.join(ticket.tags)}"
        )
        for m in messages:
            click.echo(f"\n--- {m.direction} {_iso(m.date)} {m.from_email} ({m.matched_by})")
            click.echo(f"Subject: {m.subject}")
            click.echo(m.shown_text)
        if ticket.sla_policy:
            from inboxd.cli.sla_view import sla_lines

            click.echo("")
            for line in sla_lines(_sla(ctx, session, ticket_id, ticket.sla_policy)):
                click.echo(line)
        for e in log_rows:
            click.echo(f"{_iso(e.at)} {e.actor} {e.kind} {json.dumps(e.data)}")


def _sla(ctx: Context, session: Session, ticket_id: int, policy: str) -> dict[str, Any]:
    """Only a ticket with a policy loads the rules (a plain show stays light)."""
    from datetime import UTC, datetime

    from inboxd.cli.sla_view import sla_targets

    return sla_targets(ctx.settings, session, ticket_id, policy, datetime.now(UTC))


# --- database -------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the schema to the current version."""
    from inboxd.daemon import private_files
    from inboxd.db.engine import make_engine, upgrade

    private_files()
    engine = make_engine(ctx.settings.database.url)
    click.echo(f"schema at {upgrade(engine)}")


@main.command("check-config")
@pass_ctx
def check_config(ctx: Context) -> None:
    """Validate the config and print it with secrets redacted."""
    from inboxd.config import mask_url

    dumped = ctx.settings.model_dump(mode="json")
    dumped["database"]["url"] = mask_url(dumped["database"]["url"])
    click.echo(json.dumps(dumped, indent=2))


def _register_optional() -> None:
    """Sub-command groups living in their own modules."""
    from inboxd.cli.data import export, forget, purge
    from inboxd.cli.outbound import outbox, templates
    from inboxd.cli.report import report
    from inboxd.cli.rules import rules
    from inboxd.cli.sla import sla
    from inboxd.cli.status import status

    main.add_command(rules)
    main.add_command(sla)
    main.add_command(outbox)
    main.add_command(templates)
    main.add_command(report)
    main.add_command(export)
    main.add_command(purge)
    main.add_command(forget)
    main.add_command(status)


_register_optional()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
