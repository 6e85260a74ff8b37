"""Alembic environment: the engine is passed in by inboxd, never read from an ini."""

from __future__ import annotations

from alembic import context

from inboxd.db.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
