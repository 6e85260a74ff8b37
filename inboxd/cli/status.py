"""``inboxd status [--json]``: what the daemons on this database last reported.

The CLI is another process, so everything comes from the database: the daemon
rows (heartbeat, last rule load), each mailbox's health and checkpoints, and
the queues' backlogs. ``--json`` is a stable interface (README): fields are
added, never renamed or removed. Nothing secret is printed; a URL's password
is masked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from inboxd.cli import Context
    from inboxd.config import Settings


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _queue(conn: Connection, queue: Any, kind_column: str | None, now: datetime) -> dict[str, Any]:
    waiting = queue.waiting(conn, kind_column)
    oldest = min((at for _, _, at in waiting), default=None)
    return {
        "waiting": sum(n for _, n, _ in waiting),
        "oldest_waiting_at": _iso(oldest),
        "oldest_waiting_seconds": (now - oldest).total_seconds() if oldest else None,
        "by_kind": {kind: {"waiting": n, "oldest_at": _iso(at)} for kind, n, at in waiting},
        "by_status": queue.counts(conn),
    }


def gather(settings: Settings, conn: Connection, now: datetime) -> dict[str, Any]:
    """The ``status --json`` object."""
    from inboxd import installed_version
    from inboxd.config import mask_url
    from inboxd.db import outbox_queries, slack_queries
    from inboxd.db import status as st

    stale = timedelta(seconds=3 * st.HEARTBEAT_SECONDS)
    daemons = []
    for row in st.daemons(conn):
        daemons.append(
            {
                "host": row["host"],
                "pid": row["pid"],
                "version": row["version"],
                "started_at": _iso(row["started_at"]),
                "heartbeat_at": _iso(row["heartbeat_at"]),
                "stopped_at": _iso(row["stopped_at"]),
                "alive": row["stopped_at"] is None and now - row["heartbeat_at"] < stale,
                "rules": {
                    "generation": row["rules_generation"],
                    "loaded_at": _iso(row["rules_reloaded_at"]),
                    "trigger": row["rules_trigger"],
                    "ok": row["rules_errors"] == 0,
                    "errors": row["rules_errors"],
                    "first_error": row["rules_error"] or None,
                },
            }
        )
    health, folders = st.mailbox_health(conn), st.checkpoints(conn)
    mailboxes = []
    for box in settings.mailbox:
        seen = health.get(box.name, {})
        mailboxes.append(
            {
                "name": box.name,
                "address": box.address,
                "imap": box.uses_imap,
                "connected": seen.get("connected"),
                "last_sync_at": _iso(seen.get("last_sync_at")),
                "last_error": mask_url(seen["last_error"]) if seen.get("last_error") else None,
                "last_error_at": _iso(seen.get("last_error_at")),
                "reported_by": seen.get("reported_by"),
                "reported_at": _iso(seen.get("updated_at")),
                "folders": [
                    {**f, "updated_at": _iso(f["updated_at"])} for f in folders.get(box.name, [])
                ],
            }
        )
    return {
        "version": installed_version(),
        "database": mask_url(settings.database.url),
        "now": now.isoformat(),
        "rules": daemons[0]["rules"] if daemons else None,
        "daemons": daemons,
        "mailboxes": mailboxes,
        "queues": {
            "outbox": _queue(conn, outbox_queries.QUEUE, "kind", now),
            "slack": _queue(conn, slack_queries.QUEUE, None, now),
        },
    }


def _ago(iso: str | None, now: datetime) -> str:
    if iso is None:
        return "never"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    return f"{iso} ({seconds:.0f} s ago)"


def render(data: dict[str, Any], now: datetime) -> list[str]:
    lines = [f"inboxd {data['version']}, database {data['database']}"]
    if not data["daemons"]:
        lines.append("daemon: none has run on this database")
    for d in data["daemons"]:
        state = "alive" if d["alive"] else ("stopped" if d["stopped_at"] else "not responding")
        lines.append(
            f"daemon {d['host']}:{d['pid']} {d['version']} {state}, started {d['started_at']}, "
            f"heartbeat {_ago(d['heartbeat_at'], now)}"
        )
    rules = data["rules"]
    if rules is not None:
        result = "ok" if rules["ok"] else f"{rules['errors']} errors, last good set kept"
        lines.append(
            f"rules: generation {rules['generation']}, loaded {rules['loaded_at']} "
            f"({rules['trigger']}): {result}"
        )
        if rules["first_error"]:
            lines.append(f"  {rules['first_error']}")
    for box in data["mailboxes"]:
        if not box["imap"]:
            lines.append(f"mailbox {box['name']}: LMTP only")
            continue
        state = {True: "connected", False: "not connected", None: "no report"}[box["connected"]]
        lines.append(f"mailbox {box['name']}: {state}, last sync {_ago(box['last_sync_at'], now)}")
        if box["last_error"]:
            lines.append(f"  last error {box['last_error_at']}: {box['last_error']}")
    for name, q in data["queues"].items():
        oldest = q["oldest_waiting_seconds"]
        age = f", oldest {oldest:.0f} s" if oldest is not None else ""
        counts = " ".join(f"{k}={v}" for k, v in sorted(q["by_status"].items()))
        lines.append(f"queue {name}: {q['waiting']} waiting{age} ({counts or 'empty'})")
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """Daemons, rules, mailboxes and queues, as the daemons last recorded them."""
    from inboxd.db.engine import make_engine

    engine = make_engine(ctx.settings.database.url, read_only=True)
    now = datetime.now(UTC)
    try:
        with engine.connect() as conn:
            data = gather(ctx.settings, conn, now)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo("\n".join(render(data, now)))
