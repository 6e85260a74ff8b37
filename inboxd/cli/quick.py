"""``tickets list`` on SQLite without SQLAlchemy: the answer in the time a shell expects.

Importing SQLAlchemy and the models costs more than the whole listing, so for
a SQLite database this module reads the config's ``[database] url`` with
``tomllib`` and the ``ticket`` table with ``sqlite3`` (read-only, so it never
waits for the daemon's write lock), and builds exactly what the ORM path
prints (``tests/test_cli_quick.py`` compares them). Anything it does not
expect (another database, a config it cannot read, a schema it does not know)
returns None and the caller takes the ordinary path, which reports it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The fields of ``tickets list --json`` (cli.ticket_json), in its order.
COLUMNS = (
    "id", "subject", "status", "requester", "tags", "priority", "assignee", "team", "vip",
    "sla_policy", "mailbox", "created_at", "updated_at", "merged_into", "previous_ticket_id",
)  # fmt: skip
_DEFAULT_URL = "sqlite:///var/inboxd.db"


def sqlite_file(config: str | None) -> Path | None:
    """The SQLite file the config names (relative to the config, as Settings resolve it)."""
    path = Path(config or os.environ.get("INBOXD_CONFIG") or "inboxd.toml")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    database = data.get("database", {})
    url = database.get("url", _DEFAULT_URL) if isinstance(database, dict) else None
    prefix = "sqlite:///"
    if not isinstance(url, str) or not url.startswith(prefix) or ":memory:" in url:
        return None
    rest = url[len(prefix) :]
    file = Path(rest) if rest.startswith("/") else path.resolve().parent / rest
    return file if file.is_file() else None


def _when(value: Any) -> str | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).isoformat()


def tickets(
    file: Path, status: str | None, limit: int = 1000, after: int = 0
) -> list[dict[str, Any]] | None:
    """The rows ``tickets list`` prints (ids after ``after``, at most ``limit``), or
    None to take the ordinary path."""
    query = f"SELECT {', '.join(COLUMNS)} FROM ticket WHERE id > ?"
    params: tuple[Any, ...] = (after,)
    if status:
        query += " AND status = ?"
        params += (status,)
    query += " ORDER BY id LIMIT ?"
    try:
        con = sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute(query, (*params, limit)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    out = []
    for row in rows:
        item = dict(zip(COLUMNS, row, strict=True))
        item["tags"] = list(json.loads(item["tags"] or "[]"))
        item["vip"] = bool(item["vip"])
        item["created_at"] = _when(item["created_at"])
        item["updated_at"] = _when(item["updated_at"])
        out.append(item)
    return out
