"""Giving a person's data up on request (``forget``) and keeping history bounded (``purge``).

``forget`` pseudonymises an address everywhere it is stored and removes what
that person wrote: their mails' bodies, subjects, attachments and raw bytes;
other mails keep their text with the address replaced, and lose their raw
bytes when those name the person. Ticket, message and event rows stay (with
the pseudonym), so counts and reports are unchanged, and each ticket touched
gets a ``forgotten`` event that names nobody. ``purge`` deletes closed (and
merged) tickets older than a retention period with everything that belongs to
them, raw bytes included: the one place rows of the event log are deleted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, union, update

from inboxd.core.desk import Status
from inboxd.core.desk import events as ev
from inboxd.db import outbox_queries as oq
from inboxd.db import tickets
from inboxd.db.messages import put_blob
from inboxd.db.sql import DB
from inboxd.db.tables import (
    Attachment,
    Blob,
    Event,
    Message,
    Outbox,
    Participant,
    Quarantine,
    SlackDeferred,
    SlackNotice,
    SlackThread,
    SlaStage,
    ThreadKey,
    Ticket,
)

_T = Ticket.__table__  # type: ignore[attr-defined]
_M = Message.__table__  # type: ignore[attr-defined]
_A = Attachment.__table__  # type: ignore[attr-defined]
_P = Participant.__table__  # type: ignore[attr-defined]
_E = Event.__table__  # type: ignore[attr-defined]
_O = Outbox.__table__  # type: ignore[attr-defined]
_Q = Quarantine.__table__  # type: ignore[attr-defined]
_B = Blob.__table__  # type: ignore[attr-defined]
_N = SlackNotice.__table__  # type: ignore[attr-defined]
_ST = SlackThread.__table__  # type: ignore[attr-defined]
_S = SlaStage.__table__  # type: ignore[attr-defined]
_K = ThreadKey.__table__  # type: ignore[attr-defined]
_SD = SlackDeferred.__table__  # type: ignore[attr-defined]

EMPTY = b""
EMPTY_SHA = hashlib.sha256(EMPTY).hexdigest()  # what a removed raw mail points at


@dataclass
class ForgetReport:
    tickets: list[int] = field(default_factory=list)
    messages_removed: int = 0  # their own mails, emptied
    messages_scrubbed: int = 0  # others' mails that named them
    outbox_rows: int = 0
    slack_rows: int = 0
    quarantined: int = 0
    slack_posts: list[tuple[str, str]] = field(default_factory=list)  # (channel id, ts)


class _Scrub:
    """Replace every spelling (any case) of one address inside text, JSON and bytes."""

    def __init__(self, address: str, pseudonym: str) -> None:
        self.address = address
        self.pseudonym = pseudonym
        self._text = re.compile(re.escape(address), re.IGNORECASE)
        self._bytes = re.compile(re.escape(address.encode("utf-8")), re.IGNORECASE)

    def text(self, value: str | None) -> str | None:
        return self._text.sub(self.pseudonym, value) if value else value

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value

    def names(self, raw: bytes | None) -> bool:
        return bool(raw) and self._bytes.search(raw or b"") is not None


def _involved(db: DB, address: str) -> list[int]:
    """Tickets where the address is the requester, a participant or a sender."""
    found: set[int] = set()
    for stmt in (
        select(_T.c.id).where(func.lower(_T.c.requester) == address),
        select(_P.c.ticket_id).where(func.lower(_P.c.email) == address),
        select(_M.c.ticket_id).where(
            func.lower(_M.c.from_email) == address, _M.c.ticket_id.is_not(None)
        ),
    ):
        found.update(int(r[0]) for r in db.execute(stmt))
    return sorted(found)


def forget(db: DB, address: str, pseudonym: str, now: datetime) -> ForgetReport:
    """Remove one person from the desk, in the caller's transaction."""
    address = address.strip().lower()
    scrub = _Scrub(address, pseudonym)
    report = ForgetReport(tickets=_involved(db, address))
    put_blob(db, EMPTY_SHA, EMPTY)
    removed_per_ticket: dict[int, int] = {}
    ids = report.tickets
    if ids:
        for row in db.execute(select(_M).where(_M.c.ticket_id.in_(ids))).mappings().all():
            raw = db.execute(select(_B.c.data).where(_B.c.sha256 == row["raw_sha256"])).scalar()
            theirs = (row["from_email"] or "").lower() == address
            values: dict[str, Any] = {
                "to": scrub.json(list(row["to"] or [])),
                "cc": scrub.json(list(row["cc"] or [])),
            }
            if theirs:
                values.update(
                    from_email=pseudonym,
                    from_name="",
                    subject="(forgotten)",
                    text="",
                    html="",
                    new_text=None,
                    raw_sha256=EMPTY_SHA,
                    size=0,
                    attachment_count=0,
                )
                db.execute(delete(_A).where(_A.c.message_row_id == row["id"]))
                report.messages_removed += 1
                tid = int(row["ticket_id"])
                removed_per_ticket[tid] = removed_per_ticket.get(tid, 0) + 1
            else:
                for name in ("subject", "text", "html", "new_text", "from_name"):
                    values[name] = scrub.text(row[name])
                if scrub.names(bytes(raw) if raw is not None else None):
                    values["raw_sha256"] = EMPTY_SHA
                    report.messages_scrubbed += 1
            db.execute(update(_M).where(_M.c.id == row["id"]).values(**values))
        for row in db.execute(select(_T).where(_T.c.id.in_(ids))).mappings().all():
            values = {"subject": scrub.text(row["subject"]) or ""}
            values["normalized_subject"] = scrub.text(row["normalized_subject"]) or ""
            if (row["requester"] or "").lower() == address:
                values.update(requester=pseudonym, requester_name="")
            db.execute(update(_T).where(_T.c.id == row["id"]).values(**values))
        db.execute(
            update(_P).where(func.lower(_P.c.email) == address).values(email=pseudonym, name="")
        )
        for row in db.execute(select(_E).where(_E.c.ticket_id.in_(ids))).mappings().all():
            actor, data = scrub.text(row["actor"]) or "", scrub.json(row["data"] or {})
            if actor != row["actor"] or data != row["data"]:
                db.execute(update(_E).where(_E.c.id == row["id"]).values(actor=actor, data=data))
        report.slack_posts = [
            (r.channel_id or r.channel, r.ts)
            for r in db.execute(select(_ST).where(_ST.c.ticket_id.in_(ids), _ST.c.ts.is_not(None)))
        ]
    report.outbox_rows = _scrub_outbox(db, scrub)
    report.slack_rows = _scrub_slack(db, scrub)
    report.quarantined = _scrub_quarantine(db, scrub)
    _drop_orphan_blobs(db)
    for ticket_id in ids:
        forgotten = ev.Forgotten(at=now, messages=removed_per_ticket.get(ticket_id, 0))
        tickets.record(db, ticket_id, forgotten)
    return report


def _scrub_outbox(db: DB, scrub: _Scrub) -> int:
    changed = 0
    rows = db.execute(
        select(_O.c.id, _O.c.rcpts, _O.c.raw, _O.c.intent, _O.c.rcpt_key, _O.c.status)
    )
    for row in rows.all():
        rcpts = list(row.rcpts or [])
        if not (
            scrub.names(bytes(row.raw or b""))
            or scrub.names((row.intent or "").encode())
            or any(scrub.address == r.lower() for r in rcpts)
        ):
            continue
        values: dict[str, object] = {
            "rcpts": scrub.json(rcpts),
            "rcpt_key": scrub.text(row.rcpt_key) or "",
            "raw": EMPTY,
            "intent": "",
        }
        if row.status in (oq.QUEUED, oq.SENDING):  # nothing is left to send
            values.update(status=oq.FAILED, last_error="forgotten before it was sent")
        db.execute(update(_O).where(_O.c.id == row.id).values(**values))
        changed += 1
    return changed


def _scrub_slack(db: DB, scrub: _Scrub) -> int:
    changed = 0
    for row in db.execute(select(_N.c.id, _N.c.text, _N.c.blocks)).all():
        text, blocks = scrub.text(row.text) or "", scrub.json(row.blocks or [])
        if text != row.text or blocks != row.blocks:
            db.execute(update(_N).where(_N.c.id == row.id).values(text=text, blocks=blocks))
            changed += 1
    for row in db.execute(select(_SD.c.id, _SD.c.text)).all():  # held for a quiet-hours summary
        text = scrub.text(row.text) or ""
        if text != row.text:
            db.execute(update(_SD).where(_SD.c.id == row.id).values(text=text))
            changed += 1
    return changed


def _scrub_quarantine(db: DB, scrub: _Scrub) -> int:
    changed = 0
    for row in db.execute(select(_Q.c.id, _Q.c.raw_sha256)).all():
        raw = db.execute(select(_B.c.data).where(_B.c.sha256 == row.raw_sha256)).scalar()
        if scrub.names(bytes(raw) if raw is not None else None):
            db.execute(update(_Q).where(_Q.c.id == row.id).values(raw_sha256=EMPTY_SHA))
            changed += 1
    return changed


def _drop_orphan_blobs(db: DB) -> int:
    """Blobs no message, attachment or quarantine row points at any more."""
    used = union(select(_M.c.raw_sha256), select(_A.c.sha256), select(_Q.c.raw_sha256)).subquery()
    result = db.execute(delete(_B).where(_B.c.sha256.not_in(select(used.c[0]))))
    return int(getattr(result, "rowcount", 0) or 0)


# --- retention --------------------------------------------------------------------


@dataclass
class PurgeReport:
    tickets: list[int] = field(default_factory=list)
    messages: int = 0
    blobs: int = 0


def purgeable(db: DB, before: datetime) -> list[int]:
    """Closed or merged tickets whose last status change is older than ``before``."""
    rows = db.execute(
        select(_T.c.id)
        .where(
            _T.c.status.in_([Status.CLOSED.value, Status.MERGED.value]),
            _T.c.status_changed_at < before,
        )
        .order_by(_T.c.id)
    )
    return [int(r[0]) for r in rows]


def purge(db: DB, ticket_ids: Iterable[int]) -> PurgeReport:
    """Delete the tickets with their messages, attachments, people, events, queue
    rows and thread keys, then the raw bytes nothing points at any more."""
    ids = sorted(set(ticket_ids))
    report = PurgeReport(tickets=ids)
    if not ids:
        return report
    message_ids = select(_M.c.id).where(_M.c.ticket_id.in_(ids))
    report.messages = int(
        db.execute(select(func.count()).select_from(_M).where(_M.c.ticket_id.in_(ids))).scalar_one()
    )
    db.execute(update(_T).where(_T.c.merged_into.in_(ids)).values(merged_into=None))
    db.execute(update(_T).where(_T.c.previous_ticket_id.in_(ids)).values(previous_ticket_id=None))
    db.execute(delete(_A).where(_A.c.message_row_id.in_(message_ids)))
    for table in (_M, _P, _E, _O, _N, _ST, _S, _K, _SD):
        db.execute(delete(table).where(table.c.ticket_id.in_(ids)))
    db.execute(delete(_T).where(_T.c.id.in_(ids)))
    report.blobs = _drop_orphan_blobs(db)
    return report
