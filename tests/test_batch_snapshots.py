"""An ingest batch's ticket snapshots (``db.tickets.SNAPSHOTS``) stay what the database
holds while the batch writes the tickets: the daemon's whole wiring (the example
rules, acknowledgements, notifications) on generated threads and replies that
bring new people, checked against a fresh read before each batch commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select
from sqlmodel import Session
from support.mailgen import stream

from inboxd.config import load_settings
from inboxd.daemon import App
from inboxd.db import behind, messages, tickets
from inboxd.db.tables import Message
from inboxd.ingest.sink import FetchedMail

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    (tmp_path / "secret").write_text("test-secret\n")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "{db_url}"
[helpdesk]
secret_file = "{tmp_path / "secret"}"
ack_per_domain_per_hour = 0
ack_per_hour = 0
[rules]
dir = "{ROOT / "rules"}"
[templates]
dir = "{ROOT / "templates"}"
[lmtp]
enabled = false
"""
    )
    built = App.build(load_settings(str(cfg)))
    yield built
    built.engine.dispose()


def _reply(n: int, parent: str, sender: str, cc: str) -> bytes:
    return (
        f"From: Person {n} <{sender}>\r\nTo: support@help.example\r\nCc: {cc}\r\n"
        f"Subject: Re: printer\r\nMessage-ID: <joined{n}@c>\r\nIn-Reply-To: <{parent}>\r\n"
        "Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nMe too, see my colleague.\r\n"
    ).encode()


def test_the_batch_memo_of_each_ticket_is_what_a_fresh_read_gives(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = list(stream(240, seed=11))
    ids = [m.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode() for m in raws]
    # replies from people new to their ticket, with someone in Cc: they join, in the
    # same batch as the mail before them on it
    for n, at in enumerate(range(5, 240, 24)):
        raws.insert(at + n + 1, _reply(n, ids[at], f"new{n}@other.example", f"cc{n}@x.example"))
    compared: list[int] = []
    original = messages.reserved_ids_in_order

    def compare_then_check(conn: Connection) -> bool:  # the batch's end, before its commit
        memo = behind.memo(tickets.SNAPSHOTS)
        assert memo is not None
        fresh = messages._read_snapshots(conn, sorted(memo), messages._SNAPSHOT_TICKETS)
        assert {i: tickets.batch_snapshot(memo, i) for i in fresh} == fresh
        assert set(fresh) == set(memo)
        compared.append(len(memo))
        return original(conn)

    monkeypatch.setattr(messages, "reserved_ids_in_order", compare_then_check)
    mails = [FetchedMail(uid, raw) for uid, raw in enumerate(raws, start=1)]
    for start in range(0, len(mails), 50):
        app.pipeline.store_batch("support", "INBOX", 1, mails[start : start + 50])
    assert len(compared) == -(-len(mails) // 50) and min(compared) > 10, compared
    with Session(app.engine) as s:
        assert s.scalar(select(func.count()).select_from(Message)) == len(raws)
        joined = [e for t in range(1, 200) for e in tickets.typed_events(s, t)]
    assert sum(e.kind == "sender_joined" for e in joined) == 10


def test_people_added_and_accepted_in_a_batch_show_in_its_memo(db_url: str) -> None:
    """A merge keeps the other ticket's customers as ``pending``; an agent's ``#cc``
    makes one a customer (the writes ``db.tickets`` does for them)."""
    from datetime import UTC, datetime

    from inboxd.db.engine import make_engine, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with Session(engine) as s, s.begin():
        tid = tickets.create(
            s, subject="s", normalized_subject="s", requester="r@c.example", requester_name="",
            mailbox="support", now=now, source="test", actor="system",
        ).id  # fmt: skip
        tickets.add_participants(s, tid, [tickets.Person("r@c.example", "", "requester")])
    with Session(engine) as s, s.begin(), behind.batch(s.connection()):
        memo = behind.memo(tickets.SNAPSHOTS)
        assert memo is not None
        messages.ticket_snapshots(s, [tid])  # read into the memo, as a batch's reply does
        people = [tickets.Person(e, "", "pending") for e in ("p@c.example", "q@c.example")]
        tickets.add_participants(s, tid, people)
        tickets.accept_participant(s, tid, "p@c.example")
        tickets.accept_participant(s, tid, "new@c.example")
        again = [tickets.Person(e, "", "pending") for e in ("p@c.example", "r@c.example")]
        tickets.add_participants(s, tid, again)  # a known address keeps its role
        ours = tickets.batch_snapshot(memo, tid)
        fresh = messages._read_snapshots(s.connection(), [tid], messages._SNAPSHOT_TICKETS)
    engine.dispose()
    assert ours is not None and ours == fresh[tid]
    assert ours.customers == {"r@c.example", "p@c.example", "new@c.example"}
    assert ours.roles["r@c.example"] == "requester" and ours.roles["q@c.example"] == "pending"
