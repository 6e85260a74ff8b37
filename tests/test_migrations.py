"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inboxd.db.engine import SchemaError, alembic_config, ensure_schema, make_engine, upgrade
from inboxd.db.tables import metadata


def test_migrations_match_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"models changed without a migration: {diff}"
    ensure_schema(engine)  # at head: no error
    engine.dispose()


def test_fresh_database_is_created_and_stamped(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert upgrade(engine)
    ensure_schema(engine, create_if_empty=False)
    engine.dispose()


def test_schema_not_at_head_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(SchemaError, match="inboxd db upgrade"):
        ensure_schema(engine)
    engine.dispose()
