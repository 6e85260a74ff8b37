"""The SLA sweep's reads and writes: which tickets are due, and which stages fired.

``ticket.sla_due_at`` is the index the sweep reads (``take_due`` is a range
scan of ``ix_ticket_sla_due_at``, so its cost follows the number of due
tickets, not of open ones); ``claim_stage`` is the exactly-once gate: the
unique key of ``slastage`` lets one insert win, whichever daemon or restart
tries it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from inboxd.core.desk import OPEN_STATUSES
from inboxd.db.fastexec import Prepared
from inboxd.db.row_queue import rowcount
from inboxd.db.sql import DB, conn_of, utc
from inboxd.db.tables import SlaStage, Ticket

_T = Ticket.__table__  # type: ignore[attr-defined]
_S = SlaStage.__table__  # type: ignore[attr-defined]


def take_due(db: DB, now: datetime, *, limit: int = 500) -> list[int]:
    """The due tickets, oldest due first, taken for this transaction.

    On PostgreSQL the rows are locked with SKIP LOCKED: daemons sweeping at the
    same moment share the work instead of doing it twice (the stage gate would
    keep them from acting twice anyway)."""
    stmt = (
        select(_T.c.id)
        .where(_T.c.sla_due_at.is_not(None), _T.c.sla_due_at <= now)
        .order_by(_T.c.sla_due_at)
        .limit(limit)
    )
    if conn_of(db).dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [int(r[0]) for r in db.execute(stmt)]


_SET_DUE = Prepared(lambda _d: _T.update().where(_T.c.id == bindparam("tid")))


def set_due(db: DB, ticket_id: int, at: datetime | None) -> None:
    """When the sweep must look again (None: no clock left to watch)."""
    set_due_many(db, [(ticket_id, at)])


def set_due_many(db: DB, items: Sequence[tuple[int, datetime | None]]) -> None:
    """The same for several tickets in one statement (the sweep's batch)."""
    rows = [{"sla_due_at": at, "tid": ticket_id} for ticket_id, at in items]
    if len(rows) == 1:
        _SET_DUE.write(conn_of(db), rows[0])
    elif rows:
        _SET_DUE.run_many(conn_of(db), rows)


def mark_due(db: DB, policies: Iterable[str], now: datetime) -> int:
    """Make every open ticket of ``policies`` due now (a policy or its calendar changed)."""
    names = sorted(set(policies))
    if not names:
        return 0
    result = db.execute(
        update(_T)
        .where(_T.c.sla_policy.in_(names), _T.c.status.in_([s.value for s in OPEN_STATUSES]))
        .values(sla_due_at=now)
    )
    return rowcount(result)


def _insert_stage(dialect: str) -> Any:
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        maker(_S)
        .on_conflict_do_nothing(index_elements=["ticket_id", "target", "cycle", "stage"])
        .returning(_S.c.id)
    )


_CLAIM = Prepared(_insert_stage)


def claim_stage(
    db: DB, ticket_id: int, target: str, cycle: int, stage: str, now: datetime
) -> bool:
    """True for the one caller that records this stage first; then it acts on it."""
    row = {"ticket_id": ticket_id, "target": target, "cycle": cycle, "stage": stage}
    cursor = _CLAIM.run(conn_of(db), {**row, "fired_at": now})
    return cursor.fetchone() is not None  # RETURNING gives no row when the key exists


def fired_stages(db: DB, ticket_id: int) -> dict[tuple[str, int, str], datetime]:
    """(target, cycle, stage) -> when it fired, for one ticket."""
    return fired_stages_of(db, [ticket_id]).get(ticket_id, {})


def fired_stages_of(
    db: DB, ticket_ids: Sequence[int]
) -> dict[int, dict[tuple[str, int, str], datetime]]:
    """The same for several tickets in one query (the sweep's batch)."""
    rows = db.execute(
        select(_S.c.ticket_id, _S.c.target, _S.c.cycle, _S.c.stage, _S.c.fired_at).where(
            _S.c.ticket_id.in_(list(ticket_ids))
        )
    )
    out: dict[int, dict[tuple[str, int, str], datetime]] = {int(i): {} for i in ticket_ids}
    for r in rows:
        fired = utc(r.fired_at)
        assert fired is not None
        out[int(r.ticket_id)][(r.target, int(r.cycle), r.stage)] = fired
    return out


def open_tickets_of(db: DB, policies: Iterable[str]) -> list[tuple[int, str]]:
    """(ticket id, policy) of the open tickets under ``policies``."""
    names = sorted(set(policies))
    rows = db.execute(
        select(_T.c.id, _T.c.sla_policy).where(
            _T.c.sla_policy.in_(names), _T.c.status.in_([s.value for s in OPEN_STATUSES])
        )
    )
    return [(int(r[0]), str(r[1])) for r in rows]
