"""``inboxd export``, ``purge`` and ``forget``: a desk's data out, retention, erasure.

Imports are per command, as in ``inboxd.cli``. ``export`` streams (constant
memory on a large desk); ``purge`` and ``forget`` take ``--dry-run`` and say
what they would do; ``forget`` names nobody in its output but the address
given, and the event it leaves on each ticket names nobody at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD or ISO 8601") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _mbox_from(sender: str, at: datetime | None) -> bytes:
    when = (at or datetime(1970, 1, 1, tzinfo=UTC)).strftime("%a %b %d %H:%M:%S %Y")
    return f"From {sender or 'MAILER-DAEMON'} {when}\n".encode()


def _mboxrd(raw: bytes) -> bytes:
    """mboxrd quoting: a line starting with ``>*From `` gets one more ``>``."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    out = [b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in lines]
    body = b"\n".join(out)
    return body if body.endswith(b"\n") else body + b"\n"


@click.command("export")
@click.option("--since", help="tickets changed since this date (YYYY-MM-DD or ISO 8601)")
@click.option("--ticket", "ticket_id", type=int, help="only this ticket")
@click.option("--mbox", type=click.Path(dir_okay=False, path_type=Path), help="raw mails here")
@click.pass_obj
def export(ctx: Any, since: str | None, ticket_id: int | None, mbox: Path | None) -> None:
    """Tickets with their messages, participants and events as JSON Lines on stdout
    (each line the documented ``tickets show --json`` object); with --mbox, the raw
    mails too, as an mbox file."""
    from inboxd.cli import _read_session, message_json, ticket_json
    from inboxd.db import export as dump

    out = sys.stdout
    box: BinaryIO | None = mbox.open("wb") if mbox else None
    count = 0
    try:
        with _read_session(ctx) as session:
            for item in dump.tickets(session, since=_since(since), ticket_id=ticket_id):
                data = ticket_json(item.ticket)
                data["messages"] = [message_json(m) for m in item.messages]
                data["participants"] = [
                    {"email": p.email, "name": p.name, "role": p.role} for p in item.participants
                ]
                data["events"] = [
                    {"at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "data": e.data}
                    for e in item.events
                ]
                out.write(json.dumps(data, ensure_ascii=False) + "\n")
                count += 1
                if box is not None:
                    for m in item.messages:
                        raw = dump.raw_mail(session, m)
                        if raw:
                            box.write(_mbox_from(m.from_email, m.received_at))
                            box.write(_mboxrd(raw))
    finally:
        if box is not None:
            box.close()
    click.echo(f"exported {count} tickets", err=True)


@click.command("purge")
@click.option("--older-than", "older", required=True, help="retention period, e.g. 2y, 400d")
@click.option("--dry-run", is_flag=True, help="say what would go, change nothing")
@click.pass_obj
def purge(ctx: Any, older: str, dry_run: bool) -> None:
    """Delete closed (and merged) tickets whose last status change is older than the
    period, with their messages, events and raw mails."""
    from datetime import timedelta

    from inboxd.core.rules import parse_duration
    from inboxd.db import privacy
    from inboxd.db.engine import make_engine

    text = older.strip().lower()
    try:
        period = (
            timedelta(days=365 * int(text[:-1])) if text.endswith("y") else parse_duration(text)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    before = datetime.now(UTC) - period
    engine = make_engine(ctx.settings.database.url)
    with engine.begin() as conn:
        ids = privacy.purgeable(conn, before)
        if dry_run:
            click.echo(f"would purge {len(ids)} tickets closed before {before:%Y-%m-%d}")
            return
        report = privacy.purge(conn, ids)
    click.echo(
        f"purged {len(report.tickets)} tickets, {report.messages} messages,"
        f" {report.blobs} raw mails and attachments"
    )
    _compact(engine)


def pseudonym(secret: bytes, address: str) -> str:
    """Stable per address (so counts by person stay right), not reversible without
    the helpdesk secret."""
    digest = hmac.new(secret, address.strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"forgotten-{digest[:16]}@forgotten.invalid"


@click.command("forget")
@click.argument("address")
@click.option("--dry-run", is_flag=True, help="say what would change, change nothing")
@click.pass_obj
def forget(ctx: Any, address: str, dry_run: bool) -> None:
    """Remove one person: their mail bodies, attachments and raw mails are deleted and
    their address is pseudonymised everywhere, so counts and reports stay correct."""
    from inboxd.db import privacy
    from inboxd.db.engine import make_engine

    if "@" not in address:
        raise click.BadParameter("give a mail address", param_hint="ADDRESS")
    engine = make_engine(ctx.settings.database.url)
    alias = pseudonym(ctx.settings.helpdesk.read_secret(), address)
    conn = engine.connect()
    transaction = conn.begin()
    try:
        report = privacy.forget(conn, address, alias, datetime.now(UTC))
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    finally:
        conn.close()
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"{verb} {len(report.tickets)} tickets: {report.messages_removed} of their mails"
        f" removed, {report.messages_scrubbed} others' mails without their raw bytes,"
        f" {report.outbox_rows} outbox rows, {report.slack_rows} Slack notices,"
        f" {report.quarantined} quarantined mails"
    )
    if report.slack_posts:
        click.echo(
            f"{len(report.slack_posts)} Slack messages about these tickets remain in Slack:"
            " delete them there (inboxd does not call chat.delete yet)"
        )
    if not dry_run:
        _compact(engine)


def _compact(engine: Any) -> None:
    """SQLite keeps deleted bytes in free pages until VACUUM: erase them for real."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction: VACUUM refuses one
        try:
            cursor = raw.cursor()
            for statement in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM"):
                cursor.execute(statement)
                cursor.fetchall()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()
    engine.dispose()
