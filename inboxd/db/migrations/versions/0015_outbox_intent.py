"""outbox rows may hold what to write instead of the written bytes

``outbox.intent`` (JSON text; "" for a row whose ``raw`` is the mail) holds a
queued mail's addressing, its template and context and its attachments by
blob, fixed at queue time; the drain renders it into the bytes it sends. The
ingest transaction then writes a small row per mail instead of a rendered
mail with a copy of every attachment per agent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intent", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("intent")
