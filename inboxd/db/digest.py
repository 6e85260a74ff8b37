"""Which weekly digests went out: ``claim`` lets one insert win per team and week."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from inboxd.db.fastexec import Prepared
from inboxd.db.sql import DB, conn_of
from inboxd.db.tables import Digest

_D = Digest.__table__  # type: ignore[attr-defined]


def _insert(dialect: str) -> Any:
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        maker(_D).on_conflict_do_nothing(index_elements=["team", "period"]).returning(_D.c.id)
    )


_CLAIM = Prepared(_insert)


def claim(db: DB, team: str, period: str, now: datetime) -> bool:
    """True for the one caller that records this team's week first; then it sends."""
    row = {"team": team, "period": period, "sent_at": now}
    return _CLAIM.run(conn_of(db), row).fetchone() is not None


def open_tickets_of_team(db: DB, team: str) -> list[int]:
    """The team's open tickets under an SLA policy (the digest's at-risk candidates)."""
    from sqlalchemy import select

    from inboxd.core.desk import OPEN_STATUSES
    from inboxd.db.tables import Ticket

    t = Ticket.__table__  # type: ignore[attr-defined]
    stmt = select(t.c.id).where(
        t.c.team == team,
        t.c.sla_policy.is_not(None),
        t.c.status.in_([s.value for s in OPEN_STATUSES]),
    )
    return [int(r[0]) for r in conn_of(db).execute(stmt.order_by(t.c.id))]
