"""make_engine(read_only=True): what the CLI's ``tickets`` commands read through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from inboxd.db.engine import make_engine


def test_a_read_only_engine_refuses_writes_and_reads_past_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "modes.db"
    writer_engine = make_engine(f"sqlite:///{path}")
    with writer_engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    reader = make_engine(f"sqlite:///{path}", read_only=True)
    with reader.connect() as conn, pytest.raises(OperationalError, match="readonly"):
        conn.execute(text("INSERT INTO t VALUES (2)"))
    holder = sqlite3.connect(path, timeout=0.1)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
        with reader.connect() as conn:
            assert conn.execute(text("SELECT v FROM t")).scalars().all() == [1]
    finally:
        holder.rollback()
        holder.close()
