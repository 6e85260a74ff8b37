"""Agent identities: the stable number bound into an agent's reply tokens.

A token names an agent by number, not by address, so it stays short; the
number of an address never changes once given.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from inboxd.db import behind
from inboxd.db.fastexec import PreparedQuery
from inboxd.db.sql import DB, conn_of, insert_ignore
from inboxd.db.tables import AgentIdentity

_AGENT = AgentIdentity.__table__  # type: ignore[attr-defined]
_AGENT_NUMBER = PreparedQuery(
    lambda _n: select(_AGENT.c.id).where(_AGENT.c.email == bindparam("email"))
)


def agent_number(db: DB, email: str, name: str = "") -> int:
    """A stable positive number for an agent address (read first: most are numbered;
    an ingest batch reads each agent's once, ``db.behind.memo``)."""
    email = email.lower()
    known = behind.memo("agent_numbers")
    if known is not None and email in known:
        return int(known[email])
    rows = _AGENT_NUMBER.all(conn_of(db), {"email": email})
    if rows:
        number = int(rows[0][0])
    else:
        insert_ignore(db, AgentIdentity, [{"email": email, "name": name}])
        query = select(_AGENT.c.id).where(_AGENT.c.email == email)
        number = int(db.execute(query).scalar_one())
    if known is not None:
        known[email] = number
    return number


def agent_email_by_number(db: DB, number: int) -> str | None:
    return db.execute(
        select(_AGENT.c.email).where(_AGENT.c.id == number)
    ).scalar_one_or_none()
