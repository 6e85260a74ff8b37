"""Poison mail never stalls a mailbox: oversize mail is quarantined by reference.

Issue 15, "Poison mail stalls a mailbox": a 1 GB mail over IMAP was fetched
whole, quarantined with all its bytes inside the batch transaction (SQLite
refused the blob, the batch rolled back, the checkpoint never advanced), and
batches were capped by count only. Now RFC822.SIZE is read before FETCH; a mail
over ``max_bytes`` is quarantined with its size and headers in a transaction of
its own, its raw left on the server, and the checkpoint passes it; batches are
capped by bytes too. Against the real Dovecot, with a small ``max_bytes``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from servers.dovecot import DovecotServer
from sqlalchemy import select
from sqlmodel import Session
from test_imap_fetch import DictSink, box_config, mails

from inboxd.db import sql
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Blob, Message, Quarantine
from inboxd.ingest.imap import MailboxFetcher, plan_batches
from inboxd.ingest.pipeline import IngestContext, Pipeline

MAX = 8192


def pipeline(tmp_path: Path) -> Pipeline:
    engine = make_engine(f"sqlite:///{tmp_path / 'inboxd.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"imap-test-secret",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        max_bytes=MAX,
    )
    return Pipeline(engine, ctx)


def big_mail() -> bytes:
    head = (
        "From: Poison <poison@example.test>\r\nTo: support@help.example\r\n"
        "Subject: Huge attachment\r\nMessage-ID: <huge@example.test>\r\n\r\n"
    )
    return head.encode() + b"BIGBODY " * (3 * MAX // 8)


@pytest.mark.server
@pytest.mark.timeout(60)
def test_oversize_mail_is_quarantined_by_reference_and_the_checkpoint_passes_it(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    small = mails(3, "ok")
    big = big_mail()
    dovecot.append(imap_user, "INBOX", [small[0], big, small[1]])
    pipe = pipeline(tmp_path)
    cfg = box_config(dovecot, imap_user, name="support")
    box = MailboxFetcher(cfg, pipe, password=imap_user, max_bytes=MAX)
    try:
        box.sync_once()
        checkpoint = pipe.checkpoint("support", "INBOX")
        assert checkpoint is not None and checkpoint.last_uid == 3
        with Session(pipe.engine) as session:
            assert sql.count_rows(session, Message) == 2
            [row] = session.execute(select(Quarantine)).scalars().all()
            blob = session.get(Blob, row.raw_sha256)
        assert row.uid == 2
        assert f"oversize: {len(big)} bytes" in row.reason
        assert "left on the server" in row.reason
        assert blob is not None
        kept = bytes(blob.data)
        assert b"Subject: Huge attachment" in kept and b"BIGBODY" not in kept
        # the next mails are stored, the poison one is not fetched again
        dovecot.append(imap_user, "INBOX", [small[2]])
        box.sync_once()
        with Session(pipe.engine) as session:
            assert sql.count_rows(session, Message) == 3
            assert sql.count_rows(session, Quarantine) == 1
    finally:
        pipe.engine.dispose()


@pytest.mark.server
@pytest.mark.timeout(60)
def test_batches_are_capped_by_bytes_as_well_as_count(
    dovecot: DovecotServer, imap_user: str
) -> None:
    dovecot.append(imap_user, "INBOX", mails(6, "b"))
    sink = DictSink()
    size = len(mails(1, "probe")[0])
    cfg = box_config(dovecot, imap_user, batch_size=100, batch_bytes=2 * size + size // 2)
    MailboxFetcher(cfg, sink, password=imap_user).sync_once()
    assert sink.count(cfg.name) == 6
    assert sink.batch_sizes == [2, 2, 2]


def test_plan_batches_splits_by_count_and_bytes_and_flags_oversize() -> None:
    sizes = {1: 10, 2: 10, 3: 500, 4: 10, 5: 60, 6: 60}
    plan = plan_batches([1, 2, 3, 4, 5, 6], sizes, batch_size=3, batch_bytes=100, max_bytes=100)
    assert [(b.uids, b.oversize) for b in plan] == [
        ((1, 2, 4), ((3, 500),)),  # the oversize mail costs its batch no bytes
        ((5,), ()),
        ((6,), ()),
    ]
    # one mail bigger than a batch but within max_bytes still gets a batch of its own
    [only] = plan_batches([1], {1: 90}, batch_size=3, batch_bytes=50, max_bytes=100)
    assert only.uids == (1,)
