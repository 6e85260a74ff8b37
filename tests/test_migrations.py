"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inboxd.db.engine import (
    HEAD_REVISION,
    SchemaError,
    alembic_config,
    ensure_schema,
    make_engine,
    upgrade,
)
from inboxd.db.tables import metadata


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"models changed without a migration: {diff}"
    ensure_schema(engine)  # at head: no error
    engine.dispose()


def test_fresh_database_is_created_and_stamped(db_url: str) -> None:
    engine = make_engine(db_url)
    assert upgrade(engine)
    ensure_schema(engine, create_if_empty=False)
    engine.dispose()


def test_schema_not_at_head_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(SchemaError, match="inboxd db upgrade"):
        ensure_schema(engine)
    engine.dispose()


def test_0003_clears_new_text_equal_to_text_and_downgrades_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0002")
    row = (
        "INSERT INTO message (id, message_id, content_digest, raw_sha256, direction, kind,"
        " source, mailbox, from_email, from_name, \"to\", cc, subject, received_at, text,"
        " html, new_text, matched_by, match_reason, size, attachment_count) VALUES"
        " (?, ?, 'd', 's', 'in', 'normal', '', '', '', '', '[]', '[]', '', '2026-01-01',"
        " ?, '', ?, 'new', '', 0, 0)"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO blob (sha256, size, data) VALUES ('s', 0, x'')")
        conn.exec_driver_sql(row, (1, "<a@x>", "whole", "whole"))
        conn.exec_driver_sql(row, (2, "<b@x>", "reply\n> quoted", "reply"))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT id, new_text FROM message ORDER BY id").all()
    assert [tuple(r) for r in got] == [(1, None), (2, "reply")]
    command.downgrade(cfg, "0002")
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT id, new_text FROM message ORDER BY id").all()
    assert [tuple(r) for r in got] == [(1, "whole"), (2, "reply")]
    engine.dispose()


def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        got = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("page_size", "journal_mode", "synchronous", "cache_size", "foreign_keys")
        }
    assert got == {
        "page_size": 16384,
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "cache_size": -16384,
        "foreign_keys": 1,
    }
    engine.dispose()


def test_head_revision_constant_is_alembics_head(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head == HEAD_REVISION, "a new migration must update db.engine.HEAD_REVISION"
    engine.dispose()
