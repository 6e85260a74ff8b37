"""What a running daemon knows about itself, persisted for ``inboxd status``.

The CLI is another process: it cannot ask the daemon's memory, so the daemon
writes its heartbeat, its last rule load and each fetched mailbox's health
here (a few small rows, rewritten in place), and the CLI reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import col

from inboxd.db.sql import DB, conn_of, insert_ignore, utc
from inboxd.db.tables import DaemonState, MailboxHealth, MailboxState

HEARTBEAT_SECONDS = 15.0  # how often a daemon writes; three missed beats: not alive
KEEP_STOPPED = timedelta(days=30)  # rows of daemons gone that long are deleted at a start

_D = DaemonState.__table__  # type: ignore[attr-defined]
_H = MailboxHealth.__table__  # type: ignore[attr-defined]
_M = MailboxState.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RulesLoad:
    generation: int
    at: datetime
    trigger: str
    errors: int
    first_error: str


def register(db: DB, host: str, pid: int, version: str, now: datetime, rules: RulesLoad) -> int:
    """A starting daemon's row; returns its id. Old rows go, so restarts stay bounded."""
    db.execute(delete(DaemonState).where(col(DaemonState.heartbeat_at) < now - KEEP_STOPPED))
    values = {"host": host, "pid": pid, "version": version, "started_at": now}
    result = conn_of(db).execute(insert(_D).values(heartbeat_at=now, **values, **_rules(rules)))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _rules(load: RulesLoad) -> dict[str, Any]:
    return {
        "rules_generation": load.generation,
        "rules_reloaded_at": load.at,
        "rules_trigger": load.trigger,
        "rules_errors": load.errors,
        "rules_error": load.first_error[:500],
    }


def rules_loaded(db: DB, daemon_id: int, load: RulesLoad) -> None:
    db.execute(update(DaemonState).where(col(DaemonState.id) == daemon_id).values(**_rules(load)))


def heartbeat(db: DB, daemon_id: int, now: datetime, *, stopped: bool = False) -> None:
    values: dict[str, Any] = {"heartbeat_at": now}
    if stopped:
        values["stopped_at"] = now
    db.execute(update(DaemonState).where(col(DaemonState.id) == daemon_id).values(**values))


def save_mailbox(
    db: DB,
    mailbox: str,
    *,
    connected: bool,
    last_sync_at: datetime | None,
    last_error: str,
    last_error_at: datetime | None,
    reported_by: str,
    now: datetime,
) -> None:
    values = {
        "connected": connected,
        "last_sync_at": last_sync_at,
        "last_error": last_error[:500],
        "last_error_at": last_error_at,
        "reported_by": reported_by,
        "updated_at": now,
    }
    insert_ignore(db, MailboxHealth, [{"mailbox": mailbox, **values}])
    db.execute(update(MailboxHealth).where(col(MailboxHealth.mailbox) == mailbox).values(values))


def daemons(db: DB, limit: int = 10) -> list[dict[str, Any]]:
    """The most recent daemons by heartbeat, newest first."""
    rows = db.execute(select(_D).order_by(_D.c.heartbeat_at.desc()).limit(limit)).all()
    out = []
    for row in rows:
        values = dict(row._mapping)
        for key in ("started_at", "heartbeat_at", "stopped_at", "rules_reloaded_at"):
            values[key] = utc(values[key])
        out.append(values)
    return out


def mailbox_health(db: DB) -> dict[str, dict[str, Any]]:
    out = {}
    for row in db.execute(select(_H)).all():
        values = dict(row._mapping)
        for key in ("last_sync_at", "last_error_at", "updated_at"):
            values[key] = utc(values[key])
        out[values["mailbox"]] = values
    return out


def checkpoints(db: DB) -> dict[str, list[dict[str, Any]]]:
    """Each mailbox's folders: UIDVALIDITY, last UID stored, when."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in db.execute(select(_M).order_by(_M.c.folder)).all():
        out.setdefault(row.mailbox, []).append(
            {
                "folder": row.folder,
                "uidvalidity": row.uidvalidity,
                "last_uid": row.last_uid,
                "updated_at": utc(row.updated_at),
            }
        )
    return out
