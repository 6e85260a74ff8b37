"""Parse workers: same results as parsing inline, and a dead worker loses nothing."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from sqlmodel import Session, select
from support.mailgen import generate

from inboxd.core.model import ParsedMessage, ParseFailure
from inboxd.core.parse import parse_many, parse_outcome
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message, Quarantine, Ticket
from inboxd.ingest import parsepool
from inboxd.ingest.parsepool import ParsePool, default_workers
from inboxd.ingest.pipeline import IngestContext, Pipeline
from inboxd.ingest.sink import FetchedMail

BAD = b"\x00\x01 this is no mail\r\n"


@pytest.fixture(scope="module")
def mails() -> list[bytes]:
    raws, _threads = generate(40, seed=11)
    return [*raws[:20], BAD, *raws[20:]]


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    pool = ParsePool(workers=2, min_batch=4)
    yield pool
    pool.close()


def _workers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]


def test_workers_parse_exactly_like_inline(pool: ParsePool, mails: list[bytes]) -> None:
    got = pool.parse(mails)
    assert got is not None
    assert got == parse_many(mails)
    assert isinstance(got[20], ParseFailure) and got[20].reason
    assert all(isinstance(p, ParsedMessage) for i, p in enumerate(got) if i != 20)


def test_small_batches_and_no_workers_mean_inline(mails: list[bytes]) -> None:
    small = ParsePool(workers=1, min_batch=8)
    assert small.parse(mails[:7]) is None
    assert ParsePool(workers=0, min_batch=1).parse(mails) is None
    assert not small._executor  # nothing was started for it
    small.close()


def test_a_killed_worker_costs_one_batch_its_head_start(
    pool: ParsePool, mails: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    assert pool.parse(mails) is not None
    for proc in _workers():
        proc.send_signal(signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="inboxd.ingest"):
        assert pool.parse(mails) is None  # the caller parses this batch inline
    assert pool.breaks == 1 and "parse worker failed" in caplog.text
    assert pool.parse(mails) == parse_many(mails)  # rebuilt for the next batch


def test_workers_turn_off_after_repeated_deaths(mails: list[bytes]) -> None:
    pool = ParsePool(workers=1, min_batch=1)
    try:
        for _ in range(parsepool.MAX_BREAKS):
            assert pool.parse(mails[:3]) is not None
            for proc in _workers():
                proc.send_signal(signal.SIGKILL)
            assert pool.parse(mails[:3]) is None
        assert not pool.enabled
        assert pool.parse(mails[:3]) is None
    finally:
        pool.close()


def test_default_workers_leave_one_core_for_the_main_process() -> None:
    assert [default_workers(n) for n in (1, 2, 3, 8, 64)] == [0, 1, 2, 4, 4]


def test_split_keeps_order_and_sizes() -> None:
    items = [bytes([i]) for i in range(10)]
    parts = parsepool._split(items, 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert [x for p in parts for x in p] == items
    assert parsepool._split(items[:2], 4) == [items[:1], items[1:2]]


def _pipeline(path: Path, pool: ParsePool | None) -> Pipeline:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"pool-test",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    return Pipeline(engine, ctx, pool)


def _stored(pipeline: Pipeline) -> tuple[list[tuple[str, int | None, str]], list[str]]:
    with Session(pipeline.engine) as session:
        messages = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
        tickets = session.exec(select(Ticket)).all()
        quarantined = session.exec(select(Quarantine.reason)).all()
        assert len(tickets) == len({m.ticket_id for m in messages})
        return [(m.message_id, m.ticket_id, m.matched_by) for m in messages], list(quarantined)


def test_prepared_batches_store_what_inline_parsing_stores(
    tmp_path: Path, pool: ParsePool, mails: list[bytes]
) -> None:
    batch = [FetchedMail(uid, raw) for uid, raw in enumerate(mails, 1)]
    pooled = _pipeline(tmp_path / "pooled.db", pool)
    inline = _pipeline(tmp_path / "inline.db", None)
    prepared = pooled.prepare(batch)
    assert [m.parsed for m in prepared] == [parse_outcome(raw) for raw in mails]
    assert [(m.uid, m.raw) for m in prepared] == [(m.uid, m.raw) for m in batch]
    pooled.store_batch("support", "INBOX", 7, prepared)
    inline.store_batch("support", "INBOX", 7, inline.prepare(batch))
    assert _stored(pooled) == _stored(inline)
    messages, quarantined = _stored(pooled)
    assert len(messages) == 40 and len(quarantined) == 1
    checkpoint = pooled.checkpoint("support", "INBOX")
    assert checkpoint is not None and checkpoint.last_uid == 41
    pooled.close()  # the pipeline goes on parsing inline after close
    assert pooled.prepare(batch[:5])[0].parsed is None
    pooled.engine.dispose()
    inline.engine.dispose()
