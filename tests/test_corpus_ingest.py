"""Whole corpora through the real ingest pipeline: each mail ends in a ticket or in
quarantine with a reason, and nothing is lost.

CPython's ``test/test_email/data`` always (when installed); ``../shared/corpora/mime``
and ``../shared/corpora/bounces`` as optional extra data when present.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from inboxd.db import messages, sql
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message, Quarantine
from inboxd.ingest.pipeline import IngestContext, Pipeline, Source

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INBOXD_SHARED", REPO.parent / "shared")) / "corpora"


def cpython_email_data() -> list[Path]:
    spec = importlib.util.find_spec("test.test_email")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return sorted(p for p in data.iterdir() if p.is_file()) if data.is_dir() else []


def shared_files(name: str) -> list[Path]:
    folder = SHARED / name
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def ingest_all(tmp_path: Path, files: list[Path]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'corpus.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"corpus",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: datetime(2026, 3, 2, tzinfo=UTC),
    )
    pipeline = Pipeline(engine, ctx)
    statuses: dict[str, int] = {}
    for path in files:
        outcome = pipeline.ingest(path.read_bytes(), Source("file", "support"))
        assert outcome.status in ("stored", "duplicate", "quarantined"), path
        if outcome.status == "quarantined":
            assert outcome.reason, path
        else:
            assert outcome.ticket_id is not None, path
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    with Session(engine) as s:
        stored = sql.count_rows(s, Message)
        held = sql.count_rows(s, Quarantine)
        assert all(q.reason for q in messages.list_quarantine(s))
    assert stored == statuses.get("stored", 0)
    assert held == statuses.get("quarantined", 0)
    assert stored + held + statuses.get("duplicate", 0) == len(files)
    print(f"\n{len(files)} files: {statuses}")
    engine.dispose()


@pytest.mark.skipif(not cpython_email_data(), reason="CPython email test data not installed")
def test_cpython_email_data_ingests_or_quarantines(tmp_path: Path) -> None:
    ingest_all(tmp_path, cpython_email_data())


@pytest.mark.parametrize("corpus", ["mime", "bounces"])
def test_shared_corpora_ingest_or_quarantine(tmp_path: Path, corpus: str) -> None:
    files = shared_files(corpus)
    if not files:
        pytest.skip(f"optional corpus ../shared/corpora/{corpus} not present")
    ingest_all(tmp_path, files)
