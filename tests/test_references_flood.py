"""A References flood parses in linear time, is trimmed, and is never parsed in the lock.

Issue 15, "Quadratic References parsing inside the write lock": 200,000 ids took
155 s (a duplicate check per id over the list so far), and single-mail ingest
(LMTP, CLI) parsed inside its BEGIN IMMEDIATE, blocking every other delivery.
The bound here is pytest-timeout's, per test (no timing assertions): the
quadratic parse needs minutes, the linear one well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from inboxd.core.headers import parse_msgid_list
from inboxd.core.inbound import Source
from inboxd.core.parse import MAX_REFERENCES, parse_message
from inboxd.db.engine import make_engine, upgrade
from inboxd.ingest import pipeline as pipeline_module
from inboxd.ingest.pipeline import IngestContext, Pipeline
from inboxd.ingest.sink import FetchedMail

N = 200_000
IDS = [f"r{i}.x@flood.example" for i in range(N)]


def flood_mail() -> bytes:
    refs = "\r\n ".join(f"<{i}>" for i in IDS)
    return (
        "From: carol@customer.example\r\nTo: support@help.example\r\n"
        "Subject: flood\r\nMessage-ID: <flood@customer.example>\r\n"
        f"In-Reply-To: <{IDS[-1]}> {' '.join(f'<{i}>' for i in IDS[:5000])}\r\n"
        f"References: {refs}\r\n\r\nbody\r\n"
    ).encode()


@pytest.mark.timeout(30)
def test_a_flood_of_ids_is_read_in_linear_time() -> None:
    value = " ".join(f"<{i}>" for i in IDS) + " <r0.x@flood.example>"  # one repeated
    found = parse_msgid_list(value)
    assert len(found) == N and found[0] == IDS[0] and found[-1] == IDS[-1]


@pytest.mark.timeout(30)
def test_a_mail_citing_200000_ids_keeps_the_root_and_the_last_ones() -> None:
    parsed = parse_message(flood_mail())
    assert MAX_REFERENCES == 100
    assert len(parsed.references) == MAX_REFERENCES + 1
    assert parsed.references[0] == IDS[0]  # the thread root
    assert parsed.references[1:] == tuple(IDS[-MAX_REFERENCES:])
    assert parsed.in_reply_to[0] == IDS[-1]
    assert len(parsed.in_reply_to) <= MAX_REFERENCES


def watched_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Pipeline, list[str]]:
    """A pipeline whose parses and transaction starts are listed in order."""
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    steps: list[str] = []
    real = pipeline_module.parse_outcome

    def parse_outcome(raw: bytes, **kw: int) -> object:
        steps.append("parse")
        return real(raw, **kw)

    monkeypatch.setattr(pipeline_module, "parse_outcome", parse_outcome)
    event.listen(engine, "begin", lambda _conn: steps.append("begin"))
    ctx = IngestContext(
        secret=b"s",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: datetime.now(UTC),
    )
    return Pipeline(engine, ctx), steps


RAW = b"From: a@b.example\r\nSubject: x\r\nMessage-ID: <x@b.example>\r\n\r\nhi\r\n"


def test_single_mail_ingest_parses_before_it_opens_the_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, steps = watched_pipeline(tmp_path, monkeypatch)
    out = pipeline.ingest(RAW, Source("lmtp", "support", "", None))
    assert out.status == "stored"
    assert steps == ["parse", "begin"]


def test_an_unparsed_imap_batch_is_parsed_before_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, steps = watched_pipeline(tmp_path, monkeypatch)
    steps.clear()
    second = RAW.replace(b"<x@b", b"<y@b")
    pipeline.store_batch("support", "INBOX", 7, [FetchedMail(1, RAW), FetchedMail(2, second)])
    assert steps[:3] == ["parse", "parse", "begin"]
    assert steps.count("parse") == 2
