"""The ingest counters move after the commit, by mailbox and result, on both entry points.

LMTP's ``ingest`` and IMAP's ``store_batch`` count mail ingested, tickets created
and rule hits, and observe the arrival-to-commit latency; a batch whose
transaction fails counts nothing (the fetcher fetches it again).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from inboxd.core.rules import load_rules
from inboxd.db import mailboxes
from inboxd.db.engine import make_engine, upgrade
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source
from inboxd.ingest.sink import FetchedMail
from inboxd.metrics import REGISTRY

RULES = "rules:\n  - name: stamp\n    on: [new]\n    then: {tag: stamped}\n"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def raw(msgid: str, subject: str = "Printer broken") -> bytes:
    return (
        f"From: Alice <alice@customer.example>\r\nTo: support@help.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{msgid}>\r\n\r\nIt does not print.\r\n"
    ).encode()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    loaded = load_rules([("rules/stamp.yaml", RULES)])
    assert not loaded.errors and loaded.ruleset is not None
    engine = make_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"metrics-secret",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"counted": "support@help.example"},
        rules=lambda: loaded.ruleset,
        clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    yield Pipeline(engine, ctx)
    engine.dispose()


def test_lmtp_and_imap_mail_counted_after_commit(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = sample("inboxd_mail_ingested_total", mailbox="counted", result="stored")
    dupes = sample("inboxd_mail_ingested_total", mailbox="counted", result="duplicate")
    created = sample("inboxd_tickets_created_total", mailbox="counted")
    hits = sample("inboxd_rule_hits_total", rule="stamp")
    observed = sample("inboxd_ingest_latency_seconds_count")
    slow = sample("inboxd_ingest_latency_seconds_bucket", le="30.0")

    assert pipeline.ingest(raw("m1"), Source("lmtp", "counted")).status == "stored"
    assert pipeline.ingest(raw("m1"), Source("lmtp", "counted")).status == "duplicate"
    # fetched 40 s before the batch is stored (it waited behind the one before)
    waited = FetchedMail(2, raw("m2", "Another"), fetched_at=time.time() - 40)
    pipeline.store_batch("counted", "INBOX", 7, [waited, FetchedMail(3, raw("m1"))])

    assert sample("inboxd_mail_ingested_total", mailbox="counted", result="stored") == stored + 2
    assert sample("inboxd_mail_ingested_total", mailbox="counted", result="duplicate") == (
        dupes + 2
    )
    assert sample("inboxd_tickets_created_total", mailbox="counted") == created + 2
    assert sample("inboxd_rule_hits_total", rule="stamp") == hits + 2  # new mail only
    assert sample("inboxd_ingest_latency_seconds_count") == observed + 4
    # the batch mail counts from its fetch: above 30 s, the three others below
    assert sample("inboxd_ingest_latency_seconds_bucket", le="30.0") == slow + 3

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE mailboxstate", {}, Exception("disk I/O error"))

    monkeypatch.setattr(mailboxes, "set_checkpoint", broken)
    with pytest.raises(OperationalError):
        pipeline.store_batch("counted", "INBOX", 7, [FetchedMail(4, raw("m4", "Third"))])
    assert sample("inboxd_mail_ingested_total", mailbox="counted", result="stored") == stored + 2
    assert sample("inboxd_tickets_created_total", mailbox="counted") == created + 2
