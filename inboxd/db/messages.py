"""Mail as stored: raw bytes, message rows, attachments, thread keys, quarantine.

Everything ``store_mail`` keeps about one mail, the threading lookups the
pipeline runs before placing it, and the reads the flows need to thread our
answers (the ticket's first mail, the customer's last). Statements on the
ingest hot path are prepared once (``db.fastexec``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, LargeBinary, bindparam, func, insert, text
from sqlalchemy import select as sa_select
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from inboxd.core.inbound import Arrival, Source
from inboxd.core.model import ParsedMessage
from inboxd.core.thread import KnownKey, ThreadKeys, ThreadLookup, TicketSnapshot
from inboxd.db import behind, tickets
from inboxd.db.fastexec import Prepared, PreparedQuery
from inboxd.db.sql import DB, conn_of, in_chunks, in_values, insert_ignore, one_of, utc
from inboxd.db.tables import Attachment as AttachmentRow
from inboxd.db.tables import (
    Blob,
    Message,
    Participant,
    Quarantine,
    ThreadKey,
    Ticket,
    shown_new_text,
    stored_new_text,
)

_MESSAGE_T = Message.__table__  # type: ignore[attr-defined]


_KEY_T = ThreadKey.__table__  # type: ignore[attr-defined]


_PART_T = Participant.__table__  # type: ignore[attr-defined]


_TICKET_T = Ticket.__table__  # type: ignore[attr-defined]


_BLOB = Blob.__table__  # type: ignore[attr-defined]


_ATT = AttachmentRow.__table__  # type: ignore[attr-defined]


_FIND_MESSAGE = PreparedQuery(
    lambda _n: select(_MESSAGE_T.c.id, _MESSAGE_T.c.ticket_id).where(
        _MESSAGE_T.c.message_id == bindparam("mid"),
        _MESSAGE_T.c.content_digest == bindparam("dig"),
    )
)


_INSERT_MESSAGE = Prepared(lambda _d: _MESSAGE_T.insert().returning(_MESSAGE_T.c.id))
_INSERT_MESSAGE_WITH_ID = Prepared(lambda _d: _MESSAGE_T.insert())
_INSERT_ATTACHMENTS = Prepared(lambda _d: _ATT.insert())


# run as {"k": key, "was": "ref", "origin": "self"}
_UPGRADE_KEY = Prepared(
    lambda _d: _KEY_T.update().where(
        _KEY_T.c.key == bindparam("k"), _KEY_T.c.origin == bindparam("was")
    )
)


_KEY_LOOKUP = PreparedQuery(
    lambda n: select(_KEY_T.c.key, _KEY_T.c.ticket_id, _KEY_T.c.origin).where(
        one_of(_KEY_T.c.key, n)
    )
)


def put_blob(db: DB, sha256: str, data: bytes) -> None:
    insert_ignore(db, Blob, [{"sha256": sha256, "size": len(data), "data": data}])


_FIND_MESSAGES = PreparedQuery(
    lambda n: select(
        _MESSAGE_T.c.message_id,
        _MESSAGE_T.c.content_digest,
        _MESSAGE_T.c.id,
        _MESSAGE_T.c.ticket_id,
    ).where(one_of(_MESSAGE_T.c.message_id, n))
)
_SEEN = "stored_message_identities"  # the batch memo: (Message-ID, digest) -> row or None


def prefetch_messages(db: DB, identities: Iterable[tuple[str, str]]) -> None:
    """Inside an ingest batch: look up which of these mails (Message-ID, content
    digest) are stored, in one query, so ``find_message`` answers them from the
    batch's memo (and the mails the batch stores, ``add_message`` adds to it)."""
    seen = behind.memo(_SEEN)
    if seen is None:
        return
    wanted = set(identities)
    ids = sorted({mid for mid, _ in wanted})
    conn = conn_of(db)
    for chunk in in_chunks(ids):
        rows = _FIND_MESSAGES.all(conn, *in_values(chunk, conn))
        for mid, dig, row_id, ticket_id in rows:
            if (mid, dig) in wanted:
                seen[(mid, dig)] = (int(row_id), ticket_id)
    for identity in wanted:
        seen.setdefault(identity, None)


def find_message(db: DB, message_id: str, digest: str) -> tuple[int, int | None] | None:
    """(row id, ticket id) of a stored mail with this identity."""
    seen = behind.memo(_SEEN)
    if seen is not None and (message_id, digest) in seen:
        found: tuple[int, int | None] | None = seen[(message_id, digest)]
        return found
    rows = _FIND_MESSAGE.all(conn_of(db), {"mid": message_id, "dig": digest})
    return (int(rows[0][0]), rows[0][1]) if rows else None


def add_message(db: DB, values: dict[str, Any]) -> int:
    conn = conn_of(db)
    ids = behind.memo(_RESERVED)  # empty unless reserve_message_ids filled it
    if ids and ids["free"]:  # an id reserved at the batch's start: the INSERT need not answer
        row_id: int = ids["free"].popleft()
        _INSERT_MESSAGE_WITH_ID.write(conn, {**values, "id": row_id})
        ids["lowest"].setdefault(values["ticket_id"], row_id)  # they are taken ascending
    else:
        row_id = int(_INSERT_MESSAGE.run(conn, values).fetchone()[0])
    if ids:  # also an id taken here once the reserved ones ran out: the check skips it
        ids["ours"].append(row_id)
    seen = behind.memo(_SEEN)
    if seen is not None:
        seen[(values["message_id"], values["content_digest"])] = (row_id, values.get("ticket_id"))
    return row_id


_RESERVED = "reserved_message_ids"  # the batch memo: free ids, ours, lowest per ticket
_TAKE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n) ORDER BY 1"
)
# a mail on one of our tickets, not ours, with an id above our lowest there
_LATER_MAIL = text(
    f"SELECT 1 FROM {_MESSAGE_T.name} AS m "
    "JOIN unnest(CAST(:tickets AS INTEGER[]), CAST(:lowest AS INTEGER[])) "
    "AS ours(ticket_id, low) ON m.ticket_id = ours.ticket_id "
    "WHERE m.id > ours.low AND m.id <> ALL(CAST(:ours AS INTEGER[])) LIMIT 1"
)


def reserve_message_ids(db: DB, count: int) -> None:
    """Inside an ingest batch on PostgreSQL: take ``count`` message row ids from the
    sequence in one query, so each mail's message INSERT waits in the pipeline
    (``db.deferred``) instead of a round trip for its ``RETURNING`` id. Call
    ``reserved_ids_in_order`` before the commit.

    An id taken at the batch's start can be lower than one another writer committed
    on the same ticket meanwhile, and a ticket's mails are read in id order (its
    first mail is its lowest id): that is what the check is for."""
    conn = conn_of(db)
    ids = behind.memo(_RESERVED)
    if ids is None or conn.dialect.name != "postgresql" or count < 2:
        return
    rows = conn.execute(_TAKE_IDS, {"table": _MESSAGE_T.name, "n": count})
    ids.update(free=deque(int(r[0]) for r in rows), lowest={}, ours=[])


def reserved_ids_in_order(db: DB) -> bool:
    """Whether the mails this batch stored with reserved ids still come after every
    other mail on their tickets: False when another writer committed a mail with a
    higher id on one of them, which may have been before ours (then store the batch
    again without reservations). A mail committed before ours was stored is seen
    here, whatever its writer locked, since this runs after our last write."""
    ids = behind.memo(_RESERVED)
    if not ids or not ids["lowest"]:
        return True
    lowest: dict[int, int] = ids["lowest"]
    params = {"tickets": list(lowest), "lowest": list(lowest.values()), "ours": ids["ours"]}
    later = conn_of(db).execute(_LATER_MAIL, params).first()
    return later is None


_KEYS = "thread_keys"  # the batch memo: a Message-ID -> its KnownKey, or None (no key)


def prefetch_thread_keys(db: DB, mails: Iterable[ParsedMessage]) -> None:
    """Inside an ingest batch: the thread keys of these mails' own and cited
    Message-IDs, in a query per 500, so ``thread_lookup`` answers from the batch's
    memo; ``add_thread_keys`` keeps it true for the keys the batch adds."""
    known = behind.memo(_KEYS)
    if known is None:
        return
    ids = dict.fromkeys(k for m in mails for k in (m.message_id, *m.in_reply_to, *m.references))
    _look_up_keys(db, [k for k in ids if k and k not in known], known)


def _look_up_keys(db: DB, ids: Sequence[str], into: dict[str, KnownKey | None]) -> None:
    conn = conn_of(db)
    for chunk in in_chunks(ids):
        for key in chunk:
            into[key] = None
        for key, ticket_id, origin in _KEY_LOOKUP.all(conn, *in_values(chunk, conn)):
            into[key] = KnownKey(ticket_id, origin)


def thread_lookup(db: DB, keys: ThreadKeys) -> ThreadLookup:
    """Everything ``core.thread.choose`` needs, in one or two queries plus merges
    (the keys from the batch's memo when it has them)."""
    ids = list(dict.fromkeys(keys.lookup_ids))
    memo = behind.memo(_KEYS)
    found: dict[str, KnownKey | None] = {} if memo is None else memo
    _look_up_keys(db, [k for k in ids if k not in found], found)
    known = {k: v for k in ids if (v := found.get(k)) is not None}
    wanted = {k.ticket_id for k in known.values()} | set(keys.candidate_tickets)
    snapshots = ticket_snapshots(db, wanted)
    for _ in range(16):  # follow merges: pull in the tickets others were merged into
        missing = {s.merged_into for s in snapshots.values() if s.merged_into} - set(snapshots)
        if not missing:
            break
        snapshots.update(ticket_snapshots(db, {m for m in missing if m is not None}))
    return ThreadLookup(known, snapshots)


_SNAPSHOT_PEOPLE = PreparedQuery(
    lambda n: select(_PART_T.c.ticket_id, _PART_T.c.email, _PART_T.c.role).where(
        one_of(_PART_T.c.ticket_id, n)
    )
)


# The first mail of the ticket being read: its Message-ID and the start of its raw
# bytes, where the Thread-Index header our answers thread by is (Outlook's). Read
# with the ticket, since nearly every mail on a known ticket notifies its agents.
_ROOT = _MESSAGE_T.alias("root_message")
_ROOT_BLOB = _BLOB.alias("root_blob")


def _of_first_mail(value: Any, source: Any) -> Any:
    """``value`` of the ticket's first mail (its lowest row id), as a subquery of
    the ticket row being read."""
    return (
        sa_select(value)
        .select_from(source)
        .where(_ROOT.c.ticket_id == _TICKET_T.c.id)
        .order_by(_ROOT.c.id)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
        .scalar_subquery()
    )


_ROOT_ID = _of_first_mail(_ROOT.c.message_id, _ROOT)
_ROOT_HEAD = _of_first_mail(
    func.substr(_ROOT_BLOB.c.data, bindparam("one"), bindparam("head"), type_=LargeBinary),
    _ROOT.join(_ROOT_BLOB, _ROOT_BLOB.c.sha256 == _ROOT.c.raw_sha256),
)
SNAPSHOT_HEAD_BYTES = 8192  # most header blocks end within; a longer one is read whole later


def _snapshot_rows(n: int) -> Select[Any]:
    """The whole ticket row of ``n`` tickets: the mail that finds its ticket among
    them keeps it (one read)."""
    return sa_select(*(_TICKET_T.c[name] for name in tickets.COLUMNS), _ROOT_ID, _ROOT_HEAD).where(
        one_of(_TICKET_T.c.id, n)
    )


_SNAPSHOT_TICKETS = PreparedQuery(_snapshot_rows)
# the same, each ticket row locked until the commit: read at an ingest batch's start
# for every mail of the batch, they must not change underneath it (db.tickets writes
# drop a ticket's snapshot from the batch's memo as soon as the batch writes it)
_SNAPSHOT_TICKETS_LOCKED = PreparedQuery(
    lambda n: _snapshot_rows(n).order_by(_TICKET_T.c.id).with_for_update(of=_TICKET_T)
)
_AT = {name: n for n, name in enumerate(tickets.COLUMNS)}
_ROOTS = "ticket_roots"  # the batch memo: ticket id -> (first Message-ID, head of its raw)


def prefetch_ticket_snapshots(db: DB) -> None:
    """Inside an ingest batch, after ``prefetch_thread_keys``: the snapshots of the
    tickets its keys point at, in one query (one per ``sql.IN_CHUNK``), each row locked
    until the commit (on PostgreSQL; SQLite's batch holds the write lock), so a
    reply reads its ticket from the memo unless the batch wrote it since."""
    known, memo = behind.memo(_KEYS), behind.memo(tickets.SNAPSHOTS)
    if known is None or memo is None:
        return
    ids = sorted({k.ticket_id for k in known.values() if k is not None})
    for chunk in in_chunks(ids):
        memo.update(_read_snapshots(conn_of(db), chunk, _SNAPSHOT_TICKETS_LOCKED))


def ticket_snapshots(db: DB, ticket_ids: Iterable[int]) -> dict[int, TicketSnapshot]:
    """What threading needs of these tickets: from the batch's memo, else read."""
    memo = behind.memo(tickets.SNAPSHOTS)
    ids = sorted(set(ticket_ids))
    if memo is None:
        return _read_snapshots(conn_of(db), ids, _SNAPSHOT_TICKETS)
    found = {i: snap for i in ids if (snap := tickets.batch_snapshot(memo, i)) is not None}
    missing = [i for i in ids if i not in found]
    if missing:  # locked as the batch's first read: current until the batch writes it
        found.update(_read_snapshots(conn_of(db), missing, _SNAPSHOT_TICKETS_LOCKED))
        memo.update({i: found[i] for i in missing if i in found})
    return found


def _read_snapshots(
    conn: Connection, ids: Sequence[int], query: PreparedQuery
) -> dict[int, TicketSnapshot]:
    if not ids:
        return {}
    roles: dict[int, dict[str, str]] = {i: {} for i in ids}
    id_params, shape = in_values(ids, conn)
    params = {**id_params, "one": 1, "head": SNAPSHOT_HEAD_BYTES, **_ONE_ROW}
    people_rows = _SNAPSHOT_PEOPLE.send(conn, id_params, shape)  # one round trip for both
    ticket_rows = query.send(conn, params, shape)
    for ticket_id, email, role in people_rows():
        roles[ticket_id][email] = role
    out: dict[int, TicketSnapshot] = {}
    roots = behind.memo(_ROOTS)
    for full in ticket_rows():
        row, (root_id, root_head) = full[: len(_AT)], full[len(_AT) :]
        tid = row[_AT["id"]]
        head = bytes(root_head or b"")
        if roots is not None and root_id is not None and _whole_header_block(head):
            roots[tid] = (str(root_id), head)
        out[tid] = tickets.snapshot_of(tickets.from_row(row, frozenset(roles[tid])), roles[tid])
    return out


def add_thread_keys(
    db: DB, ticket_id: int, own: str, cited: Iterable[str], *, own_was_ref: bool = True
) -> None:
    """Record the mail's own id (origin self) and the ids it cites (origin ref).

    A key already pointing at a ticket keeps its ticket (first come wins); a
    ``ref`` key is upgraded to ``self`` when the cited mail itself arrives
    (``own_was_ref`` False skips that update when the caller knows better).
    """
    rows = [{"key": own, "ticket_id": ticket_id, "origin": "self"}]
    rows += [
        {"key": c, "ticket_id": ticket_id, "origin": "ref"}
        for c in dict.fromkeys(cited)
        if c != own
    ]
    insert_ignore(db, ThreadKey, rows)
    if own_was_ref:
        _UPGRADE_KEY.write(conn_of(db), {"k": own, "was": "ref", "origin": "self"})
    memo = behind.memo(_KEYS)
    if memo is not None:
        for row in rows:  # first come wins: only a key known to be absent is now ours
            key = row["key"]
            if key in memo and memo[key] is None:
                memo[key] = KnownKey(ticket_id, str(row["origin"]))
        was = memo.get(own)
        if own_was_ref and was is not None and was.origin == "ref":
            memo[own] = KnownKey(was.ticket_id, "self")


def _write_keys(db: DB, rows: Sequence[dict[str, Any]]) -> None:
    insert_ignore(db, ThreadKey, rows)


# our own new Message-IDs' keys, written at the end of an ingest batch
_HELD_OWN_KEYS = behind.Held("own_keys", _write_keys)


def add_own_key(db: DB, ticket_id: int, message_id: str) -> None:
    """The thread key of a Message-ID we just made: our mail threads back to the ticket
    even when a client drops References. Nothing can cite it before it is sent, so
    inside an ingest batch it waits for the batch's one statement."""
    _HELD_OWN_KEYS.add(db, [{"key": message_id, "ticket_id": ticket_id, "origin": "self"}])


def repoint_thread_keys(db: DB, from_ticket: int, to_ticket: int) -> int:
    """A merge by threading: ``from_ticket``'s Message-IDs now name ``to_ticket``, so
    later mail of that thread finds the survivor directly; returns the keys moved."""
    result = conn_of(db).execute(
        _KEY_T.update().where(_KEY_T.c.ticket_id == from_ticket).values(ticket_id=to_ticket)
    )
    memo = behind.memo(_KEYS)
    if memo is not None:
        memo.clear()  # the batch's later lookups read the moved keys again
    return int(result.rowcount or 0)


def store_mail(
    db: DB,
    arrival: Arrival,
    *,
    ticket_id: int,
    direction: str,
    matched_by: str,
    reason: str,
    new_text: str | None = None,
    own_was_ref: bool = True,
) -> int:
    """Keep the raw bytes, the message row, its attachments and its thread keys;
    returns the message row id. Participants and events are the caller's call.
    On PostgreSQL its writes but the message row's wait in the pipeline
    (``db.deferred``): one round trip in all, for the new row's id."""
    conn = conn_of(db)
    parsed, raw, now = arrival.parsed, arrival.raw, arrival.now
    source_label, mailbox = arrival.source.label, arrival.source.mailbox
    put_blob(conn, parsed.raw_sha256, raw)
    sender = parsed.from_
    new = parsed.new_text if new_text is None else new_text
    row_id = add_message(
        conn,
        {
            "ticket_id": ticket_id,
            "message_id": parsed.message_id,
            "content_digest": parsed.content_digest,
            "raw_sha256": parsed.raw_sha256,
            "direction": direction,
            "kind": parsed.kind.value,
            "source": source_label,
            "mailbox": mailbox,
            "from_email": sender.email if sender else "",
            "from_name": sender.name if sender else "",
            "to": [a.email for a in parsed.to],
            "cc": [a.email for a in parsed.cc],
            "subject": parsed.subject[:998],
            "date": parsed.date,
            "received_at": now,
            "text": parsed.text,
            "html": parsed.html,
            "new_text": stored_new_text(new, parsed.text),
            "matched_by": matched_by,
            "match_reason": reason,
            "size": parsed.size,
            "attachment_count": len(parsed.attachments),
        },
    )
    rows = []
    for att in parsed.attachments:
        put_blob(conn, att.sha256, att.data)
        rows.append(
            {
                "message_row_id": row_id,
                "filename": att.filename,
                "content_type": att.content_type,
                "size": att.size,
                "sha256": att.sha256,
                "content_id": att.content_id,
                "inline": att.inline,
            }
        )
    if rows:
        _INSERT_ATTACHMENTS.run_many(conn, rows)
    cited = parsed.references + parsed.in_reply_to
    add_thread_keys(conn, ticket_id, parsed.message_id, cited, own_was_ref=own_was_ref)
    return row_id


def add_quarantine(db: DB, values: dict[str, Any]) -> int:
    result = db.execute(insert(Quarantine).values(**values).returning(col(Quarantine.id)))
    new_id: Any = result.scalar_one()
    return int(new_id)


def quarantine_raw(db: DB, raw: bytes, source: Source, *, reason: str, now: datetime) -> int:
    """Keep mail that could not be parsed or placed, with the reason; returns its id."""
    sha = hashlib.sha256(raw).hexdigest()
    put_blob(db, sha, raw)
    return quarantine_raw_row(db, sha, source, reason=reason, now=now)


def quarantine_oversize(
    db: DB, head: bytes, source: Source, *, size: int, limit: int, now: datetime
) -> int | None:
    """Keep a mail over the size limit by reference: its header block and size, the
    raw left on the server. Once per mailbox, folder, UID and head (a batch that is
    fetched again after a crash does not add a second row); the new row's id."""
    sha = hashlib.sha256(head).hexdigest()
    known = db.execute(
        select(Quarantine.id).where(
            Quarantine.raw_sha256 == sha,
            Quarantine.mailbox == source.mailbox,
            Quarantine.folder == source.folder,
            Quarantine.uid == source.uid,
        )
    ).first()
    if known is not None:
        return None
    put_blob(db, sha, head)
    reason = (
        f"oversize: {size} bytes > {limit}; headers kept, the raw mail left on the server "
        f"(UID {source.uid} of {source.folder})"
    )
    return quarantine_raw_row(db, sha, source, reason=reason, now=now)


def quarantine_raw_row(db: DB, sha: str, source: Source, *, reason: str, now: datetime) -> int:
    """The quarantine row of a blob already stored."""
    return add_quarantine(
        db,
        {
            "raw_sha256": sha,
            "reason": reason[:2000],
            "source": source.label,
            "mailbox": source.mailbox,
            "folder": source.folder,
            "uid": source.uid,
            "received_at": now,
        },
    )


def list_quarantine(session: Session, include_released: bool = False) -> list[Quarantine]:
    stmt = select(Quarantine).order_by(col(Quarantine.id))
    if not include_released:
        stmt = stmt.where(col(Quarantine.released_at).is_(None))
    return list(session.execute(stmt).scalars())


def ticket_messages(session: Session, ticket_id: int) -> list[Message]:
    return list(
        session.execute(
            select(Message).where(Message.ticket_id == ticket_id).order_by(col(Message.id))
        ).scalars()
    )


HEAD_BYTES = 65536  # enough for any header block we read back


_ONE_ROW = {"lim": 1, "off": 0}


@dataclass(frozen=True, slots=True)
class StoredMessage:
    row_id: int
    message_id: str
    direction: str
    kind: str
    from_email: str
    from_name: str
    raw_sha256: str
    received_at: datetime


_MSG_COLUMNS = (
    _MESSAGE_T.c.id,
    _MESSAGE_T.c.message_id,
    _MESSAGE_T.c.direction,
    _MESSAGE_T.c.kind,
    _MESSAGE_T.c.from_email,
    _MESSAGE_T.c.from_name,
    _MESSAGE_T.c.raw_sha256,
    _MESSAGE_T.c.received_at,
)


_LAST_CUSTOMER = PreparedQuery(
    lambda _n: (
        sa_select(*_MSG_COLUMNS)
        .where(
            _MESSAGE_T.c.ticket_id == bindparam("tid"),
            _MESSAGE_T.c.direction == bindparam("direction"),
            _MESSAGE_T.c.kind == bindparam("kind"),
        )
        .order_by(_MESSAGE_T.c.id.desc())
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )
)


_FIRST_HEAD = PreparedQuery(
    lambda _n: (
        sa_select(
            _MESSAGE_T.c.message_id,
            func.substr(_BLOB.c.data, bindparam("one"), bindparam("head"), type_=LargeBinary),
        )
        .join(_BLOB, _BLOB.c.sha256 == _MESSAGE_T.c.raw_sha256)
        .where(_MESSAGE_T.c.ticket_id == bindparam("tid"))
        .order_by(_MESSAGE_T.c.id)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )
)


def _one_stored(rows: list[tuple[Any, ...]]) -> StoredMessage | None:
    if not rows:
        return None
    received = utc(rows[0][7])
    assert received is not None
    row_id, message_id, direction, kind, from_email, from_name, raw_sha256 = rows[0][:7]
    return StoredMessage(
        row_id, message_id, direction, kind, from_email, from_name, raw_sha256, received
    )


def _whole_header_block(head: bytes) -> bool:
    return b"\r\n\r\n" in head or b"\n\n" in head


def first_message_head(db: DB, ticket_id: int) -> tuple[str, bytes] | None:
    """Message-ID and the first ``HEAD_BYTES`` of the raw mail that opened the ticket.

    One query for what threading needs (the root id and its Thread-Index header),
    without loading a large raw mail whole. Inside an ingest batch, a ticket the
    thread lookup read came with its first mail's header block already.
    """
    roots = behind.memo(_ROOTS)
    if roots is not None and ticket_id in roots:
        known: tuple[str, bytes] = roots[ticket_id]
        return known
    params = {"tid": ticket_id, "one": 1, "head": HEAD_BYTES, **_ONE_ROW}
    rows = _FIRST_HEAD.all(conn_of(db), params)
    return (str(rows[0][0]), bytes(rows[0][1] or b"")) if rows else None


def last_customer_message(db: DB, ticket_id: int) -> StoredMessage | None:
    """The newest mail a customer (a person, not a machine) sent on the ticket."""
    return _one_stored(
        _LAST_CUSTOMER.all(
            conn_of(db), {"tid": ticket_id, "direction": "in", "kind": "normal", **_ONE_ROW}
        )
    )


@dataclass(frozen=True, slots=True)
class CustomerMail:
    """The newest customer mail of a ticket, as a notification shows it."""

    message_id: str
    from_name: str
    from_email: str
    subject: str
    date: datetime | None
    new_text: str  # what the sender wrote this time (``tables.shown_new_text``)
    text: str
    html: str
    attachments: tuple[tuple[str, int], ...]  # (filename, size)


def last_customer_summary(db: DB, ticket_id: int) -> CustomerMail | None:
    """The newest mail a customer sent on the ticket, with its file names.
    Read when a ticket changes hands, not per stored mail, so a plain query."""
    row = db.execute(
        sa_select(
            _MESSAGE_T.c.id,
            _MESSAGE_T.c.message_id,
            _MESSAGE_T.c.from_name,
            _MESSAGE_T.c.from_email,
            _MESSAGE_T.c.subject,
            _MESSAGE_T.c.date,
            _MESSAGE_T.c.text,
            _MESSAGE_T.c.new_text,
            _MESSAGE_T.c.html,
        )
        .where(
            _MESSAGE_T.c.ticket_id == ticket_id,
            _MESSAGE_T.c.direction == "in",
            _MESSAGE_T.c.kind == "normal",
        )
        .order_by(_MESSAGE_T.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    files = db.execute(
        sa_select(_ATT.c.filename, _ATT.c.size)
        .where(_ATT.c.message_row_id == row.id)
        .order_by(_ATT.c.id)
    ).all()
    return CustomerMail(
        message_id=row.message_id,
        from_name=row.from_name,
        from_email=row.from_email,
        subject=row.subject,
        date=utc(row.date),
        new_text=shown_new_text(row.new_text, row.text),
        text=row.text,
        html=row.html,
        attachments=tuple((f.filename, f.size) for f in files),
    )


_TEXT_OF = PreparedQuery(
    lambda _n: sa_select(_MESSAGE_T.c.text, _MESSAGE_T.c.new_text, _MESSAGE_T.c.html).where(
        _MESSAGE_T.c.id == bindparam("rid")
    )
)


def text_of(db: DB, row_id: int) -> tuple[str, str, str] | None:
    """(new text, whole text, html) of stored mail ``row_id``, as a notification quotes it."""
    rows = _TEXT_OF.all(conn_of(db), {"rid": row_id})
    if not rows:
        return None
    text, new_text, html = rows[0]
    return shown_new_text(new_text, text), text, html


def blob(db: DB, sha256: str) -> bytes | None:
    value = db.execute(sa_select(_BLOB.c.data).where(_BLOB.c.sha256 == sha256)).scalar()
    return bytes(value) if value is not None else None


def blobs(db: DB, digests: Iterable[str]) -> dict[str, bytes]:
    """The stored bytes of each of ``digests`` that is stored (a queued mail's files)."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = db.execute(sa_select(_BLOB.c.sha256, _BLOB.c.data).where(_BLOB.c.sha256.in_(wanted)))
    return {r.sha256: bytes(r.data) for r in rows}


def ticket_of_message_id(db: DB, message_id: str) -> int | None:
    """The ticket holding a stored mail with this Message-ID (any direction)."""
    return db.execute(
        sa_select(_MESSAGE_T.c.ticket_id)
        .where(_MESSAGE_T.c.message_id == message_id, _MESSAGE_T.c.ticket_id.is_not(None))
        .order_by(_MESSAGE_T.c.id)
    ).scalar()
